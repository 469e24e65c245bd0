/**
 * Hostile input: fixtures from the independent builder in test/helpers/malformed.ts (not the
 * writer), each corrupted in exactly one place. Every case must end in a FormatError with the
 * expected stable code, naming the section and file offset involved — never a TypeError or
 * RangeError, never a large allocation, never a hang. readelf accepts the uncorrupted fixtures.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { elfView } from '../../src/elf/dump.js';
import { FormatError } from '../../src/errors.js';
import { toolStatus, tempDir, removeTempDirs } from '../helpers/corpus.js';
import { RELA_SIZE, SYM_SIZE, buildFixture, standardFixture, type Fixture } from '../helpers/malformed.js';
import { fullRead } from '../helpers/read-all.js';

afterAll(removeTempDirs);

interface Want {
  sectionIndex?: number;
  section?: string;
  offset?: number;
  message?: RegExp;
}

function expectFormat(bytes: Uint8Array, code: string, want: Want = {}): FormatError {
  let caught: unknown;
  try {
    fullRead(bytes);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(FormatError);
  const e = caught as FormatError;
  expect(e.code, e.message).toBe(code);
  expect(e.message).toMatch(/^fx\.o: /);
  if (want.sectionIndex !== undefined) {
    expect(e.ctx.sectionIndex).toBe(want.sectionIndex);
    expect(e.message).toContain(`section [${want.sectionIndex}]`);
  }
  if (want.section !== undefined) {
    expect(e.ctx.section).toBe(want.section);
    expect(e.message).toContain(want.section);
  }
  if (want.offset !== undefined) {
    expect(Number(e.ctx.offset)).toBe(want.offset);
    expect(e.message).toContain(`offset 0x${want.offset.toString(16)}`);
  }
  if (want.message) expect(e.message).toMatch(want.message);
  expect(e.message).toMatch(/\(expected .*found .*\)$|has no final NUL|no \.symtab_shndx/);
  return e;
}

const VARIANTS = [
  [64, true],
  [32, false],
  [64, false],
  [32, true],
] as const;

describe.each(VARIANTS)('malformed ELF%i (little-endian: %s)', (cls, le) => {
  const fx = (): Fixture => standardFixture(cls, le);

  it('the uncorrupted fixture reads completely, and readelf accepts it without a warning', async () => {
    const f = fx();
    fullRead(f.bytes);
    const v = elfView(readElf(f.bytes));
    expect(v.relocations[0]!.entries.map((e) => e.symbol)).toEqual(['func', 'sig']);
    const dir = await tempDir('fx');
    await writeFile(join(dir, 'fx.o'), f.bytes);
    const r = await toolStatus('readelf', ['-W', '-a', join(dir, 'fx.o')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/COMDAT group section \[\s*1\] `.group' \[sig\] contains 2 sections/);
  });

  it('truncation at every header boundary gives the error of the structure that was cut', () => {
    const f = fx();
    const eh = f.ehsize;
    const shEnd = f.shoff + f.names.length * f.shentsize;
    const cuts = new Set<number>([0, 3, 4, 15, 16, 17, eh - 1, eh]);
    for (let i = 0; i <= f.names.length; i++) {
      cuts.add(f.shoff + i * f.shentsize - 1);
      cuts.add(f.shoff + i * f.shentsize);
    }
    for (let i = 1; i < f.names.length; i++) {
      cuts.add(f.offsets[i]!);
      cuts.add(f.offsets[i]! + f.sizes[i]! - 1);
    }
    const shstrndx = f.names.length - 1;
    let checked = 0;
    for (const n of [...cuts].sort((a, b) => a - b)) {
      if (n < 0 || n >= f.bytes.length) continue;
      const cut = f.truncated(n);
      if (n < eh) {
        expectFormat(cut, 'ELF_TRUNCATED', { offset: 0, message: /file too short/ });
      } else if (n < shEnd) {
        expectFormat(cut, 'ELF_SHDR_BOUNDS', { message: /section header table/ });
      } else {
        // Contents: .shstrtab first (names are resolved when the file is opened), then index order.
        const end = (i: number) => f.offsets[i]! + f.sizes[i]!;
        const victim = end(shstrndx) > n ? shstrndx : [...f.names.keys()].find((i) => i > 0 && f.sizes[i]! > 0 && end(i) > n);
        if (victim === undefined) {
          fullRead(cut);
          continue;
        }
        expectFormat(cut, 'ELF_SECTION_BOUNDS', {
          sectionIndex: victim,
          offset: f.shoff + victim * f.shentsize,
          ...(victim !== shstrndx ? { section: f.names[victim] } : {}),
          message: /contents lie outside the file|larger than the file/,
        });
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(25);
  });

  it('e_shoff past the end (ELF_SHDR_BOUNDS) and sh_offset past the end (ELF_SECTION_BOUNDS)', () => {
    const f = fx();
    expectFormat(f.setEhdr('e_shoff', f.bytes.length + 8).bytes, 'ELF_SHDR_BOUNDS', { offset: f.ehdrField('e_shoff') });
    const g = fx();
    const d = g.index('.data');
    expectFormat(g.setShdr(d, 'sh_offset', g.bytes.length + 100).bytes, 'ELF_SECTION_BOUNDS', {
      sectionIndex: d,
      section: '.data',
      offset: g.field(d, 'sh_name'),
    });
    const h = fx();
    h.setEhdr('e_phoff', h.bytes.length + 8)
      .setEhdr('e_phnum', 1)
      .setEhdr('e_phentsize', cls === 64 ? 56 : 32);
    expectFormat(h.bytes, 'ELF_PHDR_BOUNDS', { offset: h.ehdrField('e_phoff') });
  });

  it('sizes and offsets that overflow', () => {
    const t = fx().index('.text');
    // sh_offset + sh_size wraps around the class width.
    const f = fx();
    f.setShdr(t, 'sh_offset', f.offsets[t]!).setShdr(t, 'sh_size', cls === 64 ? 0xffffffffffffffffn : 0xffffffffn);
    expectFormat(f.bytes, 'ELF_SECTION_BOUNDS', { sectionIndex: t, section: '.text' });
    const g = fx();
    g.setShdr(t, 'sh_offset', cls === 64 ? 0xfffffffffffffff0n : 0xfffffff0n).setShdr(t, 'sh_size', 0x20);
    expectFormat(g.bytes, cls === 64 ? 'ELF_FIELD_RANGE' : 'ELF_SECTION_BOUNDS', { sectionIndex: t });
    if (cls === 64) {
      const h = fx();
      expectFormat(h.setEhdr('e_shoff', 1n << 60n).bytes, 'ELF_FIELD_RANGE', {
        offset: h.ehdrField('e_shoff'),
        message: /e_shoff is out of range/,
      });
    }
  });

  it('sh_link out of range and link cycles', () => {
    const f = fx();
    const sy = f.index('.symtab');
    const rl = f.index('.rela.text');
    expectFormat(f.setShdr(sy, 'sh_link', 999).bytes, 'ELF_LINK_RANGE', {
      sectionIndex: sy,
      section: '.symtab',
      offset: f.field(sy, 'sh_name'),
    });
    // .symtab linked to itself: a cycle instead of a string table.
    const g = fx();
    expectFormat(g.setShdr(sy, 'sh_link', sy).bytes, 'ELF_LINK_TYPE', {
      sectionIndex: sy,
      message: /names section \[6\] \.symtab, which is not a string table/,
    });
    // .symtab → .rela.text → .symtab.
    const h = fx();
    h.setShdr(sy, 'sh_link', rl).setShdr(rl, 'sh_link', sy);
    expectFormat(h.bytes, 'ELF_LINK_TYPE', { sectionIndex: sy, message: /\.rela\.text, which is not a string table/ });
    const i = fx();
    expectFormat(i.setShdr(rl, 'sh_link', rl).bytes, 'ELF_LINK_TYPE', {
      sectionIndex: rl,
      section: '.rela.text',
      message: /not a symbol table/,
    });
    const j = fx();
    expectFormat(j.setShdr(rl, 'sh_link', 0xffffffff).bytes, 'ELF_LINK_RANGE', { sectionIndex: rl, section: '.rela.text' });
    const k = fx();
    expectFormat(k.setShdr(rl, 'sh_info', 4096).bytes, 'ELF_INFO_RANGE', { sectionIndex: rl, section: '.rela.text' });
    const l = fx();
    expectFormat(l.setEhdr('e_shstrndx', 200).bytes, 'ELF_SHSTRNDX', { offset: l.ehdrField('e_shstrndx') });
  });

  it('string tables without a final NUL, and names past their end', () => {
    const f = fx();
    const st = f.index('.strtab');
    f.bytes[f.offsets[st]! + f.sizes[st]! - 1] = 0x41; // "sig" loses its NUL
    expectFormat(f.bytes, 'ELF_STRTAB_UNTERMINATED', {
      sectionIndex: f.index('.symtab'),
      message: /string table \.strtab has no final NUL/,
    });
    const g = fx();
    const sh = g.names.length - 1;
    g.bytes[g.offsets[sh]! + g.sizes[sh]! - 1] = 0x41;
    expectFormat(g.bytes, 'ELF_STRTAB_UNTERMINATED', { message: /has no final NUL/ });
    const h = fx();
    const d = h.index('.data');
    expectFormat(h.setShdr(d, 'sh_name', 0x7fff).bytes, 'ELF_NAME_RANGE', {
      sectionIndex: d,
      offset: h.field(d, 'sh_name'),
      message: /section name offset is past the end/,
    });
  });

  it('e_shentsize and e_phentsize too small', () => {
    const f = fx();
    expectFormat(f.setEhdr('e_shentsize', f.shentsize - 1).bytes, 'ELF_SHENTSIZE', {
      offset: f.ehdrField('e_shentsize'),
      message: new RegExp(`expected >= ${f.shentsize}, found ${f.shentsize - 1}`),
    });
    const g = fx();
    expectFormat(g.setEhdr('e_phnum', 1).setEhdr('e_phentsize', 8).bytes, 'ELF_PHENTSIZE', { offset: g.ehdrField('e_phentsize') });
  });

  it('2^32-entry claims fail before any allocation', () => {
    const f = fx();
    // Extended numbering: e_shnum 0, section 0's sh_size = 2^32.
    f.setEhdr('e_shnum', 0).setShdr(0, 'sh_size', cls === 64 ? 1n << 32n : 0xffffffffn);
    expectFormat(f.bytes, 'ELF_SHNUM', { sectionIndex: 0, offset: f.field(0, 'sh_size') });
    const g = fx();
    const sy = g.index('.symtab');
    g.setShdr(sy, 'sh_size', cls === 64 ? BigInt(SYM_SIZE[cls]) << 32n : 0xfffffff0n);
    expectFormat(g.bytes, 'ELF_SECTION_BOUNDS', { sectionIndex: sy, section: '.symtab' });
    const h = fx();
    const rl = h.index('.rela.text');
    h.setShdr(rl, 'sh_size', cls === 64 ? BigInt(RELA_SIZE[cls]) << 32n : 0xfffffff0n);
    expectFormat(h.bytes, 'ELF_SECTION_BOUNDS', { sectionIndex: rl, section: '.rela.text' });
    const i = fx();
    const nt = i.index('.note.test');
    i.dv.setUint32(i.offsets[nt]!, 0xffffffff, le); // namesz
    expectFormat(i.bytes, 'ELF_NOTE_BOUNDS', { sectionIndex: nt, section: '.note.test', offset: i.offsets[nt]! });
    const j = fx();
    j.setEhdr('e_phnum', 0xffff)
      .setShdr(0, 'sh_info', 0xffffffff)
      .setEhdr('e_phentsize', cls === 64 ? 56 : 32)
      .setEhdr('e_phoff', j.ehsize);
    expectFormat(j.bytes, 'ELF_PHDR_BOUNDS', { offset: j.ehdrField('e_phoff') });
  });

  it('entry sizes, relocation symbols, groups and extended indices are checked against the file', () => {
    const f = fx();
    const sy = f.index('.symtab');
    expectFormat(f.setShdr(sy, 'sh_entsize', 3).bytes, 'ELF_ENTSIZE', { sectionIndex: sy, message: /entry size is too small/ });
    const g = fx();
    const rl = g.index('.rela.text');
    const symAt = g.offsets[rl]! + (cls === 64 ? 12 : 5); // high half of r_info (64) / symbol byte (32)
    if (cls === 64) g.dv.setUint32(g.offsets[rl]! + 8 + (le ? 4 : 0), 77, le);
    else g.bytes[le ? symAt : g.offsets[rl]! + 6] = 77;
    expectFormat(g.bytes, 'ELF_RELOC_SYMBOL', {
      sectionIndex: rl,
      section: '.rela.text',
      offset: g.offsets[rl]!,
      message: /expected < 4, found 77/,
    });
    const h = fx();
    const gr = h.index('.group');
    h.dv.setUint32(h.offsets[gr]! + 4, 4096, le);
    expectFormat(h.bytes, 'ELF_GROUP_MEMBER', { sectionIndex: gr, section: '.group', offset: h.offsets[gr]! + 4 });
    const i = fx();
    i.dv.setUint32(i.offsets[gr]! + 8, gr, le); // the group lists itself
    expectFormat(i.bytes, 'ELF_GROUP_MEMBER', { sectionIndex: gr, offset: i.offsets[gr]! + 8 });
    const j = fx();
    expectFormat(j.setShdr(gr, 'sh_info', 4).bytes, 'ELF_GROUP_SIGNATURE', {
      sectionIndex: gr,
      section: '.group',
      message: /expected 1\.\.3, found 4/,
    });
    const k = fx();
    const sym1 = k.offsets[sy]! + SYM_SIZE[cls] * 1 + (cls === 64 ? 6 : 14);
    k.dv.setUint16(sym1, 0xffff, le); // SHN_XINDEX without .symtab_shndx
    expectFormat(k.bytes, 'ELF_SHNDX_MISSING', { sectionIndex: sy, offset: k.offsets[sy]! + SYM_SIZE[cls], message: /SHN_XINDEX/ });
  });

  it('bad magic, class and byte order', () => {
    const f = fx();
    f.bytes[0] = 0x7e;
    expectFormat(f.bytes, 'ELF_BAD_MAGIC', { offset: 0, message: /expected 7f 45 4c 46, found 7e 45 4c 46/ });
    const g = fx();
    g.bytes[4] = 3;
    expectFormat(g.bytes, 'ELF_BAD_CLASS', { offset: 4 });
    const h = fx();
    h.bytes[5] = 0;
    expectFormat(h.bytes, 'ELF_BAD_DATA', { offset: 5 });
  });
});

describe('malformed: extended index table', () => {
  it('a .symtab_shndx shorter than its symbol table (ELF_SHNDX_SIZE)', () => {
    const f = buildFixture({
      class: 64,
      littleEndian: true,
      sections: [
        { name: '.symtab', type: 2, link: 2, info: 1, entsize: 24n, addralign: 8n, data: new Uint8Array(48) },
        { name: '.strtab', type: 3, data: new Uint8Array([0]) },
        { name: '.symtab_shndx', type: 18, link: 1, entsize: 4n, addralign: 4n, data: new Uint8Array(4) },
      ],
    });
    expectFormat(f.bytes, 'ELF_SHNDX_SIZE', { sectionIndex: 3, section: '.symtab_shndx', message: /expected >= 8 bytes, found 4 bytes/ });
  });
});
