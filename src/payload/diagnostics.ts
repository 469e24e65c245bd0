/**
 * The diagnostics of `xsplice verify`: one table, code → errno the hypervisor returns, what it
 * prints (per release), and the spec section (payload-format.md) the check comes from.
 *
 * Codes are stable: scripts match on them. Never rename a code; add new ones.
 *
 * `log` says how the hypervisor reports it:
 *  - 'err'   : printk(XENLOG_ERR) from 4.13 (dprintk, debug builds only, before; text then ends in "!")
 *  - 'debug' : dprintk in every release (nothing on a release build)
 *  - 'none'  : the errno is returned without any message; `text` is then xsplice's own explanation
 *  - 'info'  : not a hypervisor check (apply-time crash, corruption or a stacking remark by xsplice)
 * `stage`: 'upload' (XEN_SYSCTL_LIVEPATCH_UPLOAD), 'apply' (LIVEPATCH_ACTION_APPLY), 'unchecked'
 * (the loader does not check it but crashes, corrupts or misbehaves, §2.16), 'note' (advice).
 *
 * Why one file: the DIAGNOSTICS table is most of it and is meant to be read as one list of stable
 * codes; makeDiagnostic and ERRNO are the small API over it.
 */
import type { LoaderRules } from './releases.js';
import { ruleRef } from './rules.js';

export type Severity = 'error' | 'warning';
export type Stage = 'upload' | 'apply' | 'unchecked' | 'note';
export type LogKind = 'err' | 'debug' | 'none' | 'info';

/** Arguments a message template may use. */
export type DiagArgs = Record<string, string | number | bigint | undefined>;

export interface DiagnosticDef {
  errno: string | null;
  stage: Stage;
  log: LogKind;
  severity: Severity;
  spec: string;
  /** Message text after "livepatch: NAME: " (or the explanation when log is 'none'/'info'). */
  text: (a: DiagArgs, r: LoaderRules) => string;
}

const hex = (x: unknown): string => {
  if (typeof x === 'bigint') return '0x' + x.toString(16);
  if (typeof x === 'number') return '0x' + x.toString(16);
  return String(x);
};

/** Xen's %p: zero-padded to the pointer width, no "0x" [xen/common/vsprintf.c (pointer)]. */
const ptr = (x: unknown, r: LoaderRules): string =>
  BigInt(x as bigint)
    .toString(16)
    .padStart(r.arch === 'arm32' ? 8 : 16, '0');

function def(
  errno: string | null,
  stage: Stage,
  log: LogKind,
  spec: string,
  text: DiagnosticDef['text'],
  severity: Severity = 'error',
): DiagnosticDef {
  return { errno, stage, log, spec, text, severity };
}

const wrongSize = (a: DiagArgs, r: LoaderRules): string =>
  r.features.unifiedWrongSize ? `Wrong size ${a.size} of ${a.section} (must be multiple of ${a.entry})` : `Wrong size of ${a.section}`;

