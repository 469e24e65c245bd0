/**
 * Build-ids of ELF files: finding the notes, telling which linker made the file, and recomputing.
 *
 * Linker evidence, where the file gives it: lld writes "Linker: LLD x.y.z" into .comment; gold
 * writes a .note.gnu.gold-version note (NT_GNU_GOLD_VERSION). GNU ld leaves no mark, so it is the
 * default. The algorithms of the detected linker are tried first, then all the others whose id
 * length fits; the result names the one that matched.
 *
 * `ld -r --build-id` keeps its inputs' build-id notes (several notes, the new one after the first
 * input's): every note is tried, and the result says which one the linker made.
 */
import { EM, PT, SHT } from '../elf/constants.js';
import type { ElfFile, ElfSection } from '../elf/types.js';
import { gnuLdPlan, packageMetadataRanges } from './gnu-ld.js';
import { createHasher, type Hasher } from './hash.js';
import { equalBytes, NT_GNU_BUILD_ID, toHex, walkNotes } from './note.js';
import { MemorySource, rangeMinus, runPlan, runPlanAsync, type ByteSource, type Range, type Segment } from './stream.js';
import { wholeFileHasher, type GoldTreeOptions, type WholeFileAlgo, GOLD_TREE_MIN_FILE_SIZE } from './whole-file.js';

export type ElfAlgo = 'gnu-ld-sha1' | 'gnu-ld-md5' | WholeFileAlgo;

export interface BuildIdNoteRef {
  /** 0-based position among the file's GNU build-id notes (readelf/Xen report #0). */
  ordinal: number;
  /** Section holding the note. */
  section: number;
  sectionName: string;
  /** File offset of the note header, and of the descriptor. */
  offset: number;
  descOffset: number;
  /** Whole note size (header, padded name, padded descriptor). */
  size: number;
  id: Uint8Array;
}

export interface LinkerGuess {
  kind: 'gnu-ld' | 'gold' | 'lld';
  /** lld's major version when .comment gives it. */
  major?: number;
  evidence: string;
}

const dec = new TextDecoder('utf-8', { fatal: false });

function safeData(s: ElfSection): Uint8Array | null {
  try {
    return s.data();
  } catch {
    return null;
  }
}

/**
 * Every GNU build-id note (owner "GNU", type 3) in the SHT_NOTE sections (and in a
 * .note.gnu.build-id section of any type), in file order of sections and notes. Tolerant: a
 * malformed note section ends that section's walk.
 */
export function findBuildIdNotes(elf: ElfFile): BuildIdNoteRef[] {
  const out: BuildIdNoteRef[] = [];
  for (const n of walkNotes(elf, (name) => name === '.note.gnu.build-id')) {
    const isGnu = n.namesz === 4 && n.name[0] === 0x47 && n.name[1] === 0x4e && n.name[2] === 0x55 && n.name[3] === 0;
    if (!isGnu || n.type !== NT_GNU_BUILD_ID || n.desc.length === 0) continue;
    out.push({
      ordinal: out.length,
      section: n.section,
      sectionName: elf.sections[n.section]!.name,
      offset: n.offset,
      descOffset: n.descOffset,
      size: n.size,
      id: n.desc.slice(),
    });
  }
  return out;
}

export function detectLinker(elf: ElfFile): LinkerGuess {
  const comment = elf.sectionByName('.comment');
  if (comment && comment.type !== SHT.NOBITS) {
    const data = safeData(comment);
    if (data) {
      const m = /Linker: (?:[^\0]*?)LLD (\d+)\.(\d+)(?:\.(\d+))?/.exec(dec.decode(data));
      if (m) return { kind: 'lld', major: Number(m[1]), evidence: `.comment says "${m[0]}"` };
    }
  }
  if (elf.sectionByName('.note.gnu.gold-version')) return { kind: 'gold', evidence: 'the file has a .note.gnu.gold-version note' };
  return { kind: 'gnu-ld', evidence: 'no lld .comment and no gold version note (GNU ld leaves no mark)' };
}

