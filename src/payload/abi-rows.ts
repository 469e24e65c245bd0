/**
 * The built-in rows of the payload ABI table and the release → row table: per-architecture facts,
 * funcs entry layouts, hook sections, special sections, one row per format and architecture, and
 * the point-release differences. Plain data; abi.ts is the API over it (and vendor rows).
 *
 * Why one file: it is data only, and the release table names the rows defined above it; keeping
 * them together lets a row and the releases that use it be checked side by side.
 */
import { EM as ELF_EM, R_AARCH64, R_ARM, R_X86_64 } from '../elf/constants.js';
import type { Arch, FieldLayout, FuncEntryLayout, HookKind, HookSectionRule, PayloadAbi } from './abi-types.js';

export const ARCHES: readonly Arch[] = ['x86_64', 'arm64', 'arm32'];

/* ------------------------------------------------------------------------------------------ */
/* Per-architecture facts (elf.h numbers; Xen arch files)                                      */

/** e_machine of each arch (numbers in elf/constants.ts). */
export const EM = { x86_64: ELF_EM.X86_64, arm64: ELF_EM.AARCH64, arm32: ELF_EM.ARM } as const;
/** EF_ARM_EABI_VER5 (elf.h). */
const EF_ARM_EABI_VER5 = 0x05000000;

/** The arch an e_machine value is, if live patching has it (the one e_machine → arch map). */
export function archOfMachine(machine: number): Arch | undefined {
  return ARCHES.find((a) => EM[a] === machine);
}

/** Relocation types by their full names, picked from an elf/constants.ts table. */
function relocSet<N extends string>(prefix: string, table: Readonly<Record<N, number>>, names: readonly N[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [prefix + n, table[n]]));
}

/**
 * Relocation types each arch's loader applies [payload-format.md §2.8; xen/arch/x86/livepatch.c,
 * xen/arch/arm/arm64/livepatch.c, xen/arch/arm/arm32/livepatch.c].
 */
export const RELOC_TYPES: Record<Arch, Record<string, number>> = {
  x86_64: relocSet('R_X86_64_', R_X86_64, ['NONE', '64', 'PC32', 'PLT32']),
  arm64: relocSet('R_AARCH64_', R_AARCH64, [
    'ABS64',
    'ABS32',
    'ABS16',
    'PREL64',
    'PREL32',
    'PREL16',
    'MOVW_UABS_G0',
    'MOVW_UABS_G0_NC',
    'MOVW_UABS_G1',
    'MOVW_UABS_G1_NC',
    'MOVW_UABS_G2',
    'MOVW_UABS_G2_NC',
    'MOVW_UABS_G3',
    'MOVW_SABS_G0',
    'MOVW_SABS_G1',
    'MOVW_SABS_G2',
    'ADR_PREL_LO21',
    'ADR_PREL_PG_HI21',
    'ADR_PREL_PG_HI21_NC',
    'ADD_ABS_LO12_NC',
    'LDST8_ABS_LO12_NC',
    'TSTBR14',
    'CONDBR19',
    'JUMP26',
    'CALL26',
    'LDST16_ABS_LO12_NC',
    'LDST32_ABS_LO12_NC',
    'LDST64_ABS_LO12_NC',
    'MOVW_PREL_G0',
    'MOVW_PREL_G0_NC',
    'MOVW_PREL_G1',
    'MOVW_PREL_G1_NC',
    'MOVW_PREL_G2',
    'MOVW_PREL_G2_NC',
    'MOVW_PREL_G3',
    'LDST128_ABS_LO12_NC',
  ]),
  arm32: relocSet('R_ARM_', R_ARM, ['NONE', 'ABS32', 'REL32', 'CALL', 'JUMP24', 'MOVW_ABS_NC', 'MOVT_ABS']),
};

/** Pointer-sized absolute relocation for data (funcs `name`/`new_addr`, hook arrays). */
export const ABS_PTR_RELOC: Record<Arch, number> = { x86_64: R_X86_64['64'], arm64: R_AARCH64.ABS64, arm32: R_ARM.ABS32 };

