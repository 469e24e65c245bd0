/**
 * ELF reader: ELF32/ELF64, either byte order, extended section numbering, symbols with
 * .symtab_shndx, REL/RELA, notes, groups. Zero-copy: every `data()` is a view into the input.
 *
 * Hostile input: every offset, size, count and link taken from the file is checked before it is
 * used, and a failure is a FormatError with a stable code, the file offset, the section involved
 * and what was expected against what was found. No allocation is larger than the input justifies
 * (counts are bounded by the bytes that back them), and every loop is bounded by the input size.
 *
 * Speed: section headers, symbols and relocations are decoded field by field from the layout
 * tables straight into their records (no intermediate objects); small 64-bit values share their
 * bigints (layout.readBigField); names are decoded once, ASCII through Buffer's latin1 path, and
 * `nameBytes` is a view made on first use. Error contexts are built only when something fails.
 *
 * Why one file: most of it is the one `Reader` class, whose section, symbol, relocation, note and
 * group decoders share its bounds checks, error contexts, layout tables and caches; splitting the
 * decoders apart would spread that shared state over several modules.
 */
import { FormatError, type ErrorContext } from '../errors.js';
import { ELFCLASS, ELFDATA, SHN, SHT } from './constants.js';
import { EI, EI_NIDENT, dataView, decodeRecord, layoutsFor, readBigField, readSafeField, type ClassLayouts } from './layout.js';
import { walkNoteRecords } from './note-walk.js';
import { isAsciiName } from './strtab.js';
import type {
  ElfFile,
  ElfGroup,
  ElfHeader,
  ElfNote,
  ElfProgramHeader,
  ElfRelocSection,
  ElfRelocation,
  ElfSection,
  ElfSymbol,
} from './types.js';

