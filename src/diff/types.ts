/**
 * The public shapes of `xsplice diff` (kept stable: the `patch` command calls diffObjects in-process).
 */
import type { HookRequest, PatchRequest } from '../payload/build.js';
import type { PayloadAbi } from '../payload/abi-types.js';
import type { Target } from '../payload/target.js';

/** One object given in memory; `path` is its path relative to the tree root (how ORIG/PATCHED pair). */
export interface DiffObjectInput {
  path: string;
  bytes: Uint8Array;
}

/**
 * ORIG or PATCHED: a relocatable object file, a directory of objects (searched recursively for `*.o`,
 * paired by relative path), or objects already in memory.
 */
export type DiffSide = string | DiffObjectInput[];

export interface DiffOptions {
  orig: DiffSide;
  patched: DiffSide;
  /** The running hypervisor (path or loaded Target): external names are checked to exist there and to hold ORIG's bytes. */
  xen?: string | Target;
  /** ABI row for special-section entry sizes (default: from XEN's version, else the Xen 4.17 x86-64 row). */
  abi?: PayloadAbi;
  /** Include functions whose only change is a `__LINE__` (default: excluded, listed). */
  includeLineOnly?: boolean;
  /** Refusal kinds turned into listed exclusions: 'init' (DIFF_INIT_CHANGED). */
  allow?: string[];
  /** Goes into the deterministic names of new symbols (§4.3). */
  patchName?: string;
  /** Also produce `hookSkeleton` (C source of load/unload hooks for changed data, §8.3). */
  hookSkeleton?: boolean;
  /**
   * The payload the result stacks on (already loaded; `--depends PAYLOAD`). A function it replaces
   * runs its copy, not XEN's: ORIG's twin is checked against that copy instead of XEN's bytes.
   */
  stackedOn?: Uint8Array;
}

export type FunctionStatus = 'same' | 'changed' | 'new' | 'removed' | 'line-only' | 'renamed-init';

export interface DiffFunction {
  /** Symbol name in its object (PATCHED's name for new/changed, ORIG's for removed). */
  name: string;
  /** Object path (relative, as paired). */
  object: string;
  /** The STT_FILE of the symbol (Xen's file part of `file#name`). */
  file: string;
  /** Xen's name of the ORIG twin (`name` for globals, `file#name` for locals); null for new ones. */
  xenName: string | null;
  /** ORIG name when it differs (renumbered clone). */
  origName?: string;
  status: FunctionStatus;
  /** Included in the payload (changed, new, or pulled in). */
  included: boolean;
  /** Human-readable why (first differing instruction/relocation, "new", "line-only: …"). */
  reason: string;
  /** Rule id of the spec this decision follows, e.g. "§3.2". */
  rule: string;
  /** First difference (changed/line-only). */
  first?: { offset: number; orig?: string; patched?: string };
  /** Old→new lines for line-only changes. */
  lines?: { orig: number[]; patched: number[] };
  /**
   * Set by `patch` (which knows the hunks) when none of this changed function's source lines, nor
   * those of what is inlined into it, was touched (§3.2 rule 4): its ORIG line spans per file.
   */
  codegenDrift?: { file: string; first: number; last: number }[];
}

export interface DiffData {
  name: string;
  object: string;
  file: string;
  xenName: string | null;
  section: string;
  status: 'changed' | 'new' | 'removed' | 'renamed-init' | 'same';
  reason: string;
  /** First differing byte offset within the symbol. */
  firstByte?: number;
}

export interface DiffRefusal {
  code: string;
  object: string;
  symbol?: string;
  message: string;
  suggestion: string;
}

export interface DiffExternal {
  /** Symbol as referenced in the output object (Xen's name). */
  name: string;
  /** Address in XEN when it was given. */
  address?: string;
  /** Checked against XEN: bytes of ORIG's twin equal the hypervisor's (functions only). */
  verified?: boolean;
  /** Set when the running copy is the one in the payload stacked on (`stackedOn`), which was checked instead. */
  runningIn?: 'depends';
}

export interface DiffExplainObject {
  object: string;
  changed: DiffFunction[];
  new: DiffFunction[];
  lineOnly: DiffFunction[];
  /** Changed functions none of whose source lines changed (§3.2 rule 4; set by `patch`). */
  drift?: { name: string; lines: { file: string; first: number; last: number }[] }[];
  pulledIn: { name: string; via: string[] }[];
  external: DiffExternal[];
  copied: { kind: 'string' | 'constant' | 'special-static' | 'data' | 'rodata'; name: string; size: number }[];
  excluded: { name: string; why: string; rule: string }[];
  refusals: DiffRefusal[];
}

export interface DiffExplain {
  objects: DiffExplainObject[];
  /** Paired objects skipped because their bytes are identical (never parsed). */
  identical: string[];
  /** Objects whose bytes differ but whose fingerprints are all equal. */
  equivalent: string[];
  warnings: string[];
}

export interface DiffResult {
  /** True when at least one function is included and nothing was refused. */
  ok: boolean;
  functions: DiffFunction[];
  data: DiffData[];
  errors: DiffRefusal[];
  warnings: string[];
  /** One relocatable object per changed translation unit, ready for buildPayload. */
  objects: { name: string; bytes: Uint8Array }[];
  patches: PatchRequest[];
  hooks: HookRequest[];
  explain: DiffExplain;
  /** SHA-256 over the sorted input object digests (and patch name): recorded in the payload's names. */
  inputDigest: string;
  /** With `hookSkeleton`, when data changed: C source of hooks that write the new values (§8.3). */
  hookSkeleton?: string;
}
