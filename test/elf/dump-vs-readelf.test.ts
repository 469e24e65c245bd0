/**
 * Differential tests: `elfView` (what `xsplice elf --json` prints) against GNU readelf -W, over the
 * corpus built by the real toolchain (test/helpers/corpus.ts) and Debian's Xen 4.17 xen-syms.
 * Sections, symbols, relocations and notes are compared field by field; readelf is the oracle.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { EM, ELFOSABI } from '../../src/elf/constants.js';
import { buildFixture, symbols } from '../helpers/malformed.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { elfView, type ElfView } from '../../src/elf/dump.js';
import { RECIPES, buildCorpus, type Corpus, tempDir, removeTempDirs } from '../helpers/corpus.js';
import { debianXen, haveDebianXen, missing, XEN_BUILD_ID } from '../helpers/debian.js';
import { parseNotes, parseRelocs, parseSections, parseSymbols, readelf, readelfBind, readelfShType, readelfSymType } from './readelf.js';

afterAll(removeTempDirs);

const hexBig = (s: string) => (s.startsWith('-') ? -BigInt(s.slice(1)) : BigInt(s));

async function viewOf(path: string): Promise<ElfView> {
  return elfView(readElf(new Uint8Array(await readFile(path)), { file: path }));
}

export async function compareWithReadelf(path: string): Promise<{ sections: number; symbols: number; relocs: number; notes: number }> {
  const v = await viewOf(path);
  const [S, s, r, n] = await Promise.all([readelf(['-S'], path), readelf(['-s'], path), readelf(['-r'], path), readelf(['-n'], path)]);

  const rs = parseSections(S);
  expect(rs.length).toBe(v.sections.length);
  const mine = v.sections.map((x) => ({
    index: x.index,
    nameType: `${x.name} ${readelfShType(x.type)}`.trim(),
    addr: BigInt(x.addr),
    off: x.offset,
    size: BigInt(x.size),
    es: BigInt(x.entsize),
    flg: x.flags,
    lk: x.link,
    inf: x.info,
    al: BigInt(x.addralign),
  }));
  expect(mine).toEqual(rs);

  const ry = parseSymbols(s);
  expect(ry.length).toBe(v.symbols.length);
  const mySyms = v.symbols.map((y) => ({
    num: y.index,
    value: BigInt(y.value),
    size: BigInt(y.size),
    type: readelfSymType(y.type),
    bind: readelfBind(y.bind),
    vis: y.visibility.replace(/^STV_/, ''),
    ndx: String(y.shndx),
    name: y.name,
  }));
  expect(mySyms).toEqual(ry);

  const is64 = v.class === 64;
  const rr = parseRelocs(r, is64);
  expect(rr.length).toBe(v.relocations.length);
  const myRel = v.relocations.map((x) => ({
    name: x.section,
    count: x.entries.length,
    entries: x.entries.map((e) => ({
      offset: BigInt(e.offset),
      type: e.type,
      symbol: e.symbol,
      addend: e.addend === null ? null : hexBig(e.addend),
    })),
  }));
  expect(myRel).toEqual(rr.map((x) => ({ ...x, entries: x.entries.map(({ info: _i, ...rest }) => rest) })));
  // Symbol index as decoded by us against readelf's info word.
  v.relocations.forEach((x, i) =>
    x.entries.forEach((e, k) => {
      const info = rr[i]!.entries[k]!.info;
      expect(BigInt(e.symbolIndex)).toBe(is64 ? info >> 32n : info >> 8n);
    }),
  );

  const rn = parseNotes(n);
  // readelf shows an empty owner (namesz 0) as "(NONE)".
  expect(rn.map((x) => [x.section, x.owner === '(NONE)' ? '' : x.owner, x.size])).toEqual(
    v.notes.map((x) => [x.section, x.owner, x.desc.length / 2]),
  );
  rn.forEach((x, i) => {
    if (x.descHex !== undefined) expect(v.notes[i]!.desc).toBe(x.descHex);
    if (/Unknown note type/.test(x.description)) expect(x.description).toContain(`(0x${v.notes[i]!.type.toString(16).padStart(8, '0')})`);
  });
  return { sections: rs.length, symbols: ry.length, relocs: rr.reduce((a, b) => a + b.count, 0), notes: rn.length };
}

const SYMBOLLESS = new Set(['empty-s', 'stripped']);

describe('xsplice elf view against readelf -W (gcc/g++/as corpus)', () => {
  let corpus: Corpus;
  beforeAll(async () => {
    corpus = await buildCorpus();
  });

  for (const r of RECIPES) {
    it(`${r.name}: sections, symbols, relocations and notes match readelf`, async () => {
      const o = corpus.get(r.name);
      const got = await compareWithReadelf(o.path);
      expect(got.sections).toBeGreaterThan(r.big ? 70_000 : 4);
      // The two objects without a symbol table (as GNU as and strip make them) must show none.
      if (SYMBOLLESS.has(r.name)) expect(got.symbols).toBe(0);
      else expect(got.symbols).toBeGreaterThan(3);
    });
  }

  it('the corpus covers what the issue asks for', async () => {
    const views = new Map<string, ElfView>();
    for (const o of corpus.objects) views.set(o.name, await viewOf(o.path));
    const all = [...views.values()];
    expect(all.some((v) => v.class === 32 && v.endian === 'little')).toBe(true);
    expect(all.some((v) => v.class === 32 && v.endian === 'big')).toBe(true);
    expect(all.some((v) => v.class === 64 && v.endian === 'big')).toBe(true);
    expect(all.some((v) => v.sections.some((s) => s.type === 'SHT_GROUP'))).toBe(true);
    expect(all.some((v) => v.sections.some((s) => s.flags.includes('L')))).toBe(true);
    expect(all.some((v) => v.relocations.some((r) => r.entries.some((e) => e.addend === null)))).toBe(true);
    expect(all.some((v) => v.notes.length > 0)).toBe(true);
    expect(views.get('sections-70k')!.sections.length).toBeGreaterThan(0xff00);
    expect(views.get('sections-70k')!.symbols.some((s) => typeof s.shndx === 'number' && s.shndx >= 0xff00)).toBe(true);
    expect(views.get('c-O2-g')!.sections.some((s) => s.name === '.debug_info')).toBe(true);
    expect(views.get('c-O2')!.symbols.some((s) => s.type === 'STT_GNU_IFUNC')).toBe(true);
    expect(views.get('cxx-comdat')!.symbols.some((s) => s.bind === 'STB_GNU_UNIQUE')).toBe(true);
    expect(views.get('c-O2')!.sections.some((s) => s.flags.includes('R'))).toBe(true);
    expect(views.get('arm32')!.sections.some((s) => s.type === 'SHT_ARM_EXIDX' && s.flags.includes('L'))).toBe(true);
    expect(views.get('c-large-model')!.symbols.some((s) => s.shndx === 'LARGE_COM')).toBe(true);
    expect(views.get('c-large-model')!.sections.some((s) => s.flags.includes('l'))).toBe(true);
  });
});

describe.skipIf(missing('Debian xen-syms', haveDebianXen()))('xsplice elf view against readelf -W (Debian Xen 4.17 xen-syms)', () => {
  it('xen-syms: 7,000+ symbols, sections and the build-id note match readelf', async () => {
    const got = await compareWithReadelf(debianXen.xenSyms);
    expect(got.symbols).toBeGreaterThan(7000);
    expect(got.notes).toBe(1);
    const v = await viewOf(debianXen.xenSyms);
    expect(v.type).toBe('ET_EXEC');
    expect(v.notes[0]!.desc).toBe(XEN_BUILD_ID);
  });
});

describe('section flag letters against readelf -W (objects built with ObjectBuilder)', () => {
  // Every single bit, then pseudo-random combinations, per machine and OS ABI: readelf's letters
  // depend on both (l/v/y, R/D, one 'o'/'p' per mask).
  const cases = [
    { machine: EM.X86_64, cls: 64, osabi: ELFOSABI.NONE },
    { machine: EM.X86_64, cls: 64, osabi: ELFOSABI.GNU },
    { machine: EM.PPC, cls: 32, osabi: ELFOSABI.FREEBSD },
    { machine: EM.ARM, cls: 32, osabi: ELFOSABI.NETBSD },
    { machine: EM['386'], cls: 32, osabi: ELFOSABI.GNU },
  ] as const;
  for (const c of cases) {
    it(`machine ${c.machine}, ELF${c.cls}, osabi ${c.osabi}`, async () => {
      const b = new ObjectBuilder({ class: c.cls, littleEndian: true, machine: c.machine, osabi: c.osabi });
      const width = BigInt(c.cls);
      const flags: bigint[] = [];
      for (let i = 0n; i < width; i++) flags.push(1n << i);
      let x = 0x2545f491n;
      for (let i = 0; i < 150; i++) {
        x = (x * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
        flags.push((x >> 7n) & ((1n << width) - 1n));
      }
      flags.forEach((f, i) => b.addSection({ name: `.f${i}`, type: 1, flags: f, addralign: 1n, data: new Uint8Array(0) }));
      const dir = await tempDir('flags');
      const p = join(dir, 'flags.o');
      await writeFile(p, b.write());
      const got = await compareWithReadelf(p);
      expect(got.sections).toBe(flags.length + 2); // + null and .shstrtab (no symbols, so no .symtab)
    });
  }
});

describe('section type names against readelf -W (objects built with ObjectBuilder)', () => {
  // Named, unnamed and reserved-range types; the processor range depends on the machine. (Not the
  // types the writer makes itself: SYMTAB, REL, RELA, GROUP, SYMTAB_SHNDX.)
  const types = [
    1, 3, 5, 6, 7, 8, 10, 11, 12, 14, 15, 16, 19, 20, 0x60000000, 0x60000001, 0x6ffffff5, 0x6ffffff6, 0x6ffffff7, 0x6ffffffd, 0x6ffffffe,
    0x6fffffff, 0x6fff4c03, 0x70000000, 0x70000001, 0x70000002, 0x70000003, 0x70000004, 0x70000005, 0x70000006, 0x80000000, 0x80000001,
    0xffffffff,
  ];
  for (const machine of [EM.X86_64, EM.ARM, EM.AARCH64, EM.RISCV, EM.S390]) {
    it(`machine ${machine}`, async () => {
      const b = new ObjectBuilder({ class: 64, littleEndian: true, machine });
      // Empty sections: readelf does not decode the contents of the symbol/relocation/note types then.
      types.forEach((t, i) =>
        b.addSection({ name: `.t${i}`, type: t, flags: 0n, addralign: 1n, data: new Uint8Array(0), ...(t === 8 ? { size: 0n } : {}) }),
      );
      const dir = await tempDir('types');
      const p = join(dir, 'types.o');
      await writeFile(p, b.write());
      const S = parseSections(await readelf(['-S'], p));
      const v = await viewOf(p);
      expect(S.map((s) => s.nameType)).toEqual(v.sections.map((s) => `${s.name} ${readelfShType(s.type)}`.trim()));
    });
  }
});

describe('reserved st_shndx values against readelf -W (fixture-built symbol tables)', () => {
  // The writer cannot make these (the model has no reserved indices but UND/ABS/COM), so the
  // independent fixture builder does.
  const values = [0, 0xff00, 0xff01, 0xff02, 0xff03, 0xff1f, 0xff20, 0xff21, 0xff3f, 0xff40, 0xfff0, 0xfff1, 0xfff2, 0xfff3, 0xfffe];
  for (const machine of [EM.X86_64, EM['386'], EM.MIPS, EM.ARM]) {
    it(`machine ${machine}`, async () => {
      const rows = [[0, 0n, 0n, 0, 0, 0], ...values.map((v) => [1, 0x10n, 4n, 0x11, 0, v])] as [
        number,
        bigint,
        bigint,
        number,
        number,
        number,
      ][];
      const f = buildFixture({
        class: 64,
        littleEndian: true,
        machine,
        sections: [
          { name: '.symtab', type: 2, link: 2, info: 1, entsize: 24n, addralign: 8n, data: symbols(64, true, rows) },
          { name: '.strtab', type: 3, data: new Uint8Array([0, 0x73, 0]) },
        ],
      });
      const dir = await tempDir('shndx');
      const p = join(dir, 'shndx.o');
      await writeFile(p, f.bytes);
      const got = await compareWithReadelf(p);
      expect(got.symbols).toBe(values.length + 1);
      const v = await viewOf(p);
      expect(v.symbols.some((s) => typeof s.shndx === 'string' && s.shndx.startsWith('OS ['))).toBe(true);
    });
  }
});

describe('note padding sweep against readelf -n', () => {
  /** Notes laid out by hand (4- or 8-byte alignment of name and descriptor). */
  function notes(le: boolean, align: 4 | 8, list: [string, number, number[]][]): Uint8Array {
    const parts: number[] = [];
    const up = (n: number) => (n + align - 1) & ~(align - 1);
    for (const [name, type, desc] of list) {
      const nb = name === '' ? [] : [...new TextEncoder().encode(name), 0];
      const hdr = new Uint8Array(12);
      const dv = new DataView(hdr.buffer);
      dv.setUint32(0, nb.length, le);
      dv.setUint32(4, desc.length, le);
      dv.setUint32(8, type, le);
      const start = parts.length;
      parts.push(...hdr, ...nb);
      while (parts.length - start < up(12 + nb.length)) parts.push(0);
      parts.push(...desc);
      while (parts.length - start < up(up(12 + nb.length) + desc.length)) parts.push(0);
    }
    return new Uint8Array(parts);
  }
  for (const le of [true, false]) {
    it(`owner lengths 0..9 × descriptor sizes 0..9, 4- and 8-byte aligned sections (${le ? 'LE' : 'BE'})`, async () => {
      const b = new ObjectBuilder({ class: 64, littleEndian: le, machine: le ? EM.X86_64 : EM.S390 });
      for (const align of [4, 8] as const) {
        for (let n = 0; n < 10; n++) {
          const list: [string, number, number[]][] = [];
          for (let d = 0; d < 10; d++) list.push(['Xspl1cexyz'.slice(0, n), 0x42 + d, Array.from({ length: d }, (_, i) => 0xa0 + i)]);
          b.addSection({ name: `.note.a${align}.n${n}`, type: 7, flags: 2n, addralign: BigInt(align), data: notes(le, align, list) });
        }
      }
      const dir = await tempDir('notes');
      const p = join(dir, 'notes.o');
      await writeFile(p, b.write());
      const got = await compareWithReadelf(p);
      expect(got.notes).toBe(200);
    });
  }
});