export const DIAGNOSTICS = {
  // §2.1 upload arguments
  UPLOAD_NAME: def('EINVAL', 'upload', 'none', '§2.1', (a) => `payload name "${a.name}" must have 1 to 127 characters`),
  UPLOAD_SIZE: def('EINVAL', 'upload', 'none', '§2.1', (a) => `payload size ${a.size} is not within 1 byte … 2 MiB`),
  DUPLICATE_NAME: def('EEXIST', 'upload', 'none', '§2.1', (a) => `a payload named "${a.name}" is already loaded (${a.other})`),
  // §2.2 ELF header
  HDR_SHORT: def('EINVAL', 'upload', 'err', '§2.2#1', () => 'Section header is bigger than payload'),
  HDR_NOT_ELF: def('EINVAL', 'upload', 'err', '§2.2#2', () => 'Not an ELF payload'),
  HDR_INVALID: def('EOPNOTSUPP', 'upload', 'err', '§2.2#3', () => 'Invalid ELF payload'),
  HDR_MACHINE: def('EOPNOTSUPP', 'upload', 'err', '§2.2#4', () => 'Unsupported ELF Machine type'),
  HDR_EABI: def('EOPNOTSUPP', 'upload', 'err', '§2.2#4c', (a) => `Unsupported ELF EABI(${(Number(a.flags) >>> 0).toString(16)})`),
  HDR_ARCH_UNSUPPORTED: def('ENOSYS', 'upload', 'none', '§2.2#4d', (a) => `live patching on ${a.arch} needs Xen 4.8 or later`),
  // Seen on Debian 12's arm64 hypervisor (its .config: "# CONFIG_LIVEPATCH is not set"): every
  // XEN_SYSCTL_livepatch_op returns ENOSYS, so `xen-livepatch upload` fails with "Error 38".
  NO_LIVEPATCH: def(
    'ENOSYS',
    'upload',
    'none',
    '§2.1',
    () =>
      'the hypervisor is built without CONFIG_LIVEPATCH (its symbol table has no livepatch_op): every live-patch operation returns ENOSYS',
  ),
  HDR_SHSTRNDX_UNDEF: def('EINVAL', 'upload', 'err', '§2.2#5', () => 'Section name idx is undefined'),
  HDR_TOO_MANY_SECTIONS: def('EOPNOTSUPP', 'upload', 'err', '§2.2#6', (a) => `Too many (${a.shnum}) sections`),
  HDR_SHSTRNDX_PAST_END: def(
    'EINVAL',
    'upload',
    'err',
    '§2.2#7',
    (a) => `Section name idx (${a.shstrndx}) is past end of sections (${a.shnum})`,
  ),
  HDR_BOGUS_SHOFF: def('EINVAL', 'upload', 'err', '§2.2#8', () => 'Bogus e_shoff'),
  HDR_SHENTSIZE: def('EINVAL', 'upload', 'err', '§2.2#9', (a) => `Section header size is ${a.shentsize}! Expected ${a.expected}.`),
  HDR_SHDRS_TRUNCATED: def('EINVAL', 'upload', 'err', '§2.2#10', () => 'Section header size is corrupted'),
  // §2.3 section headers
  SEC_DATA_AT_HEADER: def('EINVAL', 'upload', 'err', '§2.3', (a) => `Section [${a.index}] data at ELF header of payload`),
  SEC_DATA_PAST_END: def('EINVAL', 'upload', 'err', '§2.3', (a) => `Section [${a.index}] data is past end of payload`),
  SEC_ALIGN_UNSUPPORTED: def(
    'EOPNOTSUPP',
    'upload',
    'err',
    '§2.3',
    (a) => `Section [${a.index}] alignment (${hex(a.align)}) is not supported`,
  ),
  SEC_ADDR_UNALIGNED: def(
    'EINVAL',
    'upload',
    'err',
    '§2.3',
    (a) => `Section [${a.index}] addr (${hex(a.addr)}) is not aligned properly (${hex(a.align)})`,
  ),
  SEC_NOBITS_TOO_BIG: def('EINVAL', 'upload', 'none', '§2.3', (a) => `NOBITS section [${a.index}] of ${a.size} bytes exceeds 2 MiB`),
  SYMTAB_MULTIPLE: def('EOPNOTSUPP', 'upload', 'err', '§2.3', () => 'Unsupported multiple symbol tables'),
  SYMTAB_LINK_PAST_END: def('EINVAL', 'upload', 'err', '§2.3', (a) => `Symbol table idx (${a.link}) to strtab past end (${a.shnum})`),
  SYMTAB_MISSING: def('EINVAL', 'upload', 'err', '§2.3', () => 'No symbol table found'),
  SYMTAB_CORRUPT: def('EINVAL', 'upload', 'err', '§2.3', () => 'Symbol table header is corrupted'),
  STRTAB_CORRUPT: def('EINVAL', 'upload', 'err', '§2.3', () => 'String table section is corrupted'),
  SHSTRTAB_CORRUPT: def('EINVAL', 'upload', 'err', '§2.3', () => 'Section string table is corrupted'),
  SEC_NAME_OUTSIDE: def('EINVAL', 'upload', 'err', '§2.3', (a) => `Section ${a.index} name is not within .shstrtab`),
  // §2.4 symbols
  SYM_NAME_OUTSIDE: def('EINVAL', 'upload', 'err', '§2.4', (a) => `Symbol [${a.index}] name is not within .strtab`),
  SYM_DENIED: def('EINVAL', 'upload', 'err', '§2.4', (a) => `Symbol '${a.symbol}' should not be in payload`),
  // §2.5 Xen build-id (4.20+ before load; 4.14–4.19 after prepare_payload)
  XEN_DEPENDS_MISSING: def('EINVAL', 'upload', 'err', '§2.5', () => 'section .livepatch.xen_depends is missing'),
  XEN_DEPENDS_PARSE: def('EINVAL', 'upload', 'err', '§2.5', (a) => `failed to parse section .livepatch.xen_depends as build-id: ${a.rc}`),
  XEN_DEPENDS_MISMATCH: def('EINVAL', 'upload', 'err', '§2.5', (a, r) =>
    r.features.xenDependsFirst
      ? `build-id mismatch:\n  livepatch: ${a.found}\n        xen: ${a.expected}`
      : 'check against hypervisor build-id failed',
  ),
  XEN_NO_BUILD_ID: def('ENODATA', 'upload', 'none', '§2.5', () => 'the target hypervisor has no build-id'),
  XEN_BUILD_ID_UNAVAILABLE: def(
    'ENODATA',
    'upload',
    'err',
    '§2.5; Errata "errno pass-through"',
    (a) => `unable to get running Xen build-id: ${a.rc}`,
  ),
  // §2.6 placement
  SEC_WRITE_EXEC: def('EOPNOTSUPP', 'upload', 'debug', '§2.6', (a) => `Not supporting ${a.section} section!`),
  // §2.7 symbol resolution
  SYM_COMMON: def('EINVAL', 'upload', 'err', '§2.7', (a) => `Unexpected common symbol: ${a.symbol}`),
  SYM_UNKNOWN: def('ENOENT', 'upload', 'err', '§2.7', (a) => `Unknown symbol: ${a.symbol}`),
  SYM_SHNDX_RESERVED: def('EOPNOTSUPP', 'upload', 'err', '§2.7', (a) => `Out of bounds symbol section ${hex(a.shndx)}`),
  SYM_SHNDX_PAST_END: def('EINVAL', 'upload', 'err', '§2.7', (a) => `Out of bounds symbol section ${hex(a.shndx)}`),
  // §2.8 relocations
  RELOC_LINK: def(
    'EINVAL',
    'upload',
    'err',
    '§2.8',
    (a) => `Relative link of ${a.section} is incorrect (${a.link}, expected=${a.expected})`,
  ),
  RELOC_HEADER: def('EINVAL', 'upload', 'err', '§2.8', () => 'Section relative header is corrupted'),
  RELOC_REL_UNSUPPORTED: def('EOPNOTSUPP', 'upload', 'err', '§2.8', () => 'SHT_REL relocation unsupported'),
  RELOC_REL_ARM64: def('ENOSYS', 'upload', 'none', '§2.8', (a) => `SHT_REL section ${a.section} is not supported on arm64`),
  RELOC_STN_UNDEF: def('EOPNOTSUPP', 'upload', 'err', '§2.8', () => 'Encountered STN_UNDEF'),
  RELOC_SYM_PAST_END: def('EINVAL', 'upload', 'err', '§2.8', (a, r) =>
    r.arch === 'arm32'
      ? `Relative symbol wants symbol@${a.symndx} which is past end`
      : `Relative relocation wants symbol@${a.symndx} which is past end`,
  ),
  RELOC_IGNORED_SYMBOL: def('EINVAL', 'upload', 'err', '§2.8', (a) => `Relocation against ignored symbol ${a.symbol} cannot be resolved`),
  RELOC_OFFSET: def('EINVAL', 'upload', 'err', '§2.8', (a) => `Relative relocation offset is past ${a.section} section`),
  RELOC_OVERFLOW: def('EOVERFLOW', 'upload', 'err', '§2.8', (a) => `Overflow in relocation ${a.index} in ${a.rsection} for ${a.section}`),
  RELOC_UNHANDLED: def('EOPNOTSUPP', 'upload', 'err', '§2.8', (a, r) =>
    r.arch === 'arm32' ? `Unhandled relocation #${Number(a.type).toString(16)}` : `Unhandled relocation ${a.type}`,
  ),
  // §2.9 mandatory sections
  SEC_MISSING: def('EINVAL', 'upload', 'err', '§2.9', (a) => `${a.section} is missing`),
  SEC_EMPTY: def('EINVAL', 'upload', 'err', '§2.9', (a) => `${a.section} is empty`),
  NOTHING_TO_PATCH: def('EINVAL', 'upload', 'err', '§2.9', () => 'Nothing to patch. Aborting...'),
  // §2.10 prepare_payload
  SEC_WRONG_SIZE: def('EINVAL', 'upload', 'err', '§2.10', wrongSize),
  FUNC_VERSION: def('EOPNOTSUPP', 'upload', 'err', '§2.10(a)2', (a) => `Wrong version (${a.found}). Expected ${a.expected}`),
  FUNC_ZERO_FIELDS: def('EINVAL', 'upload', 'err', '§2.10(a)3', () => 'Address or size fields are zero'),
  FUNC_UNRESOLVED: def('ENOENT', 'upload', 'err', '§2.10(a)4', (a) => `Could not resolve old address of ${a.symbol}`),
  FUNC_NOP_TOO_LONG: def(
    'EOPNOTSUPP',
    'upload',
    'none',
    '§2.10(a)5',
    (a) => `NOP patch of ${a.symbol}: new_size ${a.size} exceeds 31 bytes${a.arm ? ' or is not a multiple of 4' : ''}`,
  ),
  FUNC_NOP_OLD_SIZE: def(
    'EINVAL',
    'upload',
    'none',
    '§2.10(a)5a',
    (a) => `NOP patch of ${a.symbol}: old_size ${a.oldSize} is smaller than new_size ${a.newSize}`,
  ),
  FUNC_OLD_SIZE: def(
    'EINVAL',
    'upload',
    'none',
    '§2.10(a)5',
    (a) =>
      `${a.symbol}: old_size ${a.oldSize} is smaller than the ${a.needed} bytes the patch writes${a.endbr ? ' (the function starts with ENDBR64)' : ''}`,
  ),
  FUNC_DISTANCE: def(
    'EOVERFLOW',
    'upload',
    'none',
    '§2.10(a)6',
    (a) => `${a.symbol}: new_addr ${hex(a.newAddr)} is out of branch reach of old_addr ${hex(a.oldAddr)}`,
  ),
  HOOK_SIZE: def(
    'EINVAL',
    'upload',
    'none',
    '§2.10(b)',
    (a) => `${a.section} must hold exactly one pointer (${a.entry} bytes), has ${a.size}`,
  ),
  HOOK_ARRAY_SIZE: def('EINVAL', 'upload', 'none', '§2.10(b)', (a) => `${a.section} size ${a.size} is not a multiple of ${a.entry}`),
  NOTE_BUILD_ID: def('EINVAL', 'upload', 'none', '§2.10(c), §3.1', (a) => `${a.section} is not a valid GNU build-id note: ${a.why}`),
  DUPLICATE_BUILD_ID: def('EEXIST', 'upload', 'debug', '§2.10(d)', (a) => `Already loaded as ${a.other}!`),
  ALT_UNSUPPORTED: def('EOPNOTSUPP', 'upload', 'err', '§2.10(g)', () => "We don't support alternative patching"),
  ALT_NO_TEXT: def('EINVAL', 'upload', 'err', '§2.10(g)', () => 'Alternatives provided, but no .text'),
  ALT_NO_REPLACEMENT: def('EINVAL', 'upload', 'err', '§2.10(g)', () => '.altinstructions provided, but no .altinstr_replacement'),
  ALT_ORIG_OUTSIDE: def(
    'EINVAL',
    'upload',
    'err',
    '§2.10(g)',
    (a, r) => `Alternative orig ${ptr(a.addr, r)}+${hex(a.len)} outside payload text ${ptr(a.start, r)}+${hex(a.size)}`,
  ),
  ALT_REPL_OUTSIDE: def(
    'EINVAL',
    'upload',
    'err',
    '§2.10(g)',
    (a, r) => `Alternative repl ${ptr(a.addr, r)}+${hex(a.len)} outside .altinstr_replacement ${ptr(a.start, r)}+${hex(a.size)}`,
  ),
  ALT_APPLY: def('ENOSPC', 'upload', 'err', '§2.10(g); Errata "x86 alternatives limits"', (a) => `applying alternatives failed: ${a.rc}`),
  ALT_CALL_UNSUPPORTED: def('EOPNOTSUPP', 'upload', 'err', '§2.10(h)', () => 'Alternative calls not supported'),
  ALT_CALL_NO_TEXT: def('EINVAL', 'upload', 'err', '§2.10(h)', () => 'Alternative calls provided, but no .text'),
  ALT_CALL_OUTSIDE: def(
    'EINVAL',
    'upload',
    'err',
    '§2.10(h)',
    (a, r) => `Alternative call ${ptr(a.addr, r)}+0x6 outside payload text ${ptr(a.start, r)}+${hex(a.size)}`,
  ),
  ALT_CALL_NOT_RIPREL: def('EINVAL', 'upload', 'err', '§2.10(h)', () => 'Applying alternative calls failed: -22'),
  EX_TABLE_UNSUPPORTED: def('EOPNOTSUPP', 'upload', 'err', '§2.10(i)', () => "We don't support .ex_table"),
  EX_TABLE_EMPTY: def('EINVAL', 'upload', 'err', '§2.10(i)', (a) => `Wrong size of .ex_table (exp:${a.entry} vs ${a.size})`),
  MODINFO_FORMAT: def('EINVAL', 'upload', 'err', '§2.10(j)', () => 'Incorrect metadata format detected'),
  // §2.11 payload symbols
  DUPLICATE_SYMBOL: def('EEXIST', 'upload', 'err', '§2.11', (a) => `duplicate new symbol: ${a.symbol}`),
  // §2.13 apply
  DEPENDS_MISMATCH: def('EINVAL', 'apply', 'err', '§2.13', (a) => `check against ${a.against} build-id failed`),
  EXPECT_NO_OLD_ADDR: def('EFAULT', 'apply', 'err', '§2.13', (a) => `expectations of ${a.symbol} failed (rc=-14), aborting!`),
  EXPECT_RESERVED: def('EINVAL', 'apply', 'err', '§1.3, §2.13', (a) => `expectations of ${a.symbol} failed (rc=-22), aborting!`),
  EXPECT_RANGE: def('ERANGE', 'apply', 'err', '§2.13', (a) => `expectations of ${a.symbol} failed (rc=-34), aborting!`),
  EXPECT_MISMATCH: def('EINVAL', 'apply', 'err', '§2.13', (a) => `expectation failed: expected:${a.expected}, actual:${a.found}`),
  REPLACE_VETO: def('EOPNOTSUPP', 'apply', 'err', '§2.13', () => 'REPLACE action is not supported on livepatches with vetoing hooks!'),
  // §2.16 not checked by the loader: crashes, corruption, misbehaviour
  UNCHECKED_NOT_ALLOC: def(
    null,
    'unchecked',
    'info',
    '§2.16#1',
    (a) =>
      `${a.section} is not SHF_ALLOC: the loader never gives it a load address and dereferences it (${a.how ?? 'crash or use-after-free'})`,
  ),
  CRASH_FUNCS_NOT_ALLOC: def(
    null,
    'unchecked',
    'info',
    '§2.16#1; Errata ".livepatch.funcs without SHF_ALLOC"',
    (a) =>
      `${a.section} is not SHF_ALLOC: prepare_payload reads the entries' version at its ${a.where} load address and faults: the host crashes during the upload, before any later check`,
  ),
  UNCHECKED_ZERO_SIZE_SPECIAL: def(
    null,
    'unchecked',
    'info',
    '§2.16#1',
    (a) => `${a.section} is empty: releases 4.8–4.16 do not load zero-size sections and dereference NULL`,
  ),
  UNCHECKED_RELOC_IGNORED: def(
    null,
    'unchecked',
    'info',
    '§2.8',
    (a) =>
      `${a.section} (${a.type}) holds relocations of ${a.target}, but the loader applies only SHT_RELA/SHT_REL sections: the code would run unrelocated (wild calls and loads)`,
  ),
  UNCHECKED_LINK_ZERO: def(
    null,
    'unchecked',
    'info',
    '§2.16#2',
    (a) => `${a.section}: ${a.field} points at section 0, which the loader never parses (NULL dereference)`,
  ),
  UNCHECKED_ALIGN_ZERO: def(
    null,
    'unchecked',
    'info',
    '§2.16#3, §2.6',
    (a) => `${a.section} is loaded with sh_addralign 0: ROUNDUP(x, 0) is 0, it overwrites the start of its region`,
  ),
  UNCHECKED_FUNCS_READONLY: def(
    null,
    'unchecked',
    'info',
    '§2.16#4, §1.2',
    () => '.livepatch.funcs is not SHF_WRITE: this release writes into the entries at apply and page-faults',
  ),
  UNCHECKED_SCRATCH_NONZERO: def(
    null,
    'unchecked',
    'info',
    '§2.16#4, §1.2',
    (a) =>
      `entry ${a.entry} (${a.symbol}): hypervisor scratch bytes (applied/patch_offset) are not zero; apply/revert would skip or mis-place the patch`,
  ),
  UNCHECKED_NAME_POINTER: def(
    null,
    'unchecked',
    'info',
    '§2.16#5',
    (a) => `entry ${a.entry}: name pointer ${hex(a.addr)} does not point at a NUL-terminated string in the payload`,
  ),
  UNCHECKED_MODINFO_EMPTY: def(
    null,
    'unchecked',
    'info',
    '§2.16#6, §2.10(j)',
    () => '.modinfo is empty: the loader reads the byte before it (out of bounds or NULL)',
  ),
  UNCHECKED_ALT_ENTRY: def(
    null,
    'unchecked',
    'info',
    '§2.16#7, §2.10(g); Errata "x86 alternatives limits", "ALT_FLAG_NOT"',
    (a) => `alternative entry ${a.entry}: ${a.why} (BUG_ON in apply_alternatives: hypervisor crash)`,
  ),
  UNCHECKED_NOP_ENDBR: def(
    null,
    'unchecked',
    'info',
    '§2.14',
    (a) => `NOP patch of ${a.symbol} with new_size ${a.size} < 4 on an ENDBR64 function: the length underflows`,
  ),
  UNCHECKED_DUPLICATE_FUNC: def(
    null,
    'unchecked',
    'info',
    '§2.10 (not checked)',
    (a) => `${a.symbol} is patched twice in this payload (entries ${a.entries}): revert restores the wrong bytes`,
  ),
  UNCHECKED_NOP_SPLITS_INSN: def(
    null,
    'unchecked',
    'info',
    '§2.14; issue 10 (xen_nop)',
    (a) =>
      `NOP patch of ${a.symbol} ends at +0x${Number(a.end).toString(16)}, inside the ${a.len}-byte instruction at +0x${Number(a.at).toString(16)} (${a.insn}): the CPU runs its remaining bytes as code (the real 4.17.5 hypervisor double-faults in a loop)`,
  ),
  UNCHECKED_BUG_INSTR: def(
    null,
    'unchecked',
    'info',
    '§2.10(f); Errata "4.22.0: UDB"',
    (a) =>
      `${a.section} entry ${a.entry} points at ${a.found} at ${hex(a.addr)}, but Xen ${a.release} ${a.udb ? 'recognises only UDB (d6) from 4.22' : 'recognises only ud2 (0f 0b) before 4.22'}: that WARN/BUG/ASSERT becomes a host crash`,
  ),
  // Notes: not an error on upload or apply, but worth knowing
  NOTE_NOP_COVERS_RETURN: def(
    null,
    'note',
    'info',
    '§2.14; issue 10',
    (a) =>
      `NOP patch of ${a.symbol} covers its ${a.what} at +0x${Number(a.at).toString(16)}: execution falls through into whatever follows the function; give a NOP length that stops before it`,
    'warning',
  ),
  NOTE_RETURN_THUNK: def(
    null,
    'note',
    'info',
    '§5; Errata "Return thunks (XSA-469)"',
    (a) =>
      `${a.where}: plain \`${a.insn}\`, but the target hypervisor returns through __x86_return_thunk: this re-opens what XSA-469 closed; compile the payload with -mfunction-return=thunk-extern, as Xen is built`,
    'warning',
  ),
  NOTE_INDIRECT_THUNK: def(
    null,
    'note',
    'info',
    '§5; Errata "Return thunks (XSA-469)"',
    (a) =>
      `${a.where}: indirect \`${a.insn}\` bypasses __x86_indirect_thunk_*, which the target hypervisor uses: compile the payload with -mindirect-branch=thunk-extern, as Xen is built`,
    'warning',
  ),
  NOTE_HOOK_DECIDES: def(
    null,
    'note',
    'info',
    '§2.13, §1.4',
    (a) =>
      `its ${a.kind} hook ${a.symbol} decides at run time whether ${a.action} succeeds (its return value is the result); verify cannot tell`,
    'warning',
  ),
  // Notes: not an error on upload or apply, but worth knowing
  NOTE_PATCHED_BEFORE: def(
    null,
    'note',
    'info',
    '§2.10 (not checked)',
    (a) => `${a.symbol} is also patched by ${a.other}; this payload supersedes it while both are applied`,
    'warning',
  ),
  NOTE_NO_REAPPLY: def(
    null,
    'note',
    'info',
    '§2.6, §2.13',
    (a) =>
      `not safe to re-apply after revert (RW section ${a.section}): APPLY after REVERT fails with "can't revert as payload has .data. Please unload"`,
    'warning',
  ),
  NOTE_REPLACE: def(null, 'note', 'info', '§2.13', (a) => `${a.why}`, 'warning'),
  NOTE_PAD_NONZERO: def(
    null,
    'note',
    'info',
    '§1.2, §2.10',
    (a) => `entry ${a.entry} (${a.symbol}): padding bytes are not zero (the design doc says MUST be zero; Xen ignores them)`,
    'warning',
  ),
  NOTE_UNCHECKED_TARGET: def(null, 'note', 'info', '§2.7', (a) => `${a.what}: the target gives no symbol table, not checked`, 'warning'),
  // The host's loaded set (verify --loaded, src/payload/loaded.ts)
  NOTE_LOADED: def(null, 'note', 'info', '§2.13', (a) => `${a.why}`, 'warning'),
  NOTE_DUPLICATE_SECTION: def(
    null,
    'note',
    'info',
    '§2.9',
    (a) => `section name ${a.section} appears more than once; Xen uses the lowest index [${a.index}]`,
    'warning',
  ),
} as const satisfies Record<string, DiagnosticDef>;

