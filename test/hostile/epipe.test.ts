/**
 * Issue 14 item 7: a reader that closes standard output early (`xsplice elf big.o | head`) ends the
 * command with one line naming stdout and exit 2, never a stack trace.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/debian.js';

const BIN = join(REPO, 'bin/xsplice');

describe('stdout closed by its reader', () => {
  it('a reader that closes standard output early: one line naming stdout, exit 2, not a stack trace', () => {
    // `xsplice elf` of an object with 4,000 symbols prints far more than a pipe holds.
    const d = mkdtempSync(join(tmpdir(), 'xsplice-epipe-'));
    try {
      const asm = ['\t.text'];
      for (let i = 0; i < 4000; i++) asm.push(`\t.globl symbol_with_a_long_name_${i}`, `symbol_with_a_long_name_${i}:`, '\tret');
      writeFileSync(join(d, 'x.s'), asm.join('\n') + '\n');
      execFileSync('as', ['--64', join(d, 'x.s'), '-o', join(d, 'x.o')]);
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', `"${BIN}" elf "${join(d, 'x.o')}" | head -c 100 >/dev/null`]);
      expect(String(r.stderr)).toBe('xsplice: stdout: write failed (EPIPE: the reader closed it)\n');
      expect(r.status).toBe(2);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