export interface ReadOptions {
  /** File name for error messages. */
  file?: string;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const utf8 = new TextDecoder('utf-8', { fatal: false });
const EMPTY = new Uint8Array(0);
const SYMBOL_TYPES = [SHT.SYMTAB, SHT.DYNSYM];
const RELOC_TYPES = [SHT.REL, SHT.RELA, SHT.RELR, SHT.CREL];
const NOTE_TYPES = [SHT.NOTE];
const GROUP_TYPES = [SHT.GROUP];

/** The bytes of an ASCII string. */
function asciiBytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** Converts a 64-bit field to a number, refusing values above 2^53 (they cannot be offsets into a real file). */
export function checkedNumber(v: bigint, what: string, ctx: ErrorContext): number {
  if (v < 0n || v > MAX_SAFE) {
    throw new FormatError('ELF_FIELD_RANGE', `${what} is out of range`, { ...ctx, expected: '< 2^53', found: '0x' + v.toString(16) });
  }
  return Number(v);
}

export function readElf(bytes: Uint8Array, opts: ReadOptions = {}): ElfFile {
  return new Reader(bytes, opts.file).file;
}

/**
 * Refuses a file two of whose sections (other than SHT_NOBITS and empty ones) share file bytes.
 * Compilers and `ld -r` never make such objects; a tool that copies sections out (buildid set,
 * build) would otherwise copy the same bytes once per header, thousands of times the input.
 */
export function refuseSharedContents(elf: ElfFile, file?: string): void {
  const len = elf.bytes.length;
  const lenBig = BigInt(len);
  let spans: { s: ElfSection; start: number; end: number }[] = [];
  let ordered = true;
  for (const s of elf.sections) {
    if (s.type === SHT.NOBITS || s.type === SHT.NULL || s.size === 0n || s.offset >= len) continue;
    if (spans.length && s.offset < spans[spans.length - 1]!.start) ordered = false;
    spans.push({ s, start: s.offset, end: s.size > lenBig ? len : Math.min(len, s.offset + Number(s.size)) });
  }
  if (!ordered) spans = spans.sort((a, b) => a.start - b.start || a.s.index - b.s.index);
  let prev: (typeof spans)[number] | undefined;
  for (const x of spans) {
    if (prev && x.start < prev.end) {
      throw new FormatError(
        'ELF_OVERLAP',
        `shares file bytes with section [${prev.s.index}] ${prev.s.name}: sections of an object never overlap`,
        {
          ...(file !== undefined ? { file } : {}),
          sectionIndex: x.s.index,
          section: x.s.name,
          offset: x.s.headerOffset,
          expected: `sh_offset >= 0x${prev.end.toString(16)}`,
          found: `sh_offset 0x${x.start.toString(16)}`,
        },
      );
    }
    if (!prev || x.end > prev.end) prev = x;
  }
}

/** True when the bytes start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

/**
 * A string table being read: its bytes, and a Buffer over the same memory for the latin1 fast path.
 */
class StrTab {
  readonly buf: Buffer;
  constructor(readonly bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /**
   * End (exclusive) of the NUL-terminated string at `off`, or -1 when `off` is past the end, or
   * -2 when no NUL follows. `off` is checked by the caller's error path, not here.
   */
  end(off: number): number {
    const t = this.bytes;
    const n = t.length;
    if (off >= n) return -1;
    let e = off;
    while (e < n && t[e] !== 0) e++;
    return e < n ? e : -2;
  }
  /** The text of [off, end): latin1 when every byte is ASCII (the same text UTF-8 gives), else UTF-8. */
  text(off: number, end: number): string {
    if (end === off) return '';
    const t = this.bytes;
    let hi = 0;
    for (let i = off; i < end; i++) hi |= t[i]!;
    return hi < 0x80 ? this.buf.toString('latin1', off, end) : utf8.decode(t.subarray(off, end));
  }
}

/**
 * A section header as read: plain fields, `data()`, and a name checked when the file is read but
 * decoded (`name`) or viewed (`nameBytes`) on first use: a reader that needs one section by name
 * (the build-id patch of a 15,000-section payload) decodes none of the others.
 */
class ReadSection implements ElfSection {
  #reader: Reader;
  #name: string | undefined = '';
  #nameBytes: Uint8Array | undefined;
  #nameEnd = -1;
  constructor(
    reader: Reader,
    public index: number,
    public nameOffset: number,
    public type: number,
    public flags: bigint,
    public addr: bigint,
    public offset: number,
    public size: bigint,
    public link: number,
    public info: number,
    public addralign: bigint,
    public entsize: bigint,
    public headerOffset: number,
  ) {
    this.#reader = reader;
  }
  /** Records where the name ends in .shstrtab (the reader has checked it); decoded on first use. */
  setNameEnd(end: number): void {
    this.#name = undefined;
    this.#nameEnd = end;
  }
  get name(): string {
    if (this.#name === undefined) this.#name = this.#reader.shstrtab!.text(this.nameOffset, this.#nameEnd);
    return this.#name;
  }
  set name(n: string) {
    this.#name = n;
  }
  /** True when the stored name is exactly these bytes (no decoding). */
  nameIs(bytes: Uint8Array): boolean {
    const off = this.nameOffset;
    const end = this.#nameEnd;
    if (end < 0) return bytes.length === 0;
    if (end - off !== bytes.length) return false;
    const t = this.#reader.shstrtab!.bytes;
    for (let i = 0; i < bytes.length; i++) if (t[off + i] !== bytes[i]) return false;
    return true;
  }
  get nameBytes(): Uint8Array {
    if (this.#nameBytes === undefined) {
      this.#nameBytes = this.#nameEnd < 0 ? EMPTY : this.#reader.shstrtab!.bytes.subarray(this.nameOffset, this.#nameEnd);
    }
    return this.#nameBytes;
  }
  set nameBytes(b: Uint8Array) {
    this.#nameBytes = b;
  }
  data(): Uint8Array {
    return this.#reader.sectionData(this);
  }
}

/** A symbol as read: plain fields and a lazily made `nameBytes`. */
class ReadSymbol implements ElfSymbol {
  #table: StrTab;
  #nameEnd: number;
  #nameBytes: Uint8Array | undefined;
  bind: number;
  type: number;
  visibility: number;
  constructor(
    table: StrTab,
    nameEnd: number,
    public index: number,
    public nameOffset: number,
    public name: string,
    public value: bigint,
    public size: bigint,
    public info: number,
    public other: number,
    public shndx: number,
    public rawShndx: number,
  ) {
    this.#table = table;
    this.#nameEnd = nameEnd;
    this.bind = info >> 4;
    this.type = info & 0xf;
    this.visibility = other & 3;
  }
  get nameBytes(): Uint8Array {
    if (this.#nameBytes === undefined) {
      this.#nameBytes = this.#nameEnd < 0 ? this.#table.bytes.subarray(0, 0) : this.#table.bytes.subarray(this.nameOffset, this.#nameEnd);
    }
    return this.#nameBytes;
  }
  set nameBytes(b: Uint8Array) {
    this.#nameBytes = b;
  }
}

class Reader {
  readonly file: ElfFile;
  shstrtab: StrTab | undefined;
  private readonly bytes: Uint8Array;
  private readonly lenBig: bigint;
  private readonly dv: DataView;
  private readonly le: boolean;
  private readonly L: ClassLayouts;
  private readonly name?: string;
  private readonly symCache = new Map<number, ElfSymbol[]>();
  private readonly symCountCache = new Map<number, number>();
  private relocCache?: ElfRelocSection[];
  private noteCache?: ElfNote[];
  private groupCache?: ElfGroup[];
  private readonly disjoint = new Set<string>();

