/**
 * Target ABI tables: one row per distinct live-patch payload format and architecture, plus a
 * table mapping each Xen release (point releases included) to its row.
 *
 * Source for every value: payload-format.md §1 (format), §2.8 (relocations), §2.10/§2.15 (limits),
 * cross-checked against Xen's public/sysctl.h per tree (struct livepatch_func /
 * xsplice_patch_func). The rows are plain data in the same JSON shape a vendor supplies with
 * `--abi-file` (see loadAbiFile), so a downstream hypervisor with its own section names, entry
 * size or hook kinds needs no fork.
 *
 * Rows:
 *   xsplice  the xSplice tree before the rename (`.xsplice.*`, 64-byte entries, version 1); x86-64
 *   L1       Xen 4.7–4.13: 64/52-byte entries, version 1; load/unload hooks from 4.8
 *   L2a      4.14.0–4.14.4, 4.15.0–4.15.2, 4.16.0: 104/92 bytes, version 2, opaque+applied+expect
 *   L2b      4.14.5+, 4.15.3+, 4.16.1+, 4.17.0–4.17.2, 4.18.0: L2a + patch_offset
 *   L2c      4.17.3+, 4.18.1+, 4.19+: bytes 33–71 plain padding, funcs may be read-only
 *
 * The built-in rows and the release table are data in abi-rows.ts; this module is the API over them
 * and the validation of vendor rows (--abi-file), which is most of its ~430 lines: every field of a
 * row is checked with its JSON path, so a vendor's mistake is named, not crashed on.
 */
import { readInputText } from '../fsutil.js';
import { UsageError } from '../errors.js';
import {
  HOOK_KINDS,
  type Arch,
  type FieldLayout,
  type FuncEntryLayout,
  type HookKind,
  type HookSectionRule,
  type LoaderOverrides,
  type PayloadAbi,
} from './abi-types.js';
import { FEATURES, loaderFactsFor, parseVersionText, parseXenVersion as parseRelease, type ParsedXenVersion } from './releases.js';

import { ABS_PTR_RELOC, ARCHES, BUILTIN, END, RELEASES, type ReleaseRange, type V3 } from './abi-rows.js';

export type { Arch, PayloadAbi, HookKind } from './abi-types.js';
export { ABS_PTR_RELOC, ARCHES, RELOC_TYPES, archOfMachine, relocWidth } from './abi-rows.js';

/* Public API                                                                                  */

/** Every built-in row (a fresh copy each call: callers may not mutate the table). */
export function listAbis(): PayloadAbi[] {
  return BUILTIN.map(clone);
}

/** A row by id (`L2c-x86_64`), or undefined. */
export function abiById(id: string): PayloadAbi | undefined {
  const r = BUILTIN.find((a) => a.id === id);
  return r && clone(r);
}

/** A row by name and arch (`abiByName('L2b', 'arm64')`); throws UsageError when there is none. */
export function abiByName(name: string, arch: Arch, extra: PayloadAbi[] = []): PayloadAbi {
  const all = [...extra, ...BUILTIN];
  const n = name.toLowerCase();
  const r =
    all.find((a) => (a.name.toLowerCase() === n || a.id.toLowerCase() === n) && a.arch === arch) ??
    all.find((a) => a.id.toLowerCase() === n);
  if (!r) {
    const names = [...new Set(all.filter((a) => a.arch === arch).map((a) => a.name))];
    const other = all.find((a) => a.name.toLowerCase() === n);
    const why = other
      ? ` (exists only for ${all
          .filter((a) => a.name.toLowerCase() === n)
          .map((a) => a.arch)
          .join(', ')})`
      : '';
    throw new UsageError('ABI_UNKNOWN', `unknown payload ABI "${name}" for ${arch}${why}; known: ${names.join(', ')} (try --abi help)`);
  }
  return clone(r);
}

export type { ParsedXenVersion };
/** Parses "4.17.7+13-g2445b30a44-0+deb12u1", "4.17.3", "4.17", "4.23-dev", "4.19.0-rc2", "4.7-unstable" (releases.ts). */
export const parseXenVersion = parseVersionText;

function cmp(a: V3, b: V3): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

function rangesFor(major: number, minor: number): ReleaseRange[] {
  return RELEASES.filter((r) => cmp([major, minor, END], r.from) >= 0 && cmp([major, minor, 0], r.to) <= 0);
}

