/**
 * How the hypervisor's live-patch loader *behaves*, by release: one table of features, each with
 * the first `x.y.0` release that has it and the stable point releases that received it as a
 * backport. The payload *format* (section names, entry sizes, versions) lives in the ABI rows of
 * abi.ts; this file only holds the loader's checks, message style and quirks that verify needs.
 *
 * Every row cites payload-format.md (§) and the Xen commit or tree it comes from.
 */
import type { Arch } from './abi-types.js';
import { parseXenVersion as parseAbiVersion } from './abi.js';

/** A parsed hypervisor version. `xsplice` is the pre-rename tree (before 4.7). */
export interface XenVersion {
  major: number;
  minor: number;
  patch: number;
  /** The text as given, e.g. "4.17.7+13-g2445b30a44-0+deb12u1". */
  text: string;
  /** True for the xSplice tree before the rename (`X` in the spec). */
  xsplice: boolean;
}

/**
 * Parses "4.17", "4.17.7", "4.17.7+13-g2445b30a44-0+deb12u1", "4.23-dev" (abi.ts parseXenVersion)
 * and "xsplice" (the pre-rename tree). Returns undefined for anything else.
 */
export function parseXenVersion(text: string): XenVersion | undefined {
  const t = text.trim();
  if (/^(xsplice|X)$/i.test(t)) return { major: 4, minor: 6, patch: 99, text: t, xsplice: true };
  try {
    const p = parseAbiVersion(t);
    return { major: p.major, minor: p.minor, patch: p.patch ?? 0, text: t, xsplice: false };
  } catch {
    return undefined;
  }
}

/** Orders two versions by (major, minor, patch); the suffix is ignored. */
export function compareVersions(a: XenVersion, b: XenVersion): number {
  return a.major - b.major || a.minor - b.minor || a.patch - b.patch;
}

function v(text: string): XenVersion {
  const r = parseXenVersion(text);
  if (!r) throw new Error(`bad version literal ${text}`);
  return r;
}

export interface FeatureRow {
  /** First x.y.0 release with the behaviour (undefined: present in every tree). */
  since?: string;
  /** Last release with the behaviour (inclusive), for behaviours that were later removed. */
  until?: string;
  /** Stable point releases that received it: present from that point on within its x.y line. */
  backports?: string[];
  /** Architectures it applies to (default: all). */
  arch?: Arch[];
  /** Where it comes from. */
  cite: string;
}

/**
 * Loader behaviour per release. Keys are used by verify.ts through `rulesFor()`.
 */
export const FEATURES = {
  /** "livepatch: " prefix and names (4.7 rename); "xsplice: " before. */
  livepatchNames: { since: '4.7', cite: '§0 Logging; commit 32df791797' },
  /** Errors printed with printk (release builds too), no trailing "!". */
  printkErrors: { since: '4.13', cite: '§0 Logging; commits 4470efeae4, 9e1cfdf3ae' },
  /** ARM payloads (arm32/arm64). */
  armSupport: { since: '4.8', cite: '§0 Architectures; 0d35756e4c, 3dbe9a994a' },
  /** NOP patching (new_addr == 0) and 4.8+ rule "old_size must be non-zero" (X/4.7: new_addr/new_size). */
  nopPatching: { since: '4.8', cite: '§2.10(a)3; 67af3e52f4' },
  /** Branch distance check old_addr - new_addr. */
  distanceCheck: { since: '4.8', cite: '§2.10(a)6; 84eabb2754' },
  /** NOBITS WRITE|ALLOC sections limited to 2 MiB. */
  nobitsLimit: { since: '4.8', cite: '§2.3; c1d255584c' },
  /** Generic relocation-section header checks (entsize/size) for REL and RELA. */
  relocHeaderChecks: { since: '4.8', cite: '§2.8; aa1ae74cb5' },
  /** Load/unload hook arrays. */
  loadUnloadHooks: { since: '4.8', cite: '§1.4; e602d66660' },
  /** .altinstructions/.ex_table rejected when the arch lacks support. */
  specialUnsupported: { since: '4.8', cite: '§2.10(g)(i); aef04c0074' },
  /** sh_addralign power-of-two and sh_addr alignment checks. */
  alignChecks: { since: '4.10', cite: '§2.3; c3f951417f' },
  /** Unified "Wrong size %u of %s (must be multiple of %zu)" message. */
  unifiedWrongSize: { since: '4.10', cite: '§2.10; 7597fabca7' },
  /** An empty .ex_table is accepted (X–4.9 rejected sh_size == 0). */
  exTableEmptyOk: { since: '4.10', cite: '§2.10(i); 7597fabca7' },
  /** STN_UNDEF relocations rejected, symndx >= nsym (was >), empty slot check. */
  stnUndefReject: { since: '4.10', cite: '§2.8; 2ff229643b' },
  /** Payloads with only RO sections are safe to re-apply. */
  roOnlyReapply: { since: '4.10', cite: '§2.6; 66d3f83db6' },
  /** Payload version 2, .livepatch.xen_depends, at-least-one-of sections, single hooks, .modinfo, expectations. */
  v2: { since: '4.14', cite: '§1.1, §1.6 4.14; 879615f5db…5083e0ff93' },
  /** ARM BUGFRAME_NR 4 (else 3). */
  armBugframe4: { since: '4.15', arch: ['arm32', 'arm64'], cite: '§1.5' },
  /** old_addr resolved before arch verify; ENDBR64-aware old_size; patch_offset. */
  resolveBeforeVerify: { since: '4.17', backports: ['4.14.5', '4.15.3', '4.16.1'], cite: '§2.10(a)4; 5142dc5c25' },
  endbr: { since: '4.17', backports: ['4.14.5', '4.15.3', '4.16.1'], arch: ['x86_64'], cite: '§2.10(a)5b; 6974c75180' },
  /** Zero-size SHF_ALLOC sections are loaded (4.8–4.16: skipped). */
  loadZeroSize: { since: '4.17', backports: ['4.14.5', '4.15.3', '4.16.1'], cite: '§2.6; 0dc1f929e8' },
  /** Relocations against symbols of non-SHF_ALLOC sections rejected. */
  ignoredSymbolRelocs: { since: '4.17', backports: ['4.14.5', '4.15.3', '4.16.1'], cite: '§2.8; 9120b5737f' },
  /** Strict .altinstructions bounds and a required .altinstr_replacement. */
  altStrict: { since: '4.18', backports: ['4.17.4'], cite: '§2.10(g); e74360e4ba, 1601fa5ac1' },
  /** .livepatch.funcs no longer written at apply/revert (may be read-only). */
  funcsReadOnlyOk: { since: '4.19', backports: ['4.17.3', '4.18.1'], cite: '§1.2 L2c; 82182ad7b4' },
  /** .livepatch.xen_depends checked on the raw image before anything is loaded, new messages. */
  xenDependsFirst: { since: '4.20', backports: ['4.18.4', '4.19.1'], cite: '§2.5; fa49f4be41, aa057dbd3f, 36789fa096' },
  /** Build-id parse errno passes through (ENODATA for type/name) instead of EINVAL. */
  buildIdErrnoPassThrough: { since: '4.20', cite: '§2.10(c); 86d09d16dd' },
  /** x86 apply_alternatives failures returned (ENOSPC/ERANGE) instead of BUG_ON. */
  altErrorsReturned: { since: '4.20', arch: ['x86_64'], cite: '§2.10(g); aa5a06d5d6' },
  /** .alt_call_sites parsed (x86). */
  altCallSites: { since: '4.21', cite: '§2.10(h); d2fd5f0fcd' },
  /** x86 struct alt_instr is 14 bytes (12 before). */
  altInstr14: { since: '4.11', arch: ['x86_64'], cite: '§1.5' },
} as const satisfies Record<string, FeatureRow>;

