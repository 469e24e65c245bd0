/**
 * The GNU build-id note (NT_GNU_BUILD_ID) codec, and hex helpers for build-ids.
 *
 * Layout (ELF32 and ELF64 alike, 32-bit words in the file's byte order):
 *
 * | offset | size                | field                         |
 * |--------|---------------------|-------------------------------|
 * | 0      | 4                   | namesz (4)                    |
 * | 4      | 4                   | descsz                        |
 * | 8      | 4                   | type (NT_GNU_BUILD_ID = 3)    |
 * | 12     | align4(namesz)      | name "GNU\0"                  |
 * | 12+a   | align4(descsz)      | desc = the build-id bytes     |
 *
 * `parseBuildIdNote` follows Xen's `xen_build_id_check()` plus the live-patch callers' checks, in
 * Xen's order (xen/common/version.c; see the project's payload-format reference §3.1).
 */
import { FormatError } from '../errors.js';
import type { ElfFile } from '../elf/types.js';
import { walkNoteRecords } from '../elf/note-walk.js';

export const NT_GNU_BUILD_ID = 3;
/** Note header: namesz, descsz, type. */
export const NOTE_HEADER_SIZE = 12;
const GNU_NAME = new Uint8Array([0x47, 0x4e, 0x55, 0x00]);

export const align4 = (n: number): number => (n + 3) & ~3;

/** Total size of a GNU build-id note with a descriptor of `descsz` bytes (36 for sha1, 32 for md5). */
export function buildIdNoteSize(descsz: number): number {
  return NOTE_HEADER_SIZE + 4 + align4(descsz);
}

/** namesz 4, descsz, type 3, "GNU\0", desc, zero padding to a multiple of 4. */
export function encodeBuildIdNote(id: Uint8Array, littleEndian = true): Uint8Array {
  if (id.length === 0) throw new FormatError('BUILDID_EMPTY', 'a build-id cannot be empty');
  const out = new Uint8Array(buildIdNoteSize(id.length));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 4, littleEndian);
  dv.setUint32(4, id.length, littleEndian);
  dv.setUint32(8, NT_GNU_BUILD_ID, littleEndian);
  out.set(GNU_NAME, 12);
  out.set(id, 16);
  return out;
}

export type ParsedBuildIdNote = { ok: true; id: Uint8Array } | { ok: false; errno: 'EINVAL' | 'ENODATA'; reason: string };

/**
 * Reads a build-id section exactly as Xen does: only the first note counts, `bytes` is the whole
 * section (its length is sh_size). Returns the errno Xen would return on failure.
 */
export function parseBuildIdNote(bytes: Uint8Array, littleEndian = true): ParsedBuildIdNote {
  const nSz = bytes.length;
  // Every live-patch caller checks this before xen_build_id_check().
  if (nSz <= NOTE_HEADER_SIZE) {
    return { ok: false, errno: 'EINVAL', reason: `section size ${nSz} is not larger than the 12-byte note header` };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const namesz = dv.getUint32(0, littleEndian);
  const descsz = dv.getUint32(4, littleEndian);
  const type = dv.getUint32(8, littleEndian);
  if (type !== NT_GNU_BUILD_ID) {
    return { ok: false, errno: 'ENODATA', reason: `note type ${type} is not NT_GNU_BUILD_ID (3)` };
  }
  if (namesz + descsz > 0xffffffff) {
    return { ok: false, errno: 'EINVAL', reason: `namesz ${namesz} + descsz ${descsz} overflows 32 bits` };
  }
  if (namesz < 4) {
    return { ok: false, errno: 'EINVAL', reason: `namesz ${namesz} is smaller than 4` };
  }
  // Xen compares the unaligned sum with the room after the header: name padding is not counted.
  if (namesz + descsz > nSz - NOTE_HEADER_SIZE) {
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `namesz ${namesz} + descsz ${descsz} exceeds the ${nSz - NOTE_HEADER_SIZE} bytes after the note header`,
    };
  }
  // strncmp(name, "GNU", namesz): stops at the first NUL of "GNU\0", so any name starting "GNU\0" passes.
  for (let i = 0; i < Math.min(namesz, 4); i++) {
    if (bytes[NOTE_HEADER_SIZE + i] !== GNU_NAME[i]) {
      return { ok: false, errno: 'ENODATA', reason: 'note owner is not "GNU"' };
    }
  }
  if (descsz === 0) {
    return { ok: false, errno: 'EINVAL', reason: 'descsz is 0' };
  }
  const start = NOTE_HEADER_SIZE + align4(namesz);
  if (start + descsz > nSz) {
    // Xen reads past the section here (the unaligned check above let it through); we refuse to.
    return {
      ok: false,
      errno: 'EINVAL',
      reason: `descriptor [${start}, +${descsz}) runs past the end of the ${nSz}-byte section (name padding)`,
    };
  }
  return { ok: true, id: bytes.slice(start, start + descsz) };
}

