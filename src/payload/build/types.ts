/**
 * The public records of `buildPayload`: what it is asked (BuildOptions and its requests) and what it
 * answers (BuildResult). Re-exported by src/payload/build.ts.
 */
import type { ElfFile } from '../../elf/types.js';
import type { PayloadAbi } from '../abi-types.js';
import type { Target } from '../target.js';

export const TOOL_NAME = 'xsplice';

export interface BuildInput {
  /** Shown in messages; its base name goes into .modinfo. */
  name: string;
  bytes: Uint8Array;
}

export interface PatchRequest {
  /** Hypervisor function: a name (`file#name` for locals) or an address `0x…`. */
  old: string;
  /** Replacement symbol in the objects; default: `old` (its plain name). */
  new?: string;
  /** Overrides (needed when XEN is only a build-id). */
  oldSize?: number;
  newSize?: number;
  /** Explicit old_addr (0 = resolved by name by the hypervisor at upload). */
  oldAddr?: bigint;
}

export interface NopRequest {
  old: string;
  /** Bytes to NOP (default: old_size). */
  len?: number;
  oldSize?: number;
  oldAddr?: bigint;
}

export interface HookRequest {
  kind: string;
  symbol: string;
}

export interface DependsSpec {
  /** Build-id the payload stacks on (a payload's own id, or the hypervisor's). */
  buildId: Uint8Array;
  /** A payload file: its exported symbols resolve our undefined ones (as Xen does when it is loaded). */
  payload?: ElfFile;
  source: string;
}

export interface BuildOptions {
  objects: BuildInput[];
  target: Target;
  abi: PayloadAbi;
  patches?: PatchRequest[];
  nops?: NopRequest[];
  hooks?: HookRequest[];
  /** Default: the hypervisor (target build-id). */
  depends?: DependsSpec;
  /** Fill each entry's expectation block from the target's bytes at old_addr. */
  expect?: boolean;
  /** 'address' (default when the target has symbols): old_addr from the symbol table; 'name': 0, resolved by the hypervisor by `name`. */
  oldAddr?: 'address' | 'name';
  toolVersion?: string;
  /** Further `key=value` entries for `.modinfo` (e.g. diff's `diff-inputs=<sha256>`); no NUL inside. */
  modinfo?: string[];
  /** Called with each warning as it arises (they are also returned on success). */
  onWarning?: (message: string) => void;
}

export interface BuiltFunc {
  name: string;
  newSymbol: string | null;
  oldAddr: bigint;
  newSize: number;
  oldSize: number;
  version: number;
  expect?: { len: number; data: string };
}

export interface BuildResult {
  bytes: Uint8Array;
  buildId: string;
  depends: string;
  xenDepends: string | null;
  abi: { id: string; name: string; arch: string; version: number };
  funcs: BuiltFunc[];
  hooks: Record<string, string[]>;
  /** The payload's sections in output order (its relocation sections, .symtab, .strtab and .shstrtab not listed). */
  sections: string[];
  undefinedSymbols: string[];
  warnings: string[];
}
