/**
 * One vocabulary for build and verify: when `xsplice build` refuses something because the target
 * hypervisor would refuse (or verify would flag) it, the refusal carries verify's diagnostic code
 * (DIAGNOSTICS in diagnostics.ts, explained in docs/rules.md). BUILD_ALIASES is the registry of
 * those refusals: diagnostic code → the code build used for it before (issue 11), which the error
 * keeps as `alias` (and the CLI's JSON error as `error.alias`) so scripts matching the old code
 * still work. Build refusals no hypervisor check matches (two definitions of a global, an object
 * that is not ET_REL, …) keep their own BUILD_* codes.
 */
import { RefusedError, type ErrorContext } from '../errors.js';
import type { DiagCode } from './diagnostics.js';

export const BUILD_ALIASES = {
  HDR_MACHINE: 'BUILD_WRONG_MACHINE',
  HDR_EABI: 'BUILD_WRONG_EABI',
  SEC_WRITE_EXEC: 'BUILD_WX_SECTION',
  SEC_NOBITS_TOO_BIG: 'BUILD_NOBITS_SIZE',
  SEC_WRONG_SIZE: 'BUILD_SPECIAL_SIZE',
  SEC_MISSING: 'BUILD_NO_FUNCS',
  SYM_COMMON: 'BUILD_COMMON_SYMBOL',
  SYM_UNKNOWN: 'BUILD_UNDEFINED',
  RELOC_REL_UNSUPPORTED: 'BUILD_REL',
  RELOC_STN_UNDEF: 'BUILD_RELOC_STN_UNDEF',
  RELOC_UNHANDLED: 'BUILD_RELOC_TYPE',
  RELOC_OFFSET: 'BUILD_RELOC_OFFSET',
  RELOC_IGNORED_SYMBOL: 'BUILD_RELOC_IGNORED',
  ALT_NO_REPLACEMENT: 'BUILD_ALT_NO_REPLACEMENT',
  // old_size 0, and (4.7, no NOP entries yet) new_size 0.
  FUNC_ZERO_FIELDS: ['BUILD_OLD_SIZE', 'BUILD_NEW_SIZE'],
  // A special section the row has no entry size for: on ARM, Xen refuses these two.
  ALT_UNSUPPORTED: 'BUILD_SPECIAL_UNSUPPORTED',
  EX_TABLE_UNSUPPORTED: 'BUILD_SPECIAL_UNSUPPORTED',
  FUNC_OLD_SIZE: 'BUILD_OLD_TOO_SMALL',
  FUNC_NOP_TOO_LONG: 'BUILD_NOP_LEN',
  FUNC_NOP_OLD_SIZE: 'BUILD_NOP_LEN',
  UNCHECKED_NOP_ENDBR: 'BUILD_NOP_LEN',
  DUPLICATE_SYMBOL: 'BUILD_DUPLICATE_NEW_SYMBOL',
  DUPLICATE_BUILD_ID: 'BUILD_SAME_BUILDID',
  UPLOAD_SIZE: 'BUILD_TOO_BIG',
  HDR_TOO_MANY_SECTIONS: 'BUILD_TOO_MANY_SECTIONS',
  // What verify flags in the written payload (its shared checks), refused by build.
  UNCHECKED_NOP_SPLITS_INSN: 'BUILD_NOP_SPLITS_INSN',
  UNCHECKED_BUG_INSTR: 'BUILD_BUG_INSTR',
  NOTE_NOP_COVERS_RETURN: 'BUILD_NOP_COVERS_RETURN',
} as const satisfies Partial<Record<DiagCode, `BUILD_${string}` | readonly `BUILD_${string}`[]>>;

export type HypervisorRefusal = keyof typeof BUILD_ALIASES;

/** The former build codes of a refusal (the first is the default alias). */
export type BuildAlias<C extends HypervisorRefusal> = (typeof BUILD_ALIASES)[C] extends readonly (infer A)[]
  ? A
  : (typeof BUILD_ALIASES)[C];

/** The former build codes of `code`, the default first. */
export function buildAliases(code: HypervisorRefusal): readonly string[] {
  const a: string | readonly string[] = BUILD_ALIASES[code];
  return typeof a === 'string' ? [a] : a;
}

/**
 * A build refusal named as verify names the same check, with its former build code as alias
 * (`alias` picks one when build had two codes for the check).
 */
export function hypervisorRefusal<C extends HypervisorRefusal>(
  code: C,
  detail: string,
  ctx: ErrorContext = {},
  alias?: BuildAlias<C>,
): RefusedError {
  return new RefusedError(code, detail, ctx, (alias as string | undefined) ?? buildAliases(code)[0]);
}

export function isHypervisorRefusal(code: string): code is HypervisorRefusal {
  return Object.hasOwn(BUILD_ALIASES, code);
}