/**
 * ARM mapping symbols `$a`, `$d`, `$x` (optionally `.suffix`): on ARM they are never new payload
 * symbols (arch_livepatch_symbol_ok), so neither duplicate checks nor exports see them.
 */
export function isSkippedMappingSymbol(arch: Arch, name: string): boolean {
  return arch !== 'x86_64' && /^\$[adx](\.|$)/.test(name);
}

/** Thumb mapping symbols `$t`, `$t.*`: arm32 refuses a payload with one (arch_livepatch_symbol_deny, 4.8+). */
export function isDeniedMappingSymbol(arch: Arch, name: string): boolean {
  return arch === 'arm32' && /^\$t(\.|$)/.test(name);
}

/**
 * Bytes a relocation of `type` writes, for the types a payload section's bounds are checked
 * against (x86_64: 0 for the types it does not apply; ARM: the 64-bit ABS/PREL take 8, the rest
 * one 4-byte instruction or word).
 */
export function relocWidth(arch: Arch, type: number): number {
  if (arch === 'x86_64') return type === R_X86_64['64'] ? 8 : type === R_X86_64.PC32 || type === R_X86_64.PLT32 ? 4 : 0;
  if (arch === 'arm64') return type === R_AARCH64.ABS64 || type === R_AARCH64.PREL64 ? 8 : 4;
  return 4;
}

/* ------------------------------------------------------------------------------------------ */
/* Funcs entry layouts [payload-format.md §1.2]                                                */

function f(offset: number, size: number): FieldLayout {
  return { offset, size };
}

export function entryLayout(kind: 'L1' | 'L2a' | 'L2b' | 'L2c', ptr: 4 | 8): FuncEntryLayout {
  // name, new_addr, old_addr are pointers; new_size, old_size u32; version u8.
  const p = ptr;
  const fields = {
    name: f(0, p),
    newAddr: f(p, p),
    oldAddr: f(2 * p, p),
    newSize: f(3 * p, 4),
    oldSize: f(3 * p + 4, 4),
    version: f(3 * p + 8, 1),
  };
  const afterVersion = 3 * p + 9; // 33 on 64-bit, 21 on arm32
  if (kind === 'L1') {
    // opaque[31] runs to the end: 64 / 52 bytes.
    return { size: afterVersion + 31, align: p, version: 1, fields: { ...fields, zeroed: [f(afterVersion, 31)] } };
  }
  const expect = f(afterVersion + 39, 32); // 72 / 60
  const zeroed =
    kind === 'L2a'
      ? [f(afterVersion, 31), f(afterVersion + 31, 1), f(afterVersion + 32, 7)] // opaque, applied, _pad[7]
      : kind === 'L2b'
        ? [f(afterVersion, 31), f(afterVersion + 31, 1), f(afterVersion + 32, 1), f(afterVersion + 33, 6)] // opaque, applied, patch_offset, _pad[6]
        : [f(afterVersion, 39)]; // _pad[39]
  // What the hypervisor reads as its own state: L2a `applied`; L2b `applied` and `patch_offset` [§1.2].
  const hypervisorState = kind === 'L2a' ? [afterVersion + 31] : kind === 'L2b' ? [afterVersion + 31, afterVersion + 32] : [];
  return {
    size: afterVersion + 39 + 32,
    align: p,
    version: 2,
    ...(hypervisorState.length ? { hypervisorState } : {}),
    fields: { ...fields, zeroed, expect },
  };
}

/* ------------------------------------------------------------------------------------------ */
/* Hooks [payload-format.md §1.4]                                                              */

const XSPLICE_HOOK_NOTE = 'proposed by the xSplice v5 series; no released hypervisor reads this section (the hooks are ignored)';

