/**
 * A small, independent ELF fixture builder for malformed-input tests (the llvm yaml2obj idea).
 * It is NOT the writer under test and does not use src/elf: the record offsets below are typed from
 * the gABI (elf.h) on purpose, so that a mistake in src/elf/layout.ts cannot hide in both.
 *
 * Layout of a fixture: ELF header, then the section header table (so that truncating inside the
 * section contents leaves every header readable), then .shstrtab's contents, then the contents of
 * the other sections in index order, each aligned to 8. `field()` gives the file offset of any
 * header field, so tests can corrupt exactly one thing.
 */

export interface RawSection {
  name: string;
  type: number;
  flags?: bigint;
  addr?: bigint;
  link?: number;
  info?: number;
  addralign?: bigint;
  entsize?: bigint;
  data?: Uint8Array;
  /** sh_size override (default data.length). */
  size?: bigint;
}

export interface FixtureOptions {
  class: 32 | 64;
  littleEndian: boolean;
  machine?: number;
  sections: RawSection[];
}

type Ehdr =
  | 'e_type'
  | 'e_machine'
  | 'e_version'
  | 'e_entry'
  | 'e_phoff'
  | 'e_shoff'
  | 'e_flags'
  | 'e_ehsize'
  | 'e_phentsize'
  | 'e_phnum'
  | 'e_shentsize'
  | 'e_shnum'
  | 'e_shstrndx';
type Shdr =
  'sh_name' | 'sh_type' | 'sh_flags' | 'sh_addr' | 'sh_offset' | 'sh_size' | 'sh_link' | 'sh_info' | 'sh_addralign' | 'sh_entsize';

/** [offset, width] per field, from elf.h. */
const EHDR: Record<32 | 64, Record<Ehdr, [number, number]> & { size: number }> = {
  32: {
    e_type: [16, 2],
    e_machine: [18, 2],
    e_version: [20, 4],
    e_entry: [24, 4],
    e_phoff: [28, 4],
    e_shoff: [32, 4],
    e_flags: [36, 4],
    e_ehsize: [40, 2],
    e_phentsize: [42, 2],
    e_phnum: [44, 2],
    e_shentsize: [46, 2],
    e_shnum: [48, 2],
    e_shstrndx: [50, 2],
    size: 52,
  },
  64: {
    e_type: [16, 2],
    e_machine: [18, 2],
    e_version: [20, 4],
    e_entry: [24, 8],
    e_phoff: [32, 8],
    e_shoff: [40, 8],
    e_flags: [48, 4],
    e_ehsize: [52, 2],
    e_phentsize: [54, 2],
    e_phnum: [56, 2],
    e_shentsize: [58, 2],
    e_shnum: [60, 2],
    e_shstrndx: [62, 2],
    size: 64,
  },
};
const SHDR: Record<32 | 64, Record<Shdr, [number, number]> & { size: number }> = {
  32: {
    sh_name: [0, 4],
    sh_type: [4, 4],
    sh_flags: [8, 4],
    sh_addr: [12, 4],
    sh_offset: [16, 4],
    sh_size: [20, 4],
    sh_link: [24, 4],
    sh_info: [28, 4],
    sh_addralign: [32, 4],
    sh_entsize: [36, 4],
    size: 40,
  },
  64: {
    sh_name: [0, 4],
    sh_type: [4, 4],
    sh_flags: [8, 8],
    sh_addr: [16, 8],
    sh_offset: [24, 8],
    sh_size: [32, 8],
    sh_link: [40, 4],
    sh_info: [44, 4],
    sh_addralign: [48, 8],
    sh_entsize: [56, 8],
    size: 64,
  },
};
export const SYM_SIZE = { 32: 16, 64: 24 } as const;
export const RELA_SIZE = { 32: 12, 64: 24 } as const;

