/**
 * The writer on models built from scratch with ObjectBuilder, in both classes and byte orders,
 * checked by readelf -W and by each target's `ld -r`; the string-table builder; the writer's own
 * errors; and a sweep of section counts around SHN_LORESERVE (0xff00) for extended numbering.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { readElf } from '../../src/elf/reader.js';
import { StringTableBuilder } from '../../src/elf/strtab.js';
import { EM, SHF, SHT, STB, STT, STV, GRP_COMDAT } from '../../src/elf/constants.js';
import { XspliceError } from '../../src/errors.js';
import { tool, toolStatus, tempDir, removeTempDirs } from '../helpers/corpus.js';
import { parseGroups, parseRelocs, parseSections, parseSymbols, readelf } from './readelf.js';

afterAll(removeTempDirs);

let dir: string;
beforeAll(async () => {
  dir = await tempDir('writer');
});

async function save(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

function expectError(fn: () => unknown, code: string, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(XspliceError);
  expect((caught as XspliceError).code).toBe(code);
  expect((caught as XspliceError).message).toMatch(message);
}

interface Target {
  name: string;
  class: 32 | 64;
  littleEndian: boolean;
  machine: number;
  rela: boolean;
  /** A data relocation of the word size, and a PC-relative one. */
  abs: number;
  absName: string;
  pc: number;
  pcName: string;
  ldr: string[];
}

const TARGETS: Target[] = [
  {
    name: 'x86-64',
    class: 64,
    littleEndian: true,
    machine: EM.X86_64,
    rela: true,
    abs: 1,
    absName: 'R_X86_64_64',
    pc: 2,
    pcName: 'R_X86_64_PC32',
    ldr: ['ld', '-r'],
  },
  {
    name: 'i386',
    class: 32,
    littleEndian: true,
    machine: EM['386'],
    rela: false,
    abs: 1,
    absName: 'R_386_32',
    pc: 2,
    pcName: 'R_386_PC32',
    ldr: ['ld', '-r', '-m', 'elf_i386'],
  },
  {
    name: 'ppc',
    class: 32,
    littleEndian: false,
    machine: EM.PPC,
    rela: true,
    abs: 1,
    absName: 'R_PPC_ADDR32',
    pc: 26,
    pcName: 'R_PPC_REL32',
    ldr: ['powerpc-linux-gnu-ld', '-r'],
  },
  {
    name: 's390x',
    class: 64,
    littleEndian: false,
    machine: EM.S390,
    rela: true,
    abs: 22,
    absName: 'R_390_64',
    pc: 5,
    pcName: 'R_390_PC32',
    ldr: ['s390x-linux-gnu-ld', '-r'],
  },
];