function applyRange(range: ReleaseRange, arch: Arch, version: string): PayloadAbi {
  let out = clone(BUILTIN.find((a) => a.name === range.abi && a.arch === arch)!);
  for (const o of range.overrides ?? []) out = { ...out, ...o(out) };
  out.releases = `${fmtRange(range)} (selected for Xen ${version.trim()})`;
  // The loader columns of the table, resolved for this release [releases.ts].
  const ver = parseRelease(version);
  if (ver) out.loader = loaderFactsFor(ver, arch);
  return out;
}

function fmtRange(r: ReleaseRange): string {
  const fmt = (v: V3): string => (v[2] === END ? `${v[0]}.${v[1]}.x` : v.join('.'));
  return cmp(r.from, r.to) === 0 ? fmt(r.from) : `${fmt(r.from)}–${fmt(r.to)}`;
}

/**
 * The row (with the exact point-release facts applied) for a Xen version string. Unknown, too old
 * or too new versions, a point release needed but not given, or an arch the release does not
 * support: UsageError.
 */
export function abiForVersion(version: string, arch: Arch): PayloadAbi {
  const v = parseXenVersion(version);
  const candidates = rangesFor(v.major, v.minor);
  if (candidates.length === 0) {
    const known = `${RELEASES[0]!.from[0]}.${RELEASES[0]!.from[1]}–${RELEASES[RELEASES.length - 1]!.to[0]}.${RELEASES[RELEASES.length - 1]!.to[1]}`;
    const tooOld = cmp([v.major, v.minor, 0], RELEASES[0]!.from) < 0;
    throw new UsageError(
      'XEN_VERSION_UNKNOWN',
      tooOld
        ? `Xen ${version} predates live patching (known releases: ${known}; the xSplice tree is --abi xsplice)`
        : `Xen ${version} is newer than this tool's release table (${known}); pass --abi NAME (e.g. --abi L2c) or --abi-file to state its format`,
    );
  }
  let patch = v.patch;
  if (patch === null) {
    if (v.prerelease) patch = 0;
    else {
      const rows = new Set(
        candidates
          .filter((c) => c.arches.includes(arch))
          .map((c) => JSON.stringify({ ...applyRange(c, arch, version), releases: '', loader: undefined })),
      );
      if (rows.size > 1) {
        throw new UsageError(
          'XEN_VERSION_AMBIGUOUS',
          `Xen ${version} names no point release, and the payload format changed within ${v.major}.${v.minor}: ${candidates.map((c) => `${fmtRange(c)} → ${c.abi}`).join(', ')}; give the full version (e.g. ${v.major}.${v.minor}.${candidates[candidates.length - 1]!.from[2]})`,
        );
      }
      patch = candidates[0]!.from[2];
    }
  }
  const range = candidates.find((r) => cmp([v.major, v.minor, patch!], r.from) >= 0 && cmp([v.major, v.minor, patch!], r.to) <= 0);
  if (!range) throw new UsageError('XEN_VERSION_UNKNOWN', `Xen ${version}: no such release in the table`);
  if (!range.arches.includes(arch)) {
    throw new UsageError('ARCH_UNSUPPORTED', `Xen ${version} has no live patching on ${arch} (only ${range.arches.join(', ')})`);
  }
  return applyRange(range, arch, version);
}

/** Human-readable table for `--abi help`. */
export function describeAbis(extra: PayloadAbi[] = []): string {
  const lines = ['NAME      ARCH     ENTRY  VER  FUNCS SECTION      RELEASES'];
  for (const a of [...BUILTIN, ...extra]) {
    lines.push(
      `${a.name.padEnd(9)} ${a.arch.padEnd(8)} ${String(a.funcEntry.size).padStart(5)}  ${String(a.funcEntry.version).padStart(3)}  ${a.sections.funcs.padEnd(18)} ${a.releases}`,
    );
  }
  lines.push('', '--xen-version X.Y.Z picks the row per release (point-release backports included).');
  return lines.join('\n');
}

/* ------------------------------------------------------------------------------------------ */
/* User-supplied rows (--abi-file)                                                             */

type Path = string;

