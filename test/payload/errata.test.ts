/**
 * The "Errata and newer releases" part of payload-format.md, one block per row: each payload is
 * made wrong in exactly the erratum's way by the independent fixture emitter, and verify must give
 * the errno and the console text Xen's source gives on each side of the release boundary
 * (xen/common/livepatch.c, xen/arch/x86/alternative.c, xen/arch/arm/arm64/livepatch.c,
 * xen/arch/arm/include/asm/mmu/layout.h at the RELEASE tags named).
 */
import { ENDBR64_POISON } from '../../src/elf/constants.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatVerify, verifyPayloads, type PayloadVerdict, type VerifyOptions, type VerifyTarget } from '../../src/payload/verify.js';
import { hasFeature, parseXenVersion, rulesFor } from '../../src/payload/releases.js';
import { abiForVersion } from '../../src/payload/abi.js';
import { FIXTURE_XEN_ID, PayloadFixture, R, SHF, SHT, STB, STT, fakeTarget, gnuNote, hexBytes } from '../helpers/payload-fixture.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';

afterAll(removeTempDirs);

const P = 'livepatch: hello: ';
const V = (s: string) => parseXenVersion(s)!;
/** The loader rules verify reads from the release's row. */
const rulesOf = (ver: string, arch: 'x86_64' | 'arm64' | 'arm32') => rulesFor(abiForVersion(ver, arch), V(ver));

function verify(fx: PayloadFixture, o: { target?: VerifyTarget } & VerifyOptions = {}): PayloadVerdict {
  const { target, ...opts } = o;
  return verifyPayloads([{ file: 'hello.livepatch', bytes: fx.build().bytes }], target ?? fakeTarget(), opts).payloads[0]!;
}

function first(v: PayloadVerdict): { code: string; errno: string | null; message: string } | undefined {
  const d = v.diagnostics.find((x) => x.first);
  return d && { code: d.code, errno: d.errno, message: d.message };
}

/** One 14-byte x86 alt_instr over the payload's .text, replacement in .altinstr_replacement. */
function withAlt(fx: PayloadFixture, o: { origLen: number; replLen: number; pad?: number; cpuid?: number }): PayloadFixture {
  fx.addSection({
    name: '.altinstr_replacement',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.EXECINSTR,
    addralign: 1n,
    data: new Uint8Array(8).fill(0x90),
  });
  fx.symbols.splice(0, 0, { name: 'repl_start', bind: STB.LOCAL, type: STT.NOTYPE, section: '.altinstr_replacement', value: 0n, size: 0n });
  fx.symbols.splice(0, 0, { name: 'text_start', bind: STB.LOCAL, type: STT.NOTYPE, section: '.text', value: 0n, size: 0n });
  const d = new Uint8Array(14);
  new DataView(d.buffer).setUint16(8, o.cpuid ?? 0, true);
  d[10] = o.origLen;
  d[11] = o.replLen;
  d[12] = o.pad ?? 0;
  fx.addSection({ name: '.altinstructions', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: d });
  fx.addReloc('.altinstructions', { offset: 0n, type: R.PC32, symbol: 'text_start', addend: 0n });
  fx.addReloc('.altinstructions', { offset: 4n, type: R.PC32, symbol: 'repl_start', addend: 0n });
  return fx;
}

