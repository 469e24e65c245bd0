/**
 * One test per loader check: a payload made wrong in exactly that way (by the independent fixture
 * emitter in test/helpers/payload-fixture.ts, never by `xsplice build`) gives exactly that
 * diagnostic, errno and hypervisor message; the clean fixture gives none.
 */
import { ENDBR64 } from '../../src/elf/constants.js';
import { describe, expect, it } from 'vitest';
import { verifyPayloads, type PayloadVerdict, type VerifyOptions, type VerifyTarget } from '../../src/payload/verify.js';
import { abiById } from '../../src/payload/abi.js';
import { DIAGNOSTICS, type DiagCode } from '../../src/payload/diagnostics.js';
import {
  FAKE_XEN,
  FIXTURE_OWN_ID,
  FIXTURE_XEN_ID,
  PayloadFixture,
  R,
  SHF,
  SHT,
  STB,
  STT,
  fakeTarget,
  gnuNote,
  hexBytes,
} from '../helpers/payload-fixture.js';

type Input = PayloadFixture | Uint8Array;

function bytesOf(x: Input): Uint8Array {
  return x instanceof Uint8Array ? x : x.build().bytes;
}

function verify(x: Input, o: { target?: VerifyTarget; file?: string } & VerifyOptions = {}): PayloadVerdict {
  const { target, file, ...opts } = o;
  const r = verifyPayloads([{ file: file ?? 'hello.livepatch', bytes: bytesOf(x) }], target ?? fakeTarget(), opts);
  return r.payloads[0]!;
}

/** The diagnostic the hypervisor meets first: code, errno, message; and the payload's errno. */
function expectFirst(v: PayloadVerdict, code: DiagCode, errno: string, message: string | RegExp): void {
  const first = v.diagnostics.find((d) => d.first);
  expect(first, JSON.stringify(v.diagnostics, null, 1)).toBeDefined();
  expect(first!.code).toBe(code);
  expect(first!.errno).toBe(errno);
  if (typeof message === 'string') expect(first!.message).toBe(message);
  else expect(first!.message).toMatch(message);
  expect(v.errno).toBe(errno);
  expect(v.ok).toBe(false);
}

/** An unchecked (§2.16) error: the hypervisor accepts, verify refuses. */
function expectUnchecked(v: PayloadVerdict, code: DiagCode, message: RegExp): void {
  const d = v.diagnostics.find((x) => x.code === code);
  expect(d, JSON.stringify(v.diagnostics, null, 1)).toBeDefined();
  expect(d!.severity).toBe('error');
  expect(d!.errno).toBeNull();
  expect(d!.stage).toBe('unchecked');
  expect(d!.message).toMatch(message);
  expect(v.ok).toBe(false);
  expect(v.errno).toBeNull();
}

function expectNote(v: PayloadVerdict, code: DiagCode, message: RegExp): void {
  const d = v.diagnostics.find((x) => x.code === code);
  expect(d, JSON.stringify(v.diagnostics, null, 1)).toBeDefined();
  expect(d!.severity).toBe('warning');
  expect(d!.message).toMatch(message);
  expect(v.ok).toBe(true);
}

const P = 'livepatch: hello: ';

/** Overwrites bytes of a built fixture. */
function patch(fx: PayloadFixture, f: (b: Uint8Array, dv: DataView, built: ReturnType<PayloadFixture['build']>) => void): Uint8Array {
  const built = fx.build();
  const b = built.bytes;
  f(b, new DataView(b.buffer, b.byteOffset, b.byteLength), built);
  return b;
}

describe('clean payloads', () => {
  it('the default fixture verifies clean against 4.17.7', () => {
    const v = verify(new PayloadFixture());
    expect(v.diagnostics).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.errno).toBeNull();
    expect(v.buildId).toBe(FIXTURE_OWN_ID);
    expect(v.depends).toBe(FIXTURE_XEN_ID);
  });

  it('every diagnostic code has an errno entry, a stage and a spec citation', () => {
    for (const [code, d] of Object.entries(DIAGNOSTICS)) {
      expect(d.spec, code).toMatch(/§/);
      expect(['upload', 'apply', 'unchecked', 'note']).toContain(d.stage);
      if (d.stage === 'upload' || d.stage === 'apply') expect(d.errno, code).toMatch(/^E[A-Z0-9]+$/);
      else expect(d.errno, code).toBeNull();
    }
  });

  it('a local hypervisor symbol resolves as file#name', () => {
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'common/kernel.c#do_thing', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    expect(verify(fx).diagnostics).toEqual([]);
  });
});

describe('§2.1 upload arguments', () => {
  it('UPLOAD_NAME: a 128-character name', () => {
    const v = verify(new PayloadFixture(), { file: 'x'.repeat(128) + '.livepatch' });
    expectFirst(v, 'UPLOAD_NAME', 'EINVAL', /must have 1 to 127 characters/);
  });
  it('UPLOAD_SIZE: more than 2 MiB', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.comment', type: SHT.PROGBITS, flags: 0n, addralign: 1n, data: new Uint8Array(2 * 1024 * 1024) });
    expectFirst(verify(fx), 'UPLOAD_SIZE', 'EINVAL', /not within 1 byte/);
  });
  it('DUPLICATE_NAME: the same upload name twice', () => {
    const a = new PayloadFixture().build().bytes;
    const b = new PayloadFixture({ ownId: 'bb'.repeat(20), dependsId: FIXTURE_OWN_ID }).build().bytes;
    const r = verifyPayloads(
      [
        { file: 'a/hello.livepatch', bytes: a },
        { file: 'b/hello.livepatch', bytes: b },
      ],
      fakeTarget(),
    );
    expect(r.payloads[0]!.ok).toBe(true);
    expectFirst(r.payloads[1]!, 'DUPLICATE_NAME', 'EEXIST', /already loaded/);
  });
});

