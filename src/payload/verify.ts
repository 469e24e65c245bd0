/**
 * `xsplice verify`: every check the target hypervisor's loader makes at upload and apply, offline,
 * for a list of payloads in load order (what `xen-livepatch load` does for each: upload, then
 * apply), plus the requirements the loader never checks but crashes or corrupts on (§2.16).
 *
 * The checks follow Xen's processing order (payload-format.md §2.0) so that the first error is the
 * one the hypervisor would return; where it is safe, checking goes on and further diagnostics are
 * collected (the first is marked `first: true`, and the payload's `errno` is its errno).
 *
 * Format facts come from the ABI row (abi.ts), loader behaviour per release from releases.ts, and
 * the diagnostic texts from diagnostics.ts.
 */
import { basename } from 'node:path';
import { SHF, SHT } from '../elf/constants.js';
import { parseBuildIdNote, toHex } from '../buildid/note.js';
import type { Arch, PayloadAbi } from './abi-types.js';
import { abiForVersion } from './abi.js';
import { decodeFuncEntries } from './funcs.js';
import { parseXenVersion, rulesFor, type LoaderRules } from './releases.js';
import { makeDiagnostic, type DiagArgs, type DiagCode, type DiagContext, type Diagnostic } from './diagnostics.js';
import {
  loadElf, performRelocs, placeSections, readPtr, resolveSymbols, sectionAt, stringAt,
  type LoadedElf, type SymbolSpace, type XSection,
} from './verify-load.js';
import { applyChecks, type AppliedPayload } from './stack.js';
import { UsageError } from '../errors.js';

