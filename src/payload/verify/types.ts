/**
 * Verify's records: what it is asked (inputs, target, options), what it answers (verdicts), and
 * what the simulated hypervisor holds between payloads (loaded payloads, the context of one run),
 * with the collector every check reports into.
 */
import type { Arch, PayloadAbi } from '../abi-types.js';
import type { LoaderRules } from '../releases.js';
import { makeDiagnostic, type DiagArgs, type DiagCode, type DiagContext, type Diagnostic } from '../diagnostics.js';
import { sectionAt, type LoadedElf } from '../verify-load.js';

export interface VerifyInput {
  file: string;
  bytes: Uint8Array;
  /** Upload name; default: the file's basename without its last extension (as `xen-livepatch load`). */
  name?: string;
  /** The file's size when `bytes` holds only its first bytes (a file larger than Xen accepts is not read whole). */
  size?: number;
  /** Upload only, no APPLY (a payload the host holds as CHECKED; src/payload/loaded.ts). */
  uploadOnly?: boolean;
}

/** The target as verify needs it (src/payload/target.ts `Target` fits). */
export interface VerifyTarget {
  buildId: Uint8Array | null;
  version?: string;
  arch?: Arch;
  /** Hypervisor symbols by Xen name (locals as file#name); `shndx` lets verify drop what Xen's table leaves out. */
  symbols?: { find(name: string): { value: bigint; shndx?: number }[] };
  bytesAt?(addr: bigint, len: number): Uint8Array;
}

export interface VerifyOptions {
  /** Overrides the target's version. */
  xenVersion?: string;
  /** Overrides the target's arch (default x86_64). */
  arch?: Arch;
  /** Explicit payload ABI row (else abiForVersion). */
  abi?: PayloadAbi;
  /** Apply each payload with REPLACE instead of APPLY. */
  replace?: boolean;
}

export interface PayloadVerdict {
  file: string;
  /** Upload name. */
  name: string;
  buildId: string | null;
  depends: string | null;
  /** No error-severity diagnostic. */
  ok: boolean;
  /** What the hypervisor itself would do: errno of the first check it fails, or null (accepted). */
  errno: string | null;
  /** Where the hypervisor refuses it: 'upload', 'apply', or null. */
  refusedAt: 'upload' | 'apply' | null;
  /** Set when the hypervisor crashes on it before any refusal (never "accepted"). */
  crashAt?: 'upload';
  diagnostics: Diagnostic[];
}

export interface VerifyResult {
  ok: boolean;
  target: { buildId: string | null; version: string; arch: Arch; abi: string };
  payloads: PayloadVerdict[];
}

/** A payload the simulated hypervisor holds after a successful upload. */
export interface LoadedPayload {
  name: string;
  file: string;
  buildId: Uint8Array;
  depends: Uint8Array;
  /** Exported (new) symbols, name → value. */
  exports: Map<string, bigint>;
  funcs: { name: string; oldAddr: bigint; newAddr: bigint }[];
  vetoingHooks: boolean;
  elf: LoadedElf;
}

export const MAX_UPLOAD = 2 * 1024 * 1024;

/** A parsed funcs entry with the values the loader ends up with. */
export interface VerifiedFunc {
  index: number;
  name?: string;
  namePtr: bigint;
  oldAddr: bigint;
  newAddr: bigint;
  newSize: number;
  oldSize: number;
  version: number;
  expect?: { enabled: boolean; len: number; rsv: number; data: Uint8Array };
  /** Where old_addr points: 'xen', a payload name, or 'given'. */
  resolvedFrom?: string;
}

/** One verify run: the target, its rules, and what the simulated hypervisor holds so far. */
export interface VerifyContext {
  target: VerifyTarget;
  rules: LoaderRules;
  abi: PayloadAbi;
  loaded: LoadedPayload[];
  /** Applied payloads, bottom of the stack first. */
  applied: LoadedPayload[];
  base: bigint;
  replace: boolean;
}

/** Collects diagnostics for one payload and remembers which one the hypervisor meets first. */
export class Collector {
  readonly list: Diagnostic[] = [];
  constructor(
    readonly rules: LoaderRules,
    readonly name: string,
  ) {}
  add = (code: DiagCode, args: DiagArgs = {}, ctx: DiagContext = {}): void => {
    this.list.push(makeDiagnostic(code, this.rules, this.name, args, ctx));
  };
  errorsAt(stage: 'upload' | 'apply'): Diagnostic[] {
    return this.list.filter((d) => d.stage === stage && d.severity === 'error');
  }
  count(): number {
    return this.list.length;
  }
}

/**
 * `len` bytes at `addr` as the hypervisor would read them: from the first loaded payload whose
 * section holds them, else from the target's image (undefined when neither has them).
 */
export function bytesAtLoaded(loaded: readonly LoadedPayload[], target: VerifyTarget, addr: bigint, len: number): Uint8Array | undefined {
  for (const p of loaded) {
    const s = sectionAt(p.elf, addr, len);
    if (s) return s.mem!.subarray(Number(addr - s.loadAddr!), Number(addr - s.loadAddr!) + len);
  }
  if (!target.bytesAt) return undefined;
  try {
    return target.bytesAt(addr, len);
  } catch {
    return undefined;
  }
}