describe('§2.2 ELF header', () => {
  it('HDR_SHORT', () => {
    const fx = new PayloadFixture();
    fx.truncate = 40;
    expectFirst(verify(fx), 'HDR_SHORT', 'EINVAL', `${P}Section header is bigger than payload`);
  });
  it('HDR_NOT_ELF', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 1, width: 1, value: 0x46 });
    expectFirst(verify(fx), 'HDR_NOT_ELF', 'EINVAL', `${P}Not an ELF payload`);
  });
  it('HDR_INVALID (e_type ET_EXEC, EI_OSABI GNU, e_phnum 1, e_version 0)', () => {
    for (const h of [
      { offset: 16, width: 2 as const, value: 2 },
      { offset: 7, width: 1 as const, value: 3 },
      { offset: 56, width: 2 as const, value: 1 },
      { offset: 20, width: 4 as const, value: 0 },
    ]) {
      const fx = new PayloadFixture();
      fx.header.push(h);
      expectFirst(verify(fx), 'HDR_INVALID', 'EOPNOTSUPP', `${P}Invalid ELF payload`);
    }
    const ok = new PayloadFixture();
    ok.header.push({ offset: 7, width: 1, value: 9 }); // ELFOSABI_FREEBSD is accepted
    expect(verify(ok).ok).toBe(true);
  });
  it('HDR_MACHINE (EM_386, big-endian)', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 18, width: 2, value: 3 });
    expectFirst(verify(fx), 'HDR_MACHINE', 'EOPNOTSUPP', `${P}Unsupported ELF Machine type`);
    const be = new PayloadFixture();
    be.header.push({ offset: 5, width: 1, value: 2 });
    expectFirst(verify(be), 'HDR_MACHINE', 'EOPNOTSUPP', `${P}Unsupported ELF Machine type`);
  });
  it('HDR_EABI: arm32 header without EABI version 5', () => {
    const b = new Uint8Array(128);
    b.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0], 0);
    const dv = new DataView(b.buffer);
    dv.setUint16(16, 1, true);
    dv.setUint16(18, 40, true);
    dv.setUint32(20, 1, true);
    dv.setUint32(36, 0x04000000, true);
    const v = verify(b, { target: { ...fakeTarget(), arch: 'arm32' } });
    expectFirst(v, 'HDR_EABI', 'EOPNOTSUPP', `${P}Unsupported ELF EABI(4000000)`);
  });
  it('HDR_ARCH_UNSUPPORTED: arm64 payload for Xen 4.7', () => {
    const v = verify(new PayloadFixture(), { xenVersion: '4.7.0', abi: abiById('L1-arm64')! });
    expectFirst(v, 'HDR_ARCH_UNSUPPORTED', 'ENOSYS', /needs Xen 4.8/);
  });
  it('HDR_SHSTRNDX_UNDEF', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 62, width: 2, value: 0 });
    expectFirst(verify(fx), 'HDR_SHSTRNDX_UNDEF', 'EINVAL', `${P}Section name idx is undefined`);
  });
  it('HDR_TOO_MANY_SECTIONS', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 60, width: 2, value: 1024 });
    expectFirst(verify(fx), 'HDR_TOO_MANY_SECTIONS', 'EOPNOTSUPP', `${P}Too many (1024) sections`);
  });
  it('HDR_SHSTRNDX_PAST_END', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 62, width: 2, value: 12 });
    expectFirst(verify(fx), 'HDR_SHSTRNDX_PAST_END', 'EINVAL', `${P}Section name idx (12) is past end of sections (12)`);
  });
  it('HDR_BOGUS_SHOFF', () => {
    const b = patch(new PayloadFixture(), (b, dv) => dv.setBigUint64(40, BigInt(b.length), true));
    expectFirst(verify(b), 'HDR_BOGUS_SHOFF', 'EINVAL', `${P}Bogus e_shoff`);
  });
  it('HDR_SHENTSIZE', () => {
    const fx = new PayloadFixture();
    fx.header.push({ offset: 58, width: 2, value: 40 });
    expectFirst(verify(fx), 'HDR_SHENTSIZE', 'EINVAL', `${P}Section header size is 40! Expected 64.`);
  });
  it('HDR_SHDRS_TRUNCATED', () => {
    const fx = new PayloadFixture();
    fx.truncate = -10;
    expectFirst(verify(fx), 'HDR_SHDRS_TRUNCATED', 'EINVAL', `${P}Section header size is corrupted`);
  });
});

describe('§2.3 section headers', () => {
  it('SEC_DATA_AT_HEADER', () => {
    const fx = new PayloadFixture();
    fx.section('.rodata').raw = { sh_offset: 10 };
    expectFirst(verify(fx), 'SEC_DATA_AT_HEADER', 'EINVAL', `${P}Section [2] data at ELF header of payload`);
  });
  it('SEC_DATA_PAST_END', () => {
    const fx = new PayloadFixture();
    fx.section('.rodata').raw = { sh_size: 1n << 40n };
    expectFirst(verify(fx), 'SEC_DATA_PAST_END', 'EINVAL', `${P}Section [2] data is past end of payload`);
  });
  it('SEC_ALIGN_UNSUPPORTED', () => {
    const fx = new PayloadFixture();
    fx.section('.rodata').raw = { sh_addralign: 3 };
    expectFirst(verify(fx), 'SEC_ALIGN_UNSUPPORTED', 'EOPNOTSUPP', `${P}Section [2] alignment (0x3) is not supported`);
  });
  it('SEC_ADDR_UNALIGNED', () => {
    const fx = new PayloadFixture();
    fx.section('.text').addr = 8n;
    expectFirst(verify(fx), 'SEC_ADDR_UNALIGNED', 'EINVAL', `${P}Section [1] addr (0x8) is not aligned properly (0x10)`);
  });
  it('SEC_ADDR_UNALIGNED is not checked before 4.10', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.section('.text').addr = 8n;
    expect(verify(fx, { xenVersion: '4.9.0' }).diagnostics.map((d) => d.code)).not.toContain('SEC_ADDR_UNALIGNED');
  });
  it('SEC_NOBITS_TOO_BIG', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.bss', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n, size: 2n * 1024n * 1024n + 1n });
    expectFirst(verify(fx), 'SEC_NOBITS_TOO_BIG', 'EINVAL', /NOBITS section \[7\] of 2097153 bytes exceeds 2 MiB/);
  });
  it('SYMTAB_MULTIPLE', () => {
    const fx = new PayloadFixture();
    fx.sections.push({
      name: '.symtab2',
      type: SHT.SYMTAB,
      flags: 0n,
      addralign: 8n,
      entsize: 24n,
      link: '.strtab',
      data: new Uint8Array(24),
    });
    expectFirst(verify(fx), 'SYMTAB_MULTIPLE', 'EOPNOTSUPP', `${P}Unsupported multiple symbol tables`);
  });
  it('SYMTAB_LINK_PAST_END', () => {
    const fx = new PayloadFixture();
    fx.section('.symtab').raw = { sh_link: 99 };
    expectFirst(verify(fx), 'SYMTAB_LINK_PAST_END', 'EINVAL', `${P}Symbol table idx (99) to strtab past end (12)`);
  });
  it('SYMTAB_MISSING', () => {
    const fx = new PayloadFixture();
    fx.section('.symtab').raw = { sh_type: SHT.PROGBITS };
    expectFirst(verify(fx), 'SYMTAB_MISSING', 'EINVAL', `${P}No symbol table found`);
  });
  it('SYMTAB_CORRUPT', () => {
    const fx = new PayloadFixture();
    fx.section('.symtab').raw = { sh_entsize: 16 };
    expectFirst(verify(fx), 'SYMTAB_CORRUPT', 'EINVAL', `${P}Symbol table header is corrupted`);
  });
  it('STRTAB_CORRUPT', () => {
    const fx = new PayloadFixture();
    fx.section('.strtab').raw = { sh_type: SHT.PROGBITS };
    expectFirst(verify(fx), 'STRTAB_CORRUPT', 'EINVAL', `${P}String table section is corrupted`);
  });
  it('SHSTRTAB_CORRUPT', () => {
    const b = patch(new PayloadFixture(), (b, dv, built) => {
      const h = built.shdrOffset('.shstrtab');
      dv.setBigUint64(h + 32, dv.getBigUint64(h + 32, true) - 1n, true);
    });
    expectFirst(verify(b), 'SHSTRTAB_CORRUPT', 'EINVAL', `${P}Section string table is corrupted`);
  });
  it('SEC_NAME_OUTSIDE', () => {
    const fx = new PayloadFixture();
    fx.section('.rodata').raw = { sh_name: 100000 };
    expectFirst(verify(fx), 'SEC_NAME_OUTSIDE', 'EINVAL', `${P}Section 2 name is not within .shstrtab`);
  });
});

