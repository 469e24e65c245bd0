import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './helpers/debian.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));

describe('package', () => {
  it('the library entry named by package.json exports the documented functions', async () => {
    const m = await import(join(REPO, pkg.exports['.']));
    for (const name of ['readElf', 'readElfFile', 'ObjectBuilder', 'readBuildId', 'setBuildId', 'buildPayload', 'loadTarget',
      'verifyPayloads', 'inspectPayload', 'abiForVersion', 'listAbis', 'runSession', 'tryPayloads', 'XspliceError']) {
      expect(typeof m[name], name).not.toBe('undefined');
    }
    expect(m.listAbis().map((a: { id: string }) => a.id)).toContain('L2c-x86_64');
  });

  it('bin/xsplice --version (fast path and full CLI) prints the package version', async () => {
    const fast = execFileSync(join(REPO, 'bin/xsplice'), ['--version']).toString().trim();
    // The full CLI (commander), run in-process: the fast path in bin/ is skipped.
    const { VERSION, main } = await import(join(REPO, 'dist/cli/xsplice.js'));
    let out = '';
    const code = await main(['--version'], { out: (s: string) => (out += s), err: () => undefined });
    expect(code).toBe(0);
    expect(fast).toBe(pkg.version);
    expect(out.trim()).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version);
  });

  it('an unknown command is a usage error: exit 2, one line on stderr, no stack trace', () => {
    let status = 0;
    let stderr = '';
    try {
      execFileSync(join(REPO, 'bin/xsplice'), ['frobnicate'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/^xsplice: unknown command 'frobnicate'/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
