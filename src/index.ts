/**
 * xsplice as a library: the package entry (package.json "exports"). The CLI (cli/) is a thin
 * layer over these functions.
 *
 *   import { readElfFile, loadTarget, buildFiles, verifyPayloads, readBuildId } from 'xsplice';
 *
 * What a user builds with, and nothing else: reading and writing ELF objects, building payloads,
 * inspecting and verifying them, build-ids, the payload ABI table, trying payloads on a real
 * hypervisor, and the error family. Internals (record layouts, hashing plans, byte ranges, the
 * writer's plan) stay reachable only inside the package, through their own modules.
 * test/public-surface.test.ts pins this list: adding to it is a decision, not a side effect.
 */

// Errors: one family; every failure of the library is one of these.
export { XspliceError, FormatError, RefusedError, UsageError, isXspliceError, type ErrorContext } from './errors.js';

// ELF: read, view, and the read-modify-write model.
export { readElf, readElfFile, isElf, ObjectBuilder, type ReadOptions } from './elf/index.js';
export type { FromElfResult } from './elf/builder.js';
export { elfView, type ElfView } from './elf/dump.js';
export type {
  ElfClass,
  ElfFile,
  ElfHeader,
  ElfSection,
  ElfSymbol,
  ElfRelocation,
  ElfRelocSection,
  ElfNote,
  ElfGroup,
  ElfProgramHeader,
  SectionId,
  SymbolId,
  SymbolSection,
  SectionSpec,
  SymbolSpec,
  RelocationSpec,
  RelocationSet,
  GroupSpec,
  BuilderOptions,
} from './elf/types.js';
export { ET, EM, SHN, SHT, SHF, STB, STT, STV, GRP_COMDAT, R_X86_64, R_AARCH64, R_ARM } from './elf/constants.js';

// Build-ids: read one from any XEN form, compare, verify against the linker's algorithm, set one.
export {
  readBuildId,
  readBuildIdSync,
  identifyBuildId,
  compareBuildIds,
  verifyElfBuildId,
  setBuildId,
  setBuildIdWithId,
  parseHexId,
  toHex,
  type BuildIdResult,
  type BuildIdSource,
  type BuildIdInput,
  type ReadBuildIdOptions,
  type ElfVerification,
  type BuildIdStyle,
  type SetBuildIdOptions,
} from './buildid/index.js';

// Payloads: the ABI table, the target, build, inspect, verify.
export {
  listAbis,
  abiById,
  abiByName,
  abiForVersion,
  loadAbiFile,
  parseXenVersion,
  HOOK_KINDS,
  type PayloadAbi,
  type Arch,
  type HookKind,
  loadTarget,
  type Target,
  buildPayload,
  buildFiles,
  type BuildOptions,
  type BuildResult,
  type BuildFilesOptions,
  inspectPayload,
  formatInspect,
  verifyPayloads,
  formatVerify,
  type VerifyResult,
  type VerifyOptions,
} from './payload/index.js';

// Try payloads on the real hypervisor under QEMU.
export { runSession, tryPayloads } from './try/index.js';

// From two builds to a payload: what changed, why, and the payload made of it.
export { diffObjects, diffPayload, diffError, formatDiff, type DiffPayloadOptions, type DiffPayloadResult } from './diff/index.js';
export type { DiffResult, DiffOptions } from './diff/types.js';

// From a source fix to a verified payload, on the base that built the running hypervisor.
export { patchXen, ensureDebianBase, type PatchOptions, type PatchResult, type Base } from './patch/index.js';
