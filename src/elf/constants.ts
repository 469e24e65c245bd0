/**
 * ELF constants as `as const` tables with reverse names. Values from glibc's elf.h and
 * binutils' include/elf/*.h; names printed as the tables spell them.
 *
 * Why one file: it is plain data, the constant tables (most of it the per-machine relocation
 * tables) plus the name printers that read them through their reverse-name maps; splitting would
 * scatter those lookup tables over several files.
 */

export const ELFCLASS = { NONE: 0, '32': 1, '64': 2 } as const;
export const ELFDATA = { NONE: 0, '2LSB': 1, '2MSB': 2 } as const;
export const EV_CURRENT = 1;
export const ELFOSABI = { NONE: 0, HPUX: 1, NETBSD: 2, GNU: 3, SOLARIS: 6, FREEBSD: 9, ARM: 97, STANDALONE: 255 } as const;

export const ET = { NONE: 0, REL: 1, EXEC: 2, DYN: 3, CORE: 4 } as const;

export const EM = {
  NONE: 0,
  SPARC: 2,
  '386': 3,
  '68K': 4,
  MIPS: 8,
  PPC: 20,
  PPC64: 21,
  S390: 22,
  ARM: 40,
  SH: 42,
  SPARCV9: 43,
  IA_64: 50,
  X86_64: 62,
  AARCH64: 183,
  RISCV: 243,
  LOONGARCH: 258,
} as const;

export const SHN = {
  UNDEF: 0,
  LORESERVE: 0xff00,
  LOPROC: 0xff00,
  HIPROC: 0xff1f,
  LOOS: 0xff20,
  HIOS: 0xff3f,
  ABS: 0xfff1,
  COMMON: 0xfff2,
  XINDEX: 0xffff,
  HIRESERVE: 0xffff,
} as const;

export const SHT = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  HASH: 5,
  DYNAMIC: 6,
  NOTE: 7,
  NOBITS: 8,
  REL: 9,
  SHLIB: 10,
  DYNSYM: 11,
  INIT_ARRAY: 14,
  FINI_ARRAY: 15,
  PREINIT_ARRAY: 16,
  GROUP: 17,
  SYMTAB_SHNDX: 18,
  RELR: 19,
  /** Packed relocations (`as --crel`, clang -Wa,--crel; binutils 2.43, LLVM 19). */
  CREL: 0x40000014,
  GNU_ATTRIBUTES: 0x6ffffff5,
  GNU_HASH: 0x6ffffff6,
  GNU_LIBLIST: 0x6ffffff7,
  CHECKSUM: 0x6ffffff8,
  GNU_verdef: 0x6ffffffd,
  GNU_verneed: 0x6ffffffe,
  GNU_versym: 0x6fffffff,
  LLVM_ODRTAB: 0x6fff4c00,
  LLVM_LINKER_OPTIONS: 0x6fff4c01,
  LLVM_ADDRSIG: 0x6fff4c03,
  LLVM_DEPENDENT_LIBRARIES: 0x6fff4c04,
} as const;

/** Processor-specific section types (0x70000000+) by machine. */
export const SHT_PROC: Record<number, Record<number, string>> = {
  [EM.X86_64]: { 0x70000001: 'X86_64_UNWIND' },
  [EM.ARM]: {
    0x70000001: 'ARM_EXIDX',
    0x70000002: 'ARM_PREEMPTMAP',
    0x70000003: 'ARM_ATTRIBUTES',
    0x70000004: 'ARM_DEBUGOVERLAY',
    0x70000005: 'ARM_OVERLAYSECTION',
  },
  [EM.AARCH64]: { 0x70000003: 'AARCH64_ATTRIBUTES' },
  [EM.RISCV]: { 0x70000003: 'RISCV_ATTRIBUTES' },
};

export const SHF = {
  WRITE: 0x1n,
  ALLOC: 0x2n,
  EXECINSTR: 0x4n,
  MERGE: 0x10n,
  STRINGS: 0x20n,
  INFO_LINK: 0x40n,
  LINK_ORDER: 0x80n,
  OS_NONCONFORMING: 0x100n,
  GROUP: 0x200n,
  TLS: 0x400n,
  COMPRESSED: 0x800n,
  GNU_RETAIN: 0x200000n,
  EXCLUDE: 0x80000000n,
} as const;

