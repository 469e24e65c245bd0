/**
 * diff → buildPayload → verify → write (only when verify accepts). The payload's ABI, build-id,
 * reproducibility and loader checks all come from `build` and `verify`.
 */
import { buildPayload, type BuildResult, type DependsSpec } from '../payload/build.js';
import { readDepends } from '../payload/build-files.js';
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
  /**
   * What the payload stacks on (`--depends PAYLOAD|HEX`): a loaded payload's file (its build-id goes
   * into the depends note, its copies of the functions it replaces are what ORIG is checked against,
   * and verify runs it first), a hex build-id, or an already-read DependsSpec. Default: XEN.
   */
  depends?: string | DependsSpec;
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
  const more =
    d.errors.length > 1 ? ` (+${d.errors.length - 1} more: ${[...new Set(d.errors.slice(1).map((x) => x.code))].join(', ')})` : '';
  return new RefusedError(e.code, `${e.message}; ${e.suggestion}${more}`, { file: e.object, ...(e.symbol ? { symbol: e.symbol } : {}) });
}

/** diffObjects, then buildPayload, then verifyPayloads; throws RefusedError (exit 1) on any refusal. */
export async function diffPayload(o: DiffPayloadOptions): Promise<DiffPayloadResult> {
  const target: Target = typeof o.xen === 'string' ? await loadTarget(o.xen) : o.xen;
  const abi = o.abi ?? defaultAbi(target);
  const depends = typeof o.depends === 'string' ? await readDepends(o.depends, abi.sections.buildId) : o.depends;
  const diff = await diffObjects({ ...o, xen: target, abi, ...(depends?.payload ? { stackedOn: depends.payload.bytes } : {}) });
  if (!diff.ok) throw diffError(diff);
  const build = await buildPayload({
    objects: diff.objects,
    target,
    abi,
    patches: diff.patches,
    hooks: diff.hooks,
    oldAddr: target.symbols ? 'address' : 'name',
    toolVersion: o.toolVersion ?? 'unknown',
    ...(depends ? { depends } : {}),
    // §8.2: the digest of diff's inputs (sorted objects' SHA-256s and the patch name), as diff reports it.
    modinfo: [`diff-inputs=${diff.inputDigest}`],
    ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
  const name = o.out ?? 'diff.livepatch';
  // Stacked: verify loads the payload it depends on first, as the hypervisor has. A hex build-id
  // names a payload verify cannot load: its apply-time dependency check is left to the hypervisor.
  const dependsFile = typeof o.depends === 'string' ? o.depends : 'depends.livepatch';
  const verify = verifyPayloads(
    [...(depends?.payload ? [{ file: dependsFile, bytes: depends.payload.bytes }] : []), { file: name, bytes: build.bytes }],
    target,
    { abi },
  );
  const mine = verify.payloads[verify.payloads.length - 1]!;
  const errs = mine.diagnostics.filter((d) => d.severity === 'error' && !(d.code === 'DEPENDS_MISMATCH' && depends && !depends.payload));
  const bad = errs[0] ?? verify.payloads.flatMap((p) => p.diagnostics).find((d) => d.severity === 'error');
  if (bad)
    throw new RefusedError('DIFF_VERIFY', `verify refuses the built payload: ${bad ? bad.message : 'see xsplice verify'}`, { file: name });
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
