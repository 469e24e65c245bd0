/**
 * Reading only the metadata of a big ELF file, for the `buildid --verify` fast path: the ELF
 * header, program headers, section header table, .shstrtab, note sections and .comment are
 * copied into one small *compact* ELF image, which the ordinary reader parses. The sections are
 * then given back their real file offsets, and `data()` of the copied sections returns the
 * copies; the other sections' contents are not in memory (data() throws) and are hashed
 * through the FileSource. The header bytes the GNU ld algorithm hashes are the file's own:
 * only e_phoff, e_shoff and sh_offset differ in the copy, and the algorithm zeroes exactly those.
 *
 * A buffer of the file's size is never allocated: V8 counts a 64 MiB buffer as external memory
 * pressure and collects garbage for it.
 */
import { FormatError } from '../errors.js';
import { SHT } from '../elf/constants.js';
import { readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import type { FileSource } from './stream.js';

const META_LIMIT = 16 * 1024 * 1024;

export function readElfMetadata(src: FileSource, file?: string): ElfFile {
  const size = src.size;
  const bad = (detail: string, offset: number): FormatError => new FormatError('ELF_TRUNCATED', detail, { file, offset });
  const head = new Uint8Array(Math.min(64, size));
  src.readInto(0, head.length, head, 0);
  if (head.length < 52 || head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) {
    throw new FormatError('ELF_BAD_MAGIC', 'not an ELF file', { file, offset: 0 });
  }
  const is64 = head[4] === 2;
  const le = head[5] !== 2;
  const ehsize = is64 ? 64 : 52;
  if (head.length < ehsize) throw bad('file too short for the ELF header', 0);
  const hv = new DataView(head.buffer);
  const uN = (dv: DataView, o: number): number => (is64 ? Number(dv.getBigUint64(o, le)) : dv.getUint32(o, le));
  const F = is64
    ? { phoff: 32, shoff: 40, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60, shstrndx: 62, shOffset: 24, shSize: 32, shLink: 40 }
    : { phoff: 28, shoff: 32, phentsize: 42, phnum: 44, shentsize: 46, shnum: 48, shstrndx: 50, shOffset: 16, shSize: 20, shLink: 24 };
  const phoff = uN(hv, F.phoff);
  const shoff = uN(hv, F.shoff);
  const phentsize = hv.getUint16(F.phentsize, le);
  const phnumRaw = hv.getUint16(F.phnum, le);
  const shentsize = hv.getUint16(F.shentsize, le);
  let shnum = hv.getUint16(F.shnum, le);
  let shstrndx = hv.getUint16(F.shstrndx, le);
  const within = (off: number, len: number): boolean => off >= 0 && len >= 0 && off + len <= size;

  let sh0: Uint8Array | undefined;
  if (shoff !== 0 && shentsize > 0) {
    if (!within(shoff, shentsize)) throw bad('section header table starts past the end of the file', shoff);
    sh0 = new Uint8Array(shentsize);
    src.readInto(shoff, shentsize, sh0, 0);
    const dv0 = new DataView(sh0.buffer);
    if (shnum === 0) shnum = uN(dv0, F.shSize);
    if (shstrndx === 0xffff) shstrndx = dv0.getUint32(F.shLink, le);
  }
  const phnum = phnumRaw === 0xffff && sh0 ? new DataView(sh0.buffer).getUint32(is64 ? 44 : 28, le) : phnumRaw;
  const phLen = phnum * phentsize;
  const shLen = shoff !== 0 ? shnum * shentsize : 0;
  if (phLen > 0 && !within(phoff, phLen)) throw bad('program header table runs past the end of the file', phoff);
  if (shLen > 0 && !within(shoff, shLen)) throw bad('section header table runs past the end of the file', shoff);

  // Which sections to copy: the name table, notes and .comment (names need the table first).
  const shdrs = new Uint8Array(shLen);
  if (shLen > 0) src.readInto(shoff, shLen, shdrs, 0);
  const sv = new DataView(shdrs.buffer);
  const secOff = (i: number): number => uN(sv, i * shentsize + F.shOffset);
  const secSize = (i: number): number => uN(sv, i * shentsize + F.shSize);
  const secType = (i: number): number => sv.getUint32(i * shentsize + 4, le);
  const copy = new Set<number>();
  if (shstrndx > 0 && shstrndx < shnum) copy.add(shstrndx);
  let names: Uint8Array | undefined;
  if (copy.has(shstrndx) && secSize(shstrndx) <= META_LIMIT && within(secOff(shstrndx), secSize(shstrndx))) {
    names = new Uint8Array(secSize(shstrndx));
    src.readInto(secOff(shstrndx), names.length, names, 0);
  }
  const nameIs = (i: number, want: string): boolean => {
    if (!names) return false;
    const at = sv.getUint32(i * shentsize, le);
    if (at + want.length >= names.length) return false;
    for (let k = 0; k < want.length; k++) if (names[at + k] !== want.charCodeAt(k)) return false;
    return names[at + want.length] === 0;
  };
  for (let i = 1; i < shnum; i++) {
    const t = secType(i);
    if (t === SHT.NOTE || (t !== SHT.NOBITS && (nameIs(i, '.comment') || nameIs(i, '.note.gnu.build-id')))) copy.add(i);
  }

  // Compact image: header, phdrs, shdrs, then the copied contents.
  let total = ehsize + phLen + shLen;
  const placed = new Map<number, number>();
  for (const i of [...copy].sort((a, b) => a - b)) {
    const off = secOff(i);
    const len = secSize(i);
    if (secType(i) === SHT.NOBITS || len > META_LIMIT || !within(off, len)) continue; // left to the reader's checks
    placed.set(i, total);
    total += len;
  }
  const img = new Uint8Array(total);
  img.set(head.subarray(0, ehsize), 0);
  if (phLen > 0) src.readInto(phoff, phLen, img, ehsize);
  img.set(shdrs, ehsize + phLen);
  const iv = new DataView(img.buffer);
  const put = (o: number, v: number): void => {
    if (is64) iv.setBigUint64(o, BigInt(v), le);
    else iv.setUint32(o, v, le);
  };
  put(F.phoff, phLen > 0 ? ehsize : 0);
  put(F.shoff, shLen > 0 ? ehsize + phLen : 0);
  for (const [i, at] of placed) {
    if (i === shstrndx && names) img.set(names, at);
    else src.readInto(secOff(i), secSize(i), img, at);
    put(ehsize + phLen + i * shentsize + F.shOffset, at);
  }

  const elf = readElf(img, { file });
  // Give back the real offsets; the copies answer data(); the rest is on disk only.
  elf.header.phoff = phoff;
  elf.header.shoff = shoff;
  for (const s of elf.sections) {
    const at = placed.get(s.index);
    const real = secOff(s.index);
    s.offset = real;
    if (at !== undefined) {
      const view = img.subarray(at, at + secSize(s.index));
      s.data = () => view;
    } else if (s.type !== SHT.NOBITS && s.type !== SHT.NULL) {
      s.data = () => {
        throw new FormatError('BUILDID_NOT_LOADED', 'section contents are not in memory (metadata-only read)', {
          file,
          sectionIndex: s.index,
          section: s.name,
        });
      };
    }
  }
  return elf;
}