describe('§2.4 symbols', () => {
  it('SYM_NAME_OUTSIDE', () => {
    const fx = new PayloadFixture();
    fx.symbol('xsplice_str').nameOffset = 100000;
    expectFirst(verify(fx), 'SYM_NAME_OUTSIDE', 'EINVAL', `${P}Symbol [1] name is not within .strtab`);
  });
});

describe('§2.5 hypervisor build-id (.livepatch.xen_depends)', () => {
  const other = 'ee'.repeat(20);
  it('XEN_DEPENDS_MISMATCH on 4.17 (after prepare_payload)', () => {
    const v = verify(new PayloadFixture(), { target: fakeTarget({ buildId: other }) });
    expectFirst(v, 'XEN_DEPENDS_MISMATCH', 'EINVAL', `${P}check against hypervisor build-id failed`);
    expect(v.refusedAt).toBe('upload');
  });
  it('XEN_DEPENDS_MISMATCH on 4.20 (before loading, new message)', () => {
    const v = verify(new PayloadFixture(), { target: fakeTarget({ buildId: other }), xenVersion: '4.20.0' });
    expectFirst(v, 'XEN_DEPENDS_MISMATCH', 'EINVAL', `${P}build-id mismatch:\n  livepatch: ${FIXTURE_XEN_ID}\n        xen: ${other}`);
  });
  it('XEN_DEPENDS_MISMATCH on 4.18.4 (backport of the early check)', () => {
    const v = verify(new PayloadFixture(), { target: fakeTarget({ buildId: other }), xenVersion: '4.18.4' });
    expectFirst(v, 'XEN_DEPENDS_MISMATCH', 'EINVAL', /build-id mismatch/);
  });
  it('XEN_DEPENDS_MISSING (4.20)', () => {
    const fx = new PayloadFixture();
    fx.removeSection('.livepatch.xen_depends');
    expectFirst(verify(fx, { xenVersion: '4.20.0' }), 'XEN_DEPENDS_MISSING', 'EINVAL', `${P}section .livepatch.xen_depends is missing`);
  });
  it('XEN_DEPENDS_MISSING on 4.17 is the mandatory-section check', () => {
    const fx = new PayloadFixture();
    fx.removeSection('.livepatch.xen_depends');
    expectFirst(verify(fx), 'SEC_MISSING', 'EINVAL', `${P}.livepatch.xen_depends is missing`);
  });
  it('XEN_DEPENDS_PARSE (4.20)', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.xen_depends').data = gnuNote(hexBytes(FIXTURE_XEN_ID), { type: 4 });
    expectFirst(
      verify(fx, { xenVersion: '4.20.0' }),
      'XEN_DEPENDS_PARSE',
      'EINVAL',
      `${P}failed to parse section .livepatch.xen_depends as build-id: -61`,
    );
  });
  it('XEN_BUILD_ID_UNAVAILABLE (4.20): "unable to get running Xen build-id: -61"', () => {
    const v = verify(new PayloadFixture(), { target: { ...fakeTarget(), buildId: null }, xenVersion: '4.20.0' });
    expectFirst(v, 'XEN_BUILD_ID_UNAVAILABLE', 'ENODATA', `${P}unable to get running Xen build-id: -61`);
  });
});

describe('§2.6 placement', () => {
  it('SEC_WRITE_EXEC (debug-only message)', () => {
    const fx = new PayloadFixture();
    fx.section('.text').flags = SHF.ALLOC | SHF.EXECINSTR | SHF.WRITE;
    const v = verify(fx);
    expectFirst(v, 'SEC_WRITE_EXEC', 'EOPNOTSUPP', `${P}Not supporting .text section!`);
    expect(v.diagnostics[0]!.printed).toBe('debug');
  });
});

describe('§2.7 symbol resolution', () => {
  const add = (fx: PayloadFixture, name: string, section: string | number): void => {
    fx.symbols.push({ name, bind: STB.GLOBAL, type: STT.OBJECT, section, value: 0n, size: 4n });
  };
  it('SYM_COMMON', () => {
    const fx = new PayloadFixture();
    add(fx, 'common_var', 'COM');
    expectFirst(verify(fx), 'SYM_COMMON', 'EINVAL', `${P}Unexpected common symbol: common_var`);
  });
  it('SYM_UNKNOWN (and every further unknown symbol is listed)', () => {
    const fx = new PayloadFixture();
    add(fx, 'no_such_function', 'UND');
    add(fx, 'kernel.c#do_thing', 'UND');
    const v = verify(fx);
    expectFirst(v, 'SYM_UNKNOWN', 'ENOENT', `${P}Unknown symbol: no_such_function`);
    expect(v.diagnostics.filter((d) => d.code === 'SYM_UNKNOWN').map((d) => d.symbol)).toEqual(['no_such_function', 'kernel.c#do_thing']);
  });
  it('SYM_SHNDX_RESERVED', () => {
    const fx = new PayloadFixture();
    add(fx, 'weird', 0xff05);
    expectFirst(verify(fx), 'SYM_SHNDX_RESERVED', 'EOPNOTSUPP', `${P}Out of bounds symbol section 0xff05`);
  });
  it('SYM_SHNDX_PAST_END', () => {
    const fx = new PayloadFixture();
    add(fx, 'weird', 500);
    expectFirst(verify(fx), 'SYM_SHNDX_PAST_END', 'EINVAL', `${P}Out of bounds symbol section 0x1f4`);
  });
  it('NOTE_UNCHECKED_TARGET: without a target symbol table undefined symbols are not checked', () => {
    const fx = new PayloadFixture();
    add(fx, 'printk_like', 'UND');
    const v = verify(fx, { target: fakeTarget({ noSymbols: true }) });
    expect(v.diagnostics.map((d) => d.code)).toEqual(['NOTE_UNCHECKED_TARGET']);
    expectNote(
      v,
      'NOTE_UNCHECKED_TARGET',
      /1 undefined symbol\(s\) and relocation overflow against them: the target gives no symbol table, not checked/,
    );
  });
});

