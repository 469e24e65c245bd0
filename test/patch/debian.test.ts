/**
 * `xsplice patch` against the real thing: Debian's Xen 4.17.5+72 rebuilt from its source package
 * (once, cached by build-id outside the repository; test/helpers/xen-base.ts), fixes shaped like
 * real ones (test/patch/fixes.ts) taken to payloads that verify accepts against the stock
 * xen-syms with the exact function set, the refusals, and the live run on the stock hypervisor.
 * With CI=true nothing here skips.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBuildIdSync } from '../../src/buildid/read.js';
import { readObjectRecords } from '../../src/patch/cmdfile.js';
import { recompileObject } from '../../src/patch/recompile.js';
import { cacheRoot } from '../../src/patch/cache.js';
import { diffObjects } from '../../src/diff/index.js';
import type { Base } from '../../src/patch/index.js';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID } from '../helpers/debian.js';
import { ensureDebianBase, flagVariant } from '../helpers/xen-base.js';
import { globalFix, lineFix, macroFix, staticFix, twoObjectFix, visibleFix, type Fix } from './fixes.js';

const BIN = join(REPO, 'bin', 'xsplice');
const STOCK = debianXen.xenSyms;

function runCli(
  args: string[],
  timeoutMs = 300_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, env }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
      res({ code: typeof code === 'number' ? code : null, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'xsplice-patch-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function patchFile(fix: Fix | { name: string; text: string }): string {
  const f = join(dir, `${fix.name}.patch`);
  writeFileSync(f, fix.text);
  return f;
}

describe.skipIf(missing('Debian Xen 4.17 packages (scripts/setup-deps.sh)', haveDebianXen()))('the Debian 4.17.5+72 base', () => {
  let base: Base;
  beforeAll(async () => {
    const t = Date.now();
    base = await ensureDebianBase();
    process.stdout.write(`base ${base.cached ? 'from the cache' : 'built'} in ${Date.now() - t} ms (${base.tree})\n`);
  }, 1_800_000);

  it('is built from the source package outside the repository, and its xen-syms is the stock one (same build-id)', () => {
    expect(base.tree.startsWith(REPO + '/')).toBe(false);
    expect(base.tree.startsWith(cacheRoot())).toBe(true);
    const built = readBuildIdSync({ path: join(base.tree, 'xen', 'xen-syms') }).buildId;
    expect(built).toBe(XEN_BUILD_ID);
    expect(readBuildIdSync({ path: STOCK }).buildId).toBe(built);
    expect(JSON.parse(readFileSync(join(cacheRoot(), 'by-build-id', `${XEN_BUILD_ID}.json`), 'utf8')).tree).toBe(base.tree);
  });

  it("recompiles objects from their recorded commands byte-identical to make's (without touching the tree)", async () => {
    const xenDir = join(base.tree, 'xen');
    const records = readObjectRecords(xenDir);
    expect(records.size).toBeGreaterThan(350);
    const scratch = mkdtempSync(join(tmpdir(), 'xsplice-rc-'));
    for (const obj of [
      'common/version.o',
      'common/kernel.o',
      'common/compat/kernel.o',
      'common/rangeset.o',
      'arch/x86/hvm/viridian/time.o',
      'drivers/char/console.o',
    ]) {
      const out = await recompileObject(records.get(obj)!, { xenDir, overlay: join(scratch, 'ov'), outDir: join(scratch, 'out') });
      expect(Buffer.compare(readFileSync(out), readFileSync(join(xenDir, obj))), obj).toBe(0);
    }
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it('diffs the base objects against themselves: zero changes (issue 12, timed)', async () => {
    const xenDir = join(base.tree, 'xen');
    const t = Date.now();
    const d = await diffObjects({ orig: xenDir, patched: xenDir });
    process.stdout.write(`self-diff of the base objects: ${Date.now() - t} ms, ${d.explain.identical.length} identical\n`);
    expect(d.functions.filter((f) => f.status !== 'same')).toEqual([]);
    expect(d.explain.identical.length).toBeGreaterThan(350); // every hypervisor object diff pairs (391 with diff as of this writing)
    expect(d.errors.map((e) => e.code)).toEqual(['DIFF_NO_FUNCTIONAL_CHANGE']);
  }, 120_000);

  describe('fixes shaped like real ones become payloads that verify accepts against the stock xen-syms', () => {
    for (const fix of [globalFix, staticFix, lineFix, twoObjectFix, visibleFix]) {
      it(`${fix.name}: ${fix.functions.join(', ')}`, async () => {
        const out = join(dir, `${fix.name}.livepatch`);
        const r = await runCli(['patch', patchFile(fix), '--xen', STOCK, '-o', out, '--json']);
        expect(r.code, r.stderr).toBe(0);
        const doc = JSON.parse(r.stdout);
        expect(doc.ok).toBe(true);
        expect(doc.base).toMatchObject({ buildId: XEN_BUILD_ID, cached: true });
        expect(
          doc.objects
            .filter((o: { changed: boolean }) => o.changed)
            .map((o: { object: string }) => o.object)
            .sort(),
        ).toEqual(fix.objects);
        const included = doc.functions
          .filter((f: { included: boolean }) => f.included)
          .map((f: { xenName: string }) => f.xenName)
          .sort();
        expect(included).toEqual(fix.functions);
        // Their own lines changed: none is explained as code-generation drift.
        expect(doc.functions.filter((f: { codegenDrift?: unknown }) => f.codegenDrift).map((f: { name: string }) => f.name)).toEqual([]);
        expect(doc.verify.ok).toBe(true);
        expect(doc.file).toBe(out);
        // Progress: one line per phase, with the elapsed time.
        expect(r.stderr).toMatch(/^xsplice: patch: \[\s*\d+\.\ds\] base: cache hit for build-id 39a640e6/m);
        expect(r.stderr).toMatch(/^xsplice: patch: \[\s*\d+\.\ds\] recompile \d+ objects? from their recorded commands: done in/m);
        // The stock hypervisor's own rules, run separately.
        const v = await runCli(['verify', out, '--xen', STOCK, '--json']);
        expect(v.code, v.stdout).toBe(0);
        const inspect = JSON.parse((await runCli(['inspect', out, '--json'])).stdout);
        expect(inspect.funcs.map((f: { name: string }) => f.name).sort()).toEqual(fix.functions);
      }, 300_000);
    }

    it('without the #line fix, the shifted lines show up as line-only functions (not in the payload)', async () => {
      const explain = join(dir, 'explain.json');
      const r = await runCli(['patch', patchFile(lineFix), '--xen', STOCK, '--no-line-fix', '--json', '-q', '--explain', explain]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.functions.filter((f: { included: boolean }) => f.included).map((f: { xenName: string }) => f.xenName)).toEqual([
        'grant_table_init',
      ]);
      expect(doc.functions.filter((f: { status: string }) => f.status === 'line-only').length).toBeGreaterThan(0);
      expect(doc.files[0]).toMatchObject({ path: 'xen/common/grant_table.c', lineDirectives: 0 });
      expect(doc.file).toBe(null);
      const ex = JSON.parse(readFileSync(explain, 'utf8'));
      expect(ex.objects.map((o: { object: string }) => o.object)).toEqual(['common/grant_table.o']);
      expect(ex.objects[0].lineOnly.length).toBeGreaterThan(0);
    }, 300_000);

    it('make (the fallback, in a copy of the base) gives the same payload bytes as the recorded commands', async () => {
      const viaCommands = join(dir, 'route-commands.livepatch');
      const viaMake = join(dir, 'route-make.livepatch');
      expect((await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', viaCommands, '-q'])).code).toBe(0);
      const r = await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', viaMake, '--make', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).objects).toMatchObject([{ object: 'common/version.o', changed: true, via: 'make' }]);
      expect(r.stderr).toMatch(/make -j\d+ -C xen build \(patched copy; log .*\): done in/);
      expect(Buffer.compare(readFileSync(viaMake), readFileSync(viaCommands))).toBe(0);
    }, 600_000);

    it("--source DIR (the base tree given as a user's tree) gives the same payload", async () => {
      const viaCache = join(dir, 'src-cache.livepatch');
      const viaSource = join(dir, 'src-dir.livepatch');
      expect((await runCli(['patch', patchFile(globalFix), '--xen', STOCK, '-o', viaCache, '-q'])).code).toBe(0);
      const r = await runCli([
        'patch',
        patchFile(globalFix),
        '--xen',
        STOCK,
        '-o',
        viaSource,
        '--source',
        join(base.tree, 'xen'),
        '--json',
        '-q',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).base).toMatchObject({ buildId: XEN_BUILD_ID, source: `dir:${base.tree}` });
      expect(Buffer.compare(readFileSync(viaSource), readFileSync(viaCache))).toBe(0);
    }, 300_000);

    it('--depends: a second fix stacks on the first payload; verify accepts the pair, not the second alone', async () => {
      const a = join(dir, 'stack-a.livepatch');
      const b = join(dir, 'stack-b.livepatch');
      expect((await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', a, '-q'])).code).toBe(0);
      const r = await runCli(['patch', patchFile(globalFix), '--xen', STOCK, '-o', b, '--depends', a, '--json', '-q']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).verify.payloads.map((p: { file: string }) => p.file)).toEqual([a, b]);
      const ids = JSON.parse((await runCli(['buildid', a, b, '--json'])).stdout);
      expect(ids[1].depends).toBe(ids[0].buildId);
      expect((await runCli(['verify', a, b, '--xen', STOCK])).code).toBe(0);
      expect((await runCli(['verify', b, '--xen', STOCK])).code).toBe(1);
      const bad = await runCli([
        'patch',
        patchFile(globalFix),
        '--xen',
        STOCK,
        '-o',
        join(dir, 'stack-bad.livepatch'),
        '--depends',
        join(dir, 'nothing-here'),
      ]);
      expect(bad.code).toBe(2);
    }, 300_000);

    it('--depends with --on: a second fix to the same function, written on top of the first, stacks on its payload', async () => {
      const one = {
        name: 'stack_one',
        text: `--- a/xen/common/version.c
+++ b/xen/common/version.c
@@ -57,7 +57,8 @@ const char *xen_compile_system_version(void)
 
 const char *xen_extra_version(void)
 {
-    return XEN_EXTRAVERSION;
+    asm volatile ( "nop" );
+    return XEN_EXTRAVERSION "-one";
 }
 
 const char *xen_changeset(void)
`,
      };
      const two = {
        name: 'stack_two',
        text: `--- a/xen/common/version.c
+++ b/xen/common/version.c
@@ -58,7 +58,7 @@ const char *xen_compile_system_version(void)
 const char *xen_extra_version(void)
 {
     asm volatile ( "nop" );
-    return XEN_EXTRAVERSION "-one";
+    return XEN_EXTRAVERSION "-two";
 }
 
 const char *xen_changeset(void)
`,
      };
      const a = join(dir, 'on-a.livepatch');
      const b = join(dir, 'on-b.livepatch');
      expect((await runCli(['patch', patchFile(one), '--xen', STOCK, '-o', a, '-q'])).code).toBe(0);
      // Alone, the second fix does not apply to the base (it is written on top of the first).
      const alone = await runCli(['patch', patchFile(two), '--xen', STOCK, '-o', join(dir, 'on-x.livepatch'), '-q']);
      expect(alone.code).toBe(1);
      expect(alone.stderr).toMatch(/hunk #1 .* does not apply/);
      const r = await runCli(['patch', patchFile(two), '--xen', STOCK, '-o', b, '--depends', a, '--on', patchFile(one), '--json', '-q']);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.functions.filter((f: { included: boolean }) => f.included).map((f: { xenName: string }) => f.xenName)).toEqual([
        'xen_extra_version',
      ]);
      expect((await runCli(['verify', a, b, '--xen', STOCK])).code).toBe(0);
      expect((await runCli(['verify', b, '--xen', STOCK])).code).toBe(1);
      // ORIG as the base (no --on) is not what runs under the first payload: refused, naming it.
      const wrong = await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', join(dir, 'on-y.livepatch'), '--depends', a]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/xen_extra_version as the payload stacked on \(--depends\) replaces it does not hold ORIG's bytes/);
      expect(
        (await runCli(['patch', patchFile(two), '--xen', STOCK, '-o', join(dir, 'on-z.livepatch'), '--on', patchFile(one)])).code,
      ).toBe(2);
    }, 300_000);

    it('a #define changed outside any function: its users are included and explained as codegen-drift (§3.2 rule 4)', async () => {
      const explain = join(dir, 'drift-explain.json');
      const r = await runCli(['patch', patchFile(macroFix), '--xen', STOCK, '--json', '-q', '--explain', explain]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      const inc = doc.functions.filter((f: { included: boolean }) => f.included);
      expect(inc.map((f: { xenName: string }) => f.xenName).sort()).toEqual(macroFix.functions);
      for (const f of inc) {
        expect(f.reason).toMatch(/^codegen-drift: no source line of this function changed/);
        // The span of each: its own lines in credit.c (the inlined __csched_set_tslice at 1241-1249 among them), never line 50.
        const own = f.codegenDrift.find((x: { file: string }) => x.file === 'common/sched/credit.c');
        expect(own.first).toBeLessThanOrEqual(1244);
        expect(own.first).toBeGreaterThan(50);
      }
      expect(
        JSON.parse(readFileSync(explain, 'utf8'))
          .objects[0].drift.map((d: { name: string }) => d.name)
          .sort(),
      ).toEqual(macroFix.functions);
    }, 300_000);

    it('gives the same payload bytes twice', async () => {
      const a = join(dir, 'twice-a.livepatch');
      const b = join(dir, 'twice-b.livepatch');
      for (const out of [a, b]) expect((await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', out, '-q'])).code).toBe(0);
      expect(Buffer.compare(readFileSync(a), readFileSync(b))).toBe(0);
    }, 300_000);
  });

  describe('refusals', () => {
    it('a hunk that does not apply is named (exit 1, nothing written)', async () => {
      const text = visibleFix.text.replace('-    return XEN_EXTRAVERSION;', '-    return XEN_EXTRAVERSION; /* 4.18 */');
      const out = join(dir, 'nohunk.livepatch');
      const f = patchFile({ name: 'nohunk', text });
      const r = await runCli(['patch', f, '--xen', STOCK, '-o', out, '-q']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `xsplice: ${f}: xen/common/version.c: hunk #1 (@@ -57,7 +57,7 @@ const char *xen_compile_system_version(void)) does not apply: line 60 is "    return XEN_EXTRAVERSION;", the patch expects "    return XEN_EXTRAVERSION; /* 4.18 */"\n`,
      );
      expect(existsSync(out)).toBe(false);
    });

    it('a change to headers that changes no code is refused, after recompiling the dependants from the dependency records', async () => {
      const text = [
        '--- a/xen/arch/x86/cpu/mcheck/util.h',
        '+++ b/xen/arch/x86/cpu/mcheck/util.h',
        '@@ -1,5 +1,6 @@',
        ' #ifndef _MCHECK_UTIL_H',
        ' #define _MCHECK_UTIL_H',
        '+/* util.h: helpers shared by the MCE code */',
        ' ',
        ' void mce_panic_check(void);',
        ' ',
        '--- a/xen/include/xen/sort.h',
        '+++ b/xen/include/xen/sort.h',
        '@@ -3,6 +3,7 @@',
        ' ',
        ' #include <xen/types.h>',
        ' ',
        '+/* sort(): heapsort, not stable */',
        ' /*',
        '  * sort - sort an array of elements',
        '  * @base: pointer to data to sort',
        '',
      ].join('\n');
      const r = await runCli(['patch', patchFile({ name: 'comments', text }), '--xen', STOCK, '-o', join(dir, 'c.livepatch')]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        'xsplice: the patches change no object code (arch/x86/cpu/mcheck/barrier.o, arch/x86/cpu/mcheck/mce.o, arch/x86/cpu/mcheck/mce_intel.o, arch/x86/cpu/mcheck/util.o, arch/x86/extable.o, lib/sort.o recompile identical to the base)',
      );
      expect(r.stderr).toMatch(/recompile 6 objects from their recorded commands: done/);
    }, 120_000);

    it('a data-only patch is refused with the reason (never "no change")', async () => {
      const text =
        '--- a/xen/common/grant_table.c\n+++ b/xen/common/grant_table.c\n@@ -105,1 +105,1 @@\n' +
        '-static unsigned int __read_mostly opt_max_maptrack_frames = 1024;\n+static unsigned int __read_mostly opt_max_maptrack_frames = 2048;\n';
      const out = join(dir, 'd.livepatch');
      const r = await runCli(['patch', patchFile({ name: 'data', text }), '--xen', STOCK, '-o', out, '-q']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^xsplice: common\/grant_table\.o: symbol common\/grant_table\.c#opt_max_maptrack_frames: no function changed, but data did: common\/grant_table\.c#opt_max_maptrack_frames; The running value will not change\. Write a LIVEPATCH_LOAD_HOOK/,
      );
      expect(existsSync(out)).toBe(false);
    }, 120_000);

    it('an assembly-only patch is refused with the reason', async () => {
      const text =
        '--- a/xen/arch/x86/x86_64/entry.S\n+++ b/xen/arch/x86/x86_64/entry.S\n@@ -1,3 +1,4 @@\n /*\n+ * (comment)\n  *        Hypercall and fault low-level handling routines.\n  *\n';
      const r = await runCli(['patch', patchFile({ name: 'asm', text }), '--xen', STOCK, '-o', join(dir, 'a.livepatch'), '-q']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('xen/arch/x86/x86_64/entry.S: the patch changes assembly; a live patch replaces C functions');
    });

    it('a base built with a different compiler flag is refused, naming the object and the flag', async () => {
      const variant = await flagVariant(base, 'common/kernel.o', '-O1');
      try {
        const r = await runCli(['patch', patchFile(visibleFix), '--xen', STOCK, '-o', join(dir, 'v.livepatch'), '--source', variant, '-q']);
        expect(r.code).toBe(1);
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines[0]).toMatch(
          new RegExp(
            `^xsplice: the base \\(dir:${variant}\\) is not the running hypervisor: its xen-syms build-id is [0-9a-f]{40}, XEN's is ${XEN_BUILD_ID}$`,
          ),
        );
        expect(lines[1]).toMatch(/^sections that differ: \.text \(size 0x[0-9a-f]+ in the base, 0x[0-9a-f]+ in XEN\)/);
        expect(lines[2]).toMatch(/^common\/kernel\.o: .*; flags: -O1$/);
        expect(lines[lines.length - 1]).toBe('likely cause: compiler flags: common/kernel.o was built with -O1');
      } finally {
        rmSync(join(variant, '..'), { recursive: true, force: true });
      }
    }, 600_000);
  });
});