export interface VerifyInput {
  file: string;
  bytes: Uint8Array;
  /** Upload name; default: the file's basename without its last extension (as `xen-livepatch load`). */
  name?: string;
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
/** Fallback start of the x86 payload area when the target has no symbols (4.17 Debian: __2M_rwdata_end). */
const DEFAULT_BASE = 0xffff82d040800000n;

export function uploadName(file: string): string {
  const b = basename(file);
  const dot = b.lastIndexOf('.');
  return dot > 0 ? b.slice(0, dot) : b;
}

const eq = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/** Resolves target version, arch, ABI row and loader rules; UsageError when the release is unknown. */
export function resolveTargetRules(target: VerifyTarget, opts: VerifyOptions = {}): { rules: LoaderRules; abi: PayloadAbi; version: string; arch: Arch } {
  const arch: Arch = opts.arch ?? opts.abi?.arch ?? target.arch ?? 'x86_64';
  const version = opts.xenVersion ?? target.version ?? (opts.abi?.name === 'xsplice' ? 'xsplice' : undefined);
  if (!version) {
    throw new UsageError('XEN_VERSION_UNKNOWN', 'the target does not reveal its Xen version (a build-id alone); give --xen-version X.Y.Z');
  }
  const ver = parseXenVersion(version);
  if (!ver) throw new UsageError('XEN_VERSION_BAD', `cannot parse Xen version "${version}" (expected X.Y.Z, e.g. 4.17.7)`);
  const abi = opts.abi ?? (ver.xsplice ? (() => { throw new UsageError('ABI_NEEDED', 'the xSplice tree needs --abi xsplice'); })() : abiForVersion(version, arch));
  return { rules: rulesFor(ver, arch), abi, version, arch };
}

/** Verifies payloads in load order against one target. */
export function verifyPayloads(inputs: VerifyInput[], target: VerifyTarget, opts: VerifyOptions = {}): VerifyResult {
  const { rules, abi, version, arch } = resolveTargetRules(target, opts);
  const loaded: LoadedPayload[] = [];
  const applied: AppliedPayload[] = [];
  let base = rules.payloadBase ?? DEFAULT_BASE;
  const area = rules.payloadAreaSymbol && target.symbols?.find(rules.payloadAreaSymbol)[0];
  if (area) base = (area.value + 0xfffn) & ~0xfffn;
  const payloads: PayloadVerdict[] = [];
  for (const input of inputs) {
    const v = verifyOne(input, { target, rules, abi, loaded, applied, base, replace: !!opts.replace });
    if (v.loaded) base = v.loaded.elf.end;
    payloads.push(v.verdict);
  }
  return {
    ok: payloads.every((p) => p.ok),
    target: { buildId: target.buildId ? toHex(target.buildId) : null, version, arch, abi: abi.id },
    payloads,
  };
}

interface Ctx {
  target: VerifyTarget;
  rules: LoaderRules;
  abi: PayloadAbi;
  loaded: LoadedPayload[];
  applied: AppliedPayload[];
  base: bigint;
  replace: boolean;
}

/** Collects diagnostics for one payload and remembers which one the hypervisor meets first. */
export class Collector {
  readonly list: Diagnostic[] = [];
  constructor(readonly rules: LoaderRules, readonly name: string) {}
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

function verifyOne(input: VerifyInput, c: Ctx): { verdict: PayloadVerdict; loaded?: LoadedPayload } {
  const name = input.name ?? uploadName(input.file);
  const col = new Collector(c.rules, name);
  const r = c.rules;
  const abi = c.abi;
  const report = col.add;
  const finish = (lp?: LoadedPayload, buildId?: Uint8Array, depends?: Uint8Array): { verdict: PayloadVerdict; loaded?: LoadedPayload } => {
    const up = col.errorsAt('upload');
    const ap = col.errorsAt('apply');
    const first = up[0] ?? ap[0];
    if (first) first.first = true;
    const verdict: PayloadVerdict = {
      file: input.file, name,
      buildId: buildId ? toHex(buildId) : null,
      depends: depends ? toHex(depends) : null,
      ok: !col.list.some((d) => d.severity === 'error'),
      errno: first ? first.errno : null,
      refusedAt: up.length ? 'upload' : ap.length ? 'apply' : null,
      diagnostics: col.list,
    };
    return lp ? { verdict, loaded: lp } : { verdict };
  };

  // §2.1 hypercall arguments.
  const nameLen = Buffer.byteLength(name, 'latin1');
  if (nameLen === 0 || nameLen > abi.limits.maxNameLen) {
    report('UPLOAD_NAME', { name });
    return finish();
  }
  if (input.bytes.length === 0 || input.bytes.length > abi.limits.maxPayloadSize) {
    report('UPLOAD_SIZE', { size: input.bytes.length });
    return finish();
  }
  // A hypervisor built without CONFIG_LIVEPATCH answers the sysctl itself with ENOSYS. Told by a
  // full symbol table (a linked xen-syms has thousands of symbols) that lacks livepatch_op.
  const syms = c.target.symbols as { find(n: string): unknown[]; size?: number } | undefined;
  if (syms && (syms.size ?? 0) > 1000 && syms.find('livepatch_op').length === 0) {
    report('NO_LIVEPATCH');
    return finish();
  }
  const dup = c.loaded.find((p) => p.name === name);
  if (dup) {
    report('DUPLICATE_NAME', { name, other: dup.file });
    return finish();
  }

  // (a) livepatch_elf_load.
  const raw = loadElf(input.bytes, abi, r, report);
  if (!raw) return finish();
  const byName = (n: string | null): XSection | undefined => (n === null ? undefined : raw.sections.find((s) => s.index > 0 && s.name === n));
  const secOf = (n: string | null): XSection | undefined => byName(n);

  // Notes on duplicate section names (never rejected, §2.9).
  const seen = new Map<string, number>();
  for (const s of raw.sections) {
    if (s.index === 0 || !s.name) continue;
    const prev = seen.get(s.name);
    if (prev !== undefined && isSpecial(abi, s.name)) report('NOTE_DUPLICATE_SECTION', { section: s.name, index: prev }, { section: s.name });
    else if (prev === undefined) seen.set(s.name, s.index);
  }

  // §2.16 requirements checked up front (the loader would crash on them later).
  uncheckedSections(raw.sections, abi, r, report);

  // (b) 4.20+ (and 4.18.4+, 4.19.1+): .livepatch.xen_depends before anything is loaded.
  const xenDepSec = secOf(abi.sections.xenDepends);
  if (abi.sections.xenDepends && r.features.xenDependsFirst) {
    if (!xenDepSec) {
      report('XEN_DEPENDS_MISSING', {}, { section: abi.sections.xenDepends });
      return finish();
    }
    const p = xenDepSec.type === SHT.NOBITS ? { ok: false as const, errno: 'EINVAL' as const, reason: 'SHT_NOBITS' } : parseBuildIdNote(xenDepSec.data, true);
    if (!p.ok) {
      report('XEN_DEPENDS_PARSE', { rc: -(p.errno === 'ENODATA' ? 61 : 22) }, { section: xenDepSec.name });
      return finish();
    }
    if (!c.target.buildId) {
      report('XEN_NO_BUILD_ID');
      return finish();
    }
    if (!eq(p.id, c.target.buildId)) {
      report('XEN_DEPENDS_MISMATCH', { found: toHex(p.id), expected: toHex(c.target.buildId) }, { section: xenDepSec.name });
      return finish();
    }
  }

  // (c) move_payload.
  const elf = placeSections(raw, c.base, r, report);
  if (!elf) return finish();

  // (d) symbols, (e) relocations: collect every failure; Xen stops at the first.
  const space: SymbolSpace = {
    xen: (n) => {
      if (!c.target.symbols) return null;
      // The table is Xen's own (SymbolTable.fromElf leaves out what xen/tools/symbols drops).
      const hit = c.target.symbols.find(n)[0];
      return hit && hit.value !== 0n ? hit.value : undefined;
    },
    payloads: (n) => {
      for (const p of c.loaded) {
        const v = p.exports.get(n);
        if (v !== undefined && v !== 0n) return { value: v, payload: p.name };
      }
      return undefined;
    },
  };
  const before = col.count();
  resolveSymbols(elf, space, r, report);
  performRelocs(elf, abi, r, report);
  const linkOk = col.count() === before;
  if (!c.target.symbols) {
    const und = elf.symbols.filter((x) => x.from === 'unchecked').length;
    if (und) report('NOTE_UNCHECKED_TARGET', { what: `${und} undefined symbol(s) and relocation overflow against them` });
  }

  // (f) check_special_sections (+ check_patching_sections, 4.14+).
  const mandatory = abi.mandatory.filter((n) => !(r.features.xenDependsFirst && n === abi.sections.xenDepends));
  for (const n of mandatory) {
    const s = secOf(n);
    if (!s) report('SEC_MISSING', { section: n }, { section: n });
    else if (s.rawSize === 0n) report('SEC_EMPTY', { section: n }, { section: n });
  }
  if (abi.atLeastOneOf.length) {
    let found = 0;
    for (const n of abi.atLeastOneOf) {
      const s = secOf(n);
      if (!s) continue;
      if (s.rawSize === 0n) report('SEC_EMPTY', { section: n }, { section: n });
      else found++;
    }
    if (!found && !abi.atLeastOneOf.some((n) => secOf(n))) report('NOTHING_TO_PATCH');
  }

  // (g) prepare_payload.
  const funcs = prepareFuncs(elf, secOf(abi.sections.funcs), c, col, space, linkOk);
  prepareHooks(elf, abi, r, col, secOf);
  const ownId = noteOf(secOf(abi.sections.buildId), abi.sections.buildId, r, col);
  if (ownId) {
    const other = c.loaded.find((p) => eq(p.buildId, ownId));
    if (other) report('DUPLICATE_BUILD_ID', { other: other.name }, { section: abi.sections.buildId });
  }
  const depends = noteOf(secOf(abi.sections.depends), abi.sections.depends, r, col);
  let xenDep: Uint8Array | undefined;
  if (abi.sections.xenDepends && !r.features.xenDependsFirst) xenDep = noteOf(xenDepSec, abi.sections.xenDepends, r, col);
  prepareSpecial(elf, abi, r, col, secOf, c);

  // (h) 4.14–4.19: xen_build_id_dep after prepare_payload.
  if (xenDep && !r.features.xenDependsFirst) {
    if (!c.target.buildId) report('XEN_NO_BUILD_ID');
    else if (!eq(xenDep, c.target.buildId)) report('XEN_DEPENDS_MISMATCH', { found: toHex(xenDep), expected: toHex(c.target.buildId) }, { section: abi.sections.xenDepends! });
  }

  // (i) build_symbol_table.
  const exports = buildSymbolTable(elf, funcs, space, r, col);

  if (col.errorsAt('upload').length) return finish(undefined, ownId, depends);

  // Uploaded: now the simulated hypervisor holds it.
  const lp: LoadedPayload = {
    name, file: input.file, buildId: ownId!, depends: depends!, exports,
    funcs: funcs.map((f) => ({ name: f.name ?? '', oldAddr: f.oldAddr, newAddr: f.newAddr })),
    vetoingHooks: abi.hooks.some((h) => !h.array && h.kind !== 'apply' && h.kind !== 'revert' && hookEnabled(elf, secOf(h.section))),
    elf,
  };
  c.loaded.push(lp);

  // Apply (§2.13): stacking, expectations, REPLACE, safe_to_reapply.
  applyChecks(lp, funcs, { ...c, col, xenBuildId: c.target.buildId });
  return finish(lp, ownId, depends);
}

function isSpecial(abi: PayloadAbi, name: string): boolean {
  return Object.values(abi.sections).includes(name) || abi.special.some((s) => s.section === name) || name === '.altinstr_replacement';
}

function hookEnabled(elf: LoadedElf, s: XSection | undefined): boolean {
  if (!s || !s.mem || s.size < (elf.is64 ? 8 : 4)) return false;
  return readPtr(elf, s, 0) !== 0n;
}

/** §2.16 #1, #3: special sections that are not SHF_ALLOC, loaded sections with sh_addralign 0. */
function uncheckedSections(sections: XSection[], abi: PayloadAbi, r: LoaderRules, report: Collector['add']): void {
  const special = new Set<string>([abi.sections.funcs, abi.sections.depends, abi.sections.buildId,
    ...(abi.sections.modinfo ? [abi.sections.modinfo] : []), ...abi.hooks.map((h) => h.section),
    ...(abi.sections.xenDepends && !r.features.xenDependsFirst ? [abi.sections.xenDepends] : [])]);
  const firstOf = new Map<string, XSection>();
  for (const s of sections) if (s.index > 0 && !firstOf.has(s.name)) firstOf.set(s.name, s);
  for (const n of special) {
    const s = firstOf.get(n);
    if (!s) continue;
    if (!(s.flags & SHF.ALLOC)) report('UNCHECKED_NOT_ALLOC', { section: n }, { section: n });
    else if (s.rawSize === 0n && r.features.nopPatching && !r.features.loadZeroSize && n !== abi.sections.funcs && !abi.hooks.some((h) => h.section === n)) {
      report('UNCHECKED_ZERO_SIZE_SPECIAL', { section: n }, { section: n });
    }
  }
  for (const s of sections) {
    if (s.index === 0 || !(s.flags & SHF.ALLOC) || s.addralign !== 0n) continue;
    if (s.rawSize === 0n && r.features.nopPatching && !r.features.loadZeroSize) continue;
    report('UNCHECKED_ALIGN_ZERO', { section: s.name }, { section: s.name });
  }
}

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

function sectionOk(s: XSection, entry: number, col: Collector, silent = false): boolean {
  if (s.size % entry === 0) return true;
  if (silent) col.add('HOOK_ARRAY_SIZE', { section: s.name, size: s.size, entry }, { section: s.name });
  else col.add('SEC_WRONG_SIZE', { section: s.name, size: s.size, entry }, { section: s.name });
  return false;
}

/** §2.10(a): funcs entries. */
function prepareFuncs(elf: LoadedElf, sec: XSection | undefined, c: Ctx, col: Collector, space: SymbolSpace, linkOk: boolean): VerifiedFunc[] {
  const { abi, rules: r } = c;
  if (!sec || !sec.mem) return [];
  const L = abi.funcEntry;
  if (!sectionOk(sec, L.size, col)) return [];
  const entries = decodeFuncEntries(abi, sec.mem, true);
  const out: VerifiedFunc[] = [];
  const arm = abi.arch !== 'x86_64';
  entries.forEach((e, i) => {
    const off = i * L.size;
    const ctx = { section: sec.name, offset: off };
    const name = stringAt(elf, e.name);
    const f: VerifiedFunc = {
      index: i, namePtr: e.name, oldAddr: e.oldAddr, newAddr: e.newAddr, newSize: e.newSize, oldSize: e.oldSize,
      version: e.version ?? 0, ...(name !== undefined ? { name } : {}), ...(e.expect ? { expect: e.expect } : {}),
    };
    out.push(f);
    const label = name ?? `entry ${i}`;
    if (f.version !== L.version) {
      col.add('FUNC_VERSION', { found: f.version, expected: L.version }, { ...ctx, ...(name ? { symbol: name } : {}) });
      return;
    }
    if (!r.features.nopPatching ? (f.newAddr === 0n || f.newSize === 0) : f.oldSize === 0) {
      col.add('FUNC_ZERO_FIELDS', {}, { ...ctx, ...(name ? { symbol: name } : {}) });
      return;
    }
    if (name === undefined && (f.oldAddr === 0n || linkOk)) {
      // The name is printed in log messages, and resolved when old_addr is 0.
      col.add('UNCHECKED_NAME_POINTER', { entry: i, addr: e.name }, ctx);
      if (f.oldAddr === 0n) return;
    }
    const resolve = (): boolean => {
      if (f.oldAddr !== 0n) {
        f.resolvedFrom = 'given';
        return true;
      }
      const x = space.xen(name!);
      if (x) { f.oldAddr = x; f.resolvedFrom = 'xen'; return true; }
      const p = space.payloads(name!);
      if (p) { f.oldAddr = p.value; f.resolvedFrom = p.payload; return true; }
      if (x === null) { f.resolvedFrom = 'unchecked'; return true; }
      col.add('FUNC_UNRESOLVED', { symbol: name }, { ...ctx, symbol: name! });
      return false;
    };
    const verify = (): boolean => {
      if (f.newAddr === 0n) {
        if (f.newSize > abi.nopMaxLen || (arm && f.newSize % (abi.nopGranule ?? 4) !== 0)) {
          col.add('FUNC_NOP_TOO_LONG', { symbol: label, size: f.newSize, arm: arm ? 1 : undefined }, { ...ctx, symbol: label });
          return false;
        }
        if (!arm && f.oldSize < f.newSize) {
          col.add('FUNC_NOP_OLD_SIZE', { symbol: label, oldSize: f.oldSize, newSize: f.newSize }, { ...ctx, symbol: label });
          return false;
        }
      }
      const endbr = !arm && r.features.endbr && startsWithEndbr(c, f.oldAddr);
      if (f.newAddr === 0n && endbr && f.newSize > 0 && f.newSize < 4) col.add('UNCHECKED_NOP_ENDBR', { symbol: label, size: f.newSize }, { ...ctx, symbol: label });
      if (arm ? f.oldSize < abi.patchSize : f.newAddr !== 0n) {
        const needed = abi.patchSize + (endbr ? 4 : 0);
        if (f.oldSize < needed) {
          col.add('FUNC_OLD_SIZE', { symbol: label, oldSize: f.oldSize, needed, endbr: endbr ? 1 : undefined }, { ...ctx, symbol: label });
          return false;
        }
      }
      return true;
    };
    if (r.features.resolveBeforeVerify) {
      if (!resolve() || !verify()) return;
    } else if (!verify() || !resolve()) return;
    if (r.features.distanceCheck && f.newAddr !== 0n && f.resolvedFrom !== 'unchecked') {
      const reach = BigInt(abi.branchRange ?? Number(r.branchReach));
      const d = BigInt.asIntN(64, f.oldAddr - f.newAddr);
      if (d < -reach || d >= reach) {
        col.add('FUNC_DISTANCE', { symbol: label, oldAddr: f.oldAddr, newAddr: f.newAddr }, { ...ctx, symbol: label });
      }
    }
  });
  // Unchecked: scratch bytes the hypervisor reads (L2a/L2b applied, L2b patch_offset) and pads.
  const v = L.fields.version.offset + 1;
  const scratch = abi.name === 'L2a' || abi.name === 'L2b' ? [v + 31, ...(abi.name === 'L2b' ? [v + 32] : [])] : [];
  entries.forEach((e, i) => {
    const nz = e.scratchNonZero ?? [];
    if (!nz.length) return;
    const label = out[i]?.name ?? `entry ${i}`;
    if (nz.some((o) => scratch.includes(o))) col.add('UNCHECKED_SCRATCH_NONZERO', { entry: i, symbol: label }, { section: sec.name, offset: i * L.size + nz.find((o) => scratch.includes(o))! });
    else col.add('NOTE_PAD_NONZERO', { entry: i, symbol: label }, { section: sec.name, offset: i * L.size + nz[0]! });
  });
  // Unchecked: one function patched twice in one payload.
  const byOld = new Map<bigint, number[]>();
  out.forEach((f) => { if (f.oldAddr) byOld.set(f.oldAddr, [...(byOld.get(f.oldAddr) ?? []), f.index]); });
  for (const [, idx] of byOld) {
    if (idx.length > 1) col.add('UNCHECKED_DUPLICATE_FUNC', { symbol: out[idx[0]!]!.name ?? `entry ${idx[0]}`, entries: idx.join(', ') }, { section: sec.name, offset: idx[1]! * L.size });
  }
  // Unchecked: the entries are written at apply on this release.
  if (abi.funcsMustBeWritable && !(sec.flags & SHF.WRITE)) col.add('UNCHECKED_FUNCS_READONLY', {}, { section: sec.name });
  return out;
}

function startsWithEndbr(c: Ctx, addr: bigint): boolean {
  let b: Uint8Array | undefined;
  for (const p of c.loaded) {
    const s = sectionAt(p.elf, addr, 4);
    if (s) b = s.mem!.subarray(Number(addr - s.loadAddr!), Number(addr - s.loadAddr!) + 4);
  }
  if (!b && c.target.bytesAt) {
    try {
      b = c.target.bytesAt(addr, 4);
    } catch {
      b = undefined;
    }
  }
  if (!b || b.length < 4) return false;
  const w = Buffer.from(b).toString('hex');
  return w === 'f30f1efa' || w === '660f1f01';
}

/** §2.10(b) hooks. */
function prepareHooks(elf: LoadedElf, abi: PayloadAbi, r: LoaderRules, col: Collector, secOf: (n: string) => XSection | undefined): void {
  const ptr = abi.pointerSize;
  // Xen assigns load, unload, then preapply, apply, postapply, prerevert, revert, postrevert.
  for (const h of abi.hooks) {
    if (h.note) continue;
    const s = secOf(h.section);
    if (!s) continue;
    if (h.array) {
      sectionOk(s, ptr, col, !r.features.unifiedWrongSize);
    } else if (sectionOk(s, ptr, col) && s.size !== ptr) {
      col.add('HOOK_SIZE', { section: s.name, entry: ptr, size: s.size }, { section: s.name });
    }
  }
}

/** §2.10(c)(e): a build-id note section as the loader parses it. */
function noteOf(s: XSection | undefined, name: string, r: LoaderRules, col: Collector): Uint8Array | undefined {
  if (!s) return undefined;
  const bytes = s.mem ?? s.data;
  const p = parseBuildIdNote(bytes, true);
  if (!p.ok) {
    const d = makeNoteDiag(r, col, name, p.reason, r.features.buildIdErrnoPassThrough ? p.errno : 'EINVAL');
    col.list.push(d);
    return undefined;
  }
  return p.id;
}

function makeNoteDiag(r: LoaderRules, col: Collector, section: string, why: string, errno: string): Diagnostic {
  const d = makeDiagnostic('NOTE_BUILD_ID', r, col.name, { section, why }, { section });
  d.errno = errno;
  return d;
}

/** §2.10(f)–(j): bug frames, alternatives, exception table, .modinfo, alt-call sites. */
function prepareSpecial(elf: LoadedElf, abi: PayloadAbi, r: LoaderRules, col: Collector, secOf: (n: string) => XSection | undefined, c: Ctx): void {
  const entry = (n: string): number | undefined => abi.special.find((s) => s.section === n)?.entrySize;
  for (let i = 0; i < r.bugFrameCount; i++) {
    const s = secOf(`.bug_frames.${i}`);
    if (s) sectionOk(s, entry(s.name) ?? r.bugFrameSize, col);
  }
  const alt = secOf('.altinstructions');
  if (alt) {
    if (!r.hasAlternative || !entry('.altinstructions')) col.add('ALT_UNSUPPORTED', {}, { section: alt.name });
    else checkAlternatives(elf, alt, entry('.altinstructions')!, r, col, secOf);
  }
  const acs = secOf('.alt_call_sites');
  if (acs && r.features.altCallSites) {
    if (abi.arch !== 'x86_64') col.add('ALT_CALL_UNSUPPORTED', {}, { section: acs.name });
    else if (sectionOk(acs, 4, col) && acs.size) {
      if (elf.textSize === 0) col.add('ALT_CALL_NO_TEXT', {}, { section: acs.name });
      else {
        const dv = new DataView(acs.mem!.buffer, acs.mem!.byteOffset, acs.mem!.byteLength);
        for (let o = 0; o + 4 <= acs.size; o += 4) {
          const site = acs.loadAddr! + BigInt(o) + BigInt(dv.getInt32(o, true));
          const t = sectionAt(elf, site, 6);
          if (site < elf.textAddr || site + 6n > elf.textAddr + BigInt(elf.textSize) || !t) {
            col.add('ALT_CALL_OUTSIDE', { addr: site, start: elf.textAddr, size: elf.textSize }, { section: acs.name, offset: o });
            return;
          }
        }
        for (let o = 0; o + 4 <= acs.size; o += 4) {
          const site = acs.loadAddr! + BigInt(o) + BigInt(dv.getInt32(o, true));
          const t = sectionAt(elf, site, 6)!;
          const b = t.mem!.subarray(Number(site - t.loadAddr!), Number(site - t.loadAddr!) + 6);
          if (b[0] !== 0xff || b[1] !== 0x15) {
            col.add('ALT_CALL_NOT_RIPREL', { addr: site, bytes: Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ') }, { section: acs.name, offset: o });
            break;
          }
        }
      }
    }
  }
  const ex = secOf('.ex_table');
  if (ex) {
    if (!r.hasExTable) col.add('EX_TABLE_UNSUPPORTED', {}, { section: ex.name });
    else if (!r.features.exTableEmptyOk && ex.size === 0) col.add('EX_TABLE_EMPTY', { entry: 8, size: 0 }, { section: ex.name });
    else sectionOk(ex, 8, col);
  }
  const mi = abi.sections.modinfo ? secOf(abi.sections.modinfo) : undefined;
  if (mi) {
    if (mi.size === 0) col.add('UNCHECKED_MODINFO_EMPTY', {}, { section: mi.name });
    else if ((mi.mem ?? mi.data)[mi.size - 1] !== 0) col.add('MODINFO_FORMAT', {}, { section: mi.name });
  }
  void c;
}

function checkAlternatives(elf: LoadedElf, alt: XSection, size: number, r: LoaderRules, col: Collector, secOf: (n: string) => XSection | undefined): void {
  if (!sectionOk(alt, size, col)) return;
  if (alt.size === 0) return;
  const repl = secOf('.altinstr_replacement');
  if (r.features.altStrict) {
    if (elf.textSize === 0) return void col.add('ALT_NO_TEXT', {}, { section: alt.name });
    if (!repl) return void col.add('ALT_NO_REPLACEMENT', {}, { section: alt.name });
  }
  if (!alt.mem) return;
  const dv = new DataView(alt.mem.buffer, alt.mem.byteOffset, alt.mem.byteLength);
  const x86 = elf.is64 && r.arch === 'x86_64';
  for (let o = 0, i = 0; o + size <= alt.size; o += size, i++) {
    const orig = alt.loadAddr! + BigInt(o) + BigInt(dv.getInt32(o, true));
    const replAddr = alt.loadAddr! + BigInt(o + 4) + BigInt(dv.getInt32(o + 4, true));
    const origLen = dv.getUint8(o + 10);
    const replLen = dv.getUint8(o + 11);
    const padLen = x86 && size === 14 ? dv.getUint8(o + 12) : 0;
    if (r.features.altStrict) {
      const tEnd = elf.textAddr + BigInt(elf.textSize);
      if (orig < elf.textAddr || origLen > elf.textSize || orig + BigInt(origLen) > tEnd) {
        col.add('ALT_ORIG_OUTSIDE', { addr: orig, len: origLen, start: elf.textAddr, size: elf.textSize }, { section: alt.name, offset: o });
        return;
      }
      const rs = repl!;
      const rStart = rs.loadAddr ?? 0n;
      if (replAddr < rStart || replLen > rs.size || replAddr + BigInt(replLen) > rStart + BigInt(rs.size)) {
        col.add('ALT_REPL_OUTSIDE', { addr: replAddr, len: replLen, start: rStart, size: rs.size }, { section: alt.name, offset: o });
        return;
      }
    }
    // apply_alternatives BUG_ONs (x86 before 4.20; ARM always).
    if (!r.features.altErrorsReturned) {
      const bad = x86
        ? (replLen > origLen + padLen ? `replacement length ${replLen} exceeds origin ${origLen} + padding ${padLen}`
          : origLen + padLen > 255 ? `origin length ${origLen} + padding ${padLen} exceeds 255` : undefined)
        : (replLen !== origLen ? `replacement length ${replLen} differs from origin length ${origLen}` : undefined);
      const outside = !r.features.altStrict && (orig < elf.textAddr || orig + BigInt(origLen) > elf.textAddr + BigInt(elf.textSize))
        ? `origin ${'0x' + orig.toString(16)}+${origLen} is outside the payload text` : undefined;
      const why = bad ?? outside;
      if (why) col.add('UNCHECKED_ALT_ENTRY', { entry: i, why }, { section: alt.name, offset: o });
    } else if (x86 && replLen > origLen + padLen) {
      const d = makeDiagnostic('ALT_APPLY', r, col.name, { rc: -28 }, { section: alt.name, offset: o });
      col.list.push(d);
      return;
    }
  }
}

/** §2.11: payload symbols, overriding vs new, duplicates; returns the exported symbols. */
function buildSymbolTable(elf: LoadedElf, funcs: VerifiedFunc[], space: SymbolSpace, r: LoaderRules, col: Collector): Map<string, bigint> {
  const exports = new Map<string, bigint>();
  const newAddrs = new Set(funcs.map((f) => f.newAddr));
  for (const s of elf.symbols) {
    if (s.index === 0 || s.shndx === 0 || s.shndx >= elf.shnum) continue;
    const sec = elf.sections[s.shndx]!;
    if (!(sec.flags & SHF.ALLOC) || s.name === '') continue;
    if ((sec.flags & SHF.MERGE) && s.name.startsWith('.L')) continue;
    if (r.arch !== 'x86_64' && /^\$(d|a|x)(\..*)?$/.test(s.name)) continue;
    const name = s.name.slice(0, 126);
    if (newAddrs.has(s.value)) continue; // overriding symbol
    if (space.xen(name) || space.payloads(name)) {
      col.add('DUPLICATE_SYMBOL', { symbol: name }, { symbol: name });
      continue;
    }
    if (!exports.has(name)) exports.set(name, s.value);
  }
  return exports;
}

export type { LoadedElf };

/** Human-readable rendering of a verify result. */
export function formatVerify(r: VerifyResult): string {
  const L: string[] = [];
  L.push(`target: Xen ${r.target.version} ${r.target.arch}, build-id ${r.target.buildId ?? '(none)'}, payload ABI ${r.target.abi}`);
  for (const p of r.payloads) {
    const verdict = p.ok ? 'ok' : p.refusedAt ? `REFUSED at ${p.refusedAt} (${p.errno})` : 'accepted by the hypervisor, but UNSAFE';
    L.push(`${p.file} (name ${p.name}${p.buildId ? `, build-id ${p.buildId}` : ''}): ${verdict}`);
    for (const d of p.diagnostics) {
      const where = [d.section, d.symbol, d.offset !== undefined ? `+0x${d.offset.toString(16)}` : undefined].filter((x) => x !== undefined && x !== '').join(' ');
      const head = `  ${d.severity === 'error' ? 'error' : 'warning'} ${d.code}${d.errno ? ` ${d.errno}` : ''}${d.first ? ' (what the hypervisor returns)' : ''}${where ? ` [${where}]` : ''} ${d.spec}`;
      L.push(head);
      for (const line of d.message.split('\n')) L.push(`      ${line}`);
    }
  }
  const bad = r.payloads.filter((p) => !p.ok).length;
  L.push(bad ? `${bad} of ${r.payloads.length} payload(s) refused` : `all ${r.payloads.length} payload(s) accepted`);
  return L.join('\n') + '\n';
}
