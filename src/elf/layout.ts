/**
 * One layout table per ELF record and class: field → offset and kind, with the total size.
 * Decoders and encoders follow these tables; no offset is typed twice. Sizes are pinned by tests.
 *
 * Kinds: u8/u16/u32 decode to number; U32/U64 (addresses, sizes, 64-bit fields, and their ELF32
 * counterparts) decode to bigint; I32/I64 (addends) decode to signed bigint.
 */
export type FieldKind = 'u8' | 'u16' | 'u32' | 'U32' | 'U64' | 'I32' | 'I64';

export interface FieldDef {
  offset: number;
  kind: FieldKind;
}

export interface RecordLayout<K extends string = string> {
  name: string;
  size: number;
  fields: Record<K, FieldDef>;
}

const f = (offset: number, kind: FieldKind): FieldDef => ({ offset, kind });

export type EhdrField =
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
export type ShdrField =
  'sh_name' | 'sh_type' | 'sh_flags' | 'sh_addr' | 'sh_offset' | 'sh_size' | 'sh_link' | 'sh_info' | 'sh_addralign' | 'sh_entsize';
export type SymField = 'st_name' | 'st_value' | 'st_size' | 'st_info' | 'st_other' | 'st_shndx';
export type RelField = 'r_offset' | 'r_info';
export type RelaField = RelField | 'r_addend';
export type PhdrField = 'p_type' | 'p_flags' | 'p_offset' | 'p_vaddr' | 'p_paddr' | 'p_filesz' | 'p_memsz' | 'p_align';

export interface ClassLayouts {
  ehdr: RecordLayout<EhdrField>;
  shdr: RecordLayout<ShdrField>;
  sym: RecordLayout<SymField>;
  rel: RecordLayout<RelField>;
  rela: RecordLayout<RelaField>;
  phdr: RecordLayout<PhdrField>;
}

/** Size of e_ident. */
export const EI_NIDENT = 16;
export const EI = { MAG0: 0, CLASS: 4, DATA: 5, VERSION: 6, OSABI: 7, ABIVERSION: 8 } as const;

export const LAYOUT32: ClassLayouts = {
  ehdr: {
    name: 'Elf32_Ehdr',
    size: 52,
    fields: {
      e_type: f(16, 'u16'),
      e_machine: f(18, 'u16'),
      e_version: f(20, 'u32'),
      e_entry: f(24, 'U32'),
      e_phoff: f(28, 'U32'),
      e_shoff: f(32, 'U32'),
      e_flags: f(36, 'u32'),
      e_ehsize: f(40, 'u16'),
      e_phentsize: f(42, 'u16'),
      e_phnum: f(44, 'u16'),
      e_shentsize: f(46, 'u16'),
      e_shnum: f(48, 'u16'),
      e_shstrndx: f(50, 'u16'),
    },
  },
  shdr: {
    name: 'Elf32_Shdr',
    size: 40,
    fields: {
      sh_name: f(0, 'u32'),
      sh_type: f(4, 'u32'),
      sh_flags: f(8, 'U32'),
      sh_addr: f(12, 'U32'),
      sh_offset: f(16, 'U32'),
      sh_size: f(20, 'U32'),
      sh_link: f(24, 'u32'),
      sh_info: f(28, 'u32'),
      sh_addralign: f(32, 'U32'),
      sh_entsize: f(36, 'U32'),
    },
  },
  sym: {
    name: 'Elf32_Sym',
    size: 16,
    fields: {
      st_name: f(0, 'u32'),
      st_value: f(4, 'U32'),
      st_size: f(8, 'U32'),
      st_info: f(12, 'u8'),
      st_other: f(13, 'u8'),
      st_shndx: f(14, 'u16'),
    },
  },
  rel: { name: 'Elf32_Rel', size: 8, fields: { r_offset: f(0, 'U32'), r_info: f(4, 'U32') } },
  rela: { name: 'Elf32_Rela', size: 12, fields: { r_offset: f(0, 'U32'), r_info: f(4, 'U32'), r_addend: f(8, 'I32') } },
  phdr: {
    name: 'Elf32_Phdr',
    size: 32,
    fields: {
      p_type: f(0, 'u32'),
      p_offset: f(4, 'U32'),
      p_vaddr: f(8, 'U32'),
      p_paddr: f(12, 'U32'),
      p_filesz: f(16, 'U32'),
      p_memsz: f(20, 'U32'),
      p_flags: f(24, 'u32'),
      p_align: f(28, 'U32'),
    },
  },
};