export type DiagCode = keyof typeof DIAGNOSTICS;

export interface Diagnostic {
  severity: Severity;
  code: DiagCode;
  /** errno name the hypervisor would return (null when it returns success or crashes). */
  errno: string | null;
  /** What the hypervisor prints (with its "livepatch: NAME: " prefix), or xsplice's explanation. */
  message: string;
  section?: string;
  symbol?: string;
  offset?: number;
  /** upload | apply | unchecked | note. */
  stage: Stage;
  /** Whether the hypervisor prints the message: 'always' (printk), 'debug' (debug builds), 'never'. */
  printed: 'always' | 'debug' | 'never';
  /** payload-format.md section. */
  spec: string;
  /** Where the check is explained: docs/rules.md#<code>. */
  rule: string;
  /** Set on the diagnostic the hypervisor would hit first (its errno is the payload's result). */
  first?: boolean;
}

export interface DiagContext {
  section?: string;
  symbol?: string;
  offset?: number;
}

const NO_COLON = new Set<DiagCode>([
  'ALT_NO_TEXT',
  'ALT_NO_REPLACEMENT',
  'ALT_ORIG_OUTSIDE',
  'ALT_REPL_OUTSIDE',
  'ALT_APPLY',
  'ALT_CALL_NO_TEXT',
]);