describe('build-id parse errno pass-through: 4.18.4+, 4.19.1+ (1f82dd5583, 60ea799246)', () => {
  const badType = (): PayloadFixture => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.depends').data = gnuNote(hexBytes(FIXTURE_XEN_ID), { type: 4 });
    return fx;
  };
  for (const [ver, errno] of [
    ['4.18.3', 'EINVAL'],
    ['4.18.4', 'ENODATA'],
    ['4.19.0', 'EINVAL'],
    ['4.19.1', 'ENODATA'],
    ['4.20.0', 'ENODATA'],
  ] as const) {
    it(`a wrong note type in .livepatch.depends on ${ver}: ${errno}`, () => {
      const v = verify(badType(), { xenVersion: ver });
      expect(first(v)).toMatchObject({ code: 'NOTE_BUILD_ID', errno });
      expect(v.errno).toBe(errno);
    });
  }
  it('a hypervisor without build-id: "unable to get running Xen build-id: -61" from 4.18.4, rc 0 from 4.21', () => {
    const noId = { ...fakeTarget(), buildId: null };
    expect(first(verify(new PayloadFixture(), { target: noId, xenVersion: '4.18.4' }))).toEqual({
      code: 'XEN_BUILD_ID_UNAVAILABLE',
      errno: 'ENODATA',
      message: `${P}unable to get running Xen build-id: -61`,
    });
    expect(first(verify(new PayloadFixture(), { target: noId, xenVersion: '4.21.0' }))).toEqual({
      code: 'XEN_BUILD_ID_UNAVAILABLE',
      errno: 'ENODATA',
      message: `${P}unable to get running Xen build-id: 0`,
    });
    // 4.18.3: xen_build_id_dep returns the errno without a message.
    expect(first(verify(new PayloadFixture(), { target: noId, xenVersion: '4.18.3' }))).toMatchObject({
      code: 'XEN_NO_BUILD_ID',
      errno: 'ENODATA',
    });
  });
});

describe('alternatives errors returned: 4.18.4+, 4.19.1+ on x86 (08f539a7fb, bb62ed831c)', () => {
  for (const [ver, returned] of [
    ['4.18.3', false],
    ['4.18.4', true],
    ['4.19.0', false],
    ['4.19.1', true],
    ['4.20.0', true],
  ] as const) {
    it(`replacement longer than origin + padding on ${ver}: ${returned ? 'ENOSPC' : 'BUG_ON'}`, () => {
      const v = verify(withAlt(new PayloadFixture(), { origLen: 2, replLen: 5 }), { xenVersion: ver });
      if (returned) {
        expect(first(v)).toMatchObject({ code: 'ALT_APPLY', errno: 'ENOSPC' });
        expect(first(v)!.message).toMatch(
          /^Alt for 0x[0-9a-f]+, replacement size 0x5 larger than origin 0x2\nlivepatch: hello applying alternatives failed: -28$/,
        );
      } else {
        const d = v.diagnostics.find((x) => x.code === 'UNCHECKED_ALT_ENTRY');
        expect(d?.message).toMatch(/replacement length 5 exceeds origin 2 \+ padding 0 \(BUG_ON in apply_alternatives: hypervisor crash\)/);
        expect(v.ok).toBe(false);
        expect(v.errno).toBeNull();
      }
    });
  }
});

describe('x86 alternatives limits: MAX_PATCH_LEN 254, feature < NCAPINTS * 32', () => {
  it('orig_len + pad_len = 254 is accepted, 255 is ENOSPC "bigger than buffer 0xfe" (4.20) / BUG_ON (4.17)', () => {
    expect(verify(withAlt(new PayloadFixture(), { origLen: 16, replLen: 5, pad: 238 }), { xenVersion: '4.20.0' }).diagnostics).toEqual([]);
    const v = verify(withAlt(new PayloadFixture(), { origLen: 16, replLen: 5, pad: 239 }), { xenVersion: '4.20.0' });
    expect(first(v)).toMatchObject({ code: 'ALT_APPLY', errno: 'ENOSPC' });
    expect(first(v)!.message).toMatch(/, origin size 0xff bigger than buffer 0xfe\nlivepatch: hello applying alternatives failed: -28$/);
    const old = verify(withAlt(new PayloadFixture(), { origLen: 16, replLen: 5, pad: 239 }), { xenVersion: '4.17.5' });
    expect(old.diagnostics.find((d) => d.code === 'UNCHECKED_ALT_ENTRY')?.message).toMatch(/exceeds MAX_PATCH_LEN 254 \(BUG_ON/);
  });
  it('feature 19*32 is ERANGE on 4.20.0 (NCAPINTS 19) but fine on 4.20.1 (NCAPINTS 21)', () => {
    const v = verify(withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 608 }), { xenVersion: '4.20.0' });
    expect(first(v)).toMatchObject({ code: 'ALT_APPLY', errno: 'ERANGE' });
    expect(first(v)!.message).toMatch(
      /, feature 0x260 outside of featureset range 0x260\nlivepatch: hello applying alternatives failed: -34$/,
    );
    expect(verify(withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 607 }), { xenVersion: '4.20.0' }).diagnostics).toEqual([]);
    expect(verify(withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 608 }), { xenVersion: '4.20.1' }).diagnostics).toEqual([]);
    expect(rulesOf('4.22.0', 'x86_64').x86CapWords).toBe(22);
  });
});

