/**
 * PE/COFF build-ids: the CodeView (RSDS) record that GNU ld writes for `--build-id` in PE
 * emulations (i386pep for xen.efi), and GNU ld's algorithm for it (binutils
 * ld/emultempl/pep.em, pecoff_checksum_contents).
 *
 * Where the id sits: optional header DataDirectory[6] (debug) → IMAGE_DEBUG_DIRECTORY entries
 * (28 bytes each) → the entry with Type 2 (CODEVIEW) → PointerToRawData → "RSDS", GUID (16
 * bytes), Age (u32 LE), PDB name (NUL-terminated).
 *
 * GNU ld stores the first 16 bytes of its digest as a Microsoft GUID: Data1 (4 bytes), Data2 and
 * Data3 (2 bytes each) little-endian, i.e. byte-reversed. Xen reports the raw 16 bytes;
 * `objdump -p` prints the GUID-ordered value (= the digest prefix).
 *
 * The hash: SHA1 or MD5 of the whole file as it was before ld wrote the headers: bytes
 * [0, start of the section table) zero, the debug directory and the CodeView record zero,
 * everything else (section table, section data, COFF symbol table) as it is.
 */
import { FormatError } from '../errors.js';
import { createHasher } from './hash.js';
import { equalBytes } from './note.js';
import { MemorySource, rangeMinus, runPlan, type Range } from './stream.js';

/** Layout of the headers this module reads (offsets relative to their record). */
const PE = {
  dos: { e_lfanew: 0x3c, size: 0x40 },
  coff: { size: 20, NumberOfSections: 2, SizeOfOptionalHeader: 16 },
  opt: { Magic: 0, PE32_NumberOfRvaAndSizes: 92, PE32_DataDirectory: 96, PEPLUS_NumberOfRvaAndSizes: 108, PEPLUS_DataDirectory: 112 },
  section: { size: 40, VirtualSize: 8, VirtualAddress: 12, SizeOfRawData: 16, PointerToRawData: 20 },
  debugEntry: { size: 28, Type: 12, SizeOfData: 16, AddressOfRawData: 20, PointerToRawData: 24 },
  IMAGE_DEBUG_TYPE_CODEVIEW: 2,
  IMAGE_DIRECTORY_ENTRY_DEBUG: 6,
  RSDS: 0x53445352,
} as const;

export interface PeBuildId {
  /** The 16 GUID bytes as stored in the file (what Xen reports). */
  guidRaw: Uint8Array;
  /** The same bytes GUID-ordered (Data1..3 byte-reversed): objdump -p's "signature", = digest prefix. */
  guidOrder: Uint8Array;
  /** {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX} */
  guidString: string;
  age: number;
  pdbName: string;
  /** File ranges of the debug directory and of the CodeView record. */
  debugDirectory: Range;
  codeView: Range;
  /** File offset of the section table. */
  sectionTable: number;
  pe32plus: boolean;
}

export function isPe(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x5a;
}

/** Byte-reverses Data1 (4), Data2 (2), Data3 (2) of a 16-byte GUID (its own inverse). */
export function swapGuid(g: Uint8Array): Uint8Array {
  const o = new Uint8Array(g.subarray(0, 16));
  o.set([g[3]!, g[2]!, g[1]!, g[0]!, g[5]!, g[4]!, g[7]!, g[6]!], 0);
  return o;
}