  constructor(bytes: Uint8Array, name?: string) {
    this.bytes = bytes;
    this.lenBig = BigInt(bytes.length);
    this.name = name;
    this.dv = dataView(bytes);
    const len = bytes.length;
    if (len < EI_NIDENT) {
      throw this.err('ELF_TRUNCATED', 'file too short for e_ident', {
        offset: 0,
        expected: `at least ${EI_NIDENT} bytes`,
        found: `${len} bytes`,
      });
    }
    if (!isElf(bytes)) {
      const found = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw this.err('ELF_BAD_MAGIC', 'not an ELF file', { offset: 0, expected: '7f 45 4c 46', found });
    }
    const cls = bytes[EI.CLASS]!;
    if (cls !== ELFCLASS['32'] && cls !== ELFCLASS['64']) {
      throw this.err('ELF_BAD_CLASS', 'unknown EI_CLASS', { offset: EI.CLASS, expected: '1 (ELFCLASS32) or 2 (ELFCLASS64)', found: cls });
    }
    const data = bytes[EI.DATA]!;
    if (data !== ELFDATA['2LSB'] && data !== ELFDATA['2MSB']) {
      throw this.err('ELF_BAD_DATA', 'unknown EI_DATA', { offset: EI.DATA, expected: '1 (LSB) or 2 (MSB)', found: data });
    }
    this.le = data === ELFDATA['2LSB'];
    const elfClass = cls === ELFCLASS['64'] ? 64 : 32;
    this.L = layoutsFor(elfClass);
    if (len < this.L.ehdr.size) {
      throw this.err('ELF_TRUNCATED', `file too short for the ${this.L.ehdr.name}`, {
        offset: 0,
        expected: `at least ${this.L.ehdr.size} bytes`,
        found: `${len} bytes`,
      });
    }
    const e = decodeRecord(this.L.ehdr, this.dv, 0, this.le);
    const shoff = this.checked(e.e_shoff as bigint, 'e_shoff', { offset: this.L.ehdr.fields.e_shoff.offset });
    const phoff = this.checked(e.e_phoff as bigint, 'e_phoff', { offset: this.L.ehdr.fields.e_phoff.offset });
    const shentsize = e.e_shentsize as number;
    const rawShnum = e.e_shnum as number;
    const rawShstrndx = e.e_shstrndx as number;
    const rawPhnum = e.e_phnum as number;
    let shnum = rawShnum;
    let shstrndx = rawShstrndx;
    let phnum = rawPhnum;
    const shdrSize = this.L.shdr.size;

    // Section header 0 carries the real counts under extended numbering.
    if (shoff !== 0) {
      if (shentsize < shdrSize) {
        throw this.err('ELF_SHENTSIZE', 'e_shentsize is too small for a section header', {
          offset: this.L.ehdr.fields.e_shentsize.offset,
          expected: `>= ${shdrSize}`,
          found: shentsize,
        });
      }
      if (shoff > len || len - shoff < shdrSize) {
        throw this.err('ELF_SHDR_BOUNDS', 'section header table starts past the end of the file', {
          offset: this.L.ehdr.fields.e_shoff.offset,
          expected: `e_shoff + ${shdrSize} <= ${len}`,
          found: `e_shoff 0x${shoff.toString(16)}`,
        });
      }
      const s0 = decodeRecord(this.L.shdr, this.dv, shoff, this.le);
      if (rawShnum === 0) {
        const claimed = s0.sh_size as bigint;
        const fits = BigInt(Math.floor((len - shoff) / shentsize));
        if (claimed > fits) {
          throw this.err('ELF_SHNUM', 'section count (extended numbering, section 0 sh_size) exceeds what the file holds', {
            offset: shoff + this.L.shdr.fields.sh_size.offset,
            sectionIndex: 0,
            expected: `<= ${fits}`,
            found: claimed.toString(),
          });
        }
        shnum = Number(claimed);
      }
      if (rawShstrndx === SHN.XINDEX) shstrndx = s0.sh_link as number;
      if (rawPhnum === 0xffff) phnum = s0.sh_info as number;
    } else if (rawShnum !== 0) {
      throw this.err('ELF_SHDR_BOUNDS', 'e_shnum is set but e_shoff is 0', {
        offset: this.L.ehdr.fields.e_shoff.offset,
        expected: 'e_shoff != 0',
        found: 0,
      });
    }

    if (shnum > 0) {
      const avail = Math.floor((len - shoff) / shentsize);
      if (shnum > avail) {
        throw this.err('ELF_SHDR_BOUNDS', 'section header table runs past the end of the file', {
          offset: shoff,
          expected: `e_shoff + ${shnum} * ${shentsize} <= ${len}`,
          found: `room for ${avail} headers`,
        });
      }
    }

    // Program headers.
    const programHeaders: ElfProgramHeader[] = [];
    if (phnum > 0) {
      const phsz = this.L.phdr.size;
      const phentsize = e.e_phentsize as number;
      if (phentsize < phsz) {
        throw this.err('ELF_PHENTSIZE', 'e_phentsize is too small for a program header', {
          offset: this.L.ehdr.fields.e_phentsize.offset,
          expected: `>= ${phsz}`,
          found: phentsize,
        });
      }
      if (phoff > len || Math.floor((len - phoff) / phentsize) < phnum) {
        throw this.err('ELF_PHDR_BOUNDS', 'program header table runs past the end of the file', {
          offset: this.L.ehdr.fields.e_phoff.offset,
          expected: `e_phoff + ${phnum} * ${phentsize} <= ${len}`,
          found: `e_phoff 0x${phoff.toString(16)}`,
        });
      }
      for (let i = 0; i < phnum; i++) {
        const at = phoff + i * phentsize;
        const p = decodeRecord(this.L.phdr, this.dv, at, this.le);
        programHeaders.push({
          type: p.p_type as number,
          flags: p.p_flags as number,
          offset: this.checked(p.p_offset as bigint, 'p_offset', { offset: at + this.L.phdr.fields.p_offset.offset }),
          vaddr: p.p_vaddr as bigint,
          paddr: p.p_paddr as bigint,
          filesz: p.p_filesz as bigint,
          memsz: p.p_memsz as bigint,
          align: p.p_align as bigint,
        });
      }
    }

    const header: ElfHeader = {
      class: elfClass,
      littleEndian: this.le,
      identVersion: bytes[EI.VERSION]!,
      osabi: bytes[EI.OSABI]!,
      abiVersion: bytes[EI.ABIVERSION]!,
      type: e.e_type as number,
      machine: e.e_machine as number,
      version: e.e_version as number,
      entry: e.e_entry as bigint,
      phoff,
      shoff,
      flags: e.e_flags as number,
      ehsize: e.e_ehsize as number,
      phentsize: e.e_phentsize as number,
      phnum,
      shentsize,
      shnum,
      shstrndx,
      rawShnum,
      rawShstrndx,
      rawPhnum,
    };

    // Section headers (names resolved below, once .shstrtab is known to be sound).
    const sections: ReadSection[] = [];
    const F = this.L.shdr.fields;
    const dv = this.dv;
    const le = this.le;
    for (let i = 0; i < shnum; i++) {
      const at = shoff + i * shentsize;
      let offset = readSafeField(dv, at, F.sh_offset, le);
      if (offset < 0) {
        offset = this.checked(readBigField(dv, at, F.sh_offset, le), 'sh_offset', { offset: at + F.sh_offset.offset, sectionIndex: i });
      }
      sections.push(
        new ReadSection(
          this,
          i,
          dv.getUint32(at + F.sh_name.offset, le),
          dv.getUint32(at + F.sh_type.offset, le),
          readBigField(dv, at, F.sh_flags, le),
          readBigField(dv, at, F.sh_addr, le),
          offset,
          readBigField(dv, at, F.sh_size, le),
          dv.getUint32(at + F.sh_link.offset, le),
          dv.getUint32(at + F.sh_info.offset, le),
          readBigField(dv, at, F.sh_addralign, le),
          readBigField(dv, at, F.sh_entsize, le),
          at,
        ),
      );
    }

    if (shnum > 0 && shstrndx !== SHN.UNDEF) {
      if (shstrndx >= shnum) {
        throw this.err('ELF_SHSTRNDX', 'e_shstrndx is past the end of the section table', {
          offset: this.L.ehdr.fields.e_shstrndx.offset,
          expected: `< ${shnum}`,
          found: shstrndx,
        });
      }
      const strtab = sections[shstrndx]!;
      if (strtab.type === SHT.NOBITS) {
        throw this.err('ELF_STRTAB_TYPE', 'section name table has no contents (SHT_NOBITS)', {
          sectionIndex: shstrndx,
          offset: strtab.headerOffset,
        });
      }
      const table = new StrTab(this.sectionData(strtab));
      this.shstrtab = table;
      for (let k = 0; k < sections.length; k++) {
        const sec = sections[k]!;
        if (sec.index === 0 && sec.nameOffset === 0) continue;
        const off = sec.nameOffset;
        const end = table.end(off);
        if (end < 0) this.cString(table.bytes, off, strtab, { sectionIndex: sec.index, offset: sec.headerOffset }, 'section name'); // throws
        sec.setNameEnd(end);
      }
    }

    // sectionByName: the first few look-ups scan (most readers ask for one or two names); after
    // that a map of every name is built once.
    let byName: Map<string, ElfSection> | undefined;
    let lookups = 0;
    let symtab: ElfSection | null | undefined;
    this.file = {
      bytes,
      file: name,
      header,
      sections,
      programHeaders,
      sectionByName: (n) => {
        if (!byName && ++lookups <= 4) {
          if (isAsciiName(n)) {
            // An ASCII name equals the decoded name exactly when the stored bytes are its bytes.
            const nb = asciiBytes(n);
            for (let i = 1; i < sections.length; i++) if (sections[i]!.nameIs(nb)) return sections[i];
            return undefined;
          }
          for (let i = 1; i < sections.length; i++) if (sections[i]!.name === n) return sections[i];
          return undefined;
        }
        if (!byName) {
          byName = new Map();
          for (const s of sections) if (s.index !== 0 && !byName.has(s.name)) byName.set(s.name, s);
        }
        return byName.get(n);
      },
      symtabSection: () => {
        if (symtab === undefined) symtab = sections.find((s) => s.type === SHT.SYMTAB) ?? null;
        return symtab ?? undefined;
      },
      symbols: (sec) => this.symbols(sec),
      relocations: () => this.relocations(),
      notes: () => this.notes(),
      groups: () => this.groups(),
      stringAt: (strtab, offset) => {
        const sec = this.sectionAt(strtab, 'string table', {});
        return utf8.decode(this.cString(this.sectionData(sec), offset, sec, {}, 'string'));
      },
    };
  }