describe('ALT_FLAG_NOT (bit 15): accepted / ERANGE / host crash by release', () => {
  const cases: [string, 'ok' | 'ERANGE' | 'crash'][] = [
    ['4.17.5', 'crash'],
    ['4.17.6', 'ok'],
    ['4.18.3', 'crash'],
    ['4.18.4', 'ERANGE'],
    ['4.18.5', 'ok'],
    ['4.19.0', 'crash'],
    ['4.19.1', 'ERANGE'],
    ['4.19.2', 'ERANGE'],
    ['4.19.3', 'ok'],
    ['4.20.0', 'ERANGE'],
    ['4.20.1', 'ok'],
    ['4.21.0', 'ok'],
    ['4.22.0', 'ok'],
  ];
  for (const [ver, want] of cases) {
    it(`ALT_NOT(5) on ${ver}: ${want}`, () => {
      const v = verify(withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 0x8005 }), { xenVersion: ver });
      if (want === 'ok') expect(v.diagnostics).toEqual([]);
      else if (want === 'ERANGE') {
        expect(first(v)).toMatchObject({ code: 'ALT_APPLY', errno: 'ERANGE' });
        expect(first(v)!.message).toMatch(
          /, feature 0x8005 outside of featureset range 0x[0-9a-f]+\nlivepatch: hello applying alternatives failed: -34$/,
        );
      } else {
        expect(v.diagnostics.find((d) => d.code === 'UNCHECKED_ALT_ENTRY')?.message).toMatch(/feature 0x8005 .*ALT_FLAG_NOT.*BUG_ON/);
        expect(v.ok).toBe(false);
      }
    });
  }
});

describe('ARM payload load area (LIVEPATCH_VMAP_START)', () => {
  const arm64 = (version: string): VerifyTarget => ({ buildId: hexBytes(FIXTURE_XEN_ID), version, arch: 'arm64' });
  it('per release: 4.8.0 0x800000, 4.8.2–4.17 0xa00000, 4.18 and 4.19+ after the boot FDT', () => {
    const base = (ver: string, arch: 'arm64' | 'arm32') => rulesOf(ver, arch).payloadBase;
    expect(base('4.8.0', 'arm64')).toBe(0x00800000n);
    expect(base('4.8.2', 'arm64')).toBe(0x00a00000n);
    expect(base('4.16.0', 'arm32')).toBe(0x00a00000n);
    expect(base('4.17.5', 'arm64')).toBe(0x00a00000n);
    expect(base('4.18.0', 'arm64')).toBe(0x0000020001000000n);
    expect(base('4.18.0', 'arm32')).toBe(0x01000000n);
    expect(base('4.19.0', 'arm64')).toBe(0x00000a0001000000n);
    expect(base('4.22.0', 'arm64')).toBe(0x00000a0001000000n);
  });
  for (const [ver, xenText] of [
    ['4.18.0', 0x0000020000250000n],
    ['4.19.0', 0x00000a0000250000n],
  ] as const) {
    it(`a good arm64 payload for ${ver} (old_addr in Xen's text there) verifies clean; xsplice verify exits 0`, async () => {
      const fx = new PayloadFixture({ arch: 'arm64' });
      fx.funcs[0]!.oldAddr = xenText;
      expect(verify(fx, { target: arm64(ver) }).diagnostics).toEqual([]);
      const dir = await tempDir('errata');
      const file = join(dir, 'hello.livepatch');
      await writeFile(file, fx.build().bytes);
      const { code, out, err } = await runCli(['verify', '--xen', FIXTURE_XEN_ID, '--xen-version', ver, '--arch', 'arm64', file]);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      expect(out).toContain('all 1 payload(s) accepted');
      // The same payload is out of reach for the other release's area.
      const other = ver === '4.18.0' ? '4.19.0' : '4.18.0';
      expect(first(verify(fx, { target: arm64(other) }))).toMatchObject({ code: 'FUNC_DISTANCE', errno: 'EOVERFLOW' });
    });
  }
});