/**
 * What a check knows better than the table, given when the diagnostic is made (never patched in
 * afterwards): the errno the release passes through, the stage it is met at, lines the hypervisor
 * prints before the table's message, or the whole message.
 */
export interface DiagOverrides {
  errno?: string;
  stage?: Stage;
  /** Printed before the message, on a line of its own. */
  before?: string;
  message?: string;
}

/** Builds a diagnostic for upload name `name` under `rules`. */
export function makeDiagnostic(
  code: DiagCode,
  rules: LoaderRules,
  name: string,
  args: DiagArgs = {},
  ctx: DiagContext = {},
  over: DiagOverrides = {},
): Diagnostic {
  const d: DiagnosticDef = DIAGNOSTICS[code];
  let text = d.text(args, rules);
  let printed: Diagnostic['printed'] = 'never';
  if (d.log === 'err' || d.log === 'debug') {
    printed = d.log === 'err' && rules.printk ? 'always' : 'debug';
    if (rules.bang && d.log === 'err' && !/[.!]$/.test(text)) text += '!';
    // Some alternatives messages are printed as "%s Alternative…" (no colon) [4.17.4+/HEAD LP (prepare_payload)].
    const sep = NO_COLON.has(code) ? ' ' : ': ';
    text = `${rules.prefix}${name}${sep}${text}`;
    // x86 apply_alt_calls prints its own line first [HEAD xen/arch/x86/alternative.c].
    if (code === 'ALT_CALL_NOT_RIPREL') text = `Altcall for ${hex(args.addr)} [${args.bytes}] not CALL *RIPREL\n${text}`;
  }
  if (over.before !== undefined) text = `${over.before}\n${text}`;
  const out: Omit<Diagnostic, 'rule'> = {
    severity: d.severity,
    code,
    errno: over.errno ?? d.errno,
    message: over.message ?? text,
    stage: over.stage ?? d.stage,
    printed,
    spec: d.spec,
  };
  if (ctx.section !== undefined) out.section = ctx.section;
  if (ctx.symbol !== undefined) out.symbol = ctx.symbol;
  if (ctx.offset !== undefined) out.offset = ctx.offset;
  return { ...out, rule: ruleRef(code) };
}

/** errno names → numbers (Xen's public errno.h, same as Linux). */
export const ERRNO: Record<string, number> = {
  EPERM: 1,
  ENOENT: 2,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ENOBUFS: 105,
};
