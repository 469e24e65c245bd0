/**
 * Reads everything a user of the reader can reach: every section's contents, symbols, relocations,
 * notes, groups and the `xsplice elf` view. Shared by the malformed-input and fuzz tests.
 */
import { readElf } from '../../src/elf/reader.js';
import { elfView } from '../../src/elf/dump.js';
import type { ElfFile } from '../../src/elf/types.js';

export function fullRead(bytes: Uint8Array, file = 'fx.o'): ElfFile {
  const elf = readElf(bytes, { file });
  for (const s of elf.sections) s.data();
  elf.symbols();
  elf.relocations();
  elf.notes();
  elf.groups();
  elfView(elf);
  return elf;
}