function fail(file: string, path: Path, what: string): never {
  throw new UsageError('ABI_FILE_INVALID', `${path || 'row'}: ${what}`, { file });
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(
  file: string,
  o: Record<string, unknown>,
  k: string,
  path: Path,
  opts: { min?: number; max?: number; optional?: boolean } = {},
): number | undefined {
  const v = o[k];
  if (v === undefined && opts.optional) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(file, `${path}.${k}`, `must be an integer, found ${JSON.stringify(v)}`);
  if (opts.min !== undefined && v < opts.min) fail(file, `${path}.${k}`, `must be ≥ ${opts.min}, found ${v}`);
  if (opts.max !== undefined && v > opts.max) fail(file, `${path}.${k}`, `must be ≤ ${opts.max}, found ${v}`);
  return v;
}

function str(file: string, o: Record<string, unknown>, k: string, path: Path, optional = false): string | undefined {
  const v = o[k];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v === '') fail(file, `${path}.${k}`, `must be a non-empty string, found ${JSON.stringify(v)}`);
  if (v.includes('\0')) fail(file, `${path}.${k}`, 'must not contain NUL');
  return v;
}

function bool(file: string, o: Record<string, unknown>, k: string, path: Path): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') fail(file, `${path}.${k}`, `must be true or false, found ${JSON.stringify(v)}`);
  return v;
}

function field(file: string, v: unknown, path: Path): FieldLayout {
  if (!isObj(v)) fail(file, path, 'must be an object { offset, size }');
  return { offset: num(file, v, 'offset', path, { min: 0, max: 65535 })!, size: num(file, v, 'size', path, { min: 1, max: 65535 })! };
}

/**
 * Validates one row in the PayloadAbi JSON shape (what listAbis() returns, e.g. from
 * `xsplice build --abi help --json`). Fields not given default from `base` (a built-in row named by
 * "base": "L2c-x86_64"), so a vendor states only what differs. Errors name the JSON path.
 */
