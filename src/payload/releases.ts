/**
 * The loader columns of the release table: how the hypervisor's live-patch loader *behaves*, by
 * release. Each column names the first `x.y.0` release that has the behaviour and the stable point
 * releases that received it as a backport; `loaderFactsFor` resolves every column (and the
 * per-release numbers below: payload area, NCAPINTS, BUG instruction) for one release, and
 * abi.ts `abiForVersion` puts the result into that release's row (`row.loader`). Build, verify and
 * inspect read the row, never this table directly; a vendor row (--abi-file) may state any of it.
 *
 * Every column cites payload-format.md (§, or its Errata part) and the Xen commit it comes from.
 */
import { UsageError } from '../errors.js';
import type { Arch, LoaderFacts, LoaderOverrides, PayloadAbi } from './abi-types.js';

export interface ParsedXenVersion {
  major: number;
  minor: number;
  /** null when the string gives no point release (e.g. "4.17" or "4.23-dev"). */
  patch: number | null;
  /** The rest (e.g. "+13-g2445b30a44-0+deb12u1", "-dev", "-rc"). */
  extra: string;
  /** A development or release-candidate tree of major.minor (counts as major.minor.0). */
  prerelease: boolean;
}

/** Parses "4.17.7+13-g2445b30a44-0+deb12u1", "4.17.3", "4.17", "4.23-dev", "4.19.0-rc2", "4.7-unstable". */
export function parseVersionText(version: string): ParsedXenVersion {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?(.*?)\s*$/.exec(version);
  if (!m) throw new UsageError('XEN_VERSION_BAD', `cannot parse Xen version "${version}" (expected X.Y.Z, e.g. 4.17.3)`);
  const extra = m[4] ?? '';
  const prerelease = /^-?(dev|unstable|rc\d*|pre)/i.test(extra.replace(/^[-~]/, ''));
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? null : Number(m[3]), extra, prerelease };
}

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
    const p = parseVersionText(t);
    const snap = /^\+\d+-g([0-9a-f]{7,40})\b/.exec(p.extra);
    const same = snap ? SNAPSHOTS.find(([h]) => snap[1]!.startsWith(h) || h.startsWith(snap[1]!)) : undefined;
    if (same) {
      const r = parseVersionText(same[1]);
      return { major: r.major, minor: r.minor, patch: r.patch ?? 0, text: t, xsplice: false };
    }
    return { major: p.major, minor: p.minor, patch: p.patch ?? 0, text: t, xsplice: false };
  } catch {
    return undefined;
  }
}

/**
 * Stable-branch snapshots ("X.Y.Z+N-gHASH", as distributions ship them) whose code is a later
 * release's: their loader behaves as that release, not as X.Y.Z. Each row: commit, release
 * (`git log RELEASE-X.Y.Z..RELEASE-…` in Xen's tree).
 */
