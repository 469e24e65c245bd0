/**
 * diff → buildPayload → verify → write (only when verify accepts). The payload's ABI, build-id,
 * reproducibility and loader checks all come from `build` and `verify`.
 */
import { buildPayload, type BuildResult } from '../payload/build.js';
import { verifyPayloads, type VerifyResult } from '../payload/verify.js';
import { loadTarget, type Target } from '../payload/target.js';
import { RefusedError, XspliceError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import type { DiffOptions, DiffResult } from './types.js';
import { defaultAbi, diffObjects } from './pipeline.js';

export interface DiffPayloadOptions extends DiffOptions {
  /** Target (required to build). */
  xen: NonNullable<DiffOptions['xen']>;
  /** Payload file to write (atomically, only if verify accepts it). Omit to build in memory only. */
  out?: string;
  toolVersion?: string;
  onWarning?: (message: string) => void;
}

export interface DiffPayloadResult {
  diff: DiffResult;
  build: BuildResult;
  verify: VerifyResult;
  file?: string;
}

/** The first refusal of a diff as an error (exit 1). */
export function diffError(d: DiffResult): RefusedError {
  const e = d.errors[0];
  if (!e) return new RefusedError('DIFF_NOTHING', 'nothing to patch');
  const more = d.errors.length > 1 ? ` (+${d.errors.length - 1} more: ${[...new Set(d.errors.slice(1).map((x) => x.code))].join(', ')})` : '';
  return new RefusedError(e.code, `${e.message}; ${e.suggestion}${more}`, { file: e.object, ...(e.symbol ? { symbol: e.symbol } : {}) });
}

/** diffObjects, then buildPayload, then verifyPayloads; throws RefusedError (exit 1) on any refusal. */
export async function diffPayload(o: DiffPayloadOptions): Promise<DiffPayloadResult> {
  const target: Target = typeof o.xen === 'string' ? await loadTarget(o.xen) : o.xen;
  const abi = o.abi ?? defaultAbi(target);
  const diff = await diffObjects({ ...o, xen: target, abi });
  if (!diff.ok) throw diffError(diff);
  const build = await buildPayload({
    objects: diff.objects,
    target,
    abi,
    patches: diff.patches,
    hooks: diff.hooks,
    oldAddr: target.symbols ? 'address' : 'name',
    toolVersion: o.toolVersion ?? 'unknown',
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
  const name = o.out ?? 'diff.livepatch';
  const verify = verifyPayloads([{ file: name, bytes: build.bytes }], target, { abi });
  const bad = verify.payloads[0]?.diagnostics.find((d) => d.severity === 'error');
  if (!verify.ok) throw new RefusedError('DIFF_VERIFY', `verify refuses the built payload: ${bad ? bad.message : 'see xsplice verify'}`, { file: name });
  if (o.out) {
    try {
      await writeFileAtomic(o.out, build.bytes);
    } catch (e) {
      if (e instanceof XspliceError) throw e.withFile(o.out);
      throw e;
    }
  }
  return { diff, build, verify, ...(o.out ? { file: o.out } : {}) };
}
