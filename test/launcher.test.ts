/**
 * bin/xsplice and dist/xsplice.cjs (cli/launcher.cts): the shell/JavaScript launcher, the V8 code
 * cache of the CLI bundle, and what the CLI does when its reader closes standard output.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from './helpers/debian.js';

const BIN = join(REPO, 'bin/xsplice');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));

/** Runs a fresh `node -e` (no vitest flags: V8 takes a code cache only under the flags it was made with). */
function nodeEval(code: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(process.execPath, ['-e', code], { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

/** The launcher and bundle copied to a directory of their own, to tamper with. */
function copyDist(): string {
  const d = mkdtempSync(join(tmpdir(), 'xsplice-launcher-'));
  for (const f of ['xsplice.cjs', 'xsplice-cli.js', 'xsplice-cli.cache']) copyFileSync(join(REPO, 'dist', f), join(d, f));
  return d;
}

const probe = (dir: string) =>
  `const l = require(${JSON.stringify(join(dir, 'xsplice.cjs'))}); const x = l.loadCli(); let out = '';
   x.cli.main(['buildid', ${JSON.stringify(join(REPO, 'package.json'))}], { out: (s) => (out += s), err: (s) => (out += s) })
     .then((code) => process.stdout.write(JSON.stringify({ accepted: x.cacheAccepted, code, out })));`;

describe('launcher', () => {
  it('run as a program, bin/xsplice starts Node without NODE_EXTRA_CA_CERTS (Node 20 would load it at start-up)', () => {
    // Node 20 reads NODE_EXTRA_CA_CERTS before any JavaScript runs and warns when it cannot.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '/nonexistent/xsplice-test-ca.pem' };
    const viaNode = spawnSync(process.execPath, [BIN, '--version'], { env });
    expect(String(viaNode.stderr)).toMatch(/extra certs/i); // the oracle: Node does read it
    const direct = spawnSync(BIN, ['--version'], { env });
    expect(direct.status).toBe(0);
    expect(String(direct.stdout).trim()).toBe(pkg.version);
    expect(String(direct.stderr)).toBe('');
  });

  it('the launcher puts NODE_EXTRA_CA_CERTS back for the programs the CLI starts', () => {
    const env = { ...process.env, XSPLICE_NODE_EXTRA_CA_CERTS: '/some/ca.pem' };
    delete env.NODE_EXTRA_CA_CERTS;
    const out = nodeEval(`require(${JSON.stringify(join(REPO, 'dist/xsplice.cjs'))}).start(['--version']).then(() =>
      console.log(JSON.stringify([process.env.NODE_EXTRA_CA_CERTS, process.env.XSPLICE_NODE_EXTRA_CA_CERTS ?? null])))`, env);
    expect(out.trim().split('\n').pop()).toBe(JSON.stringify(['/some/ca.pem', null]));
  });

  it('bin/xsplice through a symlink (as npm installs it) finds its dist/', () => {
    const d = mkdtempSync(join(tmpdir(), 'xsplice-bin-link-'));
    try {
      execFileSync('ln', ['-s', BIN, join(d, 'xsplice')]);
      const r = spawnSync(join(d, 'xsplice'), ['buildid', join(REPO, 'package.json')]);
      expect(r.status).toBe(2);
      expect(String(r.stderr)).toMatch(/^xsplice: .*package\.json/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('the build leaves a code cache that V8 takes', () => {
    const r = JSON.parse(nodeEval(probe(join(REPO, 'dist'))));
    expect(r.accepted).toBe(true);
    expect(r.code).toBe(2); // package.json is not a build-id source
  });

  it('a cache of another bundle, or one V8 rejects, is ignored and the CLI still runs', () => {
    const d = copyDist();
    try {
      // A cache of its own for the copy (the stamp holds the copy's mtime, a whole second).
      const t0 = new Date(1_700_000_000_000);
      utimesSync(join(d, 'xsplice-cli.js'), t0, t0);
      nodeEval(`const l = require(${JSON.stringify(join(d, 'xsplice.cjs'))}); l.writeCodeCache(l.loadCli());`);
      const good = JSON.parse(nodeEval(probe(d)));
      expect(good.accepted).toBe(true);
      // The bundle changed after the cache was made (its mtime moved): the cache is not offered.
      const t1 = new Date(1_700_000_005_000);
      utimesSync(join(d, 'xsplice-cli.js'), t1, t1);
      const stale = JSON.parse(nodeEval(probe(d)));
      expect(stale.accepted).toBe(null);
      expect(stale).toMatchObject({ code: good.code, out: good.out });
      // Damaged data behind a matching stamp (V8 itself would crash on it): not offered either.
      utimesSync(join(d, 'xsplice-cli.js'), t0, t0);
      const cache = readFileSync(join(d, 'xsplice-cli.cache'));
      const bad = Buffer.from(cache);
      bad.fill(0x5a, 80);
      writeFileSync(join(d, 'xsplice-cli.cache'), bad);
      const damaged = JSON.parse(nodeEval(probe(d)));
      expect(damaged.accepted).toBe(null);
      expect(damaged).toMatchObject({ code: good.code, out: good.out });
      // A sound cache under other V8 flags: offered, and V8 rejects it.
      writeFileSync(join(d, 'xsplice-cli.cache'), cache);
      const flags = JSON.parse(execFileSync(process.execPath, ['--max-lazy', '-e', probe(d)]).toString());
      expect(flags.accepted).toBe(false);
      expect(flags).toMatchObject({ code: good.code, out: good.out });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('a reader that closes standard output early: one line naming stdout, exit 2, not a stack trace', () => {
    // `xsplice elf` of an object with 4,000 symbols prints far more than a pipe holds.
    const d = mkdtempSync(join(tmpdir(), 'xsplice-epipe-'));
    try {
      const asm = ['\t.text'];
      for (let i = 0; i < 4000; i++) asm.push(`\t.globl symbol_with_a_long_name_${i}`, `symbol_with_a_long_name_${i}:`, '\tret');
      writeFileSync(join(d, 'x.s'), asm.join('\n') + '\n');
      execFileSync('as', ['--64', join(d, 'x.s'), '-o', join(d, 'x.o')]);
      const r = spawnSync('bash', ['-o', 'pipefail', '-c', `"${BIN}" elf "${join(d, 'x.o')}" | head -c 100 >/dev/null`]);
      // Issue 14 (item 7): a failed write to stdout is an I/O error of the command (exit 2), said once.
      expect(String(r.stderr)).toBe('xsplice: stdout: write failed (EPIPE: the reader closed it)\n');
      expect(r.status).toBe(2);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