export const LAYOUT64: ClassLayouts = {
  ehdr: {
    name: 'Elf64_Ehdr',
    size: 64,
    fields: {
      e_type: f(16, 'u16'),
      e_machine: f(18, 'u16'),
      e_version: f(20, 'u32'),
      e_entry: f(24, 'U64'),
      e_phoff: f(32, 'U64'),
      e_shoff: f(40, 'U64'),
      e_flags: f(48, 'u32'),
      e_ehsize: f(52, 'u16'),
      e_phentsize: f(54, 'u16'),
      e_phnum: f(56, 'u16'),
      e_shentsize: f(58, 'u16'),
      e_shnum: f(60, 'u16'),
      e_shstrndx: f(62, 'u16'),
    },
  },
  shdr: {
    name: 'Elf64_Shdr',
    size: 64,
    fields: {
      sh_name: f(0, 'u32'),
      sh_type: f(4, 'u32'),
      sh_flags: f(8, 'U64'),
      sh_addr: f(16, 'U64'),
      sh_offset: f(24, 'U64'),
      sh_size: f(32, 'U64'),
      sh_link: f(40, 'u32'),
      sh_info: f(44, 'u32'),
      sh_addralign: f(48, 'U64'),
      sh_entsize: f(56, 'U64'),
    },
  },
  sym: {
    name: 'Elf64_Sym',
    size: 24,
    fields: {
      st_name: f(0, 'u32'),
      st_info: f(4, 'u8'),
      st_other: f(5, 'u8'),
      st_shndx: f(6, 'u16'),
      st_value: f(8, 'U64'),
      st_size: f(16, 'U64'),
    },
  },
  rel: { name: 'Elf64_Rel', size: 16, fields: { r_offset: f(0, 'U64'), r_info: f(8, 'U64') } },
  rela: { name: 'Elf64_Rela', size: 24, fields: { r_offset: f(0, 'U64'), r_info: f(8, 'U64'), r_addend: f(16, 'I64') } },
  phdr: {
    name: 'Elf64_Phdr',
    size: 56,
    fields: {
      p_type: f(0, 'u32'),
      p_flags: f(4, 'u32'),
      p_offset: f(8, 'U64'),
      p_vaddr: f(16, 'U64'),
      p_paddr: f(24, 'U64'),
      p_filesz: f(32, 'U64'),
      p_memsz: f(40, 'U64'),
      p_align: f(48, 'U64'),
    },
  },
};

export function layoutsFor(cls: 32 | 64): ClassLayouts {
  return cls === 64 ? LAYOUT64 : LAYOUT32;
}

/** Width in bytes of a field kind. */
export function kindSize(kind: FieldKind): number {
  switch (kind) {
    case 'u8':
      return 1;
    case 'u16':
      return 2;
    case 'u32':
    case 'U32':
    case 'I32':
      return 4;
    case 'U64':
    case 'I64':
      return 8;
  }
}

/** Reads one field. The caller has checked that [base, base + layout.size) lies inside the view. */
export function readField(dv: DataView, base: number, def: FieldDef, le: boolean): number | bigint {
  const o = base + def.offset;
  switch (def.kind) {
    case 'u8':
      return dv.getUint8(o);
    case 'u16':
      return dv.getUint16(o, le);
    case 'u32':
      return dv.getUint32(o, le);
    case 'U32':
      return BigInt(dv.getUint32(o, le));
    case 'I32':
      return BigInt(dv.getInt32(o, le));
    case 'U64':
      return dv.getBigUint64(o, le);
    case 'I64':
      return dv.getBigInt64(o, le);
  }
}

export function writeField(dv: DataView, base: number, def: FieldDef, le: boolean, value: number | bigint): void {
  const o = base + def.offset;
  switch (def.kind) {
    case 'u8':
      dv.setUint8(o, Number(value));
      break;
    case 'u16':
      dv.setUint16(o, Number(value), le);
      break;
    case 'u32':
      dv.setUint32(o, Number(value), le);
      break;
    case 'U32':
      dv.setUint32(o, Number(BigInt.asUintN(32, BigInt(value))), le);
      break;
    case 'I32':
      dv.setInt32(o, Number(BigInt.asIntN(32, BigInt(value))), le);
      break;
    case 'U64':
      dv.setBigUint64(o, BigInt.asUintN(64, BigInt(value)), le);
      break;
    case 'I64':
      dv.setBigInt64(o, BigInt.asIntN(64, BigInt(value)), le);
      break;
  }
}

/**
 * Shared `bigint`s for the small values that fill most 64-bit fields (flags, sizes, alignments,
 * offsets inside sections, small addends): reading them allocates nothing. BigInts are immutable,
 * so sharing one between records is invisible to callers.
 */
const SMALL_MAX = 4096;
const SMALL_NEG = 256;
const SMALL: bigint[] = Array.from({ length: SMALL_MAX }, (_, i) => BigInt(i));
const NEG: bigint[] = Array.from({ length: SMALL_NEG + 1 }, (_, i) => BigInt(-i));

/** A non-negative integer below 2^53 as a bigint, shared for small values. */
export function bigOf(v: number): bigint {
  return v < SMALL_MAX ? SMALL[v]! : BigInt(v);
}

/**
 * Reads one U32/U64/I32/I64 field as `bigint` (readField's result for those kinds), without
 * allocating for small values. The caller has checked the bounds, as for readField.
 */
