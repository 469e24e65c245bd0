/**
 * `xsplice diff` as a library: diffObjects() compares ORIG and PATCHED objects and returns what a
 * live patch must carry; diffPayload() goes on through buildPayload + verify and writes the payload
 * only when verify accepts it.
 */
export type * from './types.js';
export { diffObjects } from './pipeline.js';
export { diffPayload, diffError, type DiffPayloadOptions, type DiffPayloadResult } from './payload.js';
export { formatDiff } from './explain.js';