  /** checkedNumber with the file name in the error. */
  private checked(v: bigint, what: string, ctx: ErrorContext): number {
    return checkedNumber(v, what, this.name !== undefined ? { file: this.name, ...ctx } : ctx);
  }

  private err(code: string, detail: string, ctx: ErrorContext): FormatError {
    return new FormatError(code, detail, this.name !== undefined ? { file: this.name, ...ctx } : ctx);
  }

  private secCtx(sec: ElfSection): ErrorContext {
    return { sectionIndex: sec.index, section: sec.name || undefined };
  }

  private sectionAt(index: number, what: string, ctx: ErrorContext): ElfSection {
    const sections = this.file?.sections;
    if (!sections || index <= 0 || index >= sections.length) {
      throw this.err('ELF_LINK_RANGE', `${what} index is out of range`, {
        ...ctx,
        expected: `1..${(sections?.length ?? 1) - 1}`,
        found: index,
      });
    }
    return sections[index]!;
  }

  sectionData(sec: ElfSection): Uint8Array {
    if (sec.type === SHT.NOBITS || sec.type === SHT.NULL) return this.bytes.subarray(0, 0);
    const len = this.bytes.length;
    if (sec.size > this.lenBig || sec.offset > len || sec.offset + Number(sec.size) > len) {
      throw this.err('ELF_SECTION_BOUNDS', 'section contents lie outside the file', {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: `sh_offset + sh_size <= ${len}`,
        found: `sh_offset 0x${sec.offset.toString(16)} + sh_size 0x${sec.size.toString(16)}`,
      });
    }
    return this.bytes.subarray(sec.offset, sec.offset + Number(sec.size));
  }