/** Algorithms to try for an id of `len` bytes, the detected linker's first. */
export function candidateAlgorithms(len: number, linker: LinkerGuess, fileSize: number): ElfAlgo[] {
  const bySize: Record<number, ElfAlgo[]> = {
    20: ['gnu-ld-sha1', 'gold-sha1', 'gold-tree', 'lld14-sha1', 'lld15-sha1'],
    16: ['gnu-ld-md5', 'gold-md5', 'lld14-md5', 'lld15-md5'],
    8: ['lld-fast'],
  };
  let list = bySize[len] ?? [];
  // Below gold's tree threshold gold-tree is plain sha1 over the file: the same as gold-sha1.
  if (fileSize < GOLD_TREE_MIN_FILE_SIZE) list = list.filter((a) => a !== 'gold-tree');
  const rank = (a: ElfAlgo): number => {
    const fam = a.startsWith('gnu-ld') ? 'gnu-ld' : a.startsWith('gold') ? 'gold' : 'lld';
    if (fam !== linker.kind) return 2;
    if (fam === 'lld' && linker.major !== undefined && a !== 'lld-fast') {
      return linker.major >= 15 === a.startsWith('lld15') ? 0 : 1;
    }
    return 0;
  };
  return [...list].sort((x, y) => rank(x) - rank(y));
}

/** The byte stream `algo` hashes for `note`, and the hasher to feed it to. */
export function elfAlgorithmPlan(
  elf: ElfFile,
  algo: ElfAlgo,
  note: BuildIdNoteRef,
  fileSize: number,
  gold?: GoldTreeOptions,
): { plan: Segment[]; hasher: Hasher } {
  if (algo === 'gnu-ld-sha1' || algo === 'gnu-ld-md5') {
    const zero: Range[] = [{ offset: note.offset, size: note.size }, ...packageMetadataRanges(elf)];
    return { plan: gnuLdPlan(elf, zero), hasher: createHasher(algo === 'gnu-ld-sha1' ? 'sha1' : 'md5') };
  }
  return {
    plan: rangeMinus(0, fileSize, [{ offset: note.descOffset, size: note.id.length }]),
    hasher: wholeFileHasher(algo, fileSize, gold),
  };
}

/** Recomputes the id `algo` would store in `note`'s place. */
export function computeElfAlgorithm(
  elf: ElfFile,
  algo: ElfAlgo,
  note: BuildIdNoteRef,
  src?: ByteSource,
  gold?: GoldTreeOptions,
): Uint8Array {
  const source = src ?? new MemorySource(elf.bytes);
  const { plan, hasher } = elfAlgorithmPlan(elf, algo, note, source.size, gold);
  runPlan(plan, source, hasher, elf.file);
  return hasher.digest();
}

/** computeElfAlgorithm with big ranges of a FileSource read ahead asynchronously. */
export async function computeElfAlgorithmAsync(
  elf: ElfFile,
  algo: ElfAlgo,
  note: BuildIdNoteRef,
  src: ByteSource,
  gold?: GoldTreeOptions,
): Promise<Uint8Array> {
  const { plan, hasher } = elfAlgorithmPlan(elf, algo, note, src.size, gold);
  await runPlanAsync(plan, src, hasher, elf.file);
  return hasher.digest();
}

export interface ElfVerification {
  linker: LinkerGuess;
  /** The note the linker made and the algorithm that reproduces it; null when nothing matched. */
  match: { note: BuildIdNoteRef; algorithm: ElfAlgo } | null;
  tried: string[];
}

/**
 * How many build-id notes are tried. A linker writes one; `ld -r --build-id` keeps its inputs'
 * beside it (the new one second). Each try hashes the whole file, so a file holding thousands of
 * notes would cost thousands of hashes per algorithm: the first few are tried, and the result says so.
 */
export const MAX_NOTES_TRIED = 4;

function trials(
  elf: ElfFile,
  notes: BuildIdNoteRef[],
  size: number,
): { linker: LinkerGuess; plans: { note: BuildIdNoteRef; algo: ElfAlgo }[] } {
  const linker = detectLinker(elf);
  // Ranked by algorithm, then notes in order: the detected linker is tried on every note first.
  const plans: { note: BuildIdNoteRef; algo: ElfAlgo; rank: number }[] = [];
  for (const note of notes.slice(0, MAX_NOTES_TRIED)) {
    candidateAlgorithms(note.id.length, linker, size).forEach((algo, i) => plans.push({ note, algo, rank: i }));
  }
  plans.sort((a, b) => a.rank - b.rank || a.note.ordinal - b.note.ordinal);
  return { linker, plans };
}

