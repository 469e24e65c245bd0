/**
 * xsplice as a library. The CLI (cli/) is a thin layer over exactly these functions.
 *
 *   import { elf, buildid, payload, tryXen } from 'xsplice';
 *
 * Each namespace is one directory of src/; the most used entry points are also exported by name.
 */
export * as elf from './elf/index.js';
export * as buildid from './buildid/index.js';
export * as tryXen from './try/index.js';
export * as payload from './payload/index.js';
export * as diff from './diff/index.js';

export { XspliceError, FormatError, RefusedError, UsageError, isXspliceError, type ErrorContext } from './errors.js';
export { readElf, readElfFile, ObjectBuilder } from './elf/index.js';
export { readBuildId, setBuildId } from './buildid/index.js';
export { buildPayload, loadTarget, verifyPayloads, inspectPayload, abiForVersion, listAbis } from './payload/index.js';
export { runSession, tryPayloads } from './try/index.js';