  /** The NUL-terminated string at `off` of `table` (a view of section `sec`). */
  private cString(table: Uint8Array, off: number, sec: ElfSection, ctx: ErrorContext, what: string): Uint8Array {
    if (off >= table.length) {
      throw this.err('ELF_NAME_RANGE', `${what} offset is past the end of its string table ${sec.name || `[${sec.index}]`}`, {
        ...ctx,
        expected: `< ${table.length}`,
        found: off,
      });
    }
    const end = table.indexOf(0, off);
    if (end < 0) {
      throw this.err('ELF_STRTAB_UNTERMINATED', `string table ${sec.name || `[${sec.index}]`} has no final NUL`, {
        ...ctx,
        offset: sec.offset + table.length - 1,
        expected: 'a NUL-terminated string',
        found: 'end of section',
      });
    }
    return table.subarray(off, end);
  }

  private entrySize(sec: ElfSection, min: number, what: string): number {
    const es = sec.entsize;
    const ent =
      es === 0n ? min : es <= MAX_SAFE ? Number(es) : this.checked(es, 'sh_entsize', { ...this.secCtx(sec), offset: sec.headerOffset });
    if (ent < min) {
      throw this.err('ELF_ENTSIZE', `${what} entry size is too small`, {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: `>= ${min}`,
        found: ent,
      });
    }
    if (sec.size > this.lenBig) {
      throw this.err('ELF_SECTION_BOUNDS', `${what} is larger than the file`, {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: `sh_size <= ${this.bytes.length}`,
        found: `sh_size 0x${sec.size.toString(16)}`,
      });
    }
    const size = Number(sec.size);
    if (size % ent !== 0) {
      throw this.err('ELF_ENTSIZE', `${what} size is not a multiple of its entry size`, {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: `a multiple of ${ent}`,
        found: sec.size.toString(),
      });
    }
    return ent;
  }