describe('Debian sources the archive no longer serves', () => {
  it('4.17.7+13 (bookworm-security): 404, said so, with the --source hint (exit 1)', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'xsplice-cache-'));
    const r = await runCli(
      [
        'patch',
        patchFile(visibleFix),
        '--xen',
        XEN_BUILD_ID,
        '--debian',
        '4.17.7+13-g2445b30a44-0+deb12u1',
        '-o',
        join(dir, 'x.livepatch'),
        '-q',
      ],
      300_000,
      { ...process.env, XSPLICE_CACHE_DIR: cache },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^xsplice: the Debian archive no longer serves the source of xen 4\.17\.7\+13-g2445b30a44-0\+deb12u1 \(404 Not Found for http:\/\/deb\.debian\.org\/debian-security\/pool\/updates\/main\/x\/xen\/xen_4\.17\.7%2b13-g2445b30a44-0%2bdeb12u1\.dsc\), although its binaries may still download; --source DIR takes a Xen tree you have\n$/,
    );
    expect(existsSync(join(cache, 'debian', '4.17.7+13-g2445b30a44-0+deb12u1', 'base.json'))).toBe(false);
    rmSync(cache, { recursive: true, force: true });
  }, 300_000);

  it('XEN that reveals no Debian version and is not cached: a usage error naming --source/--debian (exit 2)', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'xsplice-cache-'));
    const r = await runCli(
      ['patch', patchFile(visibleFix), '--xen', '00112233445566778899aabbccddeeff00112233', '-o', join(dir, 'y.livepatch'), '-q'],
      60_000,
      { ...process.env, XSPLICE_CACHE_DIR: cache },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'xsplice: XEN reveals no Debian version and no cached base has its build-id 00112233445566778899aabbccddeeff00112233: give --source DIR (the tree that built it) or --debian VERSION\n',
    );
    rmSync(cache, { recursive: true, force: true });
  });
});

