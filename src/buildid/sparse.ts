/**
 * Reading only the metadata of a big ELF file: ELF header, program headers, section header table,
 * .shstrtab, note sections and .comment are read into a buffer of the file's size whose other
 * bytes stay zero (a fresh zero-filled allocation is backed lazily by the OS, so the untouched
 * bytes cost nothing). The returned ElfFile is good for headers, names and notes ONLY; section
 * contents must be hashed through the FileSource. Internal to the `buildid --verify` fast path.
 */
import { FormatError } from '../errors.js';
import { SHT } from '../elf/constants.js';
import { readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import type { FileSource } from './stream.js';

const META_LIMIT = 16 * 1024 * 1024;

export function readElfMetadata(src: FileSource, file?: string): ElfFile {
  const size = src.size;
  const buf = new Uint8Array(size);
  const read = (off: number, len: number): void => {
    if (off < 0 || len < 0 || off >= size) return;
    src.readInto(off, Math.min(len, size - off), buf);
  };
  read(0, 64);
  const dv = new DataView(buf.buffer);
  const is64 = buf[4] === 2;
  const le = buf[5] !== 2;
  const u16 = (o: number): number => dv.getUint16(o, le);
  const u32 = (o: number): number => dv.getUint32(o, le);
  const uN = (o: number): number => (is64 ? Number(dv.getBigUint64(o, le)) : u32(o));
  if (buf[0] !== 0x7f || buf[1] !== 0x45 || buf[2] !== 0x4c || buf[3] !== 0x46) {
    throw new FormatError('ELF_BAD_MAGIC', 'not an ELF file', { file, offset: 0 });
  }
  const phoff = uN(is64 ? 32 : 28);
  const shoff = uN(is64 ? 40 : 32);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  const shentsize = u16(is64 ? 58 : 46);
  let shnum = u16(is64 ? 60 : 48);
  let shstrndx = u16(is64 ? 62 : 50);
  if (phnum > 0 && phnum !== 0xffff) read(phoff, phnum * phentsize);
  if (shoff > 0 && shentsize > 0) {
    read(shoff, shentsize);
    const s0 = shoff;
    if (shnum === 0) shnum = uN(s0 + (is64 ? 32 : 20));
    if (shstrndx === 0xffff) shstrndx = u32(s0 + (is64 ? 40 : 24));
    if (shnum * shentsize > size) throw new FormatError('ELF_SHNUM', 'section count exceeds what the file holds', { file, offset: shoff });
    read(shoff, shnum * shentsize);
    if (shstrndx > 0 && shstrndx < shnum) {
      const h = shoff + shstrndx * shentsize;
      const off = uN(h + (is64 ? 24 : 16));
      const len = uN(h + (is64 ? 32 : 20));
      if (len <= META_LIMIT) read(off, len);
    }
  }
  const elf = readElf(buf, { file });
  for (const s of elf.sections) {
    if (s.type === SHT.NOTE || s.name === '.comment' || s.name === '.note.gnu.build-id') {
      if (s.size <= BigInt(META_LIMIT)) read(s.offset, Number(s.size));
    }
  }
  return elf;
}
