/**
 * Build-ids: the GNU note codec (Xen's parse rules), the linkers' algorithms (GNU ld ELF and PE,
 * gold, lld 14 and >= 15), reading ids from every XEN form, and embedding one into an object.
 */
export {
  encodeBuildIdNote,
  parseBuildIdNote,
  toHex,
  parseHexId,
  isHexId,
  equalBytes,
  buildIdNoteSize,
  walkNotes,
  NT_GNU_BUILD_ID,
  type ParsedBuildIdNote,
  type NoteRef,
} from './note.js';
export {
  gnuLdElfBuildId,
  patchGnuLdBuildId,
  patchGnuLdBuildIdLaidOut,
  gnuLdLayoutOfPlan,
  gnuLdPlan,
  gnuLdDigest,
  gnuLdUnhashedSections,
  packageMetadataRanges,
  NT_FDO_PACKAGING_METADATA,
  type GnuLdAlgo,
} from './gnu-ld.js';
export {
  wholeFileDigest,
  wholeFileHasher,
  WHOLE_FILE_ALGOS,
  WHOLE_FILE_ID_SIZE,
  LLD_CHUNK,
  GOLD_TREE_CHUNK,
  GOLD_TREE_MIN_FILE_SIZE,
  type WholeFileAlgo,
  type GoldTreeOptions,
} from './whole-file.js';
export {
  findBuildIdNotes,
  detectLinker,
  candidateAlgorithms,
  computeElfAlgorithm,
  computeElfAlgorithmAsync,
  elfAlgorithmPlan,
  verifyElfBuildId,
  verifyElfBuildIdAsync,
  bootImagePayload,
  checkBootImageAgainstSyms,
  type ElfAlgo,
  type BuildIdNoteRef,
  type LinkerGuess,
  type ElfVerification,
} from './elf-id.js';
export { readPeBuildId, verifyPeBuildId, peGnuLdDigest, swapGuid, isPe, type PeBuildId, type PeAlgo } from './pe.js';
export { Xxh64, xxh64 } from './xxh64.js';
export { createHasher, TreeHasher, digest, type Hasher, type LeafHash } from './hash.js';
export { MemorySource, FileSource, runPlan, runPlanAsync, rangeMinus, type Segment, type Range, type ByteSource } from './stream.js';
export { readElfMetadata } from './sparse.js';
export {
  readBuildId,
  readBuildIdSync,
  identifyBuildId,
  compareBuildIds,
  type BuildIdResult,
  type BuildIdSource,
  type BuildIdInput,
  type ReadBuildIdOptions,
} from './read.js';
export { setBuildId, setBuildIdWithId, BUILD_ID_SECTION, type BuildIdStyle, type SetBuildIdOptions } from './embed.js';
