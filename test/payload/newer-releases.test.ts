/**
 * Releases through 4.22 and the checks that come with them, on payloads made by gcc and
 * `xsplice build` against Debian's xen-syms 4.17.5+72 (the pinned target, built with return and
 * indirect thunks), with --xen-version choosing the release:
 *  - every release of the table's newest lines builds and verifies clean;
 *  - bug frames point at UDB (d6) from 4.22 and at ud2 (0f 0b) before: build refuses, verify flags;
 *  - plain `ret` / indirect branches against a thunk-built hypervisor: build and verify warn;
 *  - NOP ranges decoded from the target (Xen's own xen_nop test payload ends inside a 5-byte
 *    `jmp __x86_return_thunk`), NULL names with old_addr set, hooks that decide at run time, and a
 *    payload patching a function the payload below it introduced.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { abiForVersion } from '../../src/payload/abi.js';
import { loadTarget } from '../../src/payload/target.js';
import { formatVerify, verifyPayloads } from '../../src/payload/verify.js';
import { debianXen, haveDebianXen, missing, REPO } from '../helpers/debian.js';
import { PayloadFixture } from '../helpers/payload-fixture.js';
import { have } from '../helpers/tools.js';
import { runCli as cli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const XEN = debianXen.xenSyms;

let dir: string;
async function gcc(name: string, src: string, flags = CFLAGS): Promise<string> {
  const c = join(dir, `${name}.c`);
  await writeFile(c, src);
  const o = join(dir, `${name}.o`);
  await exec('gcc', [...flags, '-c', c, '-o', o]);
  return o;
}

/** xen_extra_version's replacement with one WARN-style bug frame (.bug_frames.1) at `insn`. */
const bugSrc = (insn: string): string => `
const char *xen_extra_version(void);
const char *xen_extra_version(void)
{
    asm volatile ("1: ${insn}\\n"
                  ".pushsection .bug_frames.1, \\"a\\", @progbits\\n"
                  ".p2align 2\\n"
                  "2: .long (1b - 2b)\\n"
                  ".long 0\\n"
                  ".popsection");
    return "+bug";
}
`;

const ready = haveDebianXen() && have('gcc') && have('readelf');