describe('§2.8 relocations', () => {
  it('RELOC_LINK', () => {
    const fx = new PayloadFixture();
    fx.section('.rela.text').link = '.strtab';
    expectFirst(verify(fx), 'RELOC_LINK', 'EINVAL', `${P}Relative link of .rela.text is incorrect (10, expected=9)`);
  });
  it('RELOC_HEADER', () => {
    const fx = new PayloadFixture();
    fx.section('.rela.text').entsize = 16n;
    expectFirst(verify(fx), 'RELOC_HEADER', 'EINVAL', `${P}Section relative header is corrupted`);
  });
  it('RELOC_REL_UNSUPPORTED', () => {
    const fx = new PayloadFixture();
    fx.section('.rela.text').raw = { sh_type: SHT.REL };
    expectFirst(verify(fx), 'RELOC_REL_UNSUPPORTED', 'EOPNOTSUPP', `${P}SHT_REL relocation unsupported`);
  });
  it('RELOC_STN_UNDEF (even for R_X86_64_NONE)', () => {
    const fx = new PayloadFixture();
    fx.addReloc('.text', { offset: 0n, type: R.NONE, symbol: 0, addend: 0n });
    expectFirst(verify(fx), 'RELOC_STN_UNDEF', 'EOPNOTSUPP', `${P}Encountered STN_UNDEF`);
  });
  it('RELOC_SYM_PAST_END', () => {
    const fx = new PayloadFixture();
    fx.addReloc('.text', { offset: 0n, type: R.R64, symbol: 99, addend: 0n });
    expectFirst(verify(fx), 'RELOC_SYM_PAST_END', 'EINVAL', `${P}Relative relocation wants symbol@99 which is past end`);
  });
  it('RELOC_IGNORED_SYMBOL (4.17+)', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.comment', type: SHT.PROGBITS, flags: 0n, addralign: 1n, data: new Uint8Array(8) });
    fx.symbols.splice(2, 0, { name: 'in_comment', bind: STB.LOCAL, type: STT.OBJECT, section: '.comment', value: 0n, size: 1n });
    fx.addReloc('.text', { offset: 8n, type: R.R64, symbol: 'in_comment', addend: 0n });
    expectFirst(verify(fx), 'RELOC_IGNORED_SYMBOL', 'EINVAL', `${P}Relocation against ignored symbol in_comment cannot be resolved`);
  });
  it('RELOC_OFFSET', () => {
    const fx = new PayloadFixture();
    fx.addReloc('.text', { offset: 14n, type: R.PC32, symbol: 'xsplice_str', addend: -4n });
    expectFirst(verify(fx), 'RELOC_OFFSET', 'EINVAL', `${P}Relative relocation offset is past .text section`);
  });
  it('RELOC_OVERFLOW: PC32 to an absolute address out of ±2 GiB', () => {
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'far_abs', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'ABS', value: 0x1000n, size: 0n });
    fx.addReloc('.text', { offset: 8n, type: R.PC32, symbol: 'far_abs', addend: -4n });
    expectFirst(verify(fx), 'RELOC_OVERFLOW', 'EOVERFLOW', `${P}Overflow in relocation 1 in .rela.text for .text`);
  });
  it('RELOC_UNHANDLED: R_X86_64_32S', () => {
    const fx = new PayloadFixture();
    fx.section('.rela.text').relocs![0]!.type = R.R32S;
    expectFirst(verify(fx), 'RELOC_UNHANDLED', 'EOPNOTSUPP', `${P}Unhandled relocation 11`);
  });
});

describe('§2.9 mandatory sections', () => {
  it('SEC_MISSING', () => {
    const fx = new PayloadFixture();
    fx.removeSection('.livepatch.depends');
    expectFirst(verify(fx), 'SEC_MISSING', 'EINVAL', `${P}.livepatch.depends is missing`);
  });
  it('SEC_EMPTY', () => {
    const fx = new PayloadFixture();
    fx.section('.note.gnu.build-id').data = new Uint8Array(0);
    expectFirst(verify(fx), 'SEC_EMPTY', 'EINVAL', `${P}.note.gnu.build-id is empty`);
  });
  it('NOTHING_TO_PATCH', () => {
    const fx = new PayloadFixture();
    fx.removeSection('.livepatch.funcs');
    expectFirst(verify(fx), 'NOTHING_TO_PATCH', 'EINVAL', `${P}Nothing to patch. Aborting...`);
  });
  it('version 1 (4.13): .livepatch.funcs is mandatory', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.removeSection('.livepatch.funcs');
    expectFirst(verify(fx, { xenVersion: '4.13.0' }), 'SEC_MISSING', 'EINVAL', `${P}.livepatch.funcs is missing`);
  });
});

