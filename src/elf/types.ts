/**
 * The ELF model shared by the whole library.
 *
 * Read side (`readElf` in reader.ts): zero-copy views over the input bytes. Addresses, symbol
 * values, sizes from 64-bit fields and addends are `bigint`; file offsets, counts and indices are
 * checked `number`s. Section 0 and symbol 0 are present, so array index == ELF index.
 *
 * Write side (`ObjectBuilder` in builder.ts / writer.ts): sections, symbols and relocations refer
 * to each other by ID; real ELF indices are assigned only when writing.
 */

export type ElfClass = 32 | 64;

export interface ElfHeader {
  class: ElfClass;
  littleEndian: boolean;
  /** e_ident[EI_VERSION], e_ident[EI_OSABI], e_ident[EI_ABIVERSION]. */
  identVersion: number;
  osabi: number;
  abiVersion: number;
  type: number;
  machine: number;
  version: number;
  entry: bigint;
  phoff: number;
  shoff: number;
  flags: number;
  ehsize: number;
  phentsize: number;
  /** Real counts, after extended numbering is resolved. */
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
  /** The raw 16-bit values as stored in the header (before extended numbering). */
  rawShnum: number;
  rawShstrndx: number;
  rawPhnum: number;
}

export interface ElfSection {
  index: number;
  /** sh_name: offset into .shstrtab. */
  nameOffset: number;
  name: string;
  nameBytes: Uint8Array;
  type: number;
  flags: bigint;
  addr: bigint;
  /** sh_offset as a checked number (may still lie past the end of the file: `data()` checks). */
  offset: number;
  size: bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
  /** Byte offset of this section's header in the file. */
  headerOffset: number;
  /**
   * The section contents as a view into the file (empty for SHT_NOBITS). Throws a FormatError
   * (code ELF_SECTION_BOUNDS) naming the section when offset/size lie outside the file.
   */
  data(): Uint8Array;
}

export interface ElfSymbol {
  index: number;
  nameOffset: number;
  name: string;
  nameBytes: Uint8Array;
  value: bigint;
  size: bigint;
  /** st_info and its parts. */
  info: number;
  bind: number;
  type: number;
  /** st_other and its visibility part. */
  other: number;
  visibility: number;
  /** st_shndx resolved through .symtab_shndx when it is SHN_XINDEX. Reserved values (UND 0, ABS 0xfff1, COMMON 0xfff2, …) stay as they are. */
  shndx: number;
  /** The 16-bit st_shndx as stored. */
  rawShndx: number;
}

export interface ElfRelocation {
  offset: bigint;
  type: number;
  /** Symbol index into the linked symbol table (0 = STN_UNDEF). */
  symbol: number;
  /** null for SHT_REL. */
  addend: bigint | null;
  /** r_info as stored. */
  info: bigint;
}

export interface ElfRelocSection {
  /** The SHT_REL/SHT_RELA section itself. */
  section: ElfSection;
  /** sh_info: index of the section the relocations apply to. */
  target: number;
  /** sh_link: index of the symbol table. */
  symtab: number;
  rela: boolean;
  entries: ElfRelocation[];
}

export interface ElfNote {
  /** Index of the SHT_NOTE section (or -1 when read from a program header). */
  section: number;
  /** File offset of the note header. */
  offset: number;
  namesz: number;
  descsz: number;
  type: number;
  /** Owner name without the trailing NUL. */
  name: string;
  desc: Uint8Array;
}

export interface ElfGroup {
  section: number;
  /** GRP_COMDAT etc. */
  flags: number;
  members: number[];
  /** Signature symbol index (sh_info of the group section). */
  signature: number;
}

export interface ElfProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export interface ElfFile {
  /** The whole input; every `data()` is a view into it. */
  bytes: Uint8Array;
  /** For error messages. */
  file?: string;
  header: ElfHeader;
  /** All section headers, index 0 included. */
  sections: ElfSection[];
  programHeaders: ElfProgramHeader[];
  /** The lowest-index section with this exact name (the rule Xen uses). */
  sectionByName(name: string): ElfSection | undefined;
  /** The (single) SHT_SYMTAB section, if any. */
  symtabSection(): ElfSection | undefined;
  /** Symbols of .symtab (or of the given SHT_SYMTAB/SHT_DYNSYM section), symbol 0 included. Cached. */
  symbols(section?: ElfSection): ElfSymbol[];
  /** Every SHT_REL/SHT_RELA section, decoded. */
  relocations(): ElfRelocSection[];
  /** Every note in every SHT_NOTE section (4- or 8-byte alignment per sh_addralign). */
  notes(): ElfNote[];
  groups(): ElfGroup[];
  /** NUL-terminated string at `offset` of the string table section `strtab`. Checked. */
  stringAt(strtab: number, offset: number): string;
}

/* ------------------------------------------------------------------------------------------ */
/* Write side                                                                                  */

export type SectionId = number & { readonly __brand?: 'SectionId' };
export type SymbolId = number & { readonly __brand?: 'SymbolId' };

/** Where a symbol is defined: a section of the model, or one of the special indices. */
export type SymbolSection = SectionId | 'UND' | 'ABS' | 'COM';

export interface SectionSpec {
  name: string | Uint8Array;
  type: number;
  flags: bigint;
  addralign: bigint;
  entsize?: bigint;
  addr?: bigint;
  /** Contents (absent for SHT_NOBITS). */
  data?: Uint8Array;
  /** Only for SHT_NOBITS: the size. */
  size?: bigint;
  /** sh_link as another section of the model (e.g. SHF_LINK_ORDER). */
  link?: SectionId;
  /** sh_info as a raw number, when it is not a section reference. */
  info?: number;
}

export interface SymbolSpec {
  name: string | Uint8Array;
  bind: number;
  type: number;
  /** st_other (visibility in the low 2 bits). Default 0. */
  other?: number;
  section: SymbolSection;
  value: bigint;
  size: bigint;
}

export interface RelocationSpec {
  offset: bigint;
  type: number;
  /** A symbol of the model, or 0 for STN_UNDEF. */
  symbol: SymbolId | 0;
  /** Ignored for SHT_REL sections. */
  addend: bigint;
}

/** ELF header fields of a model (ObjectBuilder) that the writer does not derive. */
export interface BuilderOptions {
  class: ElfClass;
  littleEndian: boolean;
  machine: number;
  /** e_flags (e.g. EF_ARM_EABI_VER5). */
  flags?: number;
  osabi?: number;
  abiVersion?: number;
  /** e_type, default ET_REL. */
  type?: number;
  /**
   * Write a .symtab even when the model has no symbols, relocations or groups (default false: like
   * GNU as, an object without symbols gets no symbol table). fromElf sets it when the input had one.
   */
  keepEmptySymtab?: boolean;
}

/** The relocations that apply to one section of a model (one SHT_REL or SHT_RELA section when written). */
export interface RelocationSet {
  rela: boolean;
  entries: RelocationSpec[];
  /** Section name; default `.rela<target>` / `.rel<target>`. */
  name?: string | Uint8Array;
  /** sh_flags of the relocation section; default SHF_INFO_LINK (plus SHF_GROUP when the target has it). */
  flags?: bigint;
}

/** An SHT_GROUP section of a model: its signature symbol, flags (GRP_COMDAT) and member sections. */
export interface GroupSpec {
  name?: string | Uint8Array;
  signature: SymbolId;
  flags: number;
  members: SectionId[];
}
