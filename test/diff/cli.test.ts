/** `xsplice diff` on the command line: report-only runs, exit statuses, one-line errors. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/debian.js';
import { pair, tmp } from './compile.js';

const BIN = join(REPO, 'bin', 'xsplice');
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
      res({ code: typeof code === 'number' ? code : null, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe('xsplice diff (CLI)', () => {
  const H = '#include "xen-mini.h"\n';
  it('reports without a target (exit 0), explains, and emits JSON', async () => {
    const p = pair(
      'cli',
      H + 'int f(int x) { return x + 1; }\nint g(int x) { return x; }\n',
      H + 'int f(int x) { return x + 2; }\nint g(int x) { return x; }\n',
    );
    const txt = await cli(['diff', p.orig, p.patched, '--explain']);
    expect(txt.code).toBe(0);
    expect(txt.stderr).toBe('');
    expect(txt.stdout).toMatch(/^\+ changed +f +\(cli\.o\)\n +changed at \+0x\d+: .* \[§3\.1\]\n/);
    expect(txt.stdout).toContain('patch f -> f');
    const js = await cli(['diff', p.orig, p.patched, '--json']);
    const doc = JSON.parse(js.stdout);
    expect(doc.ok).toBe(true);
    expect(doc.functions.map((f: { name: string; status: string }) => `${f.status}:${f.name}`)).toEqual(['changed:f']);
    expect(doc.objects).toEqual([{ name: 'cli.lp.o', size: expect.any(Number) }]);
  });

  it('a refusal exits 1 with one stderr line naming the code and symbol', async () => {
    const p = pair('clidata', H + 'int lim = 1;\nint f(void) { return 0; }\n', H + 'int lim = 2;\nint f(void) { return 0; }\n');
    const r = await cli(['diff', p.orig, p.patched]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^xsplice: clidata\.o: symbol lim: DIFF_DATA_ONLY: no function changed, but data did: lim; /),
    ]);
    const j = await cli(['diff', p.orig, p.patched, '--json']);
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stdout).errors.map((e: { code: string }) => e.code)).toEqual(['DIFF_DATA_ONLY', 'DIFF_CHANGED_DATA']);
  });

  it('usage and malformed input exit 2 with one line', async () => {
    const d = tmp('clibad');
    const junk = join(d, 'junk.o');
    writeFileSync(junk, 'not an object at all');
    const p = pair('cliok', H + 'int f(int x) { return x; }\n', H + 'int f(int x) { return x + 1; }\n');
    for (const args of [
      ['diff', p.orig, junk],
      ['diff', p.orig, join(d, 'missing.o')],
      ['diff', p.orig, p.patched, '-o', join(d, 'x.livepatch')],
      ['diff', p.orig, p.patched, '--allow', 'everything'],
    ]) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^xsplice: /);
    }
  });
});