describe('§2.10 prepare_payload', () => {
  it('SEC_WRONG_SIZE: .livepatch.funcs not a multiple of 104', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.funcs').data = new Uint8Array(100);
    fx.section('.rela.livepatch.funcs').relocs = [];
    expectFirst(verify(fx), 'SEC_WRONG_SIZE', 'EINVAL', `${P}Wrong size 100 of .livepatch.funcs (must be multiple of 104)`);
  });
  it('FUNC_VERSION', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.version = 1;
    expectFirst(verify(fx), 'FUNC_VERSION', 'EOPNOTSUPP', `${P}Wrong version (1). Expected 2`);
  });
  it('FUNC_VERSION message before 4.13 is debug-only and ends in "!"', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.funcs[0]!.version = 2;
    const v = verify(fx, { xenVersion: '4.12.0' });
    expectFirst(v, 'FUNC_VERSION', 'EOPNOTSUPP', `${P}Wrong version (2). Expected 1!`);
    expect(v.diagnostics[0]!.printed).toBe('debug');
  });
  it('FUNC_ZERO_FIELDS', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.oldSize = 0;
    expectFirst(verify(fx), 'FUNC_ZERO_FIELDS', 'EINVAL', `${P}Address or size fields are zero`);
  });
  it('FUNC_UNRESOLVED', () => {
    const fx = new PayloadFixture({ oldName: 'no_such_fn' });
    expectFirst(verify(fx), 'FUNC_UNRESOLVED', 'ENOENT', `${P}Could not resolve old address of no_such_fn`);
  });
  it('FUNC_NOP_TOO_LONG', () => {
    const fx = new PayloadFixture();
    Object.assign(fx.funcs[0]!, { newSymbol: null, newSize: 32, oldSize: 40 });
    expectFirst(verify(fx), 'FUNC_NOP_TOO_LONG', 'EOPNOTSUPP', /NOP patch of xen_extra_version: new_size 32 exceeds 31 bytes/);
  });
  it('FUNC_NOP_OLD_SIZE', () => {
    const fx = new PayloadFixture();
    Object.assign(fx.funcs[0]!, { newSymbol: null, newSize: 12, oldSize: 8 });
    expectFirst(verify(fx), 'FUNC_NOP_OLD_SIZE', 'EINVAL', /old_size 8 is smaller than new_size 12/);
  });
  it('FUNC_OLD_SIZE: fewer than 5 bytes', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.oldSize = 4;
    expectFirst(verify(fx), 'FUNC_OLD_SIZE', 'EINVAL', /old_size 4 is smaller than the 5 bytes/);
  });
  it('FUNC_OLD_SIZE: 8 bytes on an ENDBR64 function needs 9 (4.17+)', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.oldSize = 8;
    const endbr = fakeTarget({ code: Uint8Array.from([...ENDBR64, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]) });
    expectFirst(verify(fx, { target: endbr }), 'FUNC_OLD_SIZE', 'EINVAL', /old_size 8 is smaller than the 9 bytes .*ENDBR64/);
    expect(verify(fx).ok).toBe(true);
  });
  it('FUNC_DISTANCE', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.oldAddr = 0xffff800000000000n;
    expectFirst(verify(fx), 'FUNC_DISTANCE', 'EOVERFLOW', /out of branch reach/);
  });
  it('HOOK_SIZE: a single hook section with two pointers', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.livepatch.hooks.preapply', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(16) });
    expectFirst(verify(fx), 'HOOK_SIZE', 'EINVAL', /\.livepatch\.hooks\.preapply must hold exactly one pointer \(8 bytes\), has 16/);
  });
  it('SEC_WRONG_SIZE: a hook array of 12 bytes', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.livepatch.hooks.load', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(12) });
    expectFirst(verify(fx), 'SEC_WRONG_SIZE', 'EINVAL', `${P}Wrong size 12 of .livepatch.hooks.load (must be multiple of 8)`);
  });
  it('HOOK_ARRAY_SIZE: the same on 4.9 is silent', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.addSection({ name: '.livepatch.hooks.load', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(12) });
    const v = verify(fx, { xenVersion: '4.9.0' });
    expectFirst(v, 'HOOK_ARRAY_SIZE', 'EINVAL', /\.livepatch\.hooks\.load size 12 is not a multiple of 8/);
    expect(v.diagnostics[0]!.printed).toBe('never');
  });
  it('NOTE_BUILD_ID: wrong note type is EINVAL on 4.17', () => {
    const fx = new PayloadFixture();
    fx.section('.note.gnu.build-id').data = gnuNote(hexBytes(FIXTURE_OWN_ID), { type: 1 });
    expectFirst(verify(fx), 'NOTE_BUILD_ID', 'EINVAL', /\.note\.gnu\.build-id is not a valid GNU build-id note: note type 1/);
  });
  it('NOTE_BUILD_ID: wrong note type passes ENODATA through on 4.20', () => {
    const fx = new PayloadFixture();
    fx.section('.note.gnu.build-id').data = gnuNote(hexBytes(FIXTURE_OWN_ID), { type: 1 });
    expectFirst(verify(fx, { xenVersion: '4.20.0' }), 'NOTE_BUILD_ID', 'ENODATA', /note type 1/);
  });
  it('NOTE_BUILD_ID: .livepatch.depends with descsz 0', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.depends').data = gnuNote(new Uint8Array(4), { descsz: 0 });
    expectFirst(verify(fx), 'NOTE_BUILD_ID', 'EINVAL', /\.livepatch\.depends is not a valid GNU build-id note/);
  });
  it('DUPLICATE_BUILD_ID', () => {
    const a = new PayloadFixture().build().bytes;
    const r = verifyPayloads(
      [
        { file: 'a.livepatch', bytes: a },
        { file: 'b.livepatch', bytes: a },
      ],
      fakeTarget(),
    );
    expectFirst(r.payloads[1]!, 'DUPLICATE_BUILD_ID', 'EEXIST', 'livepatch: b: Already loaded as a!');
  });
  it('MODINFO_FORMAT', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.modinfo', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: Buffer.from('k=v') });
    expectFirst(verify(fx), 'MODINFO_FORMAT', 'EINVAL', `${P}Incorrect metadata format detected`);
  });
  it('EX_TABLE_EMPTY (before 4.10)', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.addSection({ name: '.ex_table', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(0) });
    expectFirst(verify(fx, { xenVersion: '4.9.0' }), 'EX_TABLE_EMPTY', 'EINVAL', `${P}Wrong size of .ex_table (exp:8 vs 0)!`);
  });
  it('SEC_WRONG_SIZE: .bug_frames.1 and .ex_table', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.bug_frames.1', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(12) });
    expectFirst(verify(fx), 'SEC_WRONG_SIZE', 'EINVAL', `${P}Wrong size 12 of .bug_frames.1 (must be multiple of 8)`);
    const ex = new PayloadFixture();
    ex.addSection({ name: '.ex_table', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(12) });
    expectFirst(verify(ex), 'SEC_WRONG_SIZE', 'EINVAL', `${P}Wrong size 12 of .ex_table (must be multiple of 8)`);
  });
});

/** An .altinstructions entry (14 bytes) whose orig/repl are relocated against symbols. */
function withAlt(
  fx: PayloadFixture,
  o: { orig: string; repl: string; origLen: number; replLen: number; pad?: number; replSection?: boolean },
): void {
  if (o.replSection !== false) {
    fx.addSection({
      name: '.altinstr_replacement',
      type: SHT.PROGBITS,
      flags: SHF.ALLOC | SHF.EXECINSTR,
      addralign: 1n,
      data: new Uint8Array(8).fill(0x90),
    });
    fx.symbols.splice(0, 0, {
      name: 'repl_start',
      bind: STB.LOCAL,
      type: STT.NOTYPE,
      section: '.altinstr_replacement',
      value: 0n,
      size: 0n,
    });
  }
  fx.symbols.splice(0, 0, { name: 'text_start', bind: STB.LOCAL, type: STT.NOTYPE, section: '.text', value: 0n, size: 0n });
  const d = new Uint8Array(14);
  d[10] = o.origLen;
  d[11] = o.replLen;
  d[12] = o.pad ?? 0;
  fx.addSection({ name: '.altinstructions', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: d });
  fx.addReloc('.altinstructions', { offset: 0n, type: R.PC32, symbol: o.orig, addend: 0n });
  fx.addReloc('.altinstructions', { offset: 4n, type: R.PC32, symbol: o.repl, addend: 0n });
}