export function validateAbi(raw: unknown, file = '<abi>', base?: PayloadAbi): PayloadAbi {
  if (!isObj(raw)) fail(file, '', 'must be a JSON object');
  let b = base;
  if (typeof raw.base === 'string') {
    b = abiById(raw.base);
    if (!b) fail(file, '.base', `unknown built-in row "${raw.base}" (known: ${BUILTIN.map((a) => a.id).join(', ')})`);
  }
  const merged: Record<string, unknown> = b ? { ...clone(b), ...raw } : { ...raw };
  if (b && isObj(raw.sections)) merged.sections = { ...b.sections, ...raw.sections };
  if (b && isObj(raw.limits)) merged.limits = { ...b.limits, ...raw.limits };
  delete merged.base;
  if (b) {
    // What identifies the base row is not inherited.
    if (raw.id === undefined) delete merged.id;
    if (raw.description === undefined)
      merged.description = `user-supplied row ${typeof raw.name === 'string' ? raw.name : b.name} (based on ${b.id})`;
    if (raw.releases === undefined) delete merged.releases;
  }
  const o = merged;
  const name = str(file, o, 'name', '')!;
  const arch = o.arch;
  if (typeof arch !== 'string' || !(ARCHES as readonly string[]).includes(arch))
    fail(file, '.arch', `must be one of ${ARCHES.join(', ')}, found ${JSON.stringify(arch)}`);
  const a = arch as Arch;
  const id = str(file, o, 'id', '', true) ?? `${name}-${a}`;
  const elfClass = num(file, o, 'elfClass', '')!;
  if (elfClass !== 32 && elfClass !== 64) fail(file, '.elfClass', `must be 32 or 64, found ${elfClass}`);
  const pointerSize = num(file, o, 'pointerSize', '')!;
  if (pointerSize !== elfClass / 8) fail(file, '.pointerSize', `must be ${elfClass / 8} for ELFCLASS${elfClass}, found ${pointerSize}`);
  if (!isObj(o.sections)) fail(file, '.sections', 'must be an object');
  const s = o.sections;
  const sections = {
    funcs: str(file, s, 'funcs', '.sections')!,
    depends: str(file, s, 'depends', '.sections')!,
    xenDepends: s.xenDepends === null ? null : str(file, s, 'xenDepends', '.sections')!,
    buildId: str(file, s, 'buildId', '.sections')!,
    modinfo: s.modinfo === null || s.modinfo === undefined ? null : str(file, s, 'modinfo', '.sections')!,
  };
  const strList = (k: string): string[] => {
    const v = o[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) fail(file, `.${k}`, 'must be an array of section names');
    return v as string[];
  };
  const mandatory = strList('mandatory');
  const atLeastOneOf = strList('atLeastOneOf');
  // funcEntry
  if (!isObj(o.funcEntry)) fail(file, '.funcEntry', 'must be an object');
  const fe = o.funcEntry;
  const size = num(file, fe, 'size', '.funcEntry', { min: 1, max: 4096 })!;
  const align = num(file, fe, 'align', '.funcEntry', { min: 1, max: 64 })!;
  if (align & (align - 1)) fail(file, '.funcEntry.align', `must be a power of two, found ${align}`);
  const version = num(file, fe, 'version', '.funcEntry', { min: 0, max: 255 })!;
  if (!isObj(fe.fields)) fail(file, '.funcEntry.fields', 'must be an object');
  const ff = fe.fields;
  const fields: FuncEntryLayout['fields'] = {
    name: field(file, ff.name, '.funcEntry.fields.name'),
    newAddr: field(file, ff.newAddr, '.funcEntry.fields.newAddr'),
    oldAddr: field(file, ff.oldAddr, '.funcEntry.fields.oldAddr'),
    newSize: field(file, ff.newSize, '.funcEntry.fields.newSize'),
    oldSize: field(file, ff.oldSize, '.funcEntry.fields.oldSize'),
    version: field(file, ff.version, '.funcEntry.fields.version'),
    zeroed: Array.isArray(ff.zeroed)
      ? ff.zeroed.map((z, i) => field(file, z, `.funcEntry.fields.zeroed[${i}]`))
      : fail(file, '.funcEntry.fields.zeroed', 'must be an array'),
    ...(ff.expect !== undefined && ff.expect !== null ? { expect: field(file, ff.expect, '.funcEntry.fields.expect') } : {}),
  };
  for (const k of ['name', 'newAddr', 'oldAddr'] as const) {
    if (fields[k].size !== pointerSize)
      fail(file, `.funcEntry.fields.${k}.size`, `must be the pointer size ${pointerSize}, found ${fields[k].size}`);
  }
  for (const k of ['newSize', 'oldSize'] as const) {
    if (fields[k].size !== 4) fail(file, `.funcEntry.fields.${k}.size`, `must be 4 (uint32_t), found ${fields[k].size}`);
  }
  if (fields.version.size !== 1) fail(file, '.funcEntry.fields.version.size', `must be 1 (uint8_t), found ${fields.version.size}`);
  if (fields.expect && fields.expect.size !== 32)
    fail(file, '.funcEntry.fields.expect.size', `must be 32 (livepatch_expectation_t), found ${fields.expect.size}`);
  // Every field inside the entry, none overlapping.
  const all: [string, FieldLayout][] = [
    ...(['name', 'newAddr', 'oldAddr', 'newSize', 'oldSize', 'version'] as const).map((k) => [k, fields[k]] as [string, FieldLayout]),
    ...fields.zeroed.map((z, i) => [`zeroed[${i}]`, z] as [string, FieldLayout]),
    ...(fields.expect ? [['expect', fields.expect] as [string, FieldLayout]] : []),
  ];
  for (const [k, fl] of all) {
    if (fl.offset + fl.size > size)
      fail(file, `.funcEntry.fields.${k}`, `lies past the end of the ${size}-byte entry (offset ${fl.offset}, size ${fl.size})`);
  }
  const sorted = [...all].sort((x, y) => x[1].offset - y[1].offset);
  for (let i = 1; i < sorted.length; i++) {
    const [pk, p] = sorted[i - 1]!;
    const [ck, c] = sorted[i]!;
    if (p.offset + p.size > c.offset)
      fail(file, `.funcEntry.fields.${ck}`, `overlaps ${pk} (offsets ${p.offset}+${p.size} and ${c.offset})`);
  }
  if (size % align) fail(file, '.funcEntry.size', `must be a multiple of align ${align}, found ${size}`);
  let hypervisorState: number[] | undefined;
  if (fe.hypervisorState !== undefined) {
    const hs = fe.hypervisorState;
    if (!Array.isArray(hs) || hs.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= size)) {
      fail(file, '.funcEntry.hypervisorState', `must be an array of byte offsets below the entry size ${size}`);
    }
    hypervisorState = hs as number[];
  }
  // hooks
  if (!Array.isArray(o.hooks)) fail(file, '.hooks', 'must be an array');
  const hookRules: HookSectionRule[] = o.hooks.map((h, i) => {
    const p = `.hooks[${i}]`;
    if (!isObj(h)) fail(file, p, 'must be an object { kind, section, array }');
    const kind = str(file, h, 'kind', p)!;
    const note = str(file, h, 'note', p, true);
    return { kind: kind as HookKind, section: str(file, h, 'section', p)!, array: bool(file, h, 'array', p), ...(note ? { note } : {}) };
  });
  const kinds = new Set<string>();
  for (const [i, h] of hookRules.entries()) {
    if (kinds.has(h.kind)) fail(file, `.hooks[${i}].kind`, `duplicate hook kind "${h.kind}"`);
    kinds.add(h.kind);
    if (!/^[a-z][a-z0-9-]*$/.test(h.kind)) fail(file, `.hooks[${i}].kind`, `must be lower-case letters, digits and '-', found "${h.kind}"`);
  }
  const relocTypes = o.relocTypes;
  if (!Array.isArray(relocTypes) || relocTypes.some((t) => typeof t !== 'number' || !Number.isInteger(t) || t < 0))
    fail(file, '.relocTypes', 'must be an array of relocation type numbers');
  if (!Array.isArray(o.special)) fail(file, '.special', 'must be an array');
  const spec = o.special.map((x, i) => {
    if (!isObj(x)) fail(file, `.special[${i}]`, 'must be an object { section, entrySize }');
    return { section: str(file, x, 'section', `.special[${i}]`)!, entrySize: num(file, x, 'entrySize', `.special[${i}]`, { min: 1 })! };
  });
  if (!isObj(o.limits)) fail(file, '.limits', 'must be an object');
  const l = o.limits;
  const limits = {
    maxPayloadSize: num(file, l, 'maxPayloadSize', '.limits', { min: 1 })!,
    maxNameLen: num(file, l, 'maxNameLen', '.limits', { min: 1 })!,
    maxSections: num(file, l, 'maxSections', '.limits', { min: 2 })!,
    maxSymbolLen: num(file, l, 'maxSymbolLen', '.limits', { min: 1 })!,
    maxNobits: l.maxNobits === null ? null : num(file, l, 'maxNobits', '.limits', { min: 0 })!,
  };
  const eFlags = num(file, o, 'eFlags', '', { optional: true, min: 0, max: 0xffffffff });
  const nopGranule = num(file, o, 'nopGranule', '', { optional: true, min: 1 });
  const branchRange = num(file, o, 'branchRange', '', { optional: true, min: 1 });
  const absPointerReloc = num(file, o, 'absPointerReloc', '', { optional: true, min: 0 });
  const funcsMustBeWritable = bool(file, o, 'funcsMustBeWritable', '');
  const funcsWritable = o.funcsWritable === undefined ? funcsMustBeWritable : bool(file, o, 'funcsWritable', '');
  if (funcsMustBeWritable && !funcsWritable) fail(file, '.funcsWritable', 'cannot be false when funcsMustBeWritable is true');
  const row: PayloadAbi = {
    name,
    id,
    arch: a,
    description: str(file, o, 'description', '', true) ?? `user-supplied row ${name}`,
    releases: str(file, o, 'releases', '', true) ?? `from ${file}`,
    elfClass: elfClass as 32 | 64,
    machine: num(file, o, 'machine', '', { min: 0, max: 0xffff })!,
    ...(eFlags !== undefined ? { eFlags } : {}),
    pointerSize: pointerSize as 4 | 8,
    sections,
    mandatory,
    atLeastOneOf,
    funcEntry: { size, align, version, ...(hypervisorState ? { hypervisorState } : {}), fields },
    ...(o.loader !== undefined ? { loader: loaderOverrides(file, o.loader, a) } : {}),
    hooks: hookRules,
    funcsMustBeWritable,
    funcsWritable,
    nopAllowed: bool(file, o, 'nopAllowed', ''),
    nopMaxLen: num(file, o, 'nopMaxLen', '', { min: 0 })!,
    patchSize: num(file, o, 'patchSize', '', { min: 1 })!,
    endbrOffset: num(file, o, 'endbrOffset', '', { min: 0 })!,
    relocTypes: relocTypes as number[],
    relAllowed: bool(file, o, 'relAllowed', ''),
    special: spec,
    limits,
    nopGranule: nopGranule ?? 1,
    branchRange: branchRange ?? (pointerSize === 8 ? 2 ** 31 : 32 * 2 ** 20),
    absPointerReloc: absPointerReloc ?? ABS_PTR_RELOC[a],
  };
  return row;
}