/** A model with every feature the writer has to place: symbols are added globals-first on purpose. */
function sample(t: Target): ObjectBuilder {
  const b = new ObjectBuilder({ class: t.class, littleEndian: t.littleEndian, machine: t.machine });
  const text = b.addSection({
    name: '.text',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.EXECINSTR,
    addralign: 16n,
    data: new Uint8Array(32).fill(0x90),
  });
  const data = b.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n, data: new Uint8Array(16) });
  b.addSection({ name: '.bss', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 32n, size: 64n });
  b.addSection({
    name: '.rodata.str1.1',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.MERGE | SHF.STRINGS,
    addralign: 1n,
    entsize: 1n,
    data: new TextEncoder().encode('abc\0text\0'),
  });
  const grpText = b.addSection({
    name: '.text.grp',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.EXECINSTR | SHF.GROUP,
    addralign: 4n,
    data: new Uint8Array(8),
  });
  b.addSection({
    name: '.meta',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.LINK_ORDER,
    addralign: 1n,
    data: new Uint8Array([1, 2, 3]),
    link: text,
  });
  const fn = b.addSymbol({ name: 'fn', bind: STB.GLOBAL, type: STT.FUNC, section: text, value: 0n, size: 16n });
  const ext = b.addSymbol({ name: 'ext', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
  const local = b.addSymbol({ name: 'local_obj', bind: STB.LOCAL, type: STT.OBJECT, section: data, value: 8n, size: 8n });
  b.addSymbol({ name: 'weak_hidden', bind: STB.WEAK, type: STT.FUNC, other: STV.HIDDEN, section: text, value: 16n, size: 16n });
  b.addSymbol({ name: 'sample.c', bind: STB.LOCAL, type: STT.FILE, section: 'ABS', value: 0n, size: 0n });
  const secSym = b.addSymbol({ name: '', bind: STB.LOCAL, type: STT.SECTION, section: data, value: 0n, size: 0n });
  const sig = b.addSymbol({ name: 'grp_sig', bind: STB.GLOBAL, type: STT.FUNC, section: grpText, value: 0n, size: 8n });
  b.addSymbol({ name: 'abs_val', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'ABS', value: 0x1234n, size: 0n });
  b.addGroup({ signature: sig, flags: GRP_COMDAT, members: [grpText] }, text);
  b.setRelocations(text, {
    rela: t.rela,
    entries: [
      { offset: 4n, type: t.pc, symbol: ext, addend: -4n },
      { offset: 12n, type: t.pc, symbol: secSym, addend: 4n },
    ],
  });
  b.setRelocations(data, {
    rela: t.rela,
    entries: [
      { offset: 0n, type: t.abs, symbol: fn, addend: 0n },
      { offset: 8n, type: t.abs, symbol: local, addend: t.rela ? 0x10n : 0n },
    ],
  });
  b.setRelocations(grpText, { rela: t.rela, entries: [{ offset: 0n, type: t.abs, symbol: fn, addend: 0n }] });
  return b;
}

describe('writer: models built from scratch, checked by readelf and ld -r', () => {
  for (const t of TARGETS) {
    it(`${t.name} (ELF${t.class} ${t.littleEndian ? 'LE' : 'BE'}, ${t.rela ? 'RELA' : 'REL'})`, async () => {
      const bytes = sample(t).write();
      expect(Buffer.from(sample(t).write()).equals(Buffer.from(bytes))).toBe(true);
      const p = await save(`sample-${t.name}.o`, bytes);

      const h = await readelf(['-h'], p);
      expect(h).toMatch(new RegExp(`Class:\\s+ELF${t.class}`));
      expect(h).toMatch(t.littleEndian ? /little endian/ : /big endian/);
      expect(h).toMatch(/Type:\s+REL \(Relocatable file\)/);

      const S = parseSections(await readelf(['-S'], p));
      const idx = (n: string) => S.findIndex((s) => s.nameType.split(' ')[0] === n);
      const names = S.map((s) => s.nameType);
      const r = t.rela ? '.rela' : '.rel';
      const rt = t.rela ? 'RELA' : 'REL';
      expect(names).toEqual([
        'NULL',
        '.group GROUP',
        '.text PROGBITS',
        `${r}.text ${rt}`,
        '.data PROGBITS',
        `${r}.data ${rt}`,
        '.bss NOBITS',
        '.rodata.str1.1 PROGBITS',
        '.text.grp PROGBITS',
        `${r}.text.grp ${rt}`,
        '.meta PROGBITS',
        '.symtab SYMTAB',
        '.strtab STRTAB',
        '.shstrtab STRTAB',
      ]);
      for (const s of S) if (s.index > 0 && s.nameType.split(' ')[1] !== 'NOBITS') expect(BigInt(s.off) % (s.al || 1n)).toBe(0n);
      expect(S[idx('.bss')]!.size).toBe(64n);
      expect(S[idx('.rodata.str1.1')]!.flg).toBe('AMS');
      expect(S[idx('.meta')]!.flg).toBe('AL');
      expect(S[idx('.meta')]!.lk).toBe(idx('.text'));
      expect(S[idx(`${r}.text`)]!).toMatchObject({ lk: idx('.symtab'), inf: idx('.text'), flg: 'I' });
      expect(S[idx(`${r}.text.grp`)]!.flg).toBe('IG');
      expect(S[idx('.symtab')]!.lk).toBe(idx('.strtab'));

      const syms = parseSymbols(await readelf(['-s'], p));
      const firstGlobal = syms.findIndex((y) => y.bind !== 'LOCAL');
      expect(syms.slice(firstGlobal).every((y) => y.bind !== 'LOCAL')).toBe(true);
      expect(S[idx('.symtab')]!.inf).toBe(firstGlobal);
      expect(syms.map((y) => [y.name, y.bind, y.type, y.vis, y.ndx])).toEqual([
        ['', 'LOCAL', 'NOTYPE', 'DEFAULT', 'UND'],
        ['local_obj', 'LOCAL', 'OBJECT', 'DEFAULT', String(idx('.data'))],
        ['sample.c', 'LOCAL', 'FILE', 'DEFAULT', 'ABS'],
        ['.data', 'LOCAL', 'SECTION', 'DEFAULT', String(idx('.data'))],
        ['fn', 'GLOBAL', 'FUNC', 'DEFAULT', String(idx('.text'))],
        ['ext', 'GLOBAL', 'NOTYPE', 'DEFAULT', 'UND'],
        ['weak_hidden', 'WEAK', 'FUNC', 'HIDDEN', String(idx('.text'))],
        ['grp_sig', 'GLOBAL', 'FUNC', 'DEFAULT', String(idx('.text.grp'))],
        ['abs_val', 'GLOBAL', 'NOTYPE', 'DEFAULT', 'ABS'],
      ]);
      expect(syms.find((y) => y.name === 'abs_val')!.value).toBe(0x1234n);

      const rel = parseRelocs(await readelf(['-r'], p), t.class === 64);
      expect(rel.map((x) => x.name)).toEqual([`${r}.text`, `${r}.data`, `${r}.text.grp`]);
      expect(rel[0]!.entries.map((e) => [e.offset, e.type, e.symbol, e.addend])).toEqual([
        [4n, t.pcName, 'ext', t.rela ? -4n : null],
        [12n, t.pcName, '.data', t.rela ? 4n : null],
      ]);
      expect(rel[1]!.entries.map((e) => [e.type, e.symbol, e.addend])).toEqual([
        [t.absName, 'fn', t.rela ? 0n : null],
        [t.absName, 'local_obj', t.rela ? 0x10n : null],
      ]);
      expect(parseGroups(await readelf(['-g'], p))).toEqual([
        { section: '.group', signature: 'grp_sig', members: ['.text.grp', `${r}.text.grp`] },
      ]);

      const ld = await toolStatus(t.ldr[0]!, [...t.ldr.slice(1), '-o', p + '.ld.o', p]);
      expect(ld.code, ld.stderr).toBe(0);
      expect(await tool('nm', [p + '.ld.o'])).toMatch(/ T fn\n/);
    });
  }

  it('contents land at the planned offsets, byte for byte', () => {
    const b = sample(TARGETS[0]!);
    const plan = b.plan();
    const bytes = b.write();
    const elf = readElf(bytes);
    expect(elf.header.shoff).toBe(plan.shoff);
    expect(bytes.length).toBe(plan.total);
    for (const s of elf.sections) expect(s.offset).toBe(plan.sections[s.index]!.offset);
    const text = elf.sectionByName('.text')!;
    expect(Array.from(text.data())).toEqual(new Array(32).fill(0x90));
  });

  it('editing a model read from a file: remove a section, add one, rename', async () => {
    const t = TARGETS[0]!;
    const { builder, sectionIds } = ObjectBuilder.fromElf(readElf(sample(t).write()));
    expect(sectionIds.size).toBe(7); // .group .text .data .bss .rodata.str1.1 .text.grp .meta
    builder.removeSection(builder.findSection('.meta')!);
    builder.addSection({
      name: '.note.test',
      type: SHT.NOTE,
      flags: SHF.ALLOC,
      addralign: 4n,
      data: new Uint8Array([4, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 71, 78, 85, 0, 0xab, 0, 0, 0]),
    });
    builder.section(builder.findSection('.data')!).name = '.data.renamed';
    const p = await save('edited.o', builder.write());
    const names = parseSections(await readelf(['-S'], p)).map((s) => s.nameType.split(' ')[0]);
    expect(names).toContain('.data.renamed');
    expect(names).toContain('.rela.data.renamed');
    expect(names).not.toContain('.meta');
    expect(await readelf(['-n'], p)).toMatch(/GNU\s+0x00000001\s+NT_GNU_BUILD_ID/);
  });
});

describe('symbol table presence', () => {
  const model = (keep: boolean) => {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64, keepEmptySymtab: keep });
    b.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 4n, data: new Uint8Array(4) });
    return b;
  };
  it('no symbols: no .symtab/.strtab (as GNU as); keepEmptySymtab writes a null-only .symtab that survives a round trip', async () => {
    const none = await save('nosyms.o', model(false).write());
    expect(parseSections(await readelf(['-S'], none)).map((s) => s.nameType)).toEqual(['NULL', '.data PROGBITS', '.shstrtab STRTAB']);
    const kept = model(true).write();
    const p = await save('emptysyms.o', kept);
    expect(parseSections(await readelf(['-S'], p)).map((s) => s.nameType)).toEqual([
      'NULL',
      '.data PROGBITS',
      '.symtab SYMTAB',
      '.strtab STRTAB',
      '.shstrtab STRTAB',
    ]);
    expect(await readelf(['-s'], p)).toMatch(/Symbol table '\.symtab' contains 1 entry/);
    expect(Buffer.from(ObjectBuilder.fromElf(readElf(kept)).builder.write()).equals(Buffer.from(kept))).toBe(true);
    const ld = await toolStatus('ld', ['-r', '-o', none + '.ld.o', none]);
    expect(ld.code, ld.stderr).toBe(0);
  });
});