describe('arm64 relocation checks: r_offset + 4 before the type, 8 bytes for ABS64/PREL64', () => {
  const target: VerifyTarget = {
    buildId: hexBytes(FIXTURE_XEN_ID),
    version: '4.19.0',
    arch: 'arm64',
    symbols: { find: (n) => (n === 'xen_extra_version' ? [{ value: 0x00000a0000250000n }] : []) },
  };
  it('an unknown type past the end is EINVAL "offset is past", not EOPNOTSUPP', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.addReloc('.text', { offset: 14n, type: R.NONE, symbol: 'xsplice_str', addend: 0n });
    expect(first(verify(fx, { target }))).toEqual({
      code: 'RELOC_OFFSET',
      errno: 'EINVAL',
      message: `${P}Relative relocation offset is past .text section`,
    });
  });
  it('R_AARCH64_ABS64 needs 8 bytes: offset 12 of a 16-byte .text is past', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.addReloc('.text', { offset: 12n, type: R.R64, symbol: 'xsplice_str', addend: 0n });
    expect(first(verify(fx, { target }))).toEqual({
      code: 'RELOC_OFFSET',
      errno: 'EINVAL',
      message: `${P}Relative relocation offset is past .text section`,
    });
    const ok = new PayloadFixture({ arch: 'arm64' });
    ok.addReloc('.text', { offset: 8n, type: R.R64, symbol: 'xsplice_str', addend: 0n });
    expect(verify(ok, { target }).diagnostics).toEqual([]);
  });
});

describe('ENDBR poison (66 0f 1f 01) counts only from 4.17.0 (6974c75180)', () => {
  const poison = fakeTarget({ code: Uint8Array.from([...ENDBR64_POISON, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]) });
  it('old_size 8: refused on 4.17.0 (needs 9), accepted on 4.16.1 (is_endbr64 only)', () => {
    const fx = (): PayloadFixture => {
      const f = new PayloadFixture();
      f.funcs[0]!.oldSize = 8;
      return f;
    };
    expect(first(verify(fx(), { target: { ...poison, version: '4.17.0' } }))).toMatchObject({ code: 'FUNC_OLD_SIZE', errno: 'EINVAL' });
    expect(verify(fx(), { target: { ...poison, version: '4.16.1' } }).diagnostics.filter((d) => d.code === 'FUNC_OLD_SIZE')).toEqual([]);
  });
});

