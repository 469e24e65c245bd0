/**
 * `readBuildId`: the build-id of anything that names a Xen (cli.md's XEN forms) or any ELF/PE file:
 * ELF of either class and byte order, gzip'd ELF (xen.gz), PE/COFF (xen.efi), a hex string,
 * `xl info` text, or the raw bytes of /sys/hypervisor/properties/buildid.
 *
 * Why one file: each XEN form is one small `from*` reader behind the single `readBuildId` entry
 * point, and they share the result/note helpers and the depends-section rules.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { GUNZIP_MAX, checkRegular, readInputSync, statInput } from '../fsutil.js';
import { createRequire } from 'node:module';
import { FormatError, XspliceError } from '../errors.js';
import { isElf, readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import {
  MAX_NOTES_TRIED,
  bootImagePayload,
  checkBootImageAgainstSyms,
  computeElfAlgorithm,
  findBuildIdNotes,
  verifyElfBuildId,
  verifyElfBuildIdAsync,
  type BuildIdNoteRef,
  type ElfVerification,
} from './elf-id.js';
import { equalBytes, isHexId, parseHexId, toHex } from './note.js';
import { isPe, readPeBuildId, verifyPeBuildId } from './pe.js';
import { readElfMetadata } from './sparse.js';
import { FileSource, type ByteSource } from './stream.js';
import type { GoldTreeOptions } from './whole-file.js';

export type BuildIdSource = 'elf' | 'gzip-elf' | 'pe' | 'hex' | 'xl-info' | 'sysfs';

export interface BuildIdResult {
  input: string;
  /** Lowercase hex, no separators. */
  buildId: string;
  bytes: Uint8Array;
  source: BuildIdSource;
  /** "gnu-ld-sha1", "lld15-sha1", "pe-gnu-ld-sha1", …; null when not verified or not a hash. */
  algorithm: string | null;
  /** true/false after --verify; null when not asked or when there is nothing to recompute. */
  verified: boolean | null;
  notes: string[];
  /** The parsed ELF (ELF and gzip'd ELF sources read in memory). */
  elf?: ElfFile;
  /** ELF: the linker the file points to ("gnu-ld", "gold", "lld 16"), with verify. */
  linker?: string;
  /** With verify: why the id did not verify, or why it cannot be verified. */
  reason?: string;
  /** ELF: the file is a Xen boot image (mkelf32 output, e.g. xen.gz unpacked). */
  bootImage?: boolean;
  /** PE: the GUID-ordered form of the id (what objdump -p prints as "signature"). */
  guidOrder?: string;
  /** Live-patch payload: the build-id it stacks on (its `.livepatch.depends` / `.xsplice.depends` note). */
  depends?: string;
  /** Live-patch payload (4.14+): the hypervisor build-id it requires (`.livepatch.xen_depends`). */
  xenDepends?: string;
}

/**
 * Sections of a live-patch payload that hold *other* build-ids (payload-format.md §1.1): the
 * payload's own id is its `.note.gnu.build-id` (what Xen compares and `readelf -n` shows there).
 */
const DEPENDS_SECTIONS = ['.livepatch.depends', '.xsplice.depends'];
export const XEN_DEPENDS_SECTION = '.livepatch.xen_depends';
const OWN_ID_SECTION = '.note.gnu.build-id';

export interface ReadBuildIdOptions {
  verify?: boolean;
  /** xen-syms, to check a boot image (xen.gz) against it and recompute the id from it. */
  xenSyms?: ElfFile | string;
  /** readBuildId only: hash big ELF files straight from disk with --verify (the result then carries no `elf`). */
  stream?: boolean;
  /** Non-default gold tree options (--build-id-min-file-size-for-treehash / -chunk-size-). */
  goldTree?: GoldTreeOptions;
}

export interface BuildIdInput {
  path?: string;
  bytes?: Uint8Array;
  text?: string;
  /** Label for `input` and error messages (default: path, or the text). */
  name?: string;
}

