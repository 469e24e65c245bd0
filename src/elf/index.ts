export * from './types.js';
export * from './constants.js';
export { readElf, isElf, parseNotes, checkedNumber, type ReadOptions } from './reader.js';
export { LAYOUT32, LAYOUT64, layoutsFor, decodeRecord, encodeRecord, dataView } from './layout.js';
export { ObjectBuilder } from './builder.js';

import { readInputSync } from '../fsutil.js';
import { readElf } from './reader.js';
import type { ElfFile } from './types.js';
import { XspliceError } from '../errors.js';

/** Reads an ELF file from disk; errors name the file. */
export function readElfFile(path: string): ElfFile {
  try {
    return readElf(readInputSync(path), { file: path });
  } catch (e) {
    if (e instanceof XspliceError) e.withFile(path);
    throw e;
  }
}
