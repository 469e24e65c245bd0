/**
 * GNU ld (BFD) `--build-id=sha1|md5` for ELF outputs (binutils `elf_checksum_contents`, run from
 * ld's `write_build_id` after the rest of the file is on disk but before the note is written).
 *
 * The hashed stream, in this order:
 *   1. the ELF header (52 or 64 bytes) with e_phoff = e_shoff = 0;
 *   2. the program headers as written (e_phnum × 32 or 56 bytes);
 *   3. for every section i, the null section included: its header with sh_offset = 0, then its
 *      contents (unless SHT_NOBITS) — except the contents of .symtab, .strtab, .shstrtab and
 *      .symtab_shndx, which BFD no longer holds when it hashes and silently skips. Section 0 has
 *      no contents (with >= 0xff00 sections its sh_size is the section count, not a size).
 * The whole build-id note (header, "GNU\0" and descriptor) reads as zero, and so does a
 * --package-metadata note (owner "FDO", type 0xcafe1a7e): callers pass their file ranges.
 */
import { FormatError } from '../errors.js';
import { SHT } from '../elf/constants.js';
import { readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import type { WritePlan } from '../elf/writer.js';
import { createHasher } from './hash.js';
import { buildIdNoteSize, encodeBuildIdNote, NT_GNU_BUILD_ID, walkNoteSections, walkNotes, type NoteRef } from './note.js';
import { MemorySource, PlanRunner, rangeMinus, type ByteSource, type Range, type Segment } from './stream.js';

export type GnuLdAlgo = 'sha1' | 'md5';

/** NT_FDO_PACKAGING_METADATA, written by `ld --package-metadata`. */
export const NT_FDO_PACKAGING_METADATA = 0xcafe1a7e;

const EHDR = { 32: { size: 52, phoff: 28, shoff: 32, w: 4 }, 64: { size: 64, phoff: 32, shoff: 40, w: 8 } } as const;
const SHDR = { 32: { size: 40, offset: 16, w: 4 }, 64: { size: 64, offset: 24, w: 8 } } as const;
const PHDR_SIZE = { 32: 32, 64: 56 } as const;

/**
 * What the GNU ld walk needs of an ELF file: a few header fields and where each section and its
 * header lie. An ElfFile gives it (`gnuLdLayoutOf`); so does the writer's plan of an object it
 * has just emitted, without reading the object back (build's last step).
 */
export interface GnuLdLayout {
  bytes: Uint8Array;
  file?: string;
  class: 32 | 64;
  phoff: number;
  phnum: number;
  phentsize: number;
  shentsize: number;
  shstrndx: number;
  sections: readonly GnuLdSection[];
}

export interface GnuLdSection {
  index: number;
  type: number;
  offset: number;
  size: bigint | number;
  headerOffset: number;
  link: number;
  /** Only read for SHT_NOTE sections (note padding: 8 when 8, else 4). */
  addralign: bigint;
  /** For messages only. */
  readonly name?: string;
}

export function gnuLdLayoutOf(elf: ElfFile): GnuLdLayout {
  const h = elf.header;
  return {
    bytes: elf.bytes,
    file: elf.file,
    class: h.class,
    phoff: h.phoff,
    phnum: h.phnum,
    phentsize: h.phentsize,
    shentsize: h.shentsize,
    shstrndx: h.shstrndx,
    sections: elf.sections,
  };
}

/** Where the writer put each section and header of `bytes` (ELF class `cls`), as the walk reads it. */
export function gnuLdLayoutOfPlan(bytes: Uint8Array, plan: WritePlan, cls: 32 | 64): GnuLdLayout {
  const shsize = SHDR[cls].size;
  const sections = plan.sections.map((s, i) => ({
    index: i,
    type: s.type,
    offset: s.offset,
    size: s.size,
    headerOffset: plan.shoff + i * shsize,
    link: s.link,
    addralign: s.addralign,
  }));
  return { bytes, class: cls, phoff: 0, phnum: 0, phentsize: 0, shentsize: shsize, shstrndx: plan.shstrndx, sections };
}

/** Indices of the sections whose contents GNU ld does not hash (.symtab, .strtab, .shstrtab, .symtab_shndx). */
export function gnuLdUnhashedSections(elf: ElfFile | GnuLdLayout): Set<number> {
  const sections = elf.sections;
  const out = new Set<number>();
  const shstrndx = 'header' in elf ? elf.header.shstrndx : elf.shstrndx;
  if (shstrndx > 0 && shstrndx < sections.length) out.add(shstrndx);
  for (let k = 0; k < sections.length; k++) {
    const s = sections[k]!;
    if (s.type === SHT.SYMTAB) {
      out.add(s.index);
      if (s.link > 0 && s.link < sections.length) out.add(s.link);
    } else if (s.type === SHT.SYMTAB_SHNDX) {
      out.add(s.index);
    }
  }
  return out;
}

function sectionSize(s: GnuLdSection, file?: string): number {
  if (typeof s.size === 'number') return s.size;
  if (s.size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FormatError('ELF_FIELD_RANGE', 'sh_size is out of range', {
      file,
      sectionIndex: s.index,
      section: s.name,
      found: '0x' + s.size.toString(16),
    });
  }
  return Number(s.size);
}

/** What walkGnuLd produces, segment by segment: a plan array, or a PlanRunner hashing as it goes. */
interface GnuLdSink {
  dataRange(d: Uint8Array, off: number, len: number): void;
  file(off: number, len: number): void;
  zero(len: number): void;
}

/** The byte stream GNU ld hashed, in order (see the header comment). */
function walkGnuLd(h: GnuLdLayout, zero: readonly Range[], out: GnuLdSink): void {
  const bytes = h.bytes;
  const E = EHDR[h.class];
  const S = SHDR[h.class];

  const ehdr = bytes.slice(0, E.size);
  ehdr.fill(0, E.phoff, E.phoff + E.w);
  ehdr.fill(0, E.shoff, E.shoff + E.w);
  out.dataRange(ehdr, 0, ehdr.length);

  if (h.phnum > 0) {
    const psz = PHDR_SIZE[h.class];
    if (h.phentsize === psz) out.file(h.phoff, h.phnum * psz);
    else for (let i = 0; i < h.phnum; i++) out.file(h.phoff + i * h.phentsize, psz);
  }

  const skip = gnuLdUnhashedSections(h);
  // Every section header as hashed (sh_offset reads as zero), copied once into one buffer.
  const sections = h.sections;
  const n = sections.length;
  const hdrs = new Uint8Array(n * S.size);
  if (n > 0 && h.shentsize === S.size) {
    hdrs.set(bytes.subarray(sections[0]!.headerOffset, sections[0]!.headerOffset + n * S.size));
  } else {
    for (let i = 0; i < n; i++) {
      const at = sections[i]!.headerOffset;
      hdrs.set(bytes.subarray(at, at + S.size), i * S.size);
    }
  }
  for (let i = 0; i < n; i++) hdrs.fill(0, i * S.size + S.offset, i * S.size + S.offset + S.w);
  for (let i = 0; i < n; i++) {
    const s = sections[i]!;
    out.dataRange(hdrs, i * S.size, S.size);
    // Section 0 has no contents: under extended numbering its sh_size holds the section count.
    if (s.index === 0 || s.type === SHT.NULL || s.type === SHT.NOBITS || skip.has(s.index)) continue;
    const size = sectionSize(s, h.file);
    if (size === 0) continue;
    let cut = false;
    for (const z of zero) if (z.size > 0 && z.offset < s.offset + size && z.offset + z.size > s.offset) cut = true;
    if (!cut) out.file(s.offset, size);
    else {
      for (const seg of rangeMinus(s.offset, size, zero)) {
        if (seg.kind === 'file') out.file(seg.off, seg.len);
        else if (seg.kind === 'zero') out.zero(seg.len);
        else out.dataRange(seg.data, 0, seg.data.length);
      }
    }
  }
}

/** The byte stream GNU ld hashed, as a plan over the file (see stream.ts). */
export function gnuLdPlan(elf: ElfFile, zero: readonly Range[]): Segment[] {
  const plan: Segment[] = [];
  walkGnuLd(gnuLdLayoutOf(elf), zero, {
    dataRange: (d, off, len) => plan.push({ kind: 'data', data: d.subarray(off, off + len) }),
    file: (off, len) => plan.push({ kind: 'file', off, len }),
    zero: (len) => plan.push({ kind: 'zero', len }),
  });
  return plan;
}

/** Runs the GNU ld algorithm; `src` defaults to the ELF's own bytes. Hashes as it walks (no plan array). */
export function gnuLdDigest(elf: ElfFile | GnuLdLayout, algo: GnuLdAlgo, zero: readonly Range[], src?: ByteSource): Uint8Array {
  const layout = 'header' in elf ? gnuLdLayoutOf(elf) : elf;
  const h = createHasher(algo);
  const r = new PlanRunner(src ?? new MemorySource(layout.bytes), h, layout.file);
  walkGnuLd(layout, zero, r);
  r.finish();
  return h.digest();
}

/** GNU ld's ELF build-id of `elf`, with the given file ranges (the whole build-id note) read as zero. */
export function gnuLdElfBuildId(elf: ElfFile, algo: GnuLdAlgo, zero: { offset: number; size: number }[]): Uint8Array {
  return gnuLdDigest(elf, algo, zero);
}

const FDO = [0x46, 0x44, 0x4f, 0];
/** A --package-metadata note: owner "FDO", type 0xcafe1a7e. */
function isPackageMetadataNote(n: NoteRef): boolean {
  return n.type === NT_FDO_PACKAGING_METADATA && n.namesz === 4 && FDO.every((b, i) => n.name[i] === b);
}

/**
 * File ranges of every --package-metadata note (owner "FDO", type 0xcafe1a7e); GNU ld writes
 * them after hashing too, so they read as zero. Tolerates malformed note sections (skips them).
 */
export function packageMetadataRanges(elf: ElfFile): Range[] {
  return packageMetadataIn(walkNotes(elf));
}

function packageMetadataIn(notes: readonly NoteRef[]): Range[] {
  return notes.filter(isPackageMetadataNote).map((n) => ({ offset: n.offset, size: n.size }));
}

/**
 * The last patch on a freshly written object: computes GNU ld's id with the build-id section's
 * bytes read as zero, then writes the note (header, "GNU\0", id) into that section in place.
 * The section must already have the note's size (36 bytes for sha1, 32 for md5). Returns the id.
 * Checks the section by name, then takes the one patch path, patchGnuLdBuildIdLaidOut.
 */
export function patchGnuLdBuildId(bytes: Uint8Array, algo: GnuLdAlgo, sectionName = '.note.gnu.build-id'): Uint8Array {
  const elf = readElf(bytes);
  const sec = elf.sectionByName(sectionName);
  if (!sec) throw new FormatError('BUILDID_NO_SECTION', `no ${sectionName} section to patch`, { file: elf.file, section: sectionName });
  const want = buildIdNoteSize(algo === 'sha1' ? 20 : 16);
  if (sec.type === SHT.NOBITS || sec.size !== BigInt(want)) {
    throw new FormatError('BUILDID_SECTION_SIZE', `${sectionName} has the wrong size for a ${algo} build-id note`, {
      file: elf.file,
      sectionIndex: sec.index,
      section: sec.name,
      expected: want,
      found: sec.type === SHT.NOBITS ? 'SHT_NOBITS' : sec.size.toString(),
    });
  }
  if (sec.offset + want > bytes.length) {
    throw new FormatError('BUILDID_RANGE', `${sectionName} lies outside the file`, {
      file: elf.file,
      sectionIndex: sec.index,
      offset: sec.offset,
    });
  }
  return patchGnuLdBuildIdLaidOut(gnuLdLayoutOf(elf), sec.index, algo, elf.header.littleEndian);
}

/**
 * patchGnuLdBuildId for an object whose layout the caller knows (the writer's plan): no read-back.
 * `noteIndex` is the build-id section's index. The --package-metadata notes of the layout's note
 * sections read as zero too.
 */
export function patchGnuLdBuildIdLaidOut(layout: GnuLdLayout, noteIndex: number, algo: GnuLdAlgo, littleEndian: boolean): Uint8Array {
  const bytes = layout.bytes;
  const sec = layout.sections[noteIndex];
  const want = buildIdNoteSize(algo === 'sha1' ? 20 : 16);
  if (!sec || sec.type === SHT.NOBITS || sectionSize(sec) !== want || sec.offset + want > bytes.length) {
    throw new FormatError('BUILDID_SECTION_SIZE', `section [${noteIndex}] is not a place for a ${algo} build-id note`, {
      file: layout.file,
      sectionIndex: noteIndex,
      expected: want,
    });
  }
  const noteSections = layout.sections.map((s) => ({
    index: s.index,
    type: s.type,
    offset: s.offset,
    addralign: s.addralign,
    name: '',
    data: (): Uint8Array => {
      const size = sectionSize(s, layout.file);
      if (s.offset + size > bytes.length) throw new RangeError('section outside the file');
      return bytes.subarray(s.offset, s.offset + size);
    },
  }));
  const zero: Range[] = [{ offset: sec.offset, size: want }, ...packageMetadataIn(walkNoteSections(noteSections, littleEndian))];
  const id = gnuLdDigest(layout, algo, zero);
  bytes.set(encodeBuildIdNote(id, littleEndian), sec.offset);
  return id;
}

export { NT_GNU_BUILD_ID };