/** Tries every candidate note with every plausible algorithm, the detected linker's first. */
export function verifyElfBuildId(elf: ElfFile, notes: BuildIdNoteRef[], src?: ByteSource, gold?: GoldTreeOptions): ElfVerification {
  const { linker, plans } = trials(elf, notes, src ? src.size : elf.bytes.length);
  const tried: string[] = [];
  for (const { note, algo } of plans) {
    tried.push(notes.length > 1 ? `${algo} (note #${note.ordinal})` : algo);
    if (equalBytes(computeElfAlgorithm(elf, algo, note, src, gold), note.id)) return { linker, match: { note, algorithm: algo }, tried };
  }
  if (notes.length > MAX_NOTES_TRIED) tried.push(`on the first ${MAX_NOTES_TRIED} of ${notes.length} build-id notes only`);
  return { linker, match: null, tried };
}

/** verifyElfBuildId over a file on disk, reading ahead asynchronously. */
export async function verifyElfBuildIdAsync(
  elf: ElfFile,
  notes: BuildIdNoteRef[],
  src: ByteSource,
  gold?: GoldTreeOptions,
): Promise<ElfVerification> {
  const { linker, plans } = trials(elf, notes, src.size);
  const tried: string[] = [];
  for (const { note, algo } of plans) {
    tried.push(notes.length > 1 ? `${algo} (note #${note.ordinal})` : algo);
    if (equalBytes(await computeElfAlgorithmAsync(elf, algo, note, src, gold), note.id))
      return { linker, match: { note, algorithm: algo }, tried };
  }
  if (notes.length > MAX_NOTES_TRIED) tried.push(`on the first ${MAX_NOTES_TRIED} of ${notes.length} build-id notes only`);
  return { linker, match: null, tried };
}

/**
 * Xen's x86 boot image (`xen.gz` unpacked, made by mkelf32 --notes from xen-syms): an ELF32
 * EM_386 file whose build-id note lies inside another section (the copy of xen-syms' LOAD
 * segment). Returns that containing section.
 */
export function bootImagePayload(elf: ElfFile, note: BuildIdNoteRef): ElfSection | undefined {
  if (elf.header.class !== 32 || elf.header.machine !== EM['386']) return undefined;
  return elf.sections.find(
    (s) =>
      s.index !== note.section &&
      s.type === SHT.PROGBITS &&
      s.offset <= note.offset &&
      note.offset + note.size <= s.offset + Number(s.size),
  );
}

export interface BootImageCheck {
  ok: boolean;
  reason: string;
}

/**
 * "The boot image's payload equals xen-syms' LOAD segment": compares the boot image's section
 * holding the note with the PT_LOAD segment of xen-syms of the same size, byte for byte.
 */
export function checkBootImageAgainstSyms(boot: ElfFile, payload: ElfSection, syms: ElfFile): BootImageCheck {
  const data = safeData(payload);
  if (!data) return { ok: false, reason: `the boot image's ${payload.name} lies outside the file` };
  const loads = syms.programHeaders.filter((p) => p.type === PT.LOAD);
  for (const p of loads) {
    if (p.filesz !== BigInt(data.length)) continue;
    if (p.offset + data.length > syms.bytes.length) continue;
    const seg = syms.bytes.subarray(p.offset, p.offset + data.length);
    if (equalBytes(seg, data)) {
      return {
        ok: true,
        reason: `${payload.name} (0x${data.length.toString(16)} bytes) equals xen-syms' LOAD segment at file offset 0x${p.offset.toString(16)}`,
      };
    }
    return { ok: false, reason: `${payload.name} differs from xen-syms' LOAD segment at file offset 0x${p.offset.toString(16)}` };
  }
  return {
    ok: false,
    reason: `no LOAD segment of xen-syms has the size of the boot image's ${payload.name} (0x${data.length.toString(16)}); sizes: ${loads.map((p) => '0x' + p.filesz.toString(16)).join(', ') || 'none'}`,
  };
}

export { toHex };