describe('§2.10(g)(h) alternatives and alt-call sites', () => {
  it('a well-formed alternative is clean', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'repl_start', origLen: 5, replLen: 5 });
    expect(verify(fx).diagnostics).toEqual([]);
  });
  it('ALT_NO_TEXT', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'text_start', origLen: 5, replLen: 5, replSection: false });
    fx.section('.text').flags = SHF.ALLOC;
    expectFirst(verify(fx), 'ALT_NO_TEXT', 'EINVAL', 'livepatch: hello Alternatives provided, but no .text');
  });
  it('ALT_NO_REPLACEMENT', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'text_start', origLen: 5, replLen: 5, replSection: false });
    expectFirst(verify(fx), 'ALT_NO_REPLACEMENT', 'EINVAL', 'livepatch: hello .altinstructions provided, but no .altinstr_replacement');
  });
  it('ALT_ORIG_OUTSIDE', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'xsplice_str', repl: 'repl_start', origLen: 5, replLen: 5 });
    expectFirst(
      verify(fx),
      'ALT_ORIG_OUTSIDE',
      'EINVAL',
      /^livepatch: hello Alternative orig ffff82d0406[0-9a-f]{5}\+0x5 outside payload text ffff82d040600000\+0x18$/,
    );
  });
  it('ALT_REPL_OUTSIDE', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'text_start', origLen: 5, replLen: 5 });
    expectFirst(
      verify(fx),
      'ALT_REPL_OUTSIDE',
      'EINVAL',
      /^livepatch: hello Alternative repl ffff82d040600000\+0x5 outside \.altinstr_replacement ffff82d0406[0-9a-f]{5}\+0x8$/,
    );
  });
  it('ALT_APPLY: replacement longer than origin + padding on 4.20 (ENOSPC)', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'repl_start', origLen: 2, replLen: 5 });
    expectFirst(
      verify(fx, { xenVersion: '4.20.0' }),
      'ALT_APPLY',
      'ENOSPC',
      /^Alt for 0x[0-9a-f]+, replacement size 0x5 larger than origin 0x2\nlivepatch: hello applying alternatives failed: -28$/,
    );
  });
  it('UNCHECKED_ALT_ENTRY: the same on 4.17 is a BUG_ON', () => {
    const fx = new PayloadFixture();
    withAlt(fx, { orig: 'text_start', repl: 'repl_start', origLen: 2, replLen: 5 });
    expectUnchecked(verify(fx), 'UNCHECKED_ALT_ENTRY', /replacement length 5 exceeds origin 2 \+ padding 0 \(BUG_ON/);
  });
  const altcall = (fx: PayloadFixture, target: string, addend: bigint): void => {
    fx.symbols.splice(0, 0, { name: 'text_start', bind: STB.LOCAL, type: STT.NOTYPE, section: '.text', value: 0n, size: 0n });
    fx.addSection({ name: '.alt_call_sites', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(4) });
    fx.addReloc('.alt_call_sites', { offset: 0n, type: R.PC32, symbol: target, addend });
  };
  it('ALT_CALL_NOT_RIPREL (4.21)', () => {
    const fx = new PayloadFixture();
    altcall(fx, 'text_start', 0n);
    expectFirst(
      verify(fx, { xenVersion: '4.21.0' }),
      'ALT_CALL_NOT_RIPREL',
      'EINVAL',
      /^Altcall for 0x[0-9a-f]+ \[48 8d 05 [0-9a-f ]+\] not CALL \*RIPREL\nlivepatch: hello: Applying alternative calls failed: -22$/,
    );
  });
  it('ALT_CALL_OUTSIDE (4.21)', () => {
    const fx = new PayloadFixture();
    altcall(fx, 'text_start', 12n);
    expectFirst(
      verify(fx, { xenVersion: '4.21.0' }),
      'ALT_CALL_OUTSIDE',
      'EINVAL',
      /^livepatch: hello: Alternative call ffff82d04060000c\+0x6 outside payload text ffff82d040600000\+0x10$/,
    );
  });
  it('ALT_CALL_NO_TEXT (4.21)', () => {
    const fx = new PayloadFixture();
    altcall(fx, 'text_start', 0n);
    fx.section('.text').flags = SHF.ALLOC;
    expectFirst(
      verify(fx, { xenVersion: '4.21.0' }),
      'ALT_CALL_NO_TEXT',
      'EINVAL',
      'livepatch: hello Alternative calls provided, but no .text',
    );
  });
  it('.alt_call_sites is ignored (plain data) before 4.21', () => {
    const fx = new PayloadFixture();
    altcall(fx, 'text_start', 0n);
    expect(verify(fx).diagnostics).toEqual([]);
  });
});

describe('§2.11 payload symbols', () => {
  it('DUPLICATE_SYMBOL: a new symbol named like a hypervisor symbol', () => {
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'printk', bind: STB.GLOBAL, type: STT.FUNC, section: '.text', value: 8n, size: 1n });
    expectFirst(verify(fx), 'DUPLICATE_SYMBOL', 'EEXIST', `${P}duplicate new symbol: printk`);
  });
  it('an overriding symbol (value = new_addr) may carry the patched name', () => {
    const fx = new PayloadFixture();
    fx.symbol('xsplice_fn').name = 'xen_extra_version';
    fx.funcs[0]!.newSymbol = 'xen_extra_version';
    expect(verify(fx).diagnostics).toEqual([]);
  });
  it('DUPLICATE_SYMBOL: two payloads export the same local name', () => {
    const a = new PayloadFixture().build().bytes;
    const b = new PayloadFixture({ ownId: 'bb'.repeat(20), dependsId: FIXTURE_OWN_ID });
    b.symbol('xsplice_fn').name = 'xsplice_fn_b';
    b.funcs[0]!.newSymbol = 'xsplice_fn_b';
    const r = verifyPayloads(
      [
        { file: 'a.livepatch', bytes: a },
        { file: 'b.livepatch', bytes: b.build().bytes },
      ],
      fakeTarget(),
    );
    expectFirst(r.payloads[1]!, 'DUPLICATE_SYMBOL', 'EEXIST', 'livepatch: b: duplicate new symbol: xsplice_str');
  });
});