const SNAPSHOTS: [string, string][] = [
  // Debian 12's 4.17.5+72-g01140da4e8-1 (the pinned target): RELEASE-4.17.6 is this commit plus
  // "update Xen version to 4.17.6" (8c80ec8363); it has ALT_FLAG_NOT and 21 feature words.
  ['01140da4e8', '4.17.6'],
];

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
  endbr: { since: '4.17', backports: ['4.14.5', '4.15.3', '4.16.1'], arch: ['x86_64'], cite: '§2.10(a)5b' },
  /** The ENDBR "poison" (66 0f 1f 01) counts as ENDBR too; the 4.14.5–4.16 backports test is_endbr64 only. */
  endbrPoison: { since: '4.17', arch: ['x86_64'], cite: 'Errata "ENDBR poison"; 6974c75180' },
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
  buildIdErrnoPassThrough: {
    since: '4.20',
    backports: ['4.18.4', '4.19.1'],
    cite: '§2.10(c); Errata: 86d09d16dd, 1f82dd5583 (4.18.4), 60ea799246 (4.19.1)',
  },
  /** x86 apply_alternatives failures returned (ENOSPC/ERANGE) instead of BUG_ON. */
  altErrorsReturned: {
    since: '4.20',
    backports: ['4.18.4', '4.19.1'],
    arch: ['x86_64'],
    cite: '§2.10(g); Errata: aa5a06d5d6, 08f539a7fb (4.18.4), bb62ed831c (4.19.1)',
  },
  /** x86 ALT_FLAG_NOT (bit 15 of cpuid) masked before the feature-range check. */
  altFlagNot: {
    since: '4.21',
    backports: ['4.17.6', '4.18.5', '4.19.3', '4.20.1'],
    arch: ['x86_64'],
    cite: 'Errata "ALT_FLAG_NOT"; 328ed39c59, 2aa9922c89, 232be2140a, 246ed397e3, cf81888012',
  },
  /** A non-SHF_ALLOC section keeps a pointer into the upload buffer (freed after upload) instead of NULL. */
  nonAllocBufferPointer: { since: '4.20', backports: ['4.18.4', '4.19.1'], cite: 'Errata "§2.16 #1"; aff7317d9f, 8fa1ee4053' },
  /** The payload's virtual region is registered at upload; trace symbol lookups cover all payloads. */
  regionAtUpload: {
    since: '4.19',
    backports: ['4.17.4', '4.18.1'],
    cite: 'Errata "§1.6 / §2.0"; a57b4074ab, d2daa40fb3; b11917de0c, c54cf903b0 (4.17.4); 5382a6a79c, 50a8f74df7 (4.18.1)',
  },
  /** xen_build_id() replaced by variables: a missing Xen build-id prints rc 0 (parse_buildid's) instead of -ENODATA. */
  xenBuildIdVariables: { since: '4.21', cite: '§1.6 4.21; a8dc4ec942' },
  /** x86 BUG instruction is UDB (0xd6), not ud2: .bug_frames entries must point at d6. */
  bugUdb: { since: '4.22', arch: ['x86_64'], cite: 'Errata "4.22.0: the x86 BUG instruction is UDB"; 1f3dd605ea' },
  /** ARM LIVEPATCH_VMAP_START moved from 0x00800000 to 0x00a00000 (4.8.2). */
  armVmapA00000: { since: '4.9', backports: ['4.8.2'], arch: ['arm32', 'arm64'], cite: 'Errata "ARM payload load area"; de22e0dd0d' },
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

/** The loader facts of release `ver` on `arch`: every FEATURES column and the per-release numbers. */
export function loaderFactsFor(ver: XenVersion, arch: Arch): LoaderFacts {
  const features = Object.fromEntries((Object.keys(FEATURES) as Feature[]).map((f) => [f, hasFeature(ver, f, arch)])) as Record<
    Feature,
    boolean
  >;
  return {
    release: ver.text,
    features,
    // x86: vm_init_type(VMAP_XEN, …) after the image; ARM: LIVEPATCH_VMAP_START [§2.6, Errata].
    payloadArea: arch === 'x86_64' ? { symbol: '__2M_rwdata_end' } : { base: armPayloadBase(ver, arch, features.armVmapA00000) },
    x86CapWords: arch === 'x86_64' ? x86CapWords(ver) : null,
    bugInstruction: arch !== 'x86_64' ? null : features.bugUdb ? 'udb' : 'ud2',
  };
}

/** A row's loader facts, completed from release `ver` where the row states none. */
export function completeLoader(abi: PayloadAbi, ver: XenVersion): LoaderFacts {
  const base = loaderFactsFor(ver, abi.arch);
  const o: LoaderOverrides = abi.loader ?? {};
  return {
    release: o.release ?? base.release,
    features: { ...base.features, ...(o.features ?? {}) },
    payloadArea: o.payloadArea ?? base.payloadArea,
    x86CapWords: o.x86CapWords !== undefined ? o.x86CapWords : base.x86CapWords,
    bugInstruction: o.bugInstruction !== undefined ? o.bugInstruction : base.bugInstruction,
  };
}

/** Everything verify needs to know about one target, read from its row once. */
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
  /** BUGFRAME_NR: .bug_frames.0 … .bug_frames.(n-1) (the row's special sections). */
  bugFrameCount: number;
  /** sizeof(struct bug_frame). */
  bugFrameSize: number;
  /** sizeof(struct alt_instr); 0 when the row has no .altinstructions (no CONFIG_HAS_ALTERNATIVE). */
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
  /** x86 NCAPINTS (feature words): alternatives need a feature below NCAPINTS * 32; null when unknown. */
  x86CapWords: number | null;
  /** x86 BUG instruction bug frames point at (null on ARM). */
  bugInstruction: 'ud2' | 'udb' | null;
}