describe('writer errors', () => {
  const base = () => new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
  it('refuses a name with a NUL byte (ELF_NAME_NUL)', () => {
    const b = base();
    b.addSymbol({ name: 'a\0b', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    expectError(() => b.write(), 'ELF_NAME_NUL', /section \.strtab: name contains a NUL byte.*found "a\\u0000b"/);
    const c = base();
    c.addSection({ name: '.x\0', type: SHT.PROGBITS, flags: 0n, addralign: 1n });
    expectError(() => c.write(), 'ELF_NAME_NUL', /\.shstrtab/);
  });
  it('refuses references to removed symbols and sections (ELF_WRITE_REF)', () => {
    const b = base();
    const s = b.addSection({ name: '.text', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(8) });
    b.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(8) });
    const y = b.addSymbol({ name: 'gone', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
    b.setRelocations(s, { rela: true, entries: [{ offset: 0n, type: 1, symbol: y, addend: 0n }] });
    b.removeSymbol(y);
    expectError(() => b.write(), 'ELF_WRITE_REF', /section \.text: relocation 0 refers to a symbol that is not in the model/);
    const c = base();
    const d2 = c.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(8) });
    c.addSymbol({ name: 'in_data', bind: STB.GLOBAL, type: STT.OBJECT, section: d2, value: 0n, size: 0n });
    c.removeSection(d2);
    expectError(() => c.write(), 'ELF_WRITE_REF', /symbol in_data: symbol is defined in a section that is not in the model/);
    expectError(() => b.section(999), 'ELF_WRITE_REF', /no such section/);
  });
  it('refuses values that do not fit the class, and bad alignment', () => {
    const b = new ObjectBuilder({ class: 32, littleEndian: true, machine: EM['386'] });
    const s = b.addSection({ name: '.text', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(8) });
    b.addSymbol({ name: 'big', bind: STB.GLOBAL, type: STT.NOTYPE, section: s, value: 1n << 32n, size: 0n });
    expectError(() => b.write(), 'ELF_WRITE_RANGE', /symbol big.*st_value does not fit ELF32.*found 4294967296/);
    const c = new ObjectBuilder({ class: 32, littleEndian: true, machine: EM['386'] });
    const t = c.addSection({ name: '.text', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(8) });
    c.setRelocations(t, { rela: false, entries: [{ offset: 0n, type: 256, symbol: 0, addend: 0n }] });
    expectError(() => c.write(), 'ELF_WRITE_RANGE', /relocation type does not fit ELF32_R_INFO.*found 256/);
    expectError(
      () => new ObjectBuilder({ class: 64, littleEndian: true, machine: 0x10000 }).write(),
      'ELF_WRITE_RANGE',
      /e_machine does not fit its field \(expected 0\.\.65535, found 65536\)/,
    );
    expectError(() => new ObjectBuilder({ class: 64, littleEndian: true, machine: 62, osabi: 256 }).write(), 'ELF_WRITE_RANGE', /EI_OSABI/);
    const d = base();
    d.addSection({ name: '.odd', type: SHT.PROGBITS, flags: 0n, addralign: 3n, data: new Uint8Array(1) });
    expectError(() => d.write(), 'ELF_WRITE_ALIGN', /section \.odd: sh_addralign is not a power of two.*found 3/);
  });
});