describe('non-SHF_ALLOC special sections', () => {
  it('§2.16 #1: 4.18.4+ / 4.19.1+ keep a pointer into the upload buffer (use-after-free), not NULL', () => {
    const fx = (): PayloadFixture => {
      const f = new PayloadFixture();
      f.section('.livepatch.depends').flags = 0n;
      return f;
    };
    expect(verify(fx(), { xenVersion: '4.18.4' }).diagnostics.find((d) => d.code === 'UNCHECKED_NOT_ALLOC')?.message).toMatch(
      /upload buffer.*use-after-free/,
    );
    expect(verify(fx(), { xenVersion: '4.18.3' }).diagnostics.find((d) => d.code === 'UNCHECKED_NOT_ALLOC')?.message).not.toMatch(
      /upload buffer/,
    );
  });
  it('.livepatch.funcs without SHF_ALLOC: the crash comes first (before EEXIST) and is never "accepted"', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.funcs').flags = SHF.WRITE;
    // A new symbol that duplicates a hypervisor one: EEXIST in build_symbol_table, after prepare_payload.
    fx.symbols.push({ name: 'printk', bind: STB.GLOBAL, type: STT.FUNC, section: '.text', value: 8n, size: 1n });
    const r = verifyPayloads([{ file: 'hello.livepatch', bytes: fx.build().bytes }], fakeTarget({ version: '4.17.5' }));
    const v = r.payloads[0]!;
    expect(first(v)?.code).toBe('CRASH_FUNCS_NOT_ALLOC');
    expect(v.errno).toBeNull();
    expect(v.crashAt).toBe('upload');
    expect(v.ok).toBe(false);
    expect(v.diagnostics.some((d) => d.code === 'DUPLICATE_SYMBOL')).toBe(false);
    expect(formatVerify(r)).toMatch(/hello\.livepatch \(name hello\): CRASHES the hypervisor at upload/);
    expect(formatVerify(r)).not.toMatch(/accepted/);
    // 4.19.1: the pointer into the upload buffer is still valid during the upload: EEXIST first.
    const later = verify(fx, { target: fakeTarget({ version: '4.19.1' }) });
    expect(first(later)).toMatchObject({ code: 'DUPLICATE_SYMBOL', errno: 'EEXIST' });
  });
});

describe('region registered at upload, symbol search over all payloads: 4.17.4+, 4.18.1+, 4.19+', () => {
  for (const [ver, want] of [
    ['4.17.3', false],
    ['4.17.4', true],
    ['4.18.0', false],
    ['4.18.1', true],
    ['4.19.0', true],
  ] as const) {
    it(`${ver}: ${want}`, () => expect(hasFeature(V(ver), 'regionAtUpload')).toBe(want));
  }
});

describe("distribution snapshots: Debian's 4.17.5+72-g01140da4e8 is RELEASE-4.17.6 minus its version bump", () => {
  const DEB = '4.17.5+72-g01140da4e8-1';
  it("its loader facts are 4.17.6's (ALT_FLAG_NOT, 21 feature words), the text is kept", () => {
    expect(V(DEB)).toMatchObject({ major: 4, minor: 17, patch: 6, text: DEB });
    expect(abiForVersion(DEB, 'x86_64').loader).toMatchObject({ release: DEB, x86CapWords: 21, features: { altFlagNot: true } });
    expect(abiForVersion('4.17.5', 'x86_64').loader).toMatchObject({ x86CapWords: 19, features: { altFlagNot: false } });
    expect(V('4.17.5+13-gabcdef1234')).toMatchObject({ patch: 5 });
  });
  it("an alternative on feature 0x26b (what Xen's own test payloads carry there) is fine on the Debian build, a BUG_ON on 4.17.5", () => {
    const alt = () => withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 0x26b });
    expect(verify(alt(), { xenVersion: DEB }).diagnostics).toEqual([]);
    expect(verify(alt(), { xenVersion: '4.17.5' }).diagnostics.find((d) => d.code === 'UNCHECKED_ALT_ENTRY')?.message).toMatch(
      /feature 0x26b is not below NCAPINTS \* 32 = 0x260/,
    );
    expect(verify(withAlt(new PayloadFixture(), { origLen: 5, replLen: 5, cpuid: 0x8005 }), { xenVersion: DEB }).diagnostics).toEqual([]);
  });
});
