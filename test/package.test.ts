/**
 * The package a user installs and the way its command starts: package.json's entry points and
 * file list, the LICENSE, bin/xsplice as a plain Node script (through npm's symlink too), and
 * the CLI's behaviour when a reader closes standard output. `.ci/run` installs the packed tarball
 * into a scratch directory and runs it there; these tests check what can be checked in place.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import nodeModule from 'node:module';
import { join } from 'node:path';
import { REPO } from './helpers/debian.js';
import { tempDirSync } from './helpers/tmp.js';

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
const BIN = join(REPO, 'bin/xsplice');

describe('package', () => {
  it('the library entry named by package.json exports the documented functions, with types beside it', async () => {
    const entry = pkg.exports['.'];
    expect(entry.default).toBe(pkg.main);
    expect(entry.types).toBe(pkg.types);
    expect(existsSync(join(REPO, pkg.types))).toBe(true);
    const m = await import(join(REPO, entry.default));
    for (const name of [
      'readElf',
      'readElfFile',
      'ObjectBuilder',
      'readBuildId',
      'setBuildId',
      'buildPayload',
      'loadTarget',
      'verifyPayloads',
      'inspectPayload',
      'abiForVersion',
      'listAbis',
      'runSession',
      'tryPayloads',
      'XspliceError',
    ]) {
      expect(typeof m[name], name).not.toBe('undefined');
      expect(readFileSync(join(REPO, pkg.types), 'utf8'), name).toMatch(new RegExp(`\\b${name}\\b`));
    }
    expect(m.listAbis().map((a: { id: string }) => a.id)).toContain('L2c-x86_64');
  });

  it('npm pack ships the CLI, the library and its types, the docs and the LICENSE; no tests, benches, CI or sources', () => {
    // --ignore-scripts: dist/ is already built by the test set-up; this asks only what would be packed.
    const [r] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'ignore'],
      }).toString(),
    );
    const files: string[] = r.files.map((f: { path: string }) => f.path);
    for (const f of [
      'package.json',
      'LICENSE',
      'README.md',
      'bin/xsplice',
      'dist/xsplice-cli.cjs',
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'docs/cli.md',
      'docs/rules.md',
    ]) {
      expect(files, f).toContain(f);
    }
    for (const f of files) expect(f).not.toMatch(/^(test|bench|\.ci|cli|src|examples)\/|^dist\/cli\/|\.tsbuildinfo$|^vitest|^tsconfig/);
    expect(r.entryCount).toBe(files.length);
  });

  it('LICENSE is the licence package.json names', () => {
    expect(pkg.license).toBe('MIT');
    const text = readFileSync(join(REPO, 'LICENSE'), 'utf8');
    expect(text.split('\n')[0]).toBe('MIT License');
    expect(text).toMatch(/Permission is hereby granted, free of charge/);
  });

  it('the build runs on prepare (clone install, pack, publish)', () => {
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig.json && node scripts\/bundle.mjs$/);
  });

  it('bin/xsplice is a plain Node script: a #!/usr/bin/env node line, and no environment of its own', () => {
    const text = readFileSync(BIN, 'utf8');
    expect(text.split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(text).not.toMatch(/NODE_EXTRA_CA_CERTS|process\.env|unset|exec /);
    // Node reads NODE_EXTRA_CA_CERTS itself at start-up (and warns when it cannot): xsplice starts
    // as any Node program does, with the user's environment as it is.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/xsplice-test-ca.pem' };
    const viaNode = spawnSync(process.execPath, ['-e', '0'], { env });
    const direct = spawnSync(BIN, ['--version'], { env });
    expect(direct.status).toBe(0);
    expect(String(direct.stdout).trim()).toBe(pkg.version);
    expect(String(direct.stderr)).toBe(String(viaNode.stderr));
  });

  it('--version and unknown commands go through the whole CLI (there is no fast path to measure instead)', async () => {
    const r = spawnSync(BIN, ['--version']);
    expect(String(r.stdout).trim()).toBe(pkg.version);
    const { VERSION } = await import(join(REPO, 'cli/version.ts'));
    expect(VERSION).toBe(pkg.version);
    const bad = spawnSync(BIN, ['frobnicate']);
    expect(bad.status).toBe(2);
    expect(String(bad.stderr)).toMatch(/^xsplice: unknown command 'frobnicate'/);
    expect(String(bad.stderr)).not.toMatch(/\n\s+at /);
  });

  it('module.enableCompileCache is used where Node has it (22.1+); on older Node the CLI runs without it', () => {
    const cache = tempDirSync('compile-cache');
    try {
      const r = spawnSync(BIN, ['buildid', 'ee'.repeat(20)], { env: { ...process.env, NODE_COMPILE_CACHE: cache } });
      expect(r.status).toBe(0);
      expect(String(r.stdout)).toBe(`${'ee'.repeat(20)}  ${'ee'.repeat(20)}\n`);
      const hasApi = typeof (nodeModule as { enableCompileCache?: unknown }).enableCompileCache === 'function';
      // Node writes its cache into a subdirectory named after its version; Node 20 writes nothing.
      expect(readdirSync(cache).length > 0).toBe(hasApi);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it('through a symlink (as npm installs it) bin/xsplice finds its dist/; without dist/ it says so in one line', () => {
    const d = tempDirSync('bin-link');
    try {
      execFileSync('ln', ['-s', BIN, join(d, 'xsplice')]);
      const r = spawnSync(join(d, 'xsplice'), ['buildid', join(REPO, 'package.json')]);
      expect(r.status).toBe(2);
      expect(String(r.stderr)).toMatch(/^xsplice: .*package\.json/);
      // A copy without dist/ beside it (a clone before `npm install`).
      mkdirSync(join(d, 'pkg/bin'), { recursive: true });
      copyFileSync(join(REPO, 'package.json'), join(d, 'pkg/package.json'));
      copyFileSync(BIN, join(d, 'pkg/bin/xsplice'));
      const none = spawnSync(process.execPath, [join(d, 'pkg/bin/xsplice'), '--version']);
      expect(none.status).toBe(2);
      expect(String(none.stderr)).toMatch(/^xsplice: cannot load dist\/xsplice-cli\.cjs \(run 'npm run build' first\): [^\n]*\n$/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