describe('string tables', () => {
  it('deduplicates, shares suffixes, and gives offsets that read back', () => {
    const t = new StringTableBuilder('.strtab');
    const keys = ['.rela.text', '.text', 'text', '.text', '', 'data'].map((n) => t.add(n));
    const bytes = t.finish();
    const at = (k: string) => {
      const o = t.offsetOf(k);
      return new TextDecoder().decode(bytes.subarray(o, bytes.indexOf(0, o)));
    };
    expect(keys.map(at)).toEqual(['.rela.text', '.text', 'text', '.text', '', 'data']);
    expect(bytes[0]).toBe(0);
    expect(bytes[bytes.length - 1]).toBe(0);
    // ".rela.text\0data\0" plus the leading NUL: ".text" and "text" live inside ".rela.text".
    expect(bytes.length).toBe(1 + 11 + 5);
  });
  it('refuses NUL inside a name', () => {
    expectError(() => new StringTableBuilder('.shstrtab').add(new Uint8Array([0x61, 0, 0x62])), 'ELF_NAME_NUL', /\.shstrtab/);
  });
});

describe('extended section numbering around SHN_LORESERVE (0xff00)', () => {
  /** n model sections; one global symbol in model section `symIn` (1-based). */
  function many(n: number, symIn: number): ObjectBuilder {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
    const ids = [];
    for (let i = 0; i < n; i++)
      ids.push(b.addSection({ name: `.s${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array([i & 255]) }));
    b.addSymbol({ name: 'sym', bind: STB.GLOBAL, type: STT.OBJECT, section: ids[symIn - 1]!, value: 0n, size: 1n });
    return b;
  }

  // null + n + .symtab + .strtab + .shstrtab (+ .symtab_shndx): totals 0xfeff, 0xff00, 0xff01.
  for (const n of [0xfefb, 0xfefc, 0xfefd]) {
    it(`${n + 4} sections in all`, async () => {
      const bytes = many(n, 1).write();
      const total = n + 4;
      const p = await save(`many-${n}.o`, bytes);
      const h = await readelf(['-h'], p);
      const shnum = h.match(/Number of section headers:\s+(.*)/)![1]!.trim();
      const shstrndx = h.match(/Section header string table index:\s+(.*)/)![1]!.trim();
      expect(shnum).toBe(total >= 0xff00 ? `0 (${total})` : String(total));
      expect(shstrndx).toBe(total - 1 >= 0xff00 ? `65535 (${total - 1})` : String(total - 1));
      const elf = readElf(bytes);
      expect(elf.sections.length).toBe(total);
      expect(elf.sectionByName('.shstrtab')!.index).toBe(total - 1);
      expect(elf.header.rawShnum).toBe(total >= 0xff00 ? 0 : total);
    });
  }

  for (const symIn of [0xfeff, 0xff00]) {
    it(`a symbol in section ${symIn}: ${symIn >= 0xff00 ? 'SHN_XINDEX with .symtab_shndx' : 'direct st_shndx'}, and ld -r accepts it`, async () => {
      const bytes = many(symIn, symIn).write();
      const p = await save(`sym-${symIn}.o`, bytes);
      const syms = parseSymbols(await readelf(['-s'], p));
      expect(syms.find((y) => y.name === 'sym')!.ndx).toBe(String(symIn));
      const elf = readElf(bytes);
      expect(elf.sections.some((s) => s.type === SHT.SYMTAB_SHNDX)).toBe(symIn >= 0xff00);
      const sym = elf.symbols().find((y) => y.name === 'sym')!;
      expect([sym.rawShndx, sym.shndx]).toEqual([symIn >= 0xff00 ? 0xffff : symIn, symIn]);
      if (symIn >= 0xff00) {
        const ld = await toolStatus('ld', ['-r', '-o', p + '.ld.o', p]);
        expect(ld.code, ld.stderr).toBe(0);
      }
    });
  }
});