export function hooks(prefix: string, kinds: 'none' | 'loadunload' | 'all', note?: string): HookSectionRule[] {
  if (kinds === 'none') return [];
  const out: HookSectionRule[] = [
    { kind: 'load', section: `${prefix}.hooks.load`, array: true },
    { kind: 'unload', section: `${prefix}.hooks.unload`, array: true },
  ];
  if (note) for (const h of out) h.note = note;
  if (kinds === 'all') {
    const single: [HookKind, string][] = [
      ['pre-apply', 'preapply'],
      ['apply', 'apply'],
      ['post-apply', 'postapply'],
      ['pre-revert', 'prerevert'],
      ['revert', 'revert'],
      ['post-revert', 'postrevert'],
    ];
    for (const [kind, suffix] of single) out.push({ kind, section: `${prefix}.hooks.${suffix}`, array: false });
  }
  return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Special sections with fixed entry sizes [payload-format.md §1.5]                            */

function bugFrames(n: number, size: number): { section: string; entrySize: number }[] {
  return Array.from({ length: n }, (_, i) => ({ section: `.bug_frames.${i}`, entrySize: size }));
}

/* ------------------------------------------------------------------------------------------ */
/* The rows                                                                                    */

export const MIB2 = 2 * 1024 * 1024;

/**
 * Per-architecture facts, one column each [payload-format.md §1.4, §1.5, §2.2, §2.8, §2.10, §2.15].
 */
interface ArchFacts {
  machine: number;
  eFlags?: number;
  pointerSize: 4 | 8;
  /** Bytes the patch writes: x86 `jmp rel32`, ARM one branch instruction. */
  patchSize: number;
  /** NOP lengths are whole instructions. */
  nopGranule: number;
  /** livepatch_verify_distance. */
  branchRange: number;
  relAllowed: boolean;
  /** sizeof(struct bug_frame); BUGFRAME_NR. */
  bugFrame: { size: number; count: number };
  /** sizeof(struct alt_instr) for the newest release of the row (older releases: RELEASES). */
  altInstr: number;
  /** sizeof(struct exception_table_entry), or null when the arch has no .ex_table support. */
  exTable: number | null;
}

export const ARCH: Record<Arch, ArchFacts> = {
  x86_64: {
    machine: EM.x86_64,
    pointerSize: 8,
    patchSize: 5,
    nopGranule: 1,
    branchRange: 2 ** 31,
    relAllowed: false,
    bugFrame: { size: 8, count: 4 },
    altInstr: 14,
    exTable: 8,
  },
  arm64: {
    machine: EM.arm64,
    pointerSize: 8,
    patchSize: 4,
    nopGranule: 4,
    branchRange: 128 * 2 ** 20,
    relAllowed: false,
    bugFrame: { size: 16, count: 4 },
    altInstr: 12,
    exTable: null,
  },
  arm32: {
    machine: EM.arm32,
    eFlags: EF_ARM_EABI_VER5,
    pointerSize: 4,
    patchSize: 4,
    nopGranule: 4,
    branchRange: 32 * 2 ** 20,
    relAllowed: true,
    bugFrame: { size: 16, count: 4 },
    altInstr: 12,
    exTable: null,
  },
};

/**
 * The payload formats, one column per difference [payload-format.md §1.1, §1.2, §5.2]. Each
 * becomes one row per architecture it exists on; point-release facts are in RELEASES below.
 */
interface FormatFacts {
  name: 'xsplice' | 'L1' | 'L2a' | 'L2b' | 'L2c';
  releases: string;
  description: string;
  arches: Arch[];
  /** Section name prefix: `.xsplice` or `.livepatch`. */
  prefix: string;
  layout: 'L1' | 'L2a' | 'L2b' | 'L2c';
  /** .livepatch.xen_depends and .modinfo exist (4.14+). */
  xenDependsAndModinfo: boolean;
  hooks: 'load/unload' | 'all';
  /** Set when no released hypervisor reads the hook sections. */
  hookNote?: string;
  /** Apply page-faults on a read-only funcs section (per arch); see §1.2 "Writability". */
  funcsMustBeWritable: Record<Arch, boolean>;
  /** What the builder emits: Xen's own tests ship the section writable before 4.19. */
  funcsWritable: boolean;
  nopAllowed: boolean;
  /** x86 ENDBR64-aware patching (patch_offset, 4.17 and the L2b backports). */
  x86EndbrOffset: number;
  /** NOBITS size limit (4.8+). */
  maxNobits: number | null;
  /** x86 alt_instr size when it differs from ARCH (12 in X–4.10). */
  x86AltInstr?: number;
}

export const FORMATS: FormatFacts[] = [
  {
    name: 'xsplice',
    releases: 'xSplice tree before the rename (91fbfc37f5, 4.7-unstable)',
    description: 'xSplice: .xsplice.* sections, 64-byte struct xsplice_patch_func, version 1',
    arches: ['x86_64'],
    prefix: '.xsplice',
    layout: 'L1',
    xenDependsAndModinfo: false,
    hooks: 'load/unload',
    hookNote: XSPLICE_HOOK_NOTE,
    // x86 cleared CR0.WP while patching.
    funcsMustBeWritable: { x86_64: false, arm64: true, arm32: true },
    funcsWritable: true,
    nopAllowed: false,
    x86EndbrOffset: 0,
    maxNobits: null,
    x86AltInstr: 12,
  },
  {
    name: 'L1',
    releases: '4.7–4.13 (ARM from 4.8)',
    description: 'livepatch version 1: 64-byte (arm32 52) struct livepatch_func',
    arches: ['x86_64', 'arm64', 'arm32'],
    prefix: '.livepatch',
    layout: 'L1',
    xenDependsAndModinfo: false,
    hooks: 'load/unload',
    // ARM only maps Xen's own text writable while patching.
    funcsMustBeWritable: { x86_64: false, arm64: true, arm32: true },
    funcsWritable: true,
    nopAllowed: true,
    x86EndbrOffset: 0,
    maxNobits: MIB2,
  },
  {
    name: 'L2a',
    releases: '4.14.0–4.14.4, 4.15.0–4.15.2, 4.16.0',
    description: 'livepatch version 2: 104/92 bytes, opaque + applied + expectation; .livepatch.xen_depends mandatory',
    arches: ['x86_64', 'arm64', 'arm32'],
    prefix: '.livepatch',
    layout: 'L2a',
    xenDependsAndModinfo: true,
    hooks: 'all',
    funcsMustBeWritable: { x86_64: false, arm64: true, arm32: true },
    funcsWritable: true,
    nopAllowed: true,
    x86EndbrOffset: 0,
    maxNobits: MIB2,
  },
  {
    name: 'L2b',
    releases: '4.14.5+, 4.15.3+, 4.16.1+, 4.17.0–4.17.2, 4.18.0',
    description: 'livepatch version 2 with patch_offset (ENDBR64-aware patching)',
    arches: ['x86_64', 'arm64', 'arm32'],
    prefix: '.livepatch',
    layout: 'L2b',
    xenDependsAndModinfo: true,
    hooks: 'all',
    // x86: required on 4.16.4+, 4.17.1–4.17.2 and 4.18.0, harmless on the others: the row is
    // conservative, abiForVersion gives the exact per-release value.
    funcsMustBeWritable: { x86_64: true, arm64: true, arm32: true },
    funcsWritable: true,
    nopAllowed: true,
    x86EndbrOffset: 4,
    maxNobits: MIB2,
  },
  {
    name: 'L2c',
    releases: '4.17.3+, 4.18.1+, 4.19+',
    description: 'livepatch version 2, bytes 33–71 plain padding (state kept by Xen); .livepatch.funcs may be read-only',
    arches: ['x86_64', 'arm64', 'arm32'],
    prefix: '.livepatch',
    layout: 'L2c',
    xenDependsAndModinfo: true,
    hooks: 'all',
    // The entries are never written; 4.19's tests ship the section read-only.
    funcsMustBeWritable: { x86_64: false, arm64: false, arm32: false },
    funcsWritable: false,
    nopAllowed: true,
    x86EndbrOffset: 4,
    maxNobits: MIB2,
  },
];

export function makeRow(F: FormatFacts, arch: Arch): PayloadAbi {
  const A = ARCH[arch];
  const hookRules = hooks(F.prefix, F.hooks === 'all' ? 'all' : 'loadunload', F.hookNote);
  const sections = {
    funcs: `${F.prefix}.funcs`,
    depends: `${F.prefix}.depends`,
    xenDepends: F.xenDependsAndModinfo ? '.livepatch.xen_depends' : null,
    buildId: '.note.gnu.build-id',
    modinfo: F.xenDependsAndModinfo ? '.modinfo' : null,
  };
  const special = [
    ...bugFrames(A.bugFrame.count, A.bugFrame.size),
    { section: '.altinstructions', entrySize: arch === 'x86_64' ? (F.x86AltInstr ?? A.altInstr) : A.altInstr },
    ...(A.exTable !== null ? [{ section: '.ex_table', entrySize: A.exTable }] : []),
    // Hook sections the hypervisor reads are arrays of pointers.
    ...(F.hookNote ? [] : hookRules.map((h) => ({ section: h.section, entrySize: A.pointerSize }))),
    ...(sections.modinfo ? [{ section: sections.modinfo, entrySize: 1 }] : []),
  ];
  return {
    name: F.name,
    id: `${F.name}-${arch}`,
    arch,
    description: F.description,
    releases: F.releases,
    elfClass: A.pointerSize === 8 ? 64 : 32,
    machine: A.machine,
    ...(A.eFlags !== undefined ? { eFlags: A.eFlags } : {}),
    pointerSize: A.pointerSize,
    sections,
    mandatory: F.xenDependsAndModinfo
      ? [sections.depends, sections.xenDepends!, sections.buildId]
      : [sections.funcs, sections.depends, sections.buildId],
    atLeastOneOf: F.xenDependsAndModinfo ? [sections.funcs, ...hookRules.map((h) => h.section)] : [],
    funcEntry: entryLayout(F.layout, A.pointerSize),
    hooks: hookRules,
    funcsMustBeWritable: F.funcsMustBeWritable[arch],
    funcsWritable: F.funcsWritable,
    nopAllowed: F.nopAllowed,
    nopMaxLen: 31,
    patchSize: A.patchSize,
    endbrOffset: arch === 'x86_64' ? F.x86EndbrOffset : 0,
    relocTypes: Object.values(RELOC_TYPES[arch]),
    relAllowed: A.relAllowed,
    special,
    limits: { maxPayloadSize: MIB2, maxNameLen: 127, maxSections: 1024, maxSymbolLen: 126, maxNobits: F.maxNobits },
    nopGranule: A.nopGranule,
    branchRange: A.branchRange,
    absPointerReloc: ABS_PTR_RELOC[arch],
  };
}

export const BUILTIN: PayloadAbi[] = FORMATS.flatMap((f) => f.arches.map((a) => makeRow(f, a)));

/* ------------------------------------------------------------------------------------------ */
/* Release → row table, with the point-release differences [payload-format.md §1.1, §1.6]      */

export type V3 = [number, number, number];

export interface ReleaseRange {
  from: V3;
  /** Inclusive; patch 999 = the rest of the branch. */
  to: V3;
  abi: 'L1' | 'L2a' | 'L2b' | 'L2c';
  /** Arches the release supports live patching on. */
  arches: Arch[];
  /** Field overrides applied in order to the row for this range (release-specific facts). */
  overrides?: ((row: PayloadAbi) => Partial<PayloadAbi>)[];
  note?: string;
}

export const ALL: Arch[] = ['x86_64', 'arm64', 'arm32'];
export const END = 999;

/** ARM BUGFRAME_NR was 3 up to 4.14 (sections .bug_frames.0–2). */
const armThreeBugFrames = (row: PayloadAbi): Partial<PayloadAbi> =>
  row.arch === 'x86_64' ? {} : { special: row.special.filter((s) => s.section !== '.bug_frames.3') };
/** x86 struct alt_instr was 12 bytes up to 4.10. */
const x86Alt12 = (row: PayloadAbi): Partial<PayloadAbi> =>
  row.arch === 'x86_64' ? { special: row.special.map((s) => (s.section === '.altinstructions' ? { ...s, entrySize: 12 } : s)) } : {};
const writable = (): Partial<PayloadAbi> => ({ funcsMustBeWritable: true, funcsWritable: true });
const readonlyOk = (row: PayloadAbi): Partial<PayloadAbi> => (row.arch === 'x86_64' ? { funcsMustBeWritable: false } : {});

const noArm32Alt = (row: PayloadAbi): Partial<PayloadAbi> =>
  row.arch === 'arm32' ? { special: row.special.filter((s) => s.section !== '.altinstructions') } : {};
/** 4.7: no hooks, no NOP patching, no NOBITS size limit. */
const v47 = (row: PayloadAbi): Partial<PayloadAbi> => ({
  hooks: [],
  nopAllowed: false,
  special: row.special.filter((s) => !s.section.includes('.hooks.')),
  limits: { ...row.limits, maxNobits: null },
});
const altCallSites = (row: PayloadAbi): Partial<PayloadAbi> =>
  row.arch === 'x86_64' ? { special: [...row.special, { section: '.alt_call_sites', entrySize: 4 }] } : {};

export const RELEASES: ReleaseRange[] = [
  { from: [4, 7, 0], to: [4, 7, END], abi: 'L1', arches: ['x86_64'], overrides: [x86Alt12, v47] },
  {
    from: [4, 8, 0],
    to: [4, 8, END],
    abi: 'L1',
    arches: ALL,
    overrides: [x86Alt12, armThreeBugFrames, noArm32Alt],
    note: 'arm32 has no HAS_ALTERNATIVE in 4.8',
  },
  { from: [4, 9, 0], to: [4, 10, END], abi: 'L1', arches: ALL, overrides: [x86Alt12, armThreeBugFrames] },
  { from: [4, 11, 0], to: [4, 13, END], abi: 'L1', arches: ALL, overrides: [armThreeBugFrames] },
  { from: [4, 14, 0], to: [4, 14, 4], abi: 'L2a', arches: ALL, overrides: [armThreeBugFrames] },
  {
    from: [4, 14, 5],
    to: [4, 14, END],
    abi: 'L2b',
    arches: ALL,
    overrides: [armThreeBugFrames, readonlyOk],
    note: 'ENDBR64/patch_offset backport',
  },
  { from: [4, 15, 0], to: [4, 15, 2], abi: 'L2a', arches: ALL },
  { from: [4, 15, 3], to: [4, 15, END], abi: 'L2b', arches: ALL, overrides: [readonlyOk], note: 'ENDBR64/patch_offset backport' },
  { from: [4, 16, 0], to: [4, 16, 0], abi: 'L2a', arches: ALL },
  { from: [4, 16, 1], to: [4, 16, 3], abi: 'L2b', arches: ALL, overrides: [readonlyOk], note: 'ENDBR64/patch_offset backport' },
  {
    from: [4, 16, 4],
    to: [4, 16, END],
    abi: 'L2b',
    arches: ALL,
    overrides: [writable],
    note: 'x86 no longer clears CR0.WP (8676092a0f backport): .livepatch.funcs must be writable',
  },
  { from: [4, 17, 0], to: [4, 17, 0], abi: 'L2b', arches: ALL, overrides: [readonlyOk] },
  {
    from: [4, 17, 1],
    to: [4, 17, 2],
    abi: 'L2b',
    arches: ALL,
    overrides: [writable],
    note: '.livepatch.funcs must be writable (8676092a0f backport)',
  },
  { from: [4, 17, 3], to: [4, 17, END], abi: 'L2c', arches: ALL, note: 'livepatch_func state moved out (e3c1ffb2a3 backport)' },
  { from: [4, 18, 0], to: [4, 18, 0], abi: 'L2b', arches: ALL, overrides: [writable] },
  { from: [4, 18, 1], to: [4, 18, END], abi: 'L2c', arches: ALL, note: 'livepatch_func state moved out (480168fcb3 backport)' },
  { from: [4, 19, 0], to: [4, 20, END], abi: 'L2c', arches: ALL },
  // 4.21 … 4.23-dev (HEAD c447b7308b): .alt_call_sites on x86.
  { from: [4, 21, 0], to: [4, 23, END], abi: 'L2c', arches: ALL, overrides: [altCallSites] },
];