export type Feature = keyof typeof FEATURES;

/** Whether release `ver` on `arch` has `feature` (x.y.0 onwards, or a backport within its line). */
export function hasFeature(ver: XenVersion, feature: Feature, arch: Arch = 'x86_64'): boolean {
  const row: FeatureRow = FEATURES[feature];
  if (row.arch && !row.arch.includes(arch)) return false;
  if (ver.xsplice) return row.since === undefined;
  if (row.until && compareVersions(ver, v(row.until)) > 0) return false;
  if (row.since === undefined || compareVersions(ver, v(row.since)) >= 0) return true;
  for (const b of row.backports ?? []) {
    const bv = v(b);
    if (bv.major === ver.major && bv.minor === ver.minor && ver.patch >= bv.patch) return true;
  }
  return false;
}

/** Everything verify needs to know about one target release, resolved once. */
export interface LoaderRules {
  version: XenVersion;
  arch: Arch;
  /** "livepatch: " or "xsplice: ". */
  prefix: string;
  /** Errors are printk (visible on release builds) rather than debug-only dprintk. */
  printk: boolean;
  /** Messages end with "!" (≤4.12). */
  bang: boolean;
  features: Record<Feature, boolean>;
  /** BUGFRAME_NR: .bug_frames.0 … .bug_frames.(n-1). */
  bugFrameCount: number;
  /** sizeof(struct bug_frame). */
  bugFrameSize: number;
  /** sizeof(struct alt_instr). */
  altInstrSize: number;
  /** Whether .altinstructions is supported at all (CONFIG_HAS_ALTERNATIVE). */
  hasAlternative: boolean;
  /** Whether .ex_table is supported (x86). */
  hasExTable: boolean;
  /** Branch reach of old_addr − new_addr (±). */
  branchReach: bigint;
  /** Where the loader maps payloads: x86 after __2M_rwdata_end (vm_init_type(VMAP_XEN, …)). */
  payloadAreaSymbol: string | null;
  /** Fixed start of the payload area when there is no such symbol (ARM LIVEPATCH_VMAP_START, §2.6). */
  payloadBase: bigint | null;
}

export function rulesFor(ver: XenVersion, arch: Arch): LoaderRules {
  const features = Object.fromEntries(
    (Object.keys(FEATURES) as Feature[]).map((f) => [f, hasFeature(ver, f, arch)]),
  ) as Record<Feature, boolean>;
  const arm = arch !== 'x86_64';
  return {
    version: ver,
    arch,
    prefix: features.livepatchNames ? 'livepatch: ' : 'xsplice: ',
    printk: features.printkErrors,
    bang: !features.printkErrors,
    features,
    bugFrameCount: arm ? (features.armBugframe4 ? 4 : 3) : 4,
    bugFrameSize: arm ? 16 : 8,
    altInstrSize: arm ? 12 : features.altInstr14 ? 14 : 12,
    // arm64 has HAS_ALTERNATIVE from 4.8, arm32 from 4.9 [§1.1].
    hasAlternative: !arm || arch === 'arm64' || compareVersions(ver, v('4.9')) >= 0,
    hasExTable: !arm,
    branchReach: arch === 'x86_64' ? 1n << 31n : arch === 'arm64' ? 128n << 20n : 32n << 20n,
    payloadAreaSymbol: arch === 'x86_64' ? '__2M_rwdata_end' : null,
    payloadBase: arm ? (compareVersions(ver, v('4.17')) >= 0 ? 0x00a00000n : 0x00800000n) : null,
  };
}