function guidString(g: Uint8Array): string {
  const h = Array.from(g, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join('');
  return `{${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}}`;
}

export function readPeBuildId(bytes: Uint8Array, file?: string): PeBuildId {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = bytes.length;
  const need = (off: number, n: number, what: string): void => {
    if (off < 0 || off + n > len) {
      throw new FormatError('PE_TRUNCATED', `${what} lies outside the file`, {
        file,
        offset: off,
        expected: `${n} bytes at 0x${off.toString(16)}`,
        found: `${len}-byte file`,
      });
    }
  };
  if (!isPe(bytes)) throw new FormatError('PE_BAD_MAGIC', 'not a PE file', { file, offset: 0, expected: '"MZ"' });
  need(0, PE.dos.size, 'DOS header');
  const peOff = dv.getUint32(PE.dos.e_lfanew, true);
  need(peOff, 4 + PE.coff.size, 'PE signature and COFF header');
  if (dv.getUint32(peOff, true) !== 0x00004550) {
    throw new FormatError('PE_BAD_SIGNATURE', 'no "PE\\0\\0" signature at e_lfanew', { file, offset: peOff });
  }
  const coff = peOff + 4;
  const nsec = dv.getUint16(coff + PE.coff.NumberOfSections, true);
  const optSize = dv.getUint16(coff + PE.coff.SizeOfOptionalHeader, true);
  const opt = coff + PE.coff.size;
  need(opt, Math.max(optSize, 2), 'optional header');
  const magic = dv.getUint16(opt + PE.opt.Magic, true);
  if (magic !== 0x10b && magic !== 0x20b) {
    throw new FormatError('PE_BAD_OPTIONAL_MAGIC', 'unknown optional header magic', {
      file,
      offset: opt,
      expected: '0x10b or 0x20b',
      found: '0x' + magic.toString(16),
    });
  }
  const plus = magic === 0x20b;
  const nDirOff = plus ? PE.opt.PEPLUS_NumberOfRvaAndSizes : PE.opt.PE32_NumberOfRvaAndSizes;
  const dirOff = plus ? PE.opt.PEPLUS_DataDirectory : PE.opt.PE32_DataDirectory;
  const sectionTable = opt + optSize;
  need(sectionTable, nsec * PE.section.size, 'section table');
  if (optSize < dirOff || dv.getUint32(opt + nDirOff, true) <= PE.IMAGE_DIRECTORY_ENTRY_DEBUG || optSize < dirOff + 8 * 7) {
    throw new FormatError('PE_NO_BUILDID', 'no debug data directory (no CodeView build-id)', { file, offset: opt });
  }
  const dbgRva = dv.getUint32(opt + dirOff + 8 * PE.IMAGE_DIRECTORY_ENTRY_DEBUG, true);
  const dbgSize = dv.getUint32(opt + dirOff + 8 * PE.IMAGE_DIRECTORY_ENTRY_DEBUG + 4, true);
  if (dbgRva === 0 || dbgSize === 0) {
    throw new FormatError(
      'PE_NO_BUILDID',
      'the debug data directory is empty (no CodeView build-id; was the image linked with --build-id?)',
      { file, offset: opt + dirOff + 48 },
    );
  }
  // RVA -> file offset through the section table.
  let dbgOff = -1;
  for (let i = 0; i < nsec; i++) {
    const s = sectionTable + i * PE.section.size;
    const va = dv.getUint32(s + PE.section.VirtualAddress, true);
    const vsz = Math.max(dv.getUint32(s + PE.section.VirtualSize, true), dv.getUint32(s + PE.section.SizeOfRawData, true));
    if (dbgRva >= va && dbgRva + dbgSize <= va + vsz) {
      dbgOff = dv.getUint32(s + PE.section.PointerToRawData, true) + (dbgRva - va);
      break;
    }
  }
  if (dbgOff < 0) throw new FormatError('PE_NO_BUILDID', `debug directory RVA 0x${dbgRva.toString(16)} is in no section`, { file });
  need(dbgOff, dbgSize, 'debug directory');
  for (let e = 0; e + PE.debugEntry.size <= dbgSize; e += PE.debugEntry.size) {
    const at = dbgOff + e;
    if (dv.getUint32(at + PE.debugEntry.Type, true) !== PE.IMAGE_DEBUG_TYPE_CODEVIEW) continue;
    const cvSize = dv.getUint32(at + PE.debugEntry.SizeOfData, true);
    const cvOff = dv.getUint32(at + PE.debugEntry.PointerToRawData, true);
    need(cvOff, Math.max(cvSize, 24), 'CodeView record');
    if (dv.getUint32(cvOff, true) !== PE.RSDS) {
      throw new FormatError('PE_CODEVIEW', 'CodeView record is not "RSDS" (PDB 7.0)', { file, offset: cvOff });
    }
    const guidRaw = bytes.slice(cvOff + 4, cvOff + 20);
    const age = dv.getUint32(cvOff + 20, true);
    let end = cvOff + 24;
    const lim = cvOff + cvSize;
    while (end < lim && bytes[end] !== 0) end++;
    const pdbName = new TextDecoder().decode(bytes.subarray(cvOff + 24, end));
    const guidOrder = swapGuid(guidRaw);
    return {
      guidRaw,
      guidOrder,
      guidString: guidString(guidOrder),
      age,
      pdbName,
      debugDirectory: { offset: dbgOff, size: dbgSize },
      codeView: { offset: cvOff, size: cvSize },
      sectionTable,
      pe32plus: plus,
    };
  }
  throw new FormatError('PE_NO_BUILDID', 'no CodeView entry in the debug directory', { file, offset: dbgOff });
}

export type PeAlgo = 'pe-gnu-ld-sha1' | 'pe-gnu-ld-md5';

/** GNU ld's digest for a PE image (before it is cut to 16 bytes). */
export function peGnuLdDigest(bytes: Uint8Array, info: PeBuildId, algo: 'sha1' | 'md5', file?: string): Uint8Array {
  const zero: Range[] = [{ offset: 0, size: info.sectionTable }, info.debugDirectory, info.codeView];
  const h = createHasher(algo);
  runPlan(rangeMinus(0, bytes.length, zero), new MemorySource(bytes), h, file);
  return h.digest();
}

/** Which GNU ld algorithm (if any) reproduces the GUID. */
export function verifyPeBuildId(bytes: Uint8Array, info: PeBuildId, file?: string): { algorithm: PeAlgo | null; tried: PeAlgo[] } {
  const tried: PeAlgo[] = [];
  for (const algo of ['sha1', 'md5'] as const) {
    const name: PeAlgo = `pe-gnu-ld-${algo}`;
    tried.push(name);
    if (equalBytes(peGnuLdDigest(bytes, info, algo, file).subarray(0, 16), info.guidOrder)) return { algorithm: name, tried };
  }
  return { algorithm: null, tried };
}
