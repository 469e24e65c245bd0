/**
 * gold and LLVM lld: the build-id is a hash of the WHOLE output file (padding, symtab and section
 * header table included) with only the note's descriptor reading as zero (the note header and
 * "GNU\0" are already written when they hash).
 *
 * | algorithm     | linker / option                              | hash                                       |
 * |---------------|----------------------------------------------|--------------------------------------------|
 * | gold-sha1/md5 | gold --build-id=sha1|md5                      | H(file)                                    |
 * | gold-tree     | gold --build-id=tree                          | file < 40 MiB: sha1(file); else            |
 * |               |                                              | sha1(md5(c0) || md5(c1) || …), 2 MiB chunks |
 * | lld14-sha1/md5| lld <= 14 --build-id=sha1|md5 (tree = sha1)   | H(H(c0) || H(c1) || …), 1 MiB chunks       |
 * | lld-fast      | lld --build-id=fast (14 and 16)               | same tree with XXH64, stored little-endian |
 * | lld15-sha1/md5| lld >= 15 --build-id=sha1|md5                 | same tree with BLAKE3 truncated to 20 / 16 |
 *
 * gold's defaults come from gold/options.h (--build-id-min-file-size-for-treehash = 40 MiB,
 * --build-id-chunk-size-for-treehash = 2 MiB); lld's chunk size from lld/ELF/Writer.cpp.
 */
import { createHasher, TreeHasher, type Hasher } from './hash.js';
import { rangeMinus, runPlan, type ByteSource, type Range } from './stream.js';

export type WholeFileAlgo = 'gold-sha1' | 'gold-md5' | 'gold-tree' | 'lld14-sha1' | 'lld14-md5' | 'lld-fast' | 'lld15-sha1' | 'lld15-md5';

export const WHOLE_FILE_ALGOS: readonly WholeFileAlgo[] = [
  'gold-sha1',
  'gold-md5',
  'gold-tree',
  'lld14-sha1',
  'lld14-md5',
  'lld-fast',
  'lld15-sha1',
  'lld15-md5',
];

/** Descriptor length each algorithm produces. */
export const WHOLE_FILE_ID_SIZE: Record<WholeFileAlgo, number> = {
  'gold-sha1': 20,
  'gold-md5': 16,
  'gold-tree': 20,
  'lld14-sha1': 20,
  'lld14-md5': 16,
  'lld-fast': 8,
  'lld15-sha1': 20,
  'lld15-md5': 16,
};

export const LLD_CHUNK = 1 << 20;
export const GOLD_TREE_MIN_FILE_SIZE = 40 * 1024 * 1024;
export const GOLD_TREE_CHUNK = 2 * 1024 * 1024;

export interface GoldTreeOptions {
  /** --build-id-min-file-size-for-treehash (default 40 MiB). */
  minFileSize?: number;
  /** --build-id-chunk-size-for-treehash (default 2 MiB). */
  chunkSize?: number;
}

export function wholeFileHasher(algo: WholeFileAlgo, fileSize: number, gold: GoldTreeOptions = {}): Hasher {
  switch (algo) {
    case 'gold-sha1':
      return createHasher('sha1');
    case 'gold-md5':
      return createHasher('md5');
    case 'gold-tree': {
      const min = gold.minFileSize ?? GOLD_TREE_MIN_FILE_SIZE;
      return fileSize >= min ? new TreeHasher('md5', 'sha1', gold.chunkSize ?? GOLD_TREE_CHUNK) : createHasher('sha1');
    }
    case 'lld14-sha1':
      return new TreeHasher('sha1', 'sha1', LLD_CHUNK);
    case 'lld14-md5':
      return new TreeHasher('md5', 'md5', LLD_CHUNK);
    case 'lld-fast':
      return new TreeHasher('xxh64', 'xxh64', LLD_CHUNK);
    case 'lld15-sha1':
      return new TreeHasher('blake3-20', 'blake3-20', LLD_CHUNK);
    case 'lld15-md5':
      return new TreeHasher('blake3-16', 'blake3-16', LLD_CHUNK);
  }
}

/** The id `algo` gives for the file in `src`, with the descriptor range reading as zero. */
export function wholeFileDigest(algo: WholeFileAlgo, src: ByteSource, desc: Range, gold?: GoldTreeOptions, file?: string): Uint8Array {
  const h = wholeFileHasher(algo, src.size, gold);
  runPlan(rangeMinus(0, src.size, [desc]), src, h, file);
  return h.digest();
}