  /**
   * Refuses two sections of one kind (relocations, notes, symbol tables, groups) whose contents
   * share file bytes: each byte is then decoded once, and the total of entries, notes and symbols
   * is bounded by the file's size (thousands of headers naming one block cannot multiply the work).
   */
  private checkDisjoint(kind: string, types: readonly number[]): void {
    if (this.disjoint.has(kind)) return;
    const len = this.bytes.length;
    const sections = this.file.sections;
    // Spans in section order; sorted by start only when the file does not lay them out in order.
    let spans: { start: number; end: number; sec: ElfSection }[] = [];
    let ordered = true;
    for (let i = 1; i < sections.length; i++) {
      const sec = sections[i]!;
      if (!types.includes(sec.type) || sec.size === 0n || sec.offset >= len) continue;
      const end = sec.size > this.lenBig ? len : Math.min(len, sec.offset + Number(sec.size));
      if (spans.length && sec.offset < spans[spans.length - 1]!.start) ordered = false;
      spans.push({ start: sec.offset, end, sec });
    }
    if (!ordered) spans = spans.sort((a, b) => a.start - b.start || a.sec.index - b.sec.index);
    let prev: (typeof spans)[number] | undefined;
    for (const s of spans) {
      if (prev && s.start < prev.end) {
        throw this.err('ELF_OVERLAP', `${kind} section shares file bytes with ${kind} section [${prev.sec.index}] ${prev.sec.name}`, {
          ...this.secCtx(s.sec),
          offset: s.sec.headerOffset,
          expected: `sh_offset >= 0x${prev.end.toString(16)}`,
          found: `sh_offset 0x${s.start.toString(16)}`,
        });
      }
      if (!prev || s.end > prev.end) prev = s;
    }
    this.disjoint.add(kind);
  }

  /** Entry count of a symbol table section (its entry size checked), cached per section. */
  private symCount(symSec: ElfSection): number {
    let n = this.symCountCache.get(symSec.index);
    if (n === undefined) {
      n = Number(symSec.size) / this.entrySize(symSec, this.L.sym.size, 'symbol table');
      this.symCountCache.set(symSec.index, n);
    }
    return n;
  }

  private linkedStrtab(sec: ElfSection): ElfSection {
    if (sec.link === 0 || sec.link >= this.file.sections.length) {
      throw this.err('ELF_LINK_RANGE', 'sh_link of the symbol table does not name a section', {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: `1..${this.file.sections.length - 1}`,
        found: sec.link,
      });
    }
    const str = this.file.sections[sec.link]!;
    if (str.type !== SHT.STRTAB) {
      throw this.err('ELF_LINK_TYPE', `sh_link of the symbol table names section [${str.index}] ${str.name}, which is not a string table`, {
        ...this.secCtx(sec),
        offset: sec.headerOffset,
        expected: 'SHT_STRTAB',
        found: `type ${str.type}`,
      });
    }
    return str;
  }

  symbols(section?: ElfSection): ElfSymbol[] {
    const sec = section ?? this.file.symtabSection();
    if (!sec) return [];
    const cached = this.symCache.get(sec.index);
    if (cached) return cached;
    this.checkDisjoint('symbol table', SYMBOL_TYPES);
    if (sec.type !== SHT.SYMTAB && sec.type !== SHT.DYNSYM) {
      throw this.err('ELF_LINK_TYPE', 'not a symbol table', {
        ...this.secCtx(sec),
        expected: 'SHT_SYMTAB or SHT_DYNSYM',
        found: `type ${sec.type}`,
      });
    }
    const L = this.L.sym;
    const ent = this.entrySize(sec, L.size, 'symbol table');
    const data = this.sectionData(sec);
    const strSec = this.linkedStrtab(sec);
    const strBytes = this.sectionData(strSec);
    const count = data.length / ent;

    // SHN_XINDEX values come from the SHT_SYMTAB_SHNDX section linked to this table.
    let xindex: DataView | undefined;
    const shndxSec = this.file.sections.find((s) => s.type === SHT.SYMTAB_SHNDX && s.link === sec.index);
    if (shndxSec) {
      const x = this.sectionData(shndxSec);
      if (x.length < count * 4) {
        throw this.err('ELF_SHNDX_SIZE', 'extended section index table is shorter than its symbol table', {
          ...this.secCtx(shndxSec),
          offset: shndxSec.headerOffset,
          expected: `>= ${count * 4} bytes`,
          found: `${x.length} bytes`,
        });
      }
      xindex = dataView(x);
    }

    const strtab = new StrTab(strBytes);
    const dv = dataView(data);
    const le = this.le;
    const F = L.fields;
    const oName = F.st_name.offset;
    const oInfo = F.st_info.offset;
    const oOther = F.st_other.offset;
    const oShndx = F.st_shndx.offset;
    const out: ElfSymbol[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const base = i * ent;
      const nameOffset = dv.getUint32(base + oName, le);
      let name = '';
      let nameEnd = -1;
      if (nameOffset !== 0) {
        nameEnd = strtab.end(nameOffset);
        if (nameEnd < 0) {
          this.cString(strBytes, nameOffset, strSec, { ...this.secCtx(sec), offset: sec.offset + base, symbol: `#${i}` }, 'symbol name'); // throws
        }
        name = strtab.text(nameOffset, nameEnd);
      }
      const rawShndx = dv.getUint16(base + oShndx, le);
      let shndx = rawShndx;
      if (rawShndx === SHN.XINDEX) {
        if (!xindex) {
          throw this.err('ELF_SHNDX_MISSING', 'symbol uses SHN_XINDEX but there is no .symtab_shndx section', {
            ...this.secCtx(sec),
            offset: sec.offset + base,
            symbol: `#${i}`,
          });
        }
        shndx = xindex.getUint32(i * 4, le);
      }
      out[i] = new ReadSymbol(
        strtab,
        nameEnd,
        i,
        nameOffset,
        name,
        readBigField(dv, base, F.st_value, le),
        readBigField(dv, base, F.st_size, le),
        data[base + oInfo]!,
        data[base + oOther]!,
        shndx,
        rawShndx,
      );
    }
    this.symCache.set(sec.index, out);
    return out;
  }