const XL_INFO_RE = /^\s*build_id\s*:[ \t]*([^\r\n]*)$/m;
/** Streaming pays off only for big files. */
const STREAM_MIN = 4 * 1024 * 1024;

/** What kind of build-id source some content is (without parsing it fully); null when unknown. */
export function identifyBuildId(input: Uint8Array | string): BuildIdSource | null {
  if (typeof input === 'string') {
    if (XL_INFO_RE.test(input)) return 'xl-info';
    return isHexId(input) ? 'hex' : null;
  }
  if (isElf(input)) return 'elf';
  if (input.length >= 2 && input[0] === 0x1f && input[1] === 0x8b) return 'gzip-elf';
  if (isPe(input)) return 'pe';
  // `xl info` output and hex ids are small; do not turn a big unknown file into a string.
  if (input.length > 1 << 20) return null;
  const text = latin1(input);
  if (XL_INFO_RE.test(text)) return 'xl-info';
  if (isHexId(text)) return 'hex';
  if (text.trim() === '<denied>') return 'sysfs';
  // Raw id bytes: 16 (md5, uuid, EFI GUID) to 64 bytes; shorter ones are too ambiguous to guess.
  if (input.length >= 16 && input.length <= 64) return 'sysfs';
  return null;
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

function result(input: string, bytes: Uint8Array, source: BuildIdSource, extra: Partial<BuildIdResult> = {}): BuildIdResult {
  return { input, buildId: toHex(bytes), bytes, source, algorithm: null, verified: null, notes: [], ...extra };
}

function note(r: BuildIdResult, text: string, isReason = false): void {
  r.notes.push(text);
  if (isReason) r.reason = text;
}

export async function readBuildId(src: BuildIdInput, opts: ReadBuildIdOptions = {}): Promise<BuildIdResult> {
  if (opts.stream && opts.verify && src.path !== undefined && src.path !== '-' && src.bytes === undefined && src.text === undefined) {
    const label = src.name ?? src.path;
    try {
      const r = await tryStream(src.path, label, opts);
      if (r) return r;
    } catch (e) {
      if (e instanceof XspliceError) e.withFile(label);
      throw e;
    }
  }
  return readBuildIdSync(src, { ...opts, stream: false });
}

/** Synchronous core of readBuildId. */
export function readBuildIdSync(src: BuildIdInput, opts: ReadBuildIdOptions = {}): BuildIdResult {
  const label = src.name ?? src.path ?? (src.text !== undefined ? src.text : '-');
  try {
    if (src.text !== undefined && src.bytes === undefined) return fromText(src.text, label, opts, 'text');
    let bytes = src.bytes;
    if (!bytes) {
      if (src.path === undefined) throw new FormatError('BUILDID_NO_INPUT', 'no input given');
      if (src.path === '-')
        throw new FormatError('BUILDID_NO_INPUT', "standard input ('-') is read by the caller, up to a cap, and passed as bytes");
      bytes = readInputSync(src.path);
    }
    return fromBytes(bytes, label, opts);
  } catch (e) {
    if (e instanceof XspliceError) e.withFile(label);
    throw e;
  }
}

function fromText(text: string, label: string, opts: ReadBuildIdOptions, origin: 'text' | 'file'): BuildIdResult {
  const m = XL_INFO_RE.exec(text);
  if (m) {
    const v = m[1]!.trim();
    if (v === '' || v === '(null)') {
      throw new FormatError(
        'BUILDID_XL_EMPTY',
        '`xl info` shows no build_id (the hypercall failed: XSM denied it (EPERM) or Xen has no build-id (ENODATA))',
      );
    }
    const r = result(label, parseHexId(v), 'xl-info');
    if (opts.verify) note(r, 'an id reported by a running hypervisor cannot be recomputed here; compare it with xen-syms or xen.efi', true);
    return r;
  }
  if (!isHexId(text)) {
    throw new FormatError(
      'BUILDID_UNKNOWN_INPUT',
      origin === 'text' ? 'neither a hex build-id nor `xl info` output' : 'not an ELF, gzip, PE, hex, `xl info` or sysfs build-id file',
    );
  }
  const r = result(label, parseHexId(text), 'hex');
  if (opts.verify) note(r, 'a hex build-id has no file to recompute it from', true);
  return r;
}

function fromBytes(bytes: Uint8Array, label: string, opts: ReadBuildIdOptions): BuildIdResult {
  const kind = identifyBuildId(bytes);
  switch (kind) {
    case 'elf':
      return fromElf(readElf(bytes, { file: label }), label, 'elf', opts);
    case 'gzip-elf': {
      let raw: Buffer;
      try {
        // node:zlib is loaded only for gzip inputs.
        const zlib = createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');
        raw = zlib.gunzipSync(bytes, { maxOutputLength: GUNZIP_MAX });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new FormatError(
            'GZIP_TOO_LARGE',
            `gzip data inflates to more than ${GUNZIP_MAX} bytes (a hypervisor image inflates to a few MiB); stopped there`,
          );
        }
        throw new FormatError('BUILDID_GZIP', `cannot gunzip: ${(e as Error).message}`);
      }
      const inner = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
      if (!isElf(inner))
        throw new FormatError('BUILDID_GZIP', 'gzip data does not hold an ELF file (expected a Xen boot image such as xen.gz)');
      return fromElf(readElf(inner, { file: label }), label, 'gzip-elf', opts);
    }
    case 'pe':
      return fromPe(bytes, label, opts);
    case 'xl-info':
    case 'hex':
      return fromText(latin1(bytes), label, opts, 'file');
    case 'sysfs': {
      if (latin1(bytes).trim() === '<denied>') {
        throw new FormatError('BUILDID_DENIED', 'the sysfs build-id reads "<denied>" (XSM denied XENVER_build_id)');
      }
      const r = result(label, bytes.slice(), 'sysfs');
      r.notes.push('raw build-id bytes (as /sys/hypervisor/properties/buildid gives them)');
      if (opts.verify)
        note(r, 'an id reported by a running hypervisor cannot be recomputed here; compare it with xen-syms or xen.efi', true);
      return r;
    }
    default:
      throw new FormatError(
        'BUILDID_UNKNOWN_INPUT',
        bytes.length === 0
          ? 'empty input (a sysfs build-id file is empty when Xen has no build-id)'
          : 'not an ELF, gzip, PE, hex, `xl info` or sysfs build-id input',
      );
  }
}