/** readelf's flag letters, in bit order (as readelf prints them). */
export const SHF_LETTERS: readonly (readonly [bigint, string])[] = [
  [0x1n, 'W'],
  [0x2n, 'A'],
  [0x4n, 'X'],
  [0x10n, 'M'],
  [0x20n, 'S'],
  [0x40n, 'I'],
  [0x80n, 'L'],
  [0x100n, 'O'],
  [0x200n, 'G'],
  [0x400n, 'T'],
  [0x800n, 'C'],
  [0x200000n, 'R'],
  [0x80000000n, 'E'],
];

export const GRP_COMDAT = 1;

export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2, GNU_UNIQUE: 10 } as const;
export const STT = {
  NOTYPE: 0,
  OBJECT: 1,
  FUNC: 2,
  SECTION: 3,
  FILE: 4,
  COMMON: 5,
  TLS: 6,
  GNU_IFUNC: 10,
} as const;
export const STV = { DEFAULT: 0, INTERNAL: 1, HIDDEN: 2, PROTECTED: 3 } as const;

export const PT = {
  NULL: 0,
  LOAD: 1,
  DYNAMIC: 2,
  INTERP: 3,
  NOTE: 4,
  SHLIB: 5,
  PHDR: 6,
  TLS: 7,
  GNU_EH_FRAME: 0x6474e550,
  GNU_STACK: 0x6474e551,
  GNU_RELRO: 0x6474e552,
  GNU_PROPERTY: 0x6474e553,
} as const;

export const NT_GNU = { ABI_TAG: 1, HWCAP: 2, BUILD_ID: 3, GOLD_VERSION: 4, PROPERTY_TYPE_0: 5 } as const;

/** Relocation type names per machine. Sources: binutils include/elf/{x86-64,i386,aarch64,arm}.h. */
export const R_X86_64 = {
  NONE: 0,
  '64': 1,
  PC32: 2,
  GOT32: 3,
  PLT32: 4,
  COPY: 5,
  GLOB_DAT: 6,
  JUMP_SLOT: 7,
  RELATIVE: 8,
  GOTPCREL: 9,
  '32': 10,
  '32S': 11,
  '16': 12,
  PC16: 13,
  '8': 14,
  PC8: 15,
  DTPMOD64: 16,
  DTPOFF64: 17,
  TPOFF64: 18,
  TLSGD: 19,
  TLSLD: 20,
  DTPOFF32: 21,
  GOTTPOFF: 22,
  TPOFF32: 23,
  PC64: 24,
  GOTOFF64: 25,
  GOTPC32: 26,
  GOT64: 27,
  GOTPCREL64: 28,
  GOTPC64: 29,
  GOTPLT64: 30,
  PLTOFF64: 31,
  SIZE32: 32,
  SIZE64: 33,
  GOTPC32_TLSDESC: 34,
  TLSDESC_CALL: 35,
  TLSDESC: 36,
  IRELATIVE: 37,
  RELATIVE64: 38,
  GOTPCRELX: 41,
  REX_GOTPCRELX: 42,
  CODE_4_GOTPCRELX: 43,
} as const;

export const R_386 = {
  NONE: 0,
  '32': 1,
  PC32: 2,
  GOT32: 3,
  PLT32: 4,
  COPY: 5,
  GLOB_DAT: 6,
  JUMP_SLOT: 7,
  RELATIVE: 8,
  GOTOFF: 9,
  GOTPC: 10,
  '32PLT': 11,
  TLS_TPOFF: 14,
  TLS_IE: 15,
  TLS_GOTIE: 16,
  TLS_LE: 17,
  TLS_GD: 18,
  TLS_LDM: 19,
  '16': 20,
  PC16: 21,
  '8': 22,
  PC8: 23,
  TLS_GD_32: 24,
  TLS_GD_PUSH: 25,
  TLS_GD_CALL: 26,
  TLS_GD_POP: 27,
  TLS_LDM_32: 28,
  TLS_LDM_PUSH: 29,
  TLS_LDM_CALL: 30,
  TLS_LDM_POP: 31,
  TLS_LDO_32: 32,
  TLS_IE_32: 33,
  TLS_LE_32: 34,
  TLS_DTPMOD32: 35,
  TLS_DTPOFF32: 36,
  TLS_TPOFF32: 37,
  SIZE32: 38,
  TLS_GOTDESC: 39,
  TLS_DESC_CALL: 40,
  TLS_DESC: 41,
  IRELATIVE: 42,
  GOT32X: 43,
} as const;