const HEX = '0123456789abcdef';

/** Lowercase hex without separators. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
  return s;
}

/**
 * Parses a build-id written in hex: optional `0x`/`0X`, `:` and `-` separators dropped (as GNU ld's
 * `--build-id=0xHEX` does), surrounding whitespace ignored. Throws FormatError (BUILDID_HEX).
 */
export function parseHexId(text: string): Uint8Array {
  let s = text.trim();
  if (s.startsWith('0x') || s.startsWith('0X')) s = s.slice(2);
  s = s.replace(/[:-]/g, '');
  if (s.length === 0) throw new FormatError('BUILDID_HEX', `not a hex build-id: ${JSON.stringify(text)} (no digits)`);
  if (!/^[0-9a-fA-F]+$/.test(s)) {
    throw new FormatError('BUILDID_HEX', `not a hex build-id: ${JSON.stringify(text)} (only hex digits, ':' and '-' are allowed)`);
  }
  if (s.length % 2 !== 0) {
    throw new FormatError('BUILDID_HEX', `not a hex build-id: ${JSON.stringify(text)} (odd number of hex digits)`, {
      found: s.length,
    });
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** True when `text` (trimmed) is a hex build-id parseHexId accepts. */
export function isHexId(text: string): boolean {
  let s = text.trim();
  if (s.startsWith('0x') || s.startsWith('0X')) s = s.slice(2);
  s = s.replace(/[:-]/g, '');
  return s.length > 0 && s.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(s);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export interface NoteRef {
  section: number;
  /** File offsets of the note header and of its descriptor. */
  offset: number;
  descOffset: number;
  /** Whole note size: header, padded name, padded descriptor. */
  size: number;
  namesz: number;
  type: number;
  /** Owner name bytes (namesz of them, NUL included). */
  name: Uint8Array;
  desc: Uint8Array;
}

/**
 * Every note of the SHT_NOTE sections (7), read through each section's `data()` (so it works on
 * metadata-only reads too). Tolerant: a section whose contents cannot be read is skipped, and a
 * malformed note ends its section's walk. `also` admits more sections (e.g. by name).
 */
/** The notes of one note section's contents (`offset`: where they lie in the file; `align`: 4 or 8). */
export function notesIn(data: Uint8Array, section: number, offset: number, align: 4 | 8, le: boolean): NoteRef[] {
  // A malformed note ends the walk; the notes before it count.
  return walkNoteRecords(data, align, le).notes.map((n) => ({
    section,
    offset: offset + n.at,
    descOffset: offset + n.descAt,
    size: NOTE_HEADER_SIZE + align4(n.namesz) + align4(n.descsz),
    namesz: n.namesz,
    type: n.type,
    name: data.subarray(n.at + NOTE_HEADER_SIZE, n.at + NOTE_HEADER_SIZE + n.namesz),
    desc: data.subarray(n.descAt, n.descAt + n.descsz),
  }));
}

export function walkNotes(elf: ElfFile, also?: (name: string) => boolean): NoteRef[] {
  return walkNoteSections(elf.sections, elf.header.littleEndian, also);
}

/** What walkNotes needs of a section: an ElfFile's sections, or a layout the caller knows. */
export interface NoteSection {
  index: number;
  type: number;
  offset: number;
  addralign: bigint;
  readonly name: string;
  data(): Uint8Array;
}

/** walkNotes over any list of sections. */
export function walkNoteSections(sections: readonly NoteSection[], le: boolean, also?: (name: string) => boolean): NoteRef[] {
  const out: NoteRef[] = [];
  const walked: { s: NoteSection; data: Uint8Array }[] = [];
  for (const s of sections) {
    // Names are looked at only when `also` is given (reading one can mean decoding it).
    if (s.type !== 7 && !(also && s.type !== 8 && s.index !== 0 && also(s.name))) continue;
    let data: Uint8Array;
    try {
      data = s.data();
    } catch {
      continue;
    }
    if (data.length > 0) walked.push({ s, data });
  }
  // Each byte is walked once: a section whose bytes an earlier-starting one already covers is
  // skipped (thousands of headers naming one block of notes cost one walk, not thousands).
  const byOffset = [...walked].sort((a, b) => a.s.offset - b.s.offset || a.s.index - b.s.index);
  const skip = new Set<number>();
  let end = -1;
  for (const w of byOffset) {
    if (w.s.offset < end) skip.add(w.s.index);
    else end = w.s.offset + w.data.length;
  }
  for (const { s, data } of walked) {
    if (skip.has(s.index)) continue;
    for (const n of notesIn(data, s.index, s.offset, s.addralign === 8n ? 8 : 4, le)) out.push(n);
  }
  return out;
}
