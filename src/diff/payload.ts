import type { BuildResult } from '../payload/build.js';
import type { VerifyResult } from '../payload/verify.js';
import type { DiffOptions, DiffResult } from './types.js';
import { RefusedError } from '../errors.js';
import { diffObjects } from './pipeline.js';

export interface DiffPayloadOptions extends DiffOptions {
  /** Target (required to build). */
  xen: NonNullable<DiffOptions['xen']>;
  /** Payload file to write (atomically, only if verify accepts it). Omit to build in memory only. */
  out?: string;
  toolVersion?: string;
  /** Depends on this build-id/payload instead of the hypervisor. */
  depends?: string;
  onWarning?: (message: string) => void;
}

export interface DiffPayloadResult {
  diff: DiffResult;
  build: BuildResult;
  verify: VerifyResult;
  file?: string;
}

/** diffObjects, then buildPayload, then verifyPayloads; throws RefusedError (exit 1) on any refusal. */
export async function diffPayload(o: DiffPayloadOptions): Promise<DiffPayloadResult> {
  const diff = await diffObjects(o);
  throw new RefusedError(diff.errors[0]?.code ?? 'DIFF_NOT_YET', diff.errors[0]?.message ?? 'not yet');
}