export const R_AARCH64 = {
  NONE: 0,
  ABS64: 257,
  ABS32: 258,
  ABS16: 259,
  PREL64: 260,
  PREL32: 261,
  PREL16: 262,
  MOVW_UABS_G0: 263,
  MOVW_UABS_G0_NC: 264,
  MOVW_UABS_G1: 265,
  MOVW_UABS_G1_NC: 266,
  MOVW_UABS_G2: 267,
  MOVW_UABS_G2_NC: 268,
  MOVW_UABS_G3: 269,
  MOVW_SABS_G0: 270,
  MOVW_SABS_G1: 271,
  MOVW_SABS_G2: 272,
  LD_PREL_LO19: 273,
  ADR_PREL_LO21: 274,
  ADR_PREL_PG_HI21: 275,
  ADR_PREL_PG_HI21_NC: 276,
  ADD_ABS_LO12_NC: 277,
  LDST8_ABS_LO12_NC: 278,
  TSTBR14: 279,
  CONDBR19: 280,
  JUMP26: 282,
  CALL26: 283,
  LDST16_ABS_LO12_NC: 284,
  LDST32_ABS_LO12_NC: 285,
  LDST64_ABS_LO12_NC: 286,
  MOVW_PREL_G0: 287,
  MOVW_PREL_G0_NC: 288,
  MOVW_PREL_G1: 289,
  MOVW_PREL_G1_NC: 290,
  MOVW_PREL_G2: 291,
  MOVW_PREL_G2_NC: 292,
  MOVW_PREL_G3: 293,
  LDST128_ABS_LO12_NC: 299,
  ADR_GOT_PAGE: 311,
  LD64_GOT_LO12_NC: 312,
  COPY: 1024,
  GLOB_DAT: 1025,
  JUMP_SLOT: 1026,
  RELATIVE: 1027,
  TLS_DTPMOD: 1028,
  TLS_DTPREL: 1029,
  TLS_TPREL: 1030,
  TLSDESC: 1031,
  IRELATIVE: 1032,
} as const;

export const R_ARM = {
  NONE: 0,
  PC24: 1,
  ABS32: 2,
  REL32: 3,
  LDR_PC_G0: 4,
  ABS16: 5,
  ABS12: 6,
  THM_ABS5: 7,
  ABS8: 8,
  SBREL32: 9,
  THM_CALL: 10,
  THM_PC8: 11,
  BREL_ADJ: 12,
  TLS_DESC: 13,
  THM_SWI8: 14,
  XPC25: 15,
  THM_XPC22: 16,
  TLS_DTPMOD32: 17,
  TLS_DTPOFF32: 18,
  TLS_TPOFF32: 19,
  COPY: 20,
  GLOB_DAT: 21,
  JUMP_SLOT: 22,
  RELATIVE: 23,
  GOTOFF32: 24,
  BASE_PREL: 25,
  GOT_BREL: 26,
  PLT32: 27,
  CALL: 28,
  JUMP24: 29,
  THM_JUMP24: 30,
  BASE_ABS: 31,
  TARGET1: 38,
  V4BX: 40,
  TARGET2: 41,
  PREL31: 42,
  MOVW_ABS_NC: 43,
  MOVT_ABS: 44,
  MOVW_PREL_NC: 45,
  MOVT_PREL: 46,
  THM_MOVW_ABS_NC: 47,
  THM_MOVT_ABS: 48,
  THM_MOVW_PREL_NC: 49,
  THM_MOVT_PREL: 50,
  THM_JUMP19: 51,
  THM_JUMP6: 52,
  GOT_PREL: 96,
  THM_JUMP11: 102,
  THM_JUMP8: 103,
  TLS_GD32: 104,
  TLS_LDM32: 105,
  TLS_LDO32: 106,
  TLS_IE32: 107,
  TLS_LE32: 108,
} as const;

