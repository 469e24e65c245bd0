/**
 * The shape of one payload ABI row: one distinct Xen payload format on one architecture.
 * Rows are data (abi.ts holds the built-in ones; users supply more with --abi-file FILE.json in
 * the same shape), so every Xen release difference in the *format* lives in one row.
 * Behavioural differences of the loader's checks by release live in releases.ts (verify).
 */

export type Arch = 'x86_64' | 'arm64' | 'arm32';

export type HookKind = 'load' | 'unload' | 'pre-apply' | 'apply' | 'post-apply' | 'pre-revert' | 'revert' | 'post-revert';

export const HOOK_KINDS: readonly HookKind[] = [
  'load',
  'unload',
  'pre-apply',
  'apply',
  'post-apply',
  'pre-revert',
  'revert',
  'post-revert',
];

/** A field of the funcs entry: byte offset and width. */
export interface FieldLayout {
  offset: number;
  size: number;
}

export interface FuncEntryLayout {
  /** sizeof(struct livepatch_func) on this arch. */
  size: number;
  /**
   * Byte offsets in the entry that the hypervisor reads as its own state (L2a `applied`; L2b
   * `applied` and `patch_offset`): non-zero there mis-places or skips the patch. Optional: none.
   */
  hypervisorState?: number[];
  /** Alignment of the struct (8 on 64-bit, 4 on arm32). */
  align: number;
  /** Value the `version` byte must hold. */
  version: number;
  fields: {
    name: FieldLayout;
    newAddr: FieldLayout;
    oldAddr: FieldLayout;
    newSize: FieldLayout;
    oldSize: FieldLayout;
    version: FieldLayout;
    /** Hypervisor scratch bytes the payload must ship as zero (opaque/applied/patch_offset/_pad). */
    zeroed: FieldLayout[];
    /** livepatch_expectation_t (32 bytes) when the format has it. */
    expect?: FieldLayout;
  };
}

export interface HookSectionRule {
  kind: HookKind;
  section: string;
  /** true: an array of pointers (any count); false: exactly one pointer. */
  array: boolean;
  /** Set when no released hypervisor reads this section (e.g. the xSplice v5 proposal names). */
  note?: string;
}

/**
 * How one release's loader behaves, resolved into its row (abiForVersion): the loader columns of
 * releases.ts FEATURES and the per-release facts verify and build need. A vendor row may state any
 * of them under "loader"; the rest come from the release the row is used for.
 */
export interface LoaderFacts {
  /** The release these facts are for ("4.17.5+72-g01140da4e8-1"). */
  release: string;
  /** Loader behaviours by releases.ts FEATURES name: true when this release has it. */
  features: Record<string, boolean>;
  /** Where payloads are mapped: after a hypervisor symbol (x86, page-aligned) or from a fixed base (ARM LIVEPATCH_VMAP_START). */
  payloadArea: { symbol: string } | { base: bigint };
  /** x86 NCAPINTS: an alternative's feature must be below NCAPINTS * 32; null when unknown (ARM, < 4.13). */
  x86CapWords: number | null;
  /** x86 BUG instruction `.bug_frames.*` entries point at: 'ud2' (0f 0b) up to 4.21, 'udb' (d6) from 4.22; null on ARM. */
  bugInstruction: 'ud2' | 'udb' | null;
}

/** What a vendor row states about the loader (any subset; the rest from the release). */
export type LoaderOverrides = Partial<Omit<LoaderFacts, 'features'>> & { features?: Record<string, boolean> };

export interface PayloadAbi {
  /** Stable row name, e.g. "xsplice", "L1", "L2a", "L2b", "L2c" (+ arch in `id`). */
  name: string;
  /** Unique id `${name}-${arch}`, e.g. "L2c-x86_64". */
  id: string;
  arch: Arch;
  description: string;
  /** Hypervisor releases this row describes, human readable ("4.17.3+, 4.18.1+, 4.19+"). */
  releases: string;
  elfClass: 32 | 64;
  /** e_machine, e.g. 62 EM_X86_64. */
  machine: number;
  /** arm32: EF_ARM_EABI_VER5 in e_flags. */
  eFlags?: number;
  pointerSize: 4 | 8;
  sections: {
    funcs: string;
    depends: string;
    /** null before 4.14. */
    xenDepends: string | null;
    buildId: string;
    /** null before 4.14. */
    modinfo: string | null;
  };
  /** Sections that must exist and be non-empty. */
  mandatory: string[];
  /** At least one of these must exist (4.14+: funcs or a hook section); empty list = no such rule. */
  atLeastOneOf: string[];
  funcEntry: FuncEntryLayout;
  hooks: HookSectionRule[];
  /** Apply page-faults unless .livepatch.funcs is SHF_WRITE (4.16.4+, 4.17.1–4.17.2, 4.18.0, ARM < 4.19). */
  funcsMustBeWritable: boolean;
  /** NOP patching (new_addr == 0) accepted (4.8+). */
  nopAllowed: boolean;
  /** Max bytes a NOP patch may cover. */
  nopMaxLen: number;
  /** Bytes the patch writes (x86 jmp rel32 = 5, ARM branch = 4). */
  patchSize: number;
  /** Extra bytes skipped before patching when the target starts with ENDBR64 (4.17+ x86), else 0. */
  endbrOffset: number;
  /** Relocation types the loader applies (by number), for this arch. */
  relocTypes: number[];
  /** Whether SHT_REL (not only RELA) is accepted. */
  relAllowed: boolean;
  /** Special sections the loader parses, with their entry sizes. */
  special: { section: string; entrySize: number }[];
  /** Whether `xsplice build` emits .livepatch.funcs SHF_WRITE (what Xen's own tests do: writable before 4.19, read-only from 4.19). Optional: default funcsMustBeWritable. Must be true when funcsMustBeWritable is. */
  funcsWritable?: boolean;
  /** NOP patch lengths must be a multiple of this (ARM 4: whole instructions; x86 1). Optional: default 1. */
  nopGranule?: number;
  /** |old_addr - new_addr| must be below this (x86 2 GiB, arm64 128 MiB, arm32 32 MiB; livepatch_verify_distance, 4.8+). */
  branchRange?: number;
  /** Relocation type for a pointer-sized absolute value (funcs name/new_addr, hook entries): R_X86_64_64, R_AARCH64_ABS64, R_ARM_ABS32. */
  absPointerReloc?: number;
  /** Loader behaviour: complete on rows resolved for a release (abiForVersion), partial or absent on format rows and vendor rows. */
  loader?: LoaderOverrides;
  limits: {
    maxPayloadSize: number;
    /** Payload (upload) name: characters, NUL excluded. */
    maxNameLen: number;
    /** e_shnum must be below this. */
    maxSections: number;
    /** KSYM_NAME_LEN - 1 (names are truncated to 126 characters). */
    maxSymbolLen: number;
    /** NOBITS sections with WRITE|ALLOC at most this big (4.8+), or null. */
    maxNobits: number | null;
  };
}
