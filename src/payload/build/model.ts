/**
 * The merge model every build stage shares: the input objects' sections and symbols in one list
 * each, pointing at each other by index into those lists, plus the small helpers the stages use.
 */
import { RefusedError } from '../../errors.js';
import { SHF } from '../../elf/constants.js';
import type { RelocationSpec, SectionSpec, SymbolSpec } from '../../elf/types.js';
import type { HookSectionRule } from '../abi-types.js';
import type { Expectation } from '../funcs.js';
import { hypervisorRefusal, type BuildAlias, type HypervisorRefusal } from '../refusal-codes.js';

export interface MSection {
  spec: SectionSpec;
  obj: number;
  /**
   * Relocations as the input view gives them (symbol = the input's ID), with `sym[k]` the index
   * into `syms` of entry k's symbol (-1 for STN_UNDEF).
   */
  rel?: { rela: boolean; name?: string | Uint8Array; flags?: bigint; entries: readonly RelocationSpec[]; sym: number[] };
  linkTo?: number;
  /** sh_info of an SHF_INFO_LINK section, as an index into `secs`. */
  infoTo?: number;
}

export interface MSymbol {
  spec: SymbolSpec;
  /** Section as index into `secs`, or a special. */
  sec: number | 'UND' | 'ABS' | 'COM';
  obj: number;
  name: string;
  /** STT_FILE in force (locals). */
  file?: string;
  /** Merged into another symbol (index). */
  alias?: number;
}

/** The merged objects (the merge stage's result). */
export interface Merged {
  secs: MSection[];
  syms: MSymbol[];
  /** Undefined global references by name → index into `syms` (aliased when another object defines it). */
  undefinedByName: Map<string, number>;
  /** The inputs' own `.modinfo` contents, NUL-terminated, carried into the payload's. */
  modinfoParts: Uint8Array[];
  /** The symbol index `i` stands for after binding (follows `alias`). */
  resolve: (i: number) => number;
}

/** One funcs entry to emit (the entries stage's result). */
export interface EntryPlan {
  name: string;
  /** Replacement symbol (index into `syms`), null for a NOP entry. */
  newSym: number | null;
  oldAddr: bigint;
  newSize: number;
  oldSize: number;
  expect?: Expectation;
}

/** One hook array to emit: the symbols (index into `syms`, or a hypervisor function's name). */
export interface HookArray {
  rule: HookSectionRule;
  syms: { sym: number | string; name: string }[];
}

const dec = new TextDecoder();
export const nameOf = (n: string | Uint8Array): string => (typeof n === 'string' ? n : dec.decode(n));

/** A refusal of build's own (no hypervisor check matches it). */
export function refuse(
  code: `BUILD_${string}` | 'SYMBOL_AMBIGUOUS',
  detail: string,
  ctx: ConstructorParameters<typeof RefusedError>[2] = {},
): never {
  throw new RefusedError(code, detail, ctx);
}

/** A refusal of what the hypervisor refuses (or verify flags): verify's code for it (refusal-codes.ts). */
export function refuseAs<C extends HypervisorRefusal>(
  code: C,
  detail: string,
  ctx: ConstructorParameters<typeof RefusedError>[2] = {},
  alias?: BuildAlias<C>,
): never {
  throw hypervisorRefusal(code, detail, ctx, alias);
}

/**
 * The low 32 bits of sh_flags as a number: every SHF_* bit tested here lives there, and testing a
 * number allocates nothing (a bigint `&` makes a new bigint each time).
 */
export function flagBits(f: bigint): number {
  return f >= 0n && f <= 0xffffffffn ? Number(f) : Number(BigInt.asUintN(32, f));
}
export const F_WRITE = Number(SHF.WRITE);
export const F_ALLOC = Number(SHF.ALLOC);
export const F_EXEC = Number(SHF.EXECINSTR);
export const F_MERGE = Number(SHF.MERGE);
export const F_GROUP = Number(SHF.GROUP);
export const F_TLS = Number(SHF.TLS);

export function baseName(p: string): string {
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i >= 0 ? p.slice(i + 1) : p;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
