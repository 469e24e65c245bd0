/**
 * Against Debian's real Xen 4.17.5+72: a payload made by `diff` from a change to
 * xen_extra_version() (objects compiled here: ORIG returns the running ".5", PATCHED another string)
 * is accepted by verify, is byte-identical across runs and tree paths, and is applied and reverted
 * by the real hypervisor (one QEMU boot). The x86 decoder diff uses is checked against objdump over
 * every function of xen-syms' .text.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debianXen, dom0Kernel, haveDebianXen, missing, REPO, XEN_EXTRA } from '../helpers/debian.js';
import { diffObjects, diffPayload } from '../../src/diff/index.js';
import { loadTarget } from '../../src/payload/target.js';
import { verifyPayloads } from '../../src/payload/verify.js';
import { readElf } from '../../src/elf/reader.js';
import { STT } from '../../src/elf/constants.js';
import { decode } from '../../src/diff/x86.js';
import { compile, tmp } from './compile.js';

const BIN = join(REPO, 'bin', 'xsplice');
const SRC = readFileSync(join(REPO, 'examples', 'xen-extra-version', 'xen_extra_version.c'), 'utf8');
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function versionPair(dir: string, extra: string): { orig: string; patched: string } {
  const mk = (sub: string, s: string) =>
    compile(join(dir, sub), 'version', SRC.replace('#define EXTRA "+xsplice-demo"', `#define EXTRA ${JSON.stringify(s)}`), {
      file: 'common/version.c',
    });
  return { orig: mk('o', XEN_EXTRA), patched: mk('p', extra) };
}

function cli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
      res({ code: typeof code === 'number' ? code : null, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

describe.skipIf(missing('Debian Xen 4.17 (scripts/setup-deps.sh)', haveDebianXen()))('diff → payload for Debian Xen 4.17.5+72', () => {
  it('xen_extra_version(): verify accepts; names resolve in XEN; byte-identical across runs and directories', async () => {
    const target = await loadTarget(debianXen.xenSyms);
    const a = versionPair(tmp('vera'), '+diff-test');
    const b = versionPair(tmp('verb'), '+diff-test');
    const r1 = await diffPayload({ orig: a.orig, patched: a.patched, xen: target, toolVersion: 't' });
    const r2 = await diffPayload({ orig: a.orig, patched: a.patched, xen: target, toolVersion: 't' });
    const r3 = await diffPayload({ orig: b.orig, patched: b.patched, xen: target, toolVersion: 't' });
    expect(r1.diff.functions.map((f) => `${f.status}:${f.xenName}`)).toEqual(['changed:xen_extra_version']);
    expect(r1.diff.patches).toEqual([{ old: 'xen_extra_version', new: 'xen_extra_version' }]);
    const ext = r1.diff.explain.objects[0]!.external;
    expect(ext.map((e) => e.name)).toEqual(['__x86_return_thunk']);
    expect(ext[0]!.address).toMatch(/^0xffff82d04/);
    expect(r1.verify.ok).toBe(true);
    // Independently: a fresh verify of the bytes.
    expect(verifyPayloads([{ file: 'x.livepatch', bytes: r1.build.bytes }], target).ok).toBe(true);
    expect(Buffer.from(r2.build.bytes).equals(Buffer.from(r1.build.bytes))).toBe(true);
    expect(Buffer.from(r3.build.bytes).equals(Buffer.from(r1.build.bytes))).toBe(true);
    expect(r1.build.funcs.map((f) => [f.name, f.oldSize])).toEqual([['xen_extra_version', 12]]);
    // §8.2: .modinfo records the digest of diff's inputs.
    const modinfo = new TextDecoder().decode(readElf(r1.build.bytes).sectionByName('.modinfo')!.data()).split('\0');
    expect(r1.diff.inputDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(modinfo).toContain(`diff-inputs=${r1.diff.inputDigest}`);
  });

  it("ORIG that is not the running build is refused (DIFF_XEN_MISMATCH), checked against XEN's bytes", async () => {
    const d = tmp('vmis');
    const body = (extra: string, nop: string) =>
      `const char *xen_extra_version(void);\nconst char *xen_extra_version(void) { ${nop} return ${JSON.stringify(extra)}; }\n`;
    const o = compile(join(d, 'o'), 'version', body(XEN_EXTRA, 'asm volatile ("nop");'), { file: 'common/version.c' });
    const p = compile(join(d, 'p'), 'version', body('+x', 'asm volatile ("nop");'), { file: 'common/version.c' });
    const r = await diffObjects({ orig: o, patched: p, xen: debianXen.xenSyms });
    expect(r.errors.map((e) => e.code)).toEqual(['DIFF_XEN_MISMATCH']);
    expect(r.errors[0]!.symbol).toBe('xen_extra_version');
    expect(r.ok).toBe(false);
  });

  it('CLI: -o writes only what verify accepts; a refusal exits 1 with one line and no file', async () => {
    const d = tmp('vcli');
    const p = versionPair(d, '+diff-cli');
    const out = join(d, 'v.livepatch');
    const ok = await cli(['diff', p.orig, p.patched, '--xen', debianXen.xenSyms, '-o', out, '--json'], 60_000);
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.stdout);
    expect(doc.ok).toBe(true);
    expect(doc.functions.map((f: { name: string }) => f.name)).toEqual(['xen_extra_version']);
    expect(existsSync(out)).toBe(true);
    const v = await cli(['verify', out, '--xen', debianXen.xenSyms], 60_000);
    expect(v.code).toBe(0);
    const same = await cli(['diff', p.orig, p.orig, '--xen', debianXen.xenSyms, '-o', join(d, 'none.livepatch')], 60_000);
    expect(same.code).toBe(1);
    expect(same.stderr.trim().split('\n')).toHaveLength(1);
    expect(same.stderr).toMatch(/^xsplice: .*DIFF_NO_FUNCTIONAL_CHANGE|no functional change/);
    expect(existsSync(join(d, 'none.livepatch'))).toBe(false);
  });

  it('--depends: a second fix stacks on a loaded payload (ORIG checked against its copy; verify accepts the pair)', async () => {
    const target = await loadTarget(debianXen.xenSyms);
    const d = tmp('vstack');
    const body = (extra: string, asm: string) =>
      `const char *xen_extra_version(void);\nconst char *xen_extra_version(void) { ${asm} return ${JSON.stringify(extra)}; }\n`;
    const o0 = compile(
      join(d, 'o0'),
      'version',
      SRC.replace('#define EXTRA "+xsplice-demo"', `#define EXTRA ${JSON.stringify(XEN_EXTRA)}`),
      { file: 'common/version.c' },
    );
    const o1 = compile(join(d, 'o1'), 'version', body('+one', 'asm volatile ("nop");'), { file: 'common/version.c' });
    const o2 = compile(join(d, 'o2'), 'version', body('+two', 'asm volatile ("nop; nop");'), { file: 'common/version.c' });
    const a = join(d, 'a.livepatch');
    const first = await diffPayload({ orig: o0, patched: o1, xen: target, out: a, toolVersion: 't' });
    // Not stacked: ORIG (= the first fix's PATCHED) is not what XEN runs.
    const alone = await diffObjects({ orig: o1, patched: o2, xen: target });
    expect(alone.errors.map((e) => e.code)).toEqual(['DIFF_XEN_MISMATCH']);
    const b = join(d, 'b.livepatch');
    const second = await diffPayload({ orig: o1, patched: o2, xen: target, out: b, depends: a, toolVersion: 't' });
    expect(second.build.depends).toBe(first.build.buildId);
    expect(second.diff.patches).toEqual([{ old: 'xen_extra_version', new: 'xen_extra_version' }]);
    expect(
      verifyPayloads(
        [
          { file: 'a', bytes: first.build.bytes },
          { file: 'b', bytes: second.build.bytes },
        ],
        target,
      ).ok,
    ).toBe(true);
    // ORIG that is XEN's build, not the first payload's PATCHED: refused, naming the stacked payload.
    await expect(diffPayload({ orig: o0, patched: o2, xen: target, depends: a, toolVersion: 't' })).rejects.toThrow(
      /stacked on \(--depends\)/,
    );
    // The CLI: -o with --depends, then verify the stack.
    const c = join(d, 'c.livepatch');
    const r = await cli(['diff', o1, o2, '--xen', debianXen.xenSyms, '-o', c, '--depends', a, '--json'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const v = await cli(['verify', a, c, '--xen', debianXen.xenSyms], 60_000);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // Alone (not stacked on a), the hypervisor would refuse it: it depends on a.
    expect((await cli(['verify', c, '--xen', debianXen.xenSyms], 60_000)).code).toBe(1);
    const usage = await cli(['diff', o1, o2, '--depends', a], 60_000);
    expect(usage.code).toBe(2);
  });

  it('iced-x86 finds the same instruction boundaries as objdump in every function of xen-syms .text', () => {
    const elf = readElf(new Uint8Array(readFileSync(debianXen.xenSyms)));
    const text = elf.sectionByName('.text')!;
    const data = text.data();
    const lo = text.addr;
    const od = execFileSync('objdump', ['-d', '--no-show-raw-insn', '-j', '.text', debianXen.xenSyms], { maxBuffer: 512 << 20 }).toString();
    const starts = new Set<number>();
    for (const m of od.matchAll(/^ {0,2}(ffff[0-9a-f]{12}):\t/gm)) starts.add(Number(BigInt('0x' + m[1]) - lo));
    let funcs = 0;
    let insns = 0;
    const bad: string[] = [];
    for (const s of elf.symbols()) {
      if (s.type !== STT.FUNC || s.size === 0n || s.shndx !== text.index) continue;
      const off = Number(s.value - lo);
      funcs++;
      for (const i of decode(data.subarray(off, off + Number(s.size)))) {
        insns++;
        if (!starts.has(off + i.off) && bad.length < 5) bad.push(`${s.name}+0x${i.off.toString(16)}`);
      }
    }
    expect(bad).toEqual([]);
    expect(funcs).toBeGreaterThan(3000);
    expect(insns).toBeGreaterThan(300_000);
  }, 120_000);

  const haveQemu =
    haveDebianXen() && !!dom0Kernel() && existsSync(debianXen.xenLivepatch) && have('qemu-system-x86_64') && existsSync('/bin/busybox');
  it.skipIf(missing('QEMU + dom0 kernel (scripts/setup-deps.sh)', haveQemu))(
    'the real hypervisor applies and reverts the diff payload (xsplice try)',
    async () => {
      const d = tmp('vtry');
      const p = versionPair(d, '+diff-live');
      const out = join(d, 'diff_live.livepatch');
      const mk = await cli(['diff', p.orig, p.patched, '--xen', debianXen.xenSyms, '-o', out], 60_000);
      expect(mk.code).toBe(0);
      const r = await cli(['try', out, '--expect-extra', '+diff-live', '--json', '--timeout', '300'], 330_000);
      // stderr carries try's progress lines; the verdict is the exit status and the JSON document.
      expect({ code: r.code, stdout: r.code === 0 ? '' : r.stdout, stderr: r.code === 0 ? '' : r.stderr }).toEqual({
        code: 0,
        stdout: '',
        stderr: '',
      });
      const doc = JSON.parse(r.stdout);
      expect(doc.ok).toBe(true);
      const kinds = doc.steps.map((s: { step: string; name?: string }) => `${s.step}${s.name ? ' ' + s.name : ''}`);
      expect(kinds).toEqual([
        'readBuildId',
        'readExtra',
        'upload diff_live',
        'apply diff_live',
        'readExtra',
        'revert diff_live',
        'unload diff_live',
        'readExtra',
      ]);
      expect(doc.steps[4]).toMatchObject({ value: '+diff-live' });
      expect(doc.steps[7]).toMatchObject({ value: XEN_EXTRA });
    },
    340_000,
  );
});