/** Sources: binutils include/elf/ppc.h (32-bit PowerPC) and include/elf/s390.h. */
export const R_PPC = {
  NONE: 0,
  ADDR32: 1,
  ADDR24: 2,
  ADDR16: 3,
  ADDR16_LO: 4,
  ADDR16_HI: 5,
  ADDR16_HA: 6,
  ADDR14: 7,
  ADDR14_BRTAKEN: 8,
  ADDR14_BRNTAKEN: 9,
  REL24: 10,
  REL14: 11,
  REL14_BRTAKEN: 12,
  REL14_BRNTAKEN: 13,
  GOT16: 14,
  GOT16_LO: 15,
  GOT16_HI: 16,
  GOT16_HA: 17,
  PLTREL24: 18,
  COPY: 19,
  GLOB_DAT: 20,
  JMP_SLOT: 21,
  RELATIVE: 22,
  LOCAL24PC: 23,
  UADDR32: 24,
  UADDR16: 25,
  REL32: 26,
  PLT32: 27,
  PLTREL32: 28,
  PLT16_LO: 29,
  PLT16_HI: 30,
  PLT16_HA: 31,
  SDAREL16: 32,
  SECTOFF: 33,
  SECTOFF_LO: 34,
  SECTOFF_HI: 35,
  SECTOFF_HA: 36,
  ADDR30: 37,
  TLS: 67,
  DTPMOD32: 68,
  TPREL16: 69,
  TPREL16_LO: 70,
  TPREL16_HI: 71,
  TPREL16_HA: 72,
  TPREL32: 73,
  DTPREL16: 74,
  DTPREL16_LO: 75,
  DTPREL16_HI: 76,
  DTPREL16_HA: 77,
  DTPREL32: 78,
  REL16: 249,
  REL16_LO: 250,
  REL16_HI: 251,
  REL16_HA: 252,
} as const;

export const R_390 = {
  NONE: 0,
  '8': 1,
  '12': 2,
  '16': 3,
  '32': 4,
  PC32: 5,
  GOT12: 6,
  GOT32: 7,
  PLT32: 8,
  COPY: 9,
  GLOB_DAT: 10,
  JMP_SLOT: 11,
  RELATIVE: 12,
  GOTOFF32: 13,
  GOTPC: 14,
  GOT16: 15,
  PC16: 16,
  PC16DBL: 17,
  PLT16DBL: 18,
  PC32DBL: 19,
  PLT32DBL: 20,
  GOTPCDBL: 21,
  '64': 22,
  PC64: 23,
  GOT64: 24,
  PLT64: 25,
  GOTENT: 26,
  GOTOFF16: 27,
  GOTOFF64: 28,
  GOTPLT12: 29,
  GOTPLT16: 30,
  GOTPLT32: 31,
  GOTPLT64: 32,
  GOTPLTENT: 33,
  PLTOFF16: 34,
  PLTOFF32: 35,
  PLTOFF64: 36,
} as const;

/** Reverse-lookup tables: value → name. */
export function reverse<T extends Record<string, number>>(table: T): Map<number, string> {
  const m = new Map<number, string>();
  for (const [k, v] of Object.entries(table)) if (!m.has(v)) m.set(v, k);
  return m;
}

const names = {
  et: reverse(ET),
  em: reverse(EM),
  sht: reverse(SHT),
  stb: reverse(STB),
  stt: reverse(STT),
  stv: reverse(STV),
  pt: reverse(PT),
  rel: new Map<number, [string, Map<number, string>]>([
    [EM.X86_64, ['R_X86_64_', reverse(R_X86_64)]],
    [EM['386'], ['R_386_', reverse(R_386)]],
    [EM.AARCH64, ['R_AARCH64_', reverse(R_AARCH64)]],
    [EM.ARM, ['R_ARM_', reverse(R_ARM)]],
    [EM.PPC, ['R_PPC_', reverse(R_PPC)]],
    [EM.S390, ['R_390_', reverse(R_390)]],
  ]),
};

const hex = (v: number | bigint) => '0x' + v.toString(16);