/**
 * The verify fast path for big ELF files: only the metadata is read into memory; the hashed
 * ranges are streamed from disk with read-ahead. Returns null when the file is small or no ELF.
 */
async function tryStream(path: string, label: string, opts: ReadBuildIdOptions): Promise<BuildIdResult | null> {
  statInput(path);
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    checkRegular(st, path);
    const size = st.size;
    if (size < STREAM_MIN) return null;
    const src = new FileSource(fd, size, 1 << 20, label);
    const magic = new Uint8Array(4);
    src.readInto(0, 4, magic, 0);
    if (!isElf(magic)) return null;
    const elf = readElfMetadata(src, label);
    const notes = findBuildIdNotes(elf);
    let pre: ElfVerification | undefined;
    if (notes.length > 0 && !bootImagePayload(elf, notes[0]!)) pre = await verifyElfBuildIdAsync(elf, notes, src, opts.goldTree);
    const r = fromElf(elf, label, 'elf', opts, src, pre);
    delete r.elf;
    return r;
  } finally {
    closeSync(fd);
  }
}

function loadSyms(x: ElfFile | string): ElfFile {
  if (typeof x !== 'string') return x;
  return readElf(readInputSync(x), { file: x });
}

function fromElf(
  elf: ElfFile,
  label: string,
  source: 'elf' | 'gzip-elf',
  opts: ReadBuildIdOptions,
  src?: ByteSource,
  pre?: ElfVerification,
): BuildIdResult {
  const all = findBuildIdNotes(elf);
  // A payload carries the ids it depends on as notes too; they are reported apart, never as its id.
  const isDep = (n: BuildIdNoteRef): boolean => DEPENDS_SECTIONS.includes(n.sectionName) || n.sectionName === XEN_DEPENDS_SECTION;
  const deps = all.filter(isDep);
  const own = all.filter((n) => !isDep(n));
  const notes =
    deps.length && own.some((n) => n.sectionName === OWN_ID_SECTION) ? own.filter((n) => n.sectionName === OWN_ID_SECTION) : own;
  if (notes.length === 0) {
    throw new FormatError(
      'BUILDID_NONE',
      deps.length
        ? `a live-patch payload without a ${OWN_ID_SECTION} note (only the build-ids it depends on)`
        : 'no GNU build-id note (NT_GNU_BUILD_ID) in any SHT_NOTE section',
    );
  }
  const first = notes[0]!;
  const r = result(label, first.id, source, { elf });
  const dep = deps.find((n) => DEPENDS_SECTIONS.includes(n.sectionName));
  const xenDep = deps.find((n) => n.sectionName === XEN_DEPENDS_SECTION);
  if (dep) r.depends = toHex(dep.id);
  if (xenDep) r.xenDepends = toHex(xenDep.id);
  if (source === 'gzip-elf') r.notes.push('gzip-compressed ELF, read after decompression');
  if (notes.length > 1) {
    const shown = notes.slice(0, MAX_NOTES_TRIED).map((n) => `#${n.ordinal} ${toHex(n.id)}`);
    if (notes.length > MAX_NOTES_TRIED) shown.push(`… ${notes.length - MAX_NOTES_TRIED} more`);
    r.notes.push(`${notes.length} build-id notes (ld -r keeps its inputs' notes): ${shown.join(', ')}; readelf, gdb and Xen read #0`);
  }
  const payload = bootImagePayload(elf, first);
  if (payload) {
    r.bootImage = true;
    r.notes.push(`Xen boot image (mkelf32): the build-id note lies inside ${payload.name}, the copy of xen-syms' LOAD segment`);
    r.notes.push(BOOT_IMAGE_WHY);
  }
  if (!opts.verify) return r;

  if (payload) return verifyBootImage(r, elf, first, payload, opts);

  const v = pre ?? verifyElfBuildId(elf, notes, src, opts.goldTree);
  r.linker = v.linker.kind === 'lld' && v.linker.major !== undefined ? `lld ${v.linker.major}` : v.linker.kind;
  if (v.match) {
    r.verified = true;
    r.algorithm = v.match.algorithm;
    if (v.match.note.ordinal !== first.ordinal) {
      r.bytes = v.match.note.id;
      r.buildId = toHex(v.match.note.id);
      r.notes.push(
        `the linker made note #${v.match.note.ordinal} (${r.buildId}); note #0 (${toHex(first.id)}) is a stale input id, and it is the one readelf, gdb and Xen report`,
      );
    }
    return r;
  }
  const lens = new Set(notes.map((n) => n.id.length));
  if (![...lens].some((l) => l === 20 || l === 16 || l === 8)) {
    r.verified = null;
    note(
      r,
      `a ${first.id.length}-byte id is no hash GNU ld, gold or lld make: it was given with --build-id=0xHEX and cannot be recomputed`,
      true,
    );
    return r;
  }
  r.verified = false;
  note(r, `no algorithm reproduces the stored id (tried ${v.tried.join(', ')}; ${v.linker.evidence})`, true);
  r.notes.push(
    'ids from --build-id=uuid or 0xHEX cannot be recomputed, and strip, objcopy or any edit after linking changes the hashed bytes',
  );
  return r;
}