describe('§2.13 apply', () => {
  it('DEPENDS_MISMATCH: the first payload must depend on the hypervisor', () => {
    const v = verify(new PayloadFixture({ dependsId: 'cc'.repeat(20) }));
    expectFirst(v, 'DEPENDS_MISMATCH', 'EINVAL', `${P}check against hypervisor build-id failed`);
    expect(v.refusedAt).toBe('apply');
  });
  const expectBytes = (fx: PayloadFixture, byte0: number, data: number[]): void => {
    const bytes: Record<number, number> = { 72: byte0 };
    data.forEach((b, i) => {
      bytes[73 + i] = b;
    });
    fx.funcs[0]!.bytes = bytes;
  };
  it('expectations that match are clean', () => {
    const fx = new PayloadFixture();
    expectBytes(fx, 1 | (4 << 1), [0x48, 0x8d, 0x05, 0x11]);
    expect(verify(fx).diagnostics).toEqual([]);
  });
  it('EXPECT_MISMATCH', () => {
    const fx = new PayloadFixture();
    expectBytes(fx, 1 | (4 << 1), [0x90, 0x90, 0x90, 0x90]);
    expectFirst(
      verify(fx),
      'EXPECT_MISMATCH',
      'EINVAL',
      'livepatch: xen_extra_version: expectation failed: expected:90909090, actual:488d0511\nlivepatch: hello: expectations of xen_extra_version failed (rc=-22), aborting!',
    );
  });
  it('EXPECT_RESERVED', () => {
    const fx = new PayloadFixture();
    expectBytes(fx, 1 | (4 << 1) | 0x40, [0x48, 0x8d, 0x05, 0x11]);
    expectFirst(verify(fx), 'EXPECT_RESERVED', 'EINVAL', `${P}expectations of xen_extra_version failed (rc=-22), aborting!`);
  });
  it('EXPECT_RANGE', () => {
    const fx = new PayloadFixture();
    expectBytes(fx, 1 | (20 << 1), []);
    expectFirst(verify(fx), 'EXPECT_RANGE', 'ERANGE', `${P}expectations of xen_extra_version failed (rc=-34), aborting!`);
  });
  it('NOTE_UNCHECKED_TARGET: expectations without target bytes', () => {
    const fx = new PayloadFixture();
    expectBytes(fx, 1 | (4 << 1), [1, 2, 3, 4]);
    const t = fakeTarget();
    const v = verify(fx, { target: { buildId: t.buildId, version: t.version, arch: t.arch, symbols: t.symbols! } });
    expectNote(v, 'NOTE_UNCHECKED_TARGET', /expectation of xen_extra_version/);
  });
  it('REPLACE_VETO', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.livepatch.hooks.preapply', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(8) });
    fx.addReloc('.livepatch.hooks.preapply', { offset: 0n, type: R.R64, symbol: 'xsplice_fn', addend: 0n });
    expectFirst(
      verify(fx, { replace: true }),
      'REPLACE_VETO',
      'EOPNOTSUPP',
      `${P}REPLACE action is not supported on livepatches with vetoing hooks!`,
    );
    expect(verify(fx).ok).toBe(true);
  });
});

describe('§2.16 not checked by the hypervisor: crashes and corruption', () => {
  it('UNCHECKED_NOT_ALLOC', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.depends').flags = 0n;
    expectUnchecked(verify(fx), 'UNCHECKED_NOT_ALLOC', /\.livepatch\.depends is not SHF_ALLOC/);
  });
  it('UNCHECKED_ZERO_SIZE_SPECIAL (4.16.0 does not load an empty .modinfo)', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.modinfo', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(0) });
    expectUnchecked(verify(fx, { xenVersion: '4.16.0' }), 'UNCHECKED_ZERO_SIZE_SPECIAL', /\.modinfo is empty: releases 4\.8–4\.16/);
  });
  it('UNCHECKED_LINK_ZERO: .symtab sh_link 0', () => {
    const fx = new PayloadFixture();
    fx.section('.symtab').raw = { sh_link: 0 };
    expectUnchecked(verify(fx), 'UNCHECKED_LINK_ZERO', /\.symtab: sh_link points at section 0/);
  });
  it('UNCHECKED_LINK_ZERO: relocation sh_info 0', () => {
    const fx = new PayloadFixture();
    fx.section('.rela.text').raw = { sh_info: 0 };
    expectUnchecked(verify(fx), 'UNCHECKED_LINK_ZERO', /\.rela\.text: sh_info points at section 0/);
  });
  it('UNCHECKED_ALIGN_ZERO', () => {
    const fx = new PayloadFixture();
    fx.section('.rodata').addralign = 0n;
    expectUnchecked(verify(fx), 'UNCHECKED_ALIGN_ZERO', /\.rodata is loaded with sh_addralign 0/);
  });
  it('UNCHECKED_FUNCS_READONLY (4.17.1 writes the entries at apply)', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.funcs').flags = SHF.ALLOC;
    expectUnchecked(verify(fx, { xenVersion: '4.17.1' }), 'UNCHECKED_FUNCS_READONLY', /not SHF_WRITE/);
    expect(verify(fx).ok).toBe(true); // 4.17.7 (L2c) never writes them
  });
  it('UNCHECKED_SCRATCH_NONZERO (L2b applied byte)', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.bytes = { 64: 1 };
    expectUnchecked(verify(fx, { xenVersion: '4.17.0' }), 'UNCHECKED_SCRATCH_NONZERO', /scratch bytes/);
  });
  it('UNCHECKED_NAME_POINTER: old_addr 0 and no name', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.nameSymbol = null;
    expectUnchecked(verify(fx), 'UNCHECKED_NAME_POINTER', /name pointer 0x0 does not point/);
  });
  it('UNCHECKED_MODINFO_EMPTY', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.modinfo', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(0) });
    expectUnchecked(verify(fx), 'UNCHECKED_MODINFO_EMPTY', /\.modinfo is empty/);
  });
  it('UNCHECKED_NOP_ENDBR', () => {
    const fx = new PayloadFixture();
    Object.assign(fx.funcs[0]!, { newSymbol: null, newSize: 2, oldSize: 12 });
    const endbr = fakeTarget({ code: Uint8Array.from([...ENDBR64, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]) });
    expectUnchecked(verify(fx, { target: endbr }), 'UNCHECKED_NOP_ENDBR', /underflows/);
  });
  it('UNCHECKED_DUPLICATE_FUNC', () => {
    const fx = new PayloadFixture();
    fx.funcs.push({ ...fx.funcs[0]! });
    expectUnchecked(verify(fx), 'UNCHECKED_DUPLICATE_FUNC', /xen_extra_version is patched twice in this payload \(entries 0, 1\)/);
  });
});

