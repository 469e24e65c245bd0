export * from './abi-types.js';
export { listAbis, abiById, abiByName, abiForVersion, loadAbiFile, parseXenVersion } from './abi.js';
export { encodeFuncEntry, decodeFuncEntries } from './funcs.js';
export { loadTarget, type Target } from './target.js';
export { buildPayload, type BuildOptions, type BuildResult } from './build.js';
export { buildFiles, type BuildFilesOptions } from './build-files.js';
export { verifyPayloads, formatVerify, type VerifyResult, type VerifyOptions } from './verify.js';
export { inspectPayload, formatInspect } from './inspect.js';
export {
  parseLivepatchList,
  verifyAgainstLoaded,
  loadedInputs,
  type LoadedEntry,
  type LoadedInput,
  type LoadedVerifyResult,
} from './loaded.js';
export { ruleRef, RULES_DOC } from './rules.js';