const BOOT_IMAGE_WHY =
  "the id cannot be recomputed from the boot image alone: GNU ld hashed xen-syms' ELF64 header, program headers, " +
  "section headers and .comment, which the boot image does not contain (its payload is xen-syms' LOAD segment, " +
  'byte for byte); give xen-syms as well (--xen-syms, or as another input) to check the payload and recompute from it';

function verifyBootImage(
  r: BuildIdResult,
  boot: ElfFile,
  bn: BuildIdNoteRef,
  payload: { name: string } & Parameters<typeof checkBootImageAgainstSyms>[1],
  opts: ReadBuildIdOptions,
): BuildIdResult {
  if (!opts.xenSyms) {
    r.verified = null;
    r.reason = BOOT_IMAGE_WHY;
    return r;
  }
  const syms = loadSyms(opts.xenSyms);
  const symNotes = findBuildIdNotes(syms);
  const symsName = syms.file ?? 'xen-syms';
  if (symNotes.length === 0 || !equalBytes(symNotes[0]!.id, bn.id)) {
    r.verified = false;
    note(
      r,
      `${symsName} has build-id ${symNotes[0] ? toHex(symNotes[0].id) : '(none)'}, not ${toHex(bn.id)}: it is not this boot image's xen-syms`,
    );
    return r;
  }
  const check = checkBootImageAgainstSyms(boot, payload, syms);
  if (!check.ok) {
    r.verified = false;
    note(r, `boot image does not match ${symsName}: ${check.reason}`, true);
    return r;
  }
  const v = verifyElfBuildId(syms, symNotes);
  r.linker = v.linker.kind;
  if (v.match && v.match.note.ordinal === 0) {
    r.verified = true;
    r.algorithm = v.match.algorithm;
    r.notes.push(`verified through ${symsName}: ${check.reason}, and ${v.match.algorithm} over ${symsName} gives the id`);
  } else {
    r.verified = false;
    note(r, `${check.reason}, but ${symsName}'s own id does not recompute (tried ${v.tried.join(', ')})`, true);
  }
  return r;
}