/** A row's "loader" object: any of features (by FEATURES name), payloadArea, x86CapWords, bugInstruction, release. */
function loaderOverrides(file: string, raw: unknown, arch: Arch): LoaderOverrides {
  if (!isObj(raw)) fail(file, '.loader', 'must be an object');
  const out: LoaderOverrides = {};
  for (const k of Object.keys(raw)) {
    if (!['release', 'features', 'payloadArea', 'x86CapWords', 'bugInstruction'].includes(k))
      fail(file, `.loader.${k}`, 'unknown key (known: release, features, payloadArea, x86CapWords, bugInstruction)');
  }
  if (raw.release !== undefined) out.release = str(file, raw, 'release', '.loader')!;
  if (raw.features !== undefined) {
    const f = raw.features;
    if (!isObj(f)) fail(file, '.loader.features', 'must be an object of feature name → true/false');
    const known = Object.keys(FEATURES);
    out.features = {};
    for (const [k, v] of Object.entries(f)) {
      if (!known.includes(k)) fail(file, `.loader.features.${k}`, `unknown feature (known: ${known.join(', ')})`);
      if (typeof v !== 'boolean') fail(file, `.loader.features.${k}`, `must be true or false, found ${JSON.stringify(v)}`);
      out.features[k] = v;
    }
  }
  if (raw.payloadArea !== undefined) {
    const pa = raw.payloadArea;
    if (isObj(pa) && typeof pa.symbol === 'string' && pa.symbol !== '' && pa.base === undefined) out.payloadArea = { symbol: pa.symbol };
    else if (isObj(pa) && pa.symbol === undefined && (typeof pa.base === 'string' || typeof pa.base === 'number')) {
      let base: bigint;
      try {
        base = BigInt(pa.base);
      } catch {
        fail(file, '.loader.payloadArea.base', `must be an address ("0x…" or an integer), found ${JSON.stringify(pa.base)}`);
      }
      if (base < 0n || base >= 1n << BigInt(arch === 'arm32' ? 32 : 64))
        fail(file, '.loader.payloadArea.base', `is not a ${arch} address: ${JSON.stringify(pa.base)}`);
      out.payloadArea = { base };
    } else fail(file, '.loader.payloadArea', 'must be { "symbol": NAME } or { "base": "0x…" }');
  }
  if (raw.x86CapWords !== undefined)
    out.x86CapWords = raw.x86CapWords === null ? null : num(file, raw, 'x86CapWords', '.loader', { min: 1, max: 2047 })!;
  if (raw.bugInstruction !== undefined) {
    const b = raw.bugInstruction;
    if (b !== null && b !== 'ud2' && b !== 'udb')
      fail(file, '.loader.bugInstruction', `must be "ud2", "udb" or null, found ${JSON.stringify(b)}`);
    out.bugInstruction = b;
  }
  return out;
}