  relocations(): ElfRelocSection[] {
    if (this.relocCache) return this.relocCache;
    this.checkDisjoint('relocation', RELOC_TYPES);
    const out: ElfRelocSection[] = [];
    const is64 = this.header.class === 64;
    const le = this.le;
    const sections = this.file.sections;
    const nsec = sections.length;
    for (let k = 0; k < sections.length; k++) {
      const sec = sections[k]!;
      if (sec.type !== SHT.REL && sec.type !== SHT.RELA) continue;
      const rela = sec.type === SHT.RELA;
      const L = rela ? this.L.rela : this.L.rel;
      // Symbol indices in r_info are checked against the linked table's entry count.
      let nsyms = Infinity;
      if (sec.link !== 0) {
        if (sec.link >= nsec)
          throw this.err('ELF_LINK_RANGE', 'sh_link of the relocation section is out of range', {
            ...this.secCtx(sec),
            offset: sec.headerOffset,
            expected: `< ${nsec}`,
            found: sec.link,
          });
        const symSec = sections[sec.link]!;
        const t = symSec.type;
        if (t !== SHT.SYMTAB && t !== SHT.DYNSYM) {
          throw this.err('ELF_LINK_TYPE', `sh_link of the relocation section names section [${sec.link}], which is not a symbol table`, {
            ...this.secCtx(sec),
            offset: sec.headerOffset,
            expected: 'SHT_SYMTAB or SHT_DYNSYM',
            found: `type ${t}`,
          });
        }
        nsyms = this.symCount(symSec);
      }
      if (sec.info >= nsec)
        throw this.err('ELF_INFO_RANGE', 'sh_info of the relocation section is out of range', {
          ...this.secCtx(sec),
          offset: sec.headerOffset,
          expected: `< ${nsec}`,
          found: sec.info,
        });
      const ent = this.entrySize(sec, L.size, 'relocation section');
      // The entries are read through the file's own DataView (no view per section); sectionData
      // is only called to report contents outside the file.
      if (sec.size > this.lenBig || sec.offset > this.bytes.length || sec.offset + Number(sec.size) > this.bytes.length)
        this.sectionData(sec);
      const dv = this.dv;
      const n = Number(sec.size) / ent;
      const start = sec.offset;
      const F = L.fields;
      // r_info: ELF64 symbol in the high word and type in the low word; ELF32 symbol << 8 | type.
      const oInfo = F.r_info.offset;
      const oHi = le ? oInfo + 4 : oInfo;
      const oLo = le ? oInfo : oInfo + 4;
      const addendDef = rela ? (F as typeof this.L.rela.fields).r_addend : undefined;
      const entries: ElfRelocation[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const base = start + i * ent;
        let symbol: number;
        let type: number;
        if (is64) {
          symbol = dv.getUint32(base + oHi, le);
          type = dv.getUint32(base + oLo, le);
        } else {
          const w = dv.getUint32(base + oInfo, le);
          symbol = w >>> 8;
          type = w & 0xff;
        }
        if (symbol >= nsyms) {
          throw this.err('ELF_RELOC_SYMBOL', `relocation ${i} refers to a symbol past the end of its symbol table`, {
            ...this.secCtx(sec),
            offset: sec.offset + i * ent,
            expected: `< ${nsyms}`,
            found: symbol,
          });
        }
        entries[i] = {
          offset: readBigField(dv, base, F.r_offset, le),
          info: readBigField(dv, base, F.r_info, le),
          symbol,
          type,
          addend: addendDef ? readBigField(dv, base, addendDef, le) : null,
        };
      }
      out.push({ section: sec, target: sec.info, symtab: sec.link, rela, entries });
    }
    this.relocCache = out;
    return out;
  }