/** The rules of the loader a row describes, for release `ver` (what the row does not state). */
export function rulesFor(abi: PayloadAbi, ver: XenVersion): LoaderRules {
  const facts = completeLoader(abi, ver);
  const features = facts.features as Record<Feature, boolean>;
  const special = (n: string): number | undefined => abi.special.find((s) => s.section === n)?.entrySize;
  const bugFrames = abi.special.filter((s) => /^\.bug_frames\.\d+$/.test(s.section));
  const arm = abi.arch !== 'x86_64';
  return {
    version: ver,
    arch: abi.arch,
    prefix: features.livepatchNames ? 'livepatch: ' : 'xsplice: ',
    printk: features.printkErrors,
    bang: !features.printkErrors,
    features,
    bugFrameCount: bugFrames.length,
    bugFrameSize: bugFrames[0]?.entrySize ?? (arm ? 16 : 8),
    altInstrSize: special('.altinstructions') ?? 0,
    hasAlternative: special('.altinstructions') !== undefined,
    hasExTable: special('.ex_table') !== undefined,
    branchReach: BigInt(abi.branchRange ?? (abi.pointerSize === 8 ? 2 ** 31 : 32 * 2 ** 20)),
    payloadAreaSymbol: 'symbol' in facts.payloadArea ? facts.payloadArea.symbol : null,
    payloadBase: 'base' in facts.payloadArea ? facts.payloadArea.base : null,
    x86CapWords: facts.x86CapWords,
    bugInstruction: facts.bugInstruction,
  };
}

/**
 * ARM LIVEPATCH_VMAP_START [Errata "ARM payload load area"]: 0x00800000 (4.8.0–4.8.1), 0x00a00000
 * (4.8.2–4.17), BOOT_FDT_VIRT_START + BOOT_FDT_VIRT_SIZE from 4.18 (xen/arch/arm/include/asm/mmu/layout.h:
 * XEN_VIRT_START + 8 MiB Xen + 2 MiB fixmap + 4 MiB FDT; arm64 XEN_VIRT_START is SLOT0(4) + 2 MiB in
 * 4.18, SLOT0(20) + 2 MiB from 4.19).
 */
function armPayloadBase(ver: XenVersion, arch: Arch, a00000: boolean): bigint {
  if (ver.major === 4 && ver.minor >= 18) {
    if (arch === 'arm32') return 0x01000000n;
    return ver.minor === 18 ? 0x0000020001000000n : 0x00000a0001000000n;
  }
  return a00000 ? 0x00a00000n : 0x00800000n;
}

/**
 * x86 NCAPINTS (FSCAPINTS + X86_NR_SYNTH + X86_NR_BUG) per release, read at every RELEASE tag
 * from 4.13.0 to 4.22.0 (xen/include/public/arch-x86/cpufeatureset.h, asm/cpufeatures.h): an
 * alternative's feature number must be below NCAPINTS * 32 (xen/arch/x86/alternative.c). Each row:
 * [first release, words]; a release uses the last row not after it within its x.y line.
 */
const X86_CAP_WORDS: [string, number][] = [
  ['4.13.0', 13],
  ['4.14.0', 13],
  ['4.14.5', 16],
  ['4.14.6', 19],
  ['4.15.0', 13],
  ['4.15.3', 16],
  ['4.15.5', 19],
  ['4.16.0', 14],
  ['4.16.1', 16],
  ['4.16.4', 18],
  ['4.16.5', 19],
  ['4.17.0', 16],
  ['4.17.1', 18],
  ['4.17.2', 19],
  ['4.17.6', 21],
  ['4.18.0', 19],
  ['4.18.6', 21],
  ['4.19.0', 19],
  ['4.19.3', 21],
  ['4.20.0', 19],
  ['4.20.1', 21],
  ['4.21.0', 21],
  ['4.21.1', 22],
  ['4.22.0', 22],
  ['4.23.0', 22],
];

/** NCAPINTS for `ver`, or null when the table does not know the release (before 4.13). */
export function x86CapWords(ver: XenVersion): number | null {
  let words: number | null = null;
  for (const [from, n] of X86_CAP_WORDS) {
    const f = v(from);
    if (f.major === ver.major && f.minor === ver.minor && ver.patch >= f.patch) words = n;
  }
  return words;
}