export class Fixture {
  bytes: Uint8Array;
  readonly dv: DataView;
  constructor(
    readonly cls: 32 | 64,
    readonly le: boolean,
    bytes: Uint8Array,
    readonly shoff: number,
    readonly names: string[],
    readonly offsets: number[],
    readonly sizes: number[],
  ) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  get shentsize(): number {
    return SHDR[this.cls].size;
  }
  get ehsize(): number {
    return EHDR[this.cls].size;
  }
  index(name: string): number {
    const i = this.names.indexOf(name);
    if (i < 0) throw new Error(`fixture: no section ${name}`);
    return i;
  }
  /** File offset of a header field of section `i`. */
  field(i: number, f: Shdr): number {
    return this.shoff + i * this.shentsize + SHDR[this.cls][f][0];
  }
  ehdrField(f: Ehdr): number {
    return EHDR[this.cls][f][0];
  }
  setShdr(i: number, f: Shdr, v: number | bigint): this {
    put(this.dv, this.field(i, f), SHDR[this.cls][f][1], v, this.le);
    return this;
  }
  setEhdr(f: Ehdr, v: number | bigint): this {
    put(this.dv, this.ehdrField(f), EHDR[this.cls][f][1], v, this.le);
    return this;
  }
  /** A copy cut to `n` bytes. */
  truncated(n: number): Uint8Array {
    return this.bytes.slice(0, n);
  }
}

function put(dv: DataView, off: number, width: number, v: number | bigint, le: boolean): void {
  if (width === 1) dv.setUint8(off, Number(v));
  else if (width === 2) dv.setUint16(off, Number(v), le);
  else if (width === 4) dv.setUint32(off, Number(BigInt.asUintN(32, BigInt(v))), le);
  else dv.setBigUint64(off, BigInt.asUintN(64, BigInt(v)), le);
}

export function buildFixture(o: FixtureOptions): Fixture {
  const cls = o.class;
  const E = EHDR[cls];
  const S = SHDR[cls];
  const secs: RawSection[] = [{ name: '', type: 0 }, ...o.sections, { name: '.shstrtab', type: 3 }];
  // .shstrtab
  const enc = new TextEncoder();
  const nameOff: number[] = [];
  const parts: number[] = [0];
  for (const s of secs) {
    if (s.name === '') {
      nameOff.push(0);
      continue;
    }
    nameOff.push(parts.length);
    parts.push(...enc.encode(s.name), 0);
  }
  secs[secs.length - 1]!.data = new Uint8Array(parts);
  const shoff = E.size;
  let cursor = shoff + secs.length * S.size;
  const offsets = new Array<number>(secs.length).fill(0);
  const align8 = (n: number) => (n + 7) & ~7;
  const order = [secs.length - 1, ...secs.map((_, i) => i).slice(1, -1)];
  for (const i of order) {
    const s = secs[i]!;
    cursor = align8(cursor);
    offsets[i] = cursor;
    if (s.type !== 8) cursor += s.data?.length ?? 0;
  }
  const bytes = new Uint8Array(align8(cursor));
  const dv = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, cls === 64 ? 2 : 1, o.littleEndian ? 1 : 2, 1]);
  const eh = (f: Ehdr, v: number | bigint) => put(dv, E[f][0], E[f][1], v, o.littleEndian);
  eh('e_type', 1);
  eh('e_machine', o.machine ?? (cls === 64 ? 62 : 3));
  eh('e_version', 1);
  eh('e_shoff', shoff);
  eh('e_ehsize', E.size);
  eh('e_shentsize', S.size);
  eh('e_shnum', secs.length);
  eh('e_shstrndx', secs.length - 1);
  secs.forEach((s, i) => {
    const base = shoff + i * S.size;
    const sh = (f: Shdr, v: number | bigint) => put(dv, base + S[f][0], S[f][1], v, o.littleEndian);
    if (i === 0) return;
    sh('sh_name', nameOff[i]!);
    sh('sh_type', s.type);
    sh('sh_flags', s.flags ?? 0n);
    sh('sh_addr', s.addr ?? 0n);
    sh('sh_offset', offsets[i]!);
    sh('sh_size', s.size ?? BigInt(s.data?.length ?? 0));
    sh('sh_link', s.link ?? 0);
    sh('sh_info', s.info ?? 0);
    sh('sh_addralign', s.addralign ?? 1n);
    sh('sh_entsize', s.entsize ?? 0n);
    if (s.data && s.type !== 8) bytes.set(s.data, offsets[i]!);
  });
  return new Fixture(
    cls,
    o.littleEndian,
    bytes,
    shoff,
    secs.map((s) => s.name),
    offsets,
    secs.map((s) => s.data?.length ?? 0),
  );
}