describe('notes (warnings)', () => {
  it('NOTE_PAD_NONZERO', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.bytes = { 40: 7 };
    expectNote(verify(fx), 'NOTE_PAD_NONZERO', /padding bytes are not zero/);
  });
  it('NOTE_NO_REAPPLY', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n, data: new Uint8Array(8) });
    expectNote(verify(fx), 'NOTE_NO_REAPPLY', /RW section \.data/);
  });
  it('NOTE_DUPLICATE_SECTION', () => {
    const fx = new PayloadFixture();
    fx.addSection({
      name: '.livepatch.depends',
      type: SHT.PROGBITS,
      flags: SHF.ALLOC,
      addralign: 1n,
      data: gnuNote(hexBytes('dd'.repeat(20))),
    });
    expectNote(verify(fx), 'NOTE_DUPLICATE_SECTION', /\.livepatch\.depends appears more than once; Xen uses the lowest index \[4\]/);
  });
});

describe('loaded payload symbols and target addresses', () => {
  it('undefined symbols resolve against an earlier payload', () => {
    const a = new PayloadFixture().build().bytes;
    const b = new PayloadFixture({ ownId: 'bb'.repeat(20), dependsId: FIXTURE_OWN_ID });
    for (const n of ['xsplice_str', 'xsplice_name', 'xsplice_fn']) b.symbol(n).name = `${n}_b`;
    b.funcs[0]!.nameSymbol = 'xsplice_name_b';
    b.funcs[0]!.newSymbol = 'xsplice_fn_b';
    b.section('.rela.text').relocs![0]!.symbol = 'xsplice_str_b';
    b.symbols.push({ name: 'xsplice_str', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    b.addReloc('.text', { offset: 8n, type: R.PC32, symbol: 'xsplice_str', addend: -4n });
    const r = verifyPayloads(
      [
        { file: 'a.livepatch', bytes: a },
        { file: 'b.livepatch', bytes: b.build().bytes },
      ],
      fakeTarget(),
    );
    expect(r.payloads[1]!.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
  it('an overriding symbol (value = new_addr) is not exported to later payloads', () => {
    const a = new PayloadFixture().build().bytes;
    const b = new PayloadFixture({ ownId: 'bb'.repeat(20), dependsId: FIXTURE_OWN_ID });
    for (const n of ['xsplice_str', 'xsplice_name', 'xsplice_fn']) b.symbol(n).name = `${n}_b`;
    b.funcs[0]!.nameSymbol = 'xsplice_name_b';
    b.funcs[0]!.newSymbol = 'xsplice_fn_b';
    b.section('.rela.text').relocs![0]!.symbol = 'xsplice_str_b';
    b.symbols.push({ name: 'xsplice_fn', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    b.addReloc('.text', { offset: 8n, type: R.PC32, symbol: 'xsplice_fn', addend: -4n });
    const r = verifyPayloads(
      [
        { file: 'a.livepatch', bytes: a },
        { file: 'b.livepatch', bytes: b.build().bytes },
      ],
      fakeTarget(),
    );
    expectFirst(r.payloads[1]!, 'SYM_UNKNOWN', 'ENOENT', 'livepatch: b: Unknown symbol: xsplice_fn');
  });
  it('the payload area starts after __2M_rwdata_end', () => {
    // A PC32 reference to a Xen symbol 3 GiB below the payload area overflows.
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'far_xen', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    fx.addReloc('.text', { offset: 8n, type: R.PC32, symbol: 'far_xen', addend: -4n });
    const v = verify(fx, { target: fakeTarget({ symbols: { far_xen: FAKE_XEN.__2M_rwdata_end - (3n << 30n) } }) });
    expectFirst(v, 'RELOC_OVERFLOW', 'EOVERFLOW', /Overflow in relocation 1 in \.rela\.text for \.text/);
  });
});

describe('arm64 (ELF64, EM_AARCH64)', () => {
  const arm64 = (): VerifyTarget => ({
    buildId: hexBytes(FIXTURE_XEN_ID),
    version: '4.17.7',
    arch: 'arm64',
    symbols: { find: (n: string) => (n === 'xen_extra_version' ? [{ value: 0x00250000n }] : []) },
  });
  it('the arm64 fixture verifies clean against arm64 4.17.7', () => {
    expect(verify(new PayloadFixture({ arch: 'arm64' }), { target: arm64() }).diagnostics).toEqual([]);
  });
  it('RELOC_REL_ARM64: SHT_REL is ENOSYS, silently', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.section('.rela.text').raw = { sh_type: SHT.REL };
    const v = verify(fx, { target: arm64() });
    expectFirst(v, 'RELOC_REL_ARM64', 'ENOSYS', /SHT_REL section \.rela\.text is not supported on arm64/);
    expect(v.diagnostics[0]!.printed).toBe('never');
  });
  it('RELOC_UNHANDLED: R_AARCH64_NONE has no case', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.addReloc('.text', { offset: 0n, type: R.NONE, symbol: 'xsplice_str', addend: 0n });
    expectFirst(verify(fx, { target: arm64() }), 'RELOC_UNHANDLED', 'EOPNOTSUPP', `${P}Unhandled relocation 0`);
  });
  it('EX_TABLE_UNSUPPORTED', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.addSection({ name: '.ex_table', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(8) });
    expectFirst(verify(fx, { target: arm64() }), 'EX_TABLE_UNSUPPORTED', 'EOPNOTSUPP', `${P}We don't support .ex_table`);
  });
  it('ALT_CALL_UNSUPPORTED (4.21)', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.addSection({ name: '.alt_call_sites', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(4) });
    // 4.21's arm64 Xen text is at SLOT0(20) + 2 MiB (payloads load after the boot FDT there).
    const t421 = {
      ...arm64(),
      version: '4.21.0',
      symbols: { find: (n: string) => (n === 'xen_extra_version' ? [{ value: 0x00000a0000250000n }] : []) },
    };
    expectFirst(verify(fx, { target: t421 }), 'ALT_CALL_UNSUPPORTED', 'EOPNOTSUPP', `${P}Alternative calls not supported`);
  });
  it('FUNC_NOP_TOO_LONG: an ARM NOP length must be a multiple of 4', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    Object.assign(fx.funcs[0]!, { newSymbol: null, newSize: 6, oldSize: 12 });
    expectFirst(
      verify(fx, { target: arm64() }),
      'FUNC_NOP_TOO_LONG',
      'EOPNOTSUPP',
      /new_size 6 exceeds 31 bytes or is not a multiple of 4/,
    );
  });
  it('HDR_MACHINE: an x86-64 payload for an arm64 target', () => {
    expectFirst(verify(new PayloadFixture(), { target: arm64() }), 'HDR_MACHINE', 'EOPNOTSUPP', `${P}Unsupported ELF Machine type`);
  });
  it('FUNC_DISTANCE: ±128 MiB on arm64', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.funcs[0]!.oldAddr = 0x10000000n;
    expectFirst(verify(fx, { target: arm64() }), 'FUNC_DISTANCE', 'EOVERFLOW', /out of branch reach/);
  });
});