describe.skipIf(missing('Debian Xen 4.17 packages (scripts/setup-deps.sh)', haveDebianXen()))('an interrupted base build', () => {
  it('is never taken as built; the next run resumes it (make) and writes the completion marker last', async () => {
    const { ensureDebianBase: ensure } = await import('../../src/patch/debian-base.js');
    const { lookupBuildId } = await import('../../src/patch/cache.js');
    const { makeProgress } = await import('../../src/patch/progress.js');
    const root = mkdtempSync(join(tmpdir(), 'xsplice-cache-'));
    const version = '4.17.5+72-g01140da4e8-1';
    const work = join(root, 'debian', version);
    // What a killed run leaves: the source fetched and configured, make stopped half-way with a
    // truncated xen-syms, no base.json. (A stand-in source tree: its make "builds" the stock xen-syms.)
    const tree = join(work, 'src', 'xen-4.17.5+72-g01140da4e8');
    mkdirSync(join(tree, 'debian'), { recursive: true });
    mkdirSync(join(tree, 'xen'), { recursive: true });
    writeFileSync(
      join(tree, 'debian', 'changelog'),
      `xen (${version}) bookworm; urgency=medium\n\n  * test\n\n -- Debian Xen Team <pkg-xen-devel@lists.alioth.debian.org>  Sat, 01 Mar 2025 12:00:00 +0000\n`,
    );
    writeFileSync(join(tree, 'debian', 'control'), 'Source: xen\nMaintainer: Debian Xen Team <pkg-xen-devel@lists.alioth.debian.org>\n');
    writeFileSync(join(tree, 'debian', 'xen-kconfig'), 'CONFIG_DEBUG=n\n');
    writeFileSync(join(tree, 'xen', '.config'), 'CONFIG_DEBUG=n\n');
    writeFileSync(join(tree, 'xen', 'Makefile'), 'olddefconfig:\n\t@true\n');
    writeFileSync(join(tree, 'Makefile'), `.PHONY: xen\nxen:\n\tcp ${STOCK} xen/xen-syms\n`);
    writeFileSync(join(tree, 'xen', 'xen-syms'), readFileSync(STOCK).subarray(0, 4096));
    writeFileSync(join(work, 'fetched'), tree + '\n');
    writeFileSync(join(work, 'configured'), '');
    expect(lookupBuildId(XEN_BUILD_ID, root)).toBeUndefined();
    const lines: string[] = [];
    const base = await ensure(version, { root, progress: makeProgress((l) => lines.push(l)), expectBuildId: XEN_BUILD_ID });
    expect(base).toMatchObject({ buildId: XEN_BUILD_ID, cached: false, tree, source: `debian:${version}` });
    expect(lines.some((l) => l.includes(`resuming the interrupted base build in ${tree}`))).toBe(true);
    expect(JSON.parse(readFileSync(join(work, 'base.json'), 'utf8')).buildId).toBe(XEN_BUILD_ID);
    expect(lookupBuildId(XEN_BUILD_ID, root)?.tree).toBe(tree);
    expect((await ensure(version, { root, progress: makeProgress(undefined) })).cached).toBe(true);
    expect(existsSync(`${work}.lock`)).toBe(false);
    rmSync(root, { recursive: true, force: true });
  }, 120_000);
});