/**
 * Reads a vendor row file: one row object, or an array of rows, or `{ "rows": [...] }`.
 * Malformed JSON or an invalid row: UsageError (exit 2) naming the file and the JSON path.
 */
export async function loadAbiFile(path: string): Promise<PayloadAbi[]> {
  const text = await readInputText(path, { max: 16 << 20, what: 'ABI file' });
  return parseAbiJson(text, path);
}

export function parseAbiJson(text: string, file = '<abi>'): PayloadAbi[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError('ABI_FILE_INVALID', `not valid JSON: ${(e as Error).message}`, { file });
  }
  const list = Array.isArray(raw) ? raw : isObj(raw) && Array.isArray(raw.rows) ? raw.rows : [raw];
  if (list.length === 0) throw new UsageError('ABI_FILE_INVALID', 'holds no rows', { file });
  const rows = list.map((r, i) => {
    try {
      return validateAbi(r, file);
    } catch (e) {
      if (e instanceof UsageError && list.length > 1) {
        throw new UsageError('ABI_FILE_INVALID', `row ${i}: ${e.detail}`, { file });
      }
      throw e;
    }
  });
  const ids = new Set<string>();
  for (const r of rows) {
    if (ids.has(r.id)) throw new UsageError('ABI_FILE_INVALID', `duplicate row id "${r.id}"`, { file });
    ids.add(r.id);
  }
  return rows;
}

/** The hook rule of a kind in a row, or a UsageError listing the kinds the row has. */
export function hookRule(abi: PayloadAbi, kind: string): HookSectionRule {
  const h = abi.hooks.find((x) => x.kind === kind);
  if (!h) {
    const known = abi.hooks.map((x) => x.kind);
    const std = (HOOK_KINDS as readonly string[]).includes(kind);
    throw new UsageError(
      'HOOK_UNSUPPORTED',
      std
        ? `hook kind "${kind}" does not exist in payload ABI ${abi.id}${known.length ? ` (it has: ${known.join(', ')})` : ' (it has no hooks)'}`
        : `unknown hook kind "${kind}" (${abi.id} has: ${known.join(', ') || 'none'})`,
    );
  }
  return h;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}