  notes(): ElfNote[] {
    if (this.noteCache) return this.noteCache;
    this.checkDisjoint('note', NOTE_TYPES);
    const out: ElfNote[] = [];
    const fileSections = this.file.sections;
    for (let k = 0; k < fileSections.length; k++) {
      const sec = fileSections[k]!;
      if (sec.type !== SHT.NOTE) continue;
      out.push(
        ...parseNotes(this.sectionData(sec), sec.addralign === 8n ? 8 : 4, this.le, sec.offset, sec.index, (detail, off, exp, found) =>
          this.err('ELF_NOTE_BOUNDS', detail, { ...this.secCtx(sec), offset: off, expected: exp, found }),
        ),
      );
    }
    this.noteCache = out;
    return out;
  }

  groups(): ElfGroup[] {
    if (this.groupCache) return this.groupCache;
    this.checkDisjoint('group', GROUP_TYPES);
    const out: ElfGroup[] = [];
    const fileSections = this.file.sections;
    for (let k = 0; k < fileSections.length; k++) {
      const sec = fileSections[k]!;
      if (sec.type !== SHT.GROUP) continue;
      const data = this.sectionData(sec);
      if (data.length < 4 || data.length % 4 !== 0) {
        throw this.err('ELF_GROUP_SIZE', 'group section size is not a non-zero multiple of 4', {
          ...this.secCtx(sec),
          offset: sec.headerOffset,
          expected: 'a multiple of 4, at least 4',
          found: data.length,
        });
      }
      const dv = dataView(data);
      const members: number[] = [];
      const nsec = this.file.sections.length;
      for (let o = 4; o < data.length; o += 4) {
        const m = dv.getUint32(o, this.le);
        if (m === 0 || m >= nsec || m === sec.index) {
          throw this.err('ELF_GROUP_MEMBER', 'group member is not another section of the file', {
            ...this.secCtx(sec),
            offset: sec.offset + o,
            expected: `1..${nsec - 1}, not ${sec.index}`,
            found: m,
          });
        }
        members.push(m);
      }
      // The signature is a symbol of the table sh_link names.
      if (sec.link === 0 || sec.link >= nsec || this.file.sections[sec.link]!.type !== SHT.SYMTAB) {
        throw this.err('ELF_LINK_TYPE', 'sh_link of the group section does not name a symbol table', {
          ...this.secCtx(sec),
          offset: sec.headerOffset,
          expected: 'an SHT_SYMTAB section',
          found: sec.link,
        });
      }
      const symSec = this.file.sections[sec.link]!;
      const nsyms = this.symCount(symSec);
      if (sec.info === 0 || sec.info >= nsyms) {
        throw this.err('ELF_GROUP_SIGNATURE', 'group signature symbol index is out of range', {
          ...this.secCtx(sec),
          offset: sec.headerOffset,
          expected: `1..${nsyms - 1}`,
          found: sec.info,
        });
      }
      out.push({ section: sec.index, flags: dv.getUint32(0, this.le), members, signature: sec.info });
    }
    this.groupCache = out;
    return out;
  }

  private get header(): ElfHeader {
    return this.file.header;
  }
}

/**
 * Parses the notes in a note section's contents. `align` is 4 or 8 (8 for sections aligned to 8,
 * as readelf does): the descriptor starts at align(12 + namesz) and the next note at
 * align(descoff + descsz), both relative to the note's start.
 */
export function parseNotes(
  data: Uint8Array,
  align: 4 | 8,
  le: boolean,
  fileOffset: number,
  section: number,
  fail: (detail: string, offset: number, expected: string, found: string) => Error,
): ElfNote[] {
  const { notes, stop } = walkNoteRecords(data, align, le);
  if (stop?.kind === 'truncated') throw fail('note header is truncated', fileOffset + stop.at, '12 bytes', `${stop.left} bytes`);
  if (stop) {
    throw fail(
      'note name or descriptor runs past the end of the section',
      fileOffset + stop.at,
      `namesz + descsz within ${stop.room - 12} bytes`,
      `namesz ${stop.namesz}, descsz ${stop.descsz}`,
    );
  }
  return notes.map((n) => {
    let nameEnd = n.at + 12 + n.namesz;
    while (nameEnd > n.at + 12 && data[nameEnd - 1] === 0) nameEnd--;
    return {
      section,
      offset: fileOffset + n.at,
      namesz: n.namesz,
      descsz: n.descsz,
      type: n.type,
      name: utf8.decode(data.subarray(n.at + 12, nameEnd)),
      desc: data.subarray(n.descAt, n.descAt + n.descsz),
    };
  });
}