describe.skipIf(missing('Debian xen-syms + gcc (scripts/setup-deps.sh)', ready))('releases through 4.22 and their checks', () => {
  let example: string;
  beforeAll(async () => {
    dir = await tempDir('newer');
    example = join(dir, 'example.o');
    await exec('gcc', [...CFLAGS, '-c', join(REPO, 'examples/xen-extra-version/xen_extra_version.c'), '-o', example]);
  });

  const releases: [string, Record<string, boolean | string | number>][] = [
    ['4.17.7', { altFlagNot: true, xenDependsFirst: false, bugUdb: false }],
    ['4.18.6', { altFlagNot: true, xenDependsFirst: true, buildIdErrnoPassThrough: true }],
    ['4.19.6', { altFlagNot: true, xenDependsFirst: true, regionAtUpload: true }],
    ['4.20.4', { altFlagNot: true, altErrorsReturned: true }],
    ['4.21.2', { altCallSites: true, xenBuildIdVariables: true, bugUdb: false }],
    ['4.22.0', { bugUdb: true }],
    ['4.23-dev', { bugUdb: true, altCallSites: true }],
  ];
  for (const [ver, features] of releases) {
    it(`Xen ${ver}: its row, a payload built for it, verify exits 0`, async () => {
      const row = abiForVersion(ver, 'x86_64');
      expect(row.name).toBe('L2c');
      expect(row.loader!.features).toMatchObject(features);
      expect(row.loader!.bugInstruction).toBe(features.bugUdb ? 'udb' : 'ud2');
      const out = join(dir, `r-${ver}.livepatch`);
      const b = await cli(['build', example, '-o', out, '--xen', XEN, '--xen-version', ver, '--patch', 'xen_extra_version', '--json']);
      expect(b.code, b.err).toBe(0);
      expect(JSON.parse(b.out)).toMatchObject({ ok: true, abi: { id: 'L2c-x86_64' } });
      const v = await cli(['verify', '--xen', XEN, '--xen-version', ver, out, '--json']);
      expect(v.code, v.out).toBe(0);
      expect(JSON.parse(v.out)).toMatchObject({
        ok: true,
        target: { version: ver, abi: 'L2c-x86_64' },
        payloads: [{ ok: true, diagnostics: [] }],
      });
    });
  }

  describe('bug frames: UDB (d6) from 4.22, ud2 (0f 0b) before', () => {
    it('4.22 target: a frame at ud2 is refused by build, one at udb builds; 4.17 the other way round', async () => {
      const ud2 = await gcc('bug-ud2', bugSrc('ud2'));
      const udb = await gcc('bug-udb', bugSrc('.byte 0xd6'));
      const build = (obj: string, ver: string) =>
        cli([
          'build',
          obj,
          '-o',
          join(dir, `bug-${ver}-${obj.includes('ud2') ? 'ud2' : 'udb'}.livepatch`),
          '--xen',
          XEN,
          '--xen-version',
          ver,
          '--patch',
          'xen_extra_version',
          '--json',
        ]);
      const a = await build(ud2, '4.22.0');
      expect(a.code).toBe(1);
      expect(JSON.parse(a.out).error).toMatchObject({ code: 'UNCHECKED_BUG_INSTR', alias: 'BUILD_BUG_INSTR' });
      expect(JSON.parse(a.out).error.message).toMatch(
        /\.bug_frames\.1 entry 0 points at 0f 0b at 0x[0-9a-f]+, but Xen 4\.22\.0 recognises only UDB \(d6\) from 4\.22: that WARN\/BUG\/ASSERT becomes a host crash/,
      );
      expect((await build(udb, '4.22.0')).code).toBe(0);
      expect((await build(ud2, '4.17.5')).code).toBe(0);
      const d = await build(udb, '4.17.5');
      expect(d.code).toBe(1);
      expect(JSON.parse(d.out).error.message).toMatch(/points at d6 .* recognises only ud2 \(0f 0b\) before 4\.22/);
      // verify flags a payload built for 4.21 when it is meant for 4.22.
      const b421 = join(dir, 'bug-421.livepatch');
      expect((await cli(['build', ud2, '-o', b421, '--xen', XEN, '--xen-version', '4.21.2', '--patch', 'xen_extra_version'])).code).toBe(0);
      const v = await cli(['verify', '--xen', XEN, '--xen-version', '4.22.0', b421, '--json']);
      expect(v.code).toBe(1);
      expect(JSON.parse(v.out).payloads[0].diagnostics).toContainEqual(
        expect.objectContaining({ code: 'UNCHECKED_BUG_INSTR', severity: 'error', errno: null, section: '.bug_frames.1' }),
      );
      expect((await cli(['verify', '--xen', XEN, '--xen-version', '4.21.2', b421])).code).toBe(0);
    });
  });

  describe('return and indirect thunks (the target has __x86_return_thunk, __x86_indirect_thunk_*)', () => {
    it('a plain ret: build and verify warn, naming function and offset and the flag', async () => {
      const flags = CFLAGS.filter((f) => f !== '-mfunction-return=thunk-extern');
      const obj = await gcc(
        'plain-ret',
        'const char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return "+ret"; }\n',
        flags,
      );
      const out = join(dir, 'plain-ret.livepatch');
      const b = await cli(['build', obj, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(b.code).toBe(0);
      expect(b.err).toMatch(
        /warning: xen_extra_version\+0x[0-9a-f]+: plain `ret`, but the target hypervisor returns through __x86_return_thunk.*-mfunction-return=thunk-extern/,
      );
      const v = await cli(['verify', '--xen', XEN, out, '--json']);
      expect(v.code).toBe(0);
      expect(JSON.parse(v.out).payloads[0].diagnostics).toEqual([
        expect.objectContaining({ code: 'NOTE_RETURN_THUNK', severity: 'warning', section: '.text.xen_extra_version' }),
      ]);
    });
    it('an indirect call without -mindirect-branch=thunk-extern: a warning', async () => {
      const flags = CFLAGS.filter((f) => !f.startsWith('-mindirect-branch'));
      const obj = await gcc(
        'indirect',
        'extern const char *(*volatile xs_fp)(void);\nconst char *(*volatile xs_fp)(void);\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return xs_fp ? xs_fp() : "+ind"; }\n',
        flags,
      );
      const out = join(dir, 'indirect.livepatch');
      const b = await cli(['build', obj, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(b.code).toBe(0);
      expect(b.err).toMatch(
        /xen_extra_version\+0x[0-9a-f]+: indirect `(call|jmp) .*` bypasses __x86_indirect_thunk_\*.*-mindirect-branch=thunk-extern/,
      );
    });
  });

  describe('NOP ranges, decoded from the target (xen_minor_version: mov $0x11,%eax; jmp __x86_return_thunk)', () => {
    let target: Awaited<ReturnType<typeof loadTarget>>;
    let addr: bigint;
    beforeAll(async () => {
      target = await loadTarget(XEN);
      const s = target.symbols!.lookup('xen_minor_version');
      addr = s.value;
      expect(Number(s.size)).toBe(10);
    });
    const nop = (newSize: number) => {
      // Xen's own xen_nop: NULL name, old_addr given, new_addr 0.
      const fx = new PayloadFixture();
      Object.assign(fx.funcs[0]!, { nameSymbol: null, newSymbol: null, oldAddr: addr, oldSize: 10, newSize });
      const v = verifyPayloads([{ file: 'xen_nop.livepatch', bytes: fx.build().bytes }], target).payloads[0]!;
      // The fixture's (unused) replacement text ends in a plain ret: not what these cases are about.
      return { ...v, diagnostics: v.diagnostics.filter((d) => d.code !== 'NOTE_RETURN_THUNK') };
    };
    it("Xen's xen_nop (new_size = old_size - 1) is refused for the NOP ending inside the jmp, not for its NULL name", () => {
      const v = nop(9);
      expect(v.ok).toBe(false);
      expect(v.diagnostics.map((d) => d.code)).not.toContain('UNCHECKED_NAME_POINTER');
      expect(v.diagnostics.find((d) => d.code === 'UNCHECKED_NOP_SPLITS_INSN')?.message).toMatch(
        /NOP patch of entry 0 ends at \+0x9, inside the 5-byte instruction at \+0x5 \(jmp near ptr /,
      );
    });
    it('a NOP stopping before the return is clean; one covering the return-thunk jump is a warning', () => {
      expect(nop(5).diagnostics).toEqual([]);
      const all = nop(10);
      expect(all.ok).toBe(true);
      expect(all.diagnostics.map((d) => [d.code, d.severity])).toEqual([['NOTE_NOP_COVERS_RETURN', 'warning']]);
      expect(all.diagnostics[0]!.message).toMatch(/covers its return \(jmp __x86_return_thunk\) at \+0x5/);
    });
    it('build: --nop F (whole function) is refused, --nop F:5 builds, --nop F:10 warns, --nop F:9 is refused', async () => {
      const stub = await gcc('stub', 'int xs_stub;\n');
      const b = (spec: string) =>
        cli(['build', stub, '-o', join(dir, `nop-${spec.replace(':', '-')}.livepatch`), '--xen', XEN, '--nop', spec, '--json']);
      const whole = await b('xen_minor_version');
      expect(whole.code).toBe(1);
      expect(JSON.parse(whole.out).error).toMatchObject({ code: 'NOTE_NOP_COVERS_RETURN', alias: 'BUILD_NOP_COVERS_RETURN' });
      expect(JSON.parse(whole.out).error.message).toMatch(/covers its return .* --nop F:LEN/);
      expect((await b('xen_minor_version:5')).code).toBe(0);
      const explicit = await b('xen_minor_version:10');
      expect(explicit.code).toBe(0);
      expect(JSON.parse(explicit.out).warnings.join('\n')).toMatch(/covers its return/);
      const split = await b('xen_minor_version:9');
      expect(split.code).toBe(1);
      expect(JSON.parse(split.out).error).toMatchObject({ code: 'UNCHECKED_NOP_SPLITS_INSN', alias: 'BUILD_NOP_SPLITS_INSN' });
    });
  });

  it('a NULL name with old_addr set is accepted (Xen prints <NULL>, uses "unknown")', async () => {
    const target = await loadTarget(XEN);
    const fx = new PayloadFixture();
    Object.assign(fx.funcs[0]!, { nameSymbol: null, oldAddr: target.symbols!.lookup('xen_extra_version').value });
    const v = verifyPayloads([{ file: 'nullname.livepatch', bytes: fx.build().bytes }], target).payloads[0]!;
    expect(v.diagnostics.filter((d) => d.code !== 'NOTE_RETURN_THUNK')).toEqual([]);
    expect(v.ok).toBe(true);
  });

  it('a pre-apply hook decides at run time: verify says so instead of a bare "accepted"', async () => {
    const hook = await gcc('veto', 'int xs_pre_apply(void *p);\nint xs_pre_apply(void *p) { (void)p; return -1; }\n');
    const out = join(dir, 'veto.livepatch');
    const b = await cli([
      'build',
      example,
      hook,
      '-o',
      out,
      '--xen',
      XEN,
      '--patch',
      'xen_extra_version',
      '--hook',
      'pre-apply=xs_pre_apply',
    ]);
    expect(b.code, b.err).toBe(0);
    const v = await cli(['verify', '--xen', XEN, out]);
    expect(v.code).toBe(0);
    expect(v.out).toMatch(
      /veto\.livepatch \(name veto, build-id [0-9a-f]+\): uploads; whether it applies is decided at run time by its pre-apply hook xs_pre_apply/,
    );
    expect(v.out).toMatch(/NOTE_HOOK_DECIDES .*\n\s+its pre-apply hook xs_pre_apply decides at run time whether APPLY succeeds/);
    expect(v.out).toMatch(/all 1 payload\(s\) accepted \(1 subject to a hook's decision at run time\)/);
  });

  it('--depends lower.livepatch: a payload may patch a function the lower payload introduced', async () => {
    const lowerObj = await gcc(
      'lower',
      [
        'const char *xs_lower_helper(void);',
        'const char *xs_lower_helper(void) { return "+lower"; }',
        'const char *xen_extra_version(void);',
        'const char *xen_extra_version(void) { return xs_lower_helper(); }',
        '',
      ].join('\n'),
    );
    const upperObj = await gcc('upper', 'const char *xs_lower_helper(void);\nconst char *xs_lower_helper(void) { return "+upper"; }\n');
    const lower = join(dir, 'lower.livepatch');
    const upper = join(dir, 'upper.livepatch');
    expect((await cli(['build', lowerObj, '-o', lower, '--xen', XEN, '--patch', 'xen_extra_version'])).code).toBe(0);
    const u = await cli(['build', upperObj, '-o', upper, '--xen', XEN, '--depends', lower, '--patch', 'xs_lower_helper', '--json']);
    expect(u.code, u.out).toBe(0);
    expect(JSON.parse(u.out).funcs).toEqual([expect.objectContaining({ name: 'xs_lower_helper', oldAddr: '0x0' })]);
    const v = verifyPayloads(
      [lower, upper].map((file) => ({ file, bytes: readFileSync(file) })),
      await loadTarget(XEN),
    );
    expect(formatVerify(v)).toMatch(/all 2 payload\(s\) accepted/);
    expect(v.payloads[1]!.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});