export const etName = (v: number) => (names.et.has(v) ? `ET_${names.et.get(v)}` : `ET_${hex(v)}`);
export const emName = (v: number) => (names.em.has(v) ? `EM_${names.em.get(v)}` : `EM_${v}`);
export function shtName(v: number, machine?: number): string {
  const n = names.sht.get(v);
  if (n !== undefined) return `SHT_${n}`;
  const p = machine !== undefined ? SHT_PROC[machine]?.[v] : undefined;
  if (p !== undefined) return `SHT_${p}`;
  // Unnamed values in the reserved ranges are spelled as readelf spells them.
  const rel = (base: number) => (v === base ? '0' : hex(v - base));
  if (v >= 0x60000000 && v <= 0x6fffffff) return `SHT_LOOS+${rel(0x60000000)}`;
  if (v >= 0x70000000 && v <= 0x7fffffff) return `SHT_LOPROC+${rel(0x70000000)}`;
  if (v >= 0x80000000) return `SHT_LOUSER+${rel(0x80000000)}`;
  return `SHT_${hex(v)}`;
}
export const stbName = (v: number) => (names.stb.has(v) ? `STB_${names.stb.get(v)}` : `STB_${v}`);
export const sttName = (v: number) => (names.stt.has(v) ? `STT_${names.stt.get(v)}` : `STT_${v}`);
export const stvName = (v: number) => (names.stv.has(v) ? `STV_${names.stv.get(v)}` : `STV_${v}`);
export const ptName = (v: number) => (names.pt.has(v) ? `PT_${names.pt.get(v)}` : `PT_${hex(v)}`);

/** Relocation type name for a machine, with a numeric fallback `R_<machine>_#<n>`. */
export function relocTypeName(machine: number, type: number): string {
  const t = names.rel.get(machine);
  if (t) {
    const n = t[1].get(type);
    if (n !== undefined) return t[0] + n;
    return `${t[0]}#${type}`;
  }
  return `R_${emName(machine).slice(3)}_#${type}`;
}

/**
 * readelf's letters for sh_flags, as GNU readelf 2.40 prints them (checked bit by bit against it in
 * test/elf/dump-vs-readelf.test.ts). Bits are taken lowest first. The generic bits have their own
 * letters; R (SHF_GNU_RETAIN) only for ELFOSABI_GNU/FREEBSD, D (SHF_GNU_MBIND) also for
 * ELFOSABI_NONE; E (SHF_EXCLUDE); l/v/y for x86-64 large, PowerPC VLE and Arm pure-code. Any other
 * bit in SHF_MASKOS prints one 'o' and swallows the rest of SHF_MASKOS, likewise 'p' for
 * SHF_MASKPROC (which, as readelf clears it, takes every bit above 31 with it); every other
 * unknown bit is an 'x'.
 */
export function flagLetters(flags: bigint, machine = 0, osabi: number = ELFOSABI.NONE): string {
  const MASKOS = 0x0ff00000n;
  const MASKPROC = 0xf0000000n;
  const gnuish = osabi === ELFOSABI.GNU || osabi === ELFOSABI.FREEBSD;
  let s = '';
  let rest = flags;
  while (rest !== 0n) {
    const bit = rest & -rest;
    rest &= ~bit;
    const generic = SHF_LETTERS.find(([b]) => b === bit && b < 0x1000n);
    if (generic) s += generic[1];
    else if (bit === SHF.GNU_RETAIN && gnuish) s += 'R';
    else if (bit === 0x1000000n && (gnuish || osabi === ELFOSABI.NONE)) s += 'D';
    else if (bit === SHF.EXCLUDE) s += 'E';
    else if (bit === 0x10000000n && (machine === EM.X86_64 || machine === 180 || machine === 181)) s += 'l';
    else if (bit === 0x10000000n && machine === EM.PPC) s += 'v';
    else if (bit === 0x20000000n && machine === EM.ARM) s += 'y';
    else if (bit & MASKOS) {
      s += 'o';
      rest &= ~MASKOS;
    }
    // readelf clears SHF_MASKPROC (an unsigned int in C) with a zero-extended complement, which
    // also drops every bit above 31; SHF_MASKOS (an int) is sign-extended and keeps them.
    else if (bit & MASKPROC) {
      s += 'p';
      rest &= ~MASKPROC & 0xffffffffn;
    } else s += 'x';
  }
  return s;
}

/* x86 instruction bytes the live-patch loader looks for (Xen's is_endbr64 / is_endbr64_poison). */
/** `endbr64`: f3 0f 1e fa. */
export const ENDBR64: readonly number[] = [0xf3, 0x0f, 0x1e, 0xfa];
/** The "poisoned" ENDBR64 Xen writes over unused ones from 4.17.0 (`nopw (%rcx)`): 66 0f 1f 01. */
export const ENDBR64_POISON: readonly number[] = [0x66, 0x0f, 0x1f, 0x01];