export function readBigField(dv: DataView, base: number, def: FieldDef, le: boolean): bigint {
  const o = base + def.offset;
  switch (def.kind) {
    case 'U32': {
      const v = dv.getUint32(o, le);
      return v < SMALL_MAX ? SMALL[v]! : BigInt(v);
    }
    case 'I32': {
      const v = dv.getInt32(o, le);
      return v >= 0 ? (v < SMALL_MAX ? SMALL[v]! : BigInt(v)) : v >= -SMALL_NEG ? NEG[-v]! : BigInt(v);
    }
    case 'U64': {
      const hi = dv.getUint32(le ? o + 4 : o, le);
      if (hi === 0) {
        const lo = dv.getUint32(le ? o : o + 4, le);
        return lo < SMALL_MAX ? SMALL[lo]! : BigInt(lo);
      }
      return dv.getBigUint64(o, le);
    }
    case 'I64': {
      const hi = dv.getUint32(le ? o + 4 : o, le);
      const lo = dv.getUint32(le ? o : o + 4, le);
      if (hi === 0 && lo < SMALL_MAX) return SMALL[lo]!;
      if (hi === 0xffffffff && lo >= 2 ** 32 - SMALL_NEG) return NEG[2 ** 32 - lo]!;
      return dv.getBigInt64(o, le);
    }
    default:
      return BigInt(readField(dv, base, def, le));
  }
}

/**
 * Reads one U32/U64 field as a number when it is at most 2^53 - 1, else returns -1 (the caller
 * then reports the bigint value). For offsets and sizes, without a bigint on the way.
 */
export function readSafeField(dv: DataView, base: number, def: FieldDef, le: boolean): number {
  const o = base + def.offset;
  if (def.kind === 'U64') {
    const hi = dv.getUint32(le ? o + 4 : o, le);
    if (hi >= 0x200000) return -1;
    return hi * 0x100000000 + dv.getUint32(le ? o : o + 4, le);
  }
  return dv.getUint32(o, le);
}

/**
 * Writes a bigint into a U32/U64/I32/I64 field with writeField's wrapping, without a bigint on
 * the way for values that fit 32 bits (the common case).
 */
export function writeBigField(dv: DataView, base: number, def: FieldDef, le: boolean, v: bigint): void {
  const o = base + def.offset;
  switch (def.kind) {
    case 'U64':
      if (v >= 0n && v <= 0xffffffffn) {
        dv.setUint32(le ? o : o + 4, Number(v), le);
        dv.setUint32(le ? o + 4 : o, 0, le);
      } else dv.setBigUint64(o, BigInt.asUintN(64, v), le);
      return;
    case 'I64':
      if (v >= -0x80000000n && v <= 0x7fffffffn) {
        const n = Number(v);
        dv.setInt32(le ? o : o + 4, n, le);
        dv.setInt32(le ? o + 4 : o, n < 0 ? -1 : 0, le);
      } else dv.setBigInt64(o, BigInt.asIntN(64, v), le);
      return;
    case 'U32':
      dv.setUint32(o, v >= 0n && v <= 0xffffffffn ? Number(v) : Number(BigInt.asUintN(32, v)), le);
      return;
    case 'I32':
      dv.setInt32(o, v >= -0x80000000n && v <= 0x7fffffffn ? Number(v) : Number(BigInt.asIntN(32, v)), le);
      return;
    default:
      writeField(dv, base, def, le, v);
  }
}

/** Writes a non-negative integer below 2^53 into any field (offsets, sizes, counts, indices). */
export function writeNumField(dv: DataView, base: number, def: FieldDef, le: boolean, v: number): void {
  const o = base + def.offset;
  switch (def.kind) {
    case 'u8':
      dv.setUint8(o, v);
      return;
    case 'u16':
      dv.setUint16(o, v, le);
      return;
    case 'u32':
    case 'U32':
    case 'I32':
      dv.setUint32(o, v >>> 0, le);
      return;
    case 'U64':
    case 'I64':
      dv.setUint32(le ? o : o + 4, v >>> 0, le);
      dv.setUint32(le ? o + 4 : o, Math.floor(v / 0x100000000), le);
  }
}

export type Decoded<K extends string> = Record<K, number | bigint>;

export function decodeRecord<K extends string>(layout: RecordLayout<K>, dv: DataView, base: number, le: boolean): Decoded<K> {
  const out = {} as Decoded<K>;
  for (const k in layout.fields) out[k] = readField(dv, base, layout.fields[k], le);
  return out;
}

export function encodeRecord<K extends string>(
  layout: RecordLayout<K>,
  dv: DataView,
  base: number,
  le: boolean,
  values: Partial<Record<K, number | bigint>>,
): void {
  for (const k in layout.fields) {
    const v = values[k];
    writeField(dv, base, layout.fields[k], le, v ?? 0);
  }
}

export function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