/** Encodes symbols for a fixture's .symtab: [nameOffset, value, size, info, other, shndx]. */
export function symbols(cls: 32 | 64, le: boolean, rows: [number, bigint, bigint, number, number, number][]): Uint8Array {
  const n = SYM_SIZE[cls];
  const b = new Uint8Array(n * rows.length);
  const dv = new DataView(b.buffer);
  rows.forEach(([name, value, size, info, other, shndx], i) => {
    const o = i * n;
    dv.setUint32(o, name, le);
    if (cls === 64) {
      dv.setUint8(o + 4, info);
      dv.setUint8(o + 5, other);
      dv.setUint16(o + 6, shndx, le);
      dv.setBigUint64(o + 8, value, le);
      dv.setBigUint64(o + 16, size, le);
    } else {
      dv.setUint32(o + 4, Number(value), le);
      dv.setUint32(o + 8, Number(size), le);
      dv.setUint8(o + 12, info);
      dv.setUint8(o + 13, other);
      dv.setUint16(o + 14, shndx, le);
    }
  });
  return b;
}

/** Encodes RELA entries: [offset, symbol, type, addend]. */
export function relas(cls: 32 | 64, le: boolean, rows: [bigint, number, number, bigint][]): Uint8Array {
  const n = RELA_SIZE[cls];
  const b = new Uint8Array(n * rows.length);
  const dv = new DataView(b.buffer);
  rows.forEach(([off, sym, type, addend], i) => {
    const o = i * n;
    if (cls === 64) {
      dv.setBigUint64(o, off, le);
      dv.setBigUint64(o + 8, (BigInt(sym) << 32n) | BigInt(type), le);
      dv.setBigInt64(o + 16, addend, le);
    } else {
      dv.setUint32(o, Number(off), le);
      dv.setUint32(o + 4, sym * 256 + type, le);
      dv.setInt32(o + 8, Number(addend), le);
    }
  });
  return b;
}

/** Encodes one note (4-byte alignment). */
export function note(le: boolean, name: string, type: number, desc: number[]): Uint8Array {
  const nb = [...new TextEncoder().encode(name), 0];
  const pad4 = (n: number) => (n + 3) & ~3;
  const b = new Uint8Array(12 + pad4(nb.length) + pad4(desc.length));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, nb.length, le);
  dv.setUint32(4, desc.length, le);
  dv.setUint32(8, type, le);
  b.set(nb, 12);
  b.set(desc, 12 + pad4(nb.length));
  return b;
}

/** Words of an SHT_GROUP section. */
export function words(le: boolean, ws: number[]): Uint8Array {
  const b = new Uint8Array(4 * ws.length);
  const dv = new DataView(b.buffer);
  ws.forEach((w, i) => dv.setUint32(4 * i, w, le));
  return b;
}

/**
 * The standard well-formed fixture: .text, .rela.text, .data, .note.test, .group, .symtab, .strtab.
 * Section indices: 1 .group, 2 .text, 3 .rela.text, 4 .data, 5 .note.test, 6 .symtab, 7 .strtab, 8 .shstrtab.
 */
export function standardFixture(cls: 32 | 64, le: boolean): Fixture {
  const strtab = new Uint8Array([0, ...new TextEncoder().encode('func'), 0, ...new TextEncoder().encode('sig'), 0]);
  const text = new Uint8Array(16).fill(0x90);
  return buildFixture({
    class: cls,
    littleEndian: le,
    sections: [
      { name: '.group', type: 17, link: 6, info: 3, entsize: 4n, addralign: 4n, data: words(le, [1, 2, 3]) },
      { name: '.text', type: 1, flags: 0x206n, addralign: 16n, data: text },
      {
        name: '.rela.text',
        type: 4,
        flags: 0x240n,
        link: 6,
        info: 2,
        entsize: BigInt(RELA_SIZE[cls]),
        addralign: 8n,
        data: relas(cls, le, [
          [4n, 2, 2, -4n],
          [8n, 3, 1, 0n],
        ]),
      },
      { name: '.data', type: 1, flags: 3n, addralign: 8n, data: new Uint8Array(8) },
      { name: '.note.test', type: 7, flags: 2n, addralign: 4n, data: note(le, 'GNU', 3, [1, 2, 3, 4]) },
      {
        name: '.symtab',
        type: 2,
        link: 7,
        info: 2,
        entsize: BigInt(SYM_SIZE[cls]),
        addralign: 8n,
        data: symbols(cls, le, [
          [0, 0n, 0n, 0, 0, 0],
          [0, 0n, 0n, 3, 0, 2],
          [1, 0n, 16n, 0x12, 0, 2],
          [6, 8n, 8n, 0x12, 0, 2],
        ]),
      },
      { name: '.strtab', type: 3, addralign: 1n, data: strtab },
    ],
  });
}