function fromPe(bytes: Uint8Array, label: string, opts: ReadBuildIdOptions): BuildIdResult {
  const info = readPeBuildId(bytes, label);
  const r = result(label, info.guidRaw, 'pe', { guidOrder: toHex(info.guidOrder) });
  r.notes.push(
    `CodeView GUID: Xen reports the raw 16 bytes (${r.buildId}); objdump -p prints them GUID-ordered as ${toHex(info.guidOrder)} = ${info.guidString}`,
  );
  if (opts.verify) {
    const v = verifyPeBuildId(bytes, info, label);
    r.verified = v.algorithm !== null;
    r.algorithm = v.algorithm;
    if (!v.algorithm) note(r, `no algorithm reproduces the GUID (tried ${v.tried.join(', ')})`, true);
  }
  return r;
}

/** Recomputes with one named ELF algorithm (for tests and tools). */
export { computeElfAlgorithm };

/**
 * Compares two ids the way a user means "is this the same hypervisor?". When they differ and one
 * is a 16-byte id (an EFI-booted Xen reports xen.efi's CodeView GUID) while the other is a
 * 20-byte ELF id (xen-syms' note), the warning says they differ by design.
 */
export function compareBuildIds(a: BuildIdResult, b: BuildIdResult): { equal: boolean; warning?: string } {
  const equal = equalBytes(a.bytes, b.bytes);
  if (equal) return { equal };
  const isElfSide = (x: BuildIdResult): boolean => x.source === 'elf' || x.source === 'gzip-elf';
  const isEfiSide = (x: BuildIdResult): boolean => x.source === 'pe' || (!isElfSide(x) && x.bytes.length === 16);
  for (const [e, f] of [
    [a, b],
    [b, a],
  ] as const) {
    if (isElfSide(e) && e.bytes.length === 20 && isEfiSide(f)) {
      return {
        equal,
        warning:
          `${f.input} is a 16-byte EFI (CodeView) build-id and ${e.input} is xen-syms' 20-byte ELF note: they differ by design ` +
          '(an EFI-booted Xen reports the GUID of xen.efi, a separate link); compare with xen.efi instead',
      };
    }
  }
  return { equal };
}
