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
import { decodeX86, type Insn } from './x86-decode.js';
import { UsageError } from '../errors.js';
import { ruleRef } from './rules.js';

export interface VerifyInput {
  file: string;
  bytes: Uint8Array;
  /** Upload name; default: the file's basename without its last extension (as `xen-livepatch load`). */
  name?: string;
  /** The file's size when `bytes` holds only its first bytes (a file larger than Xen accepts is not read whole). */
  size?: number;
  /** Upload only, no APPLY (a payload the host holds as CHECKED; src/payload/loaded.ts). */
  uploadOnly?: boolean;
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
  /** Set when the hypervisor crashes on it before any refusal (never "accepted"). */
  crashAt?: 'upload';
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
/** x86 MAX_PATCH_LEN (255 - 1) and ALT_FLAG_NOT (1 << 15) [xen/arch/x86/alternative.c, asm/alternative.h]. */
const MAX_PATCH_LEN = 254;
const ALT_FLAG_NOT = 0x8000;
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
  return { rules: rulesFor(abi, ver), abi, version, arch };
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
    // A crash during the upload (§2.16, Errata) is what the hypervisor meets first: nothing after it runs.
    const crash = col.list.find((d) => d.code === 'CRASH_FUNCS_NOT_ALLOC');
    const first = crash ?? up[0] ?? ap[0];
    if (first) first.first = true;
    const verdict: PayloadVerdict = {
      file: input.file, name,
      buildId: buildId ? toHex(buildId) : null,
      depends: depends ? toHex(depends) : null,
      ok: !col.list.some((d) => d.severity === 'error'),
      errno: first ? first.errno : null,
      refusedAt: crash ? null : up.length ? 'upload' : ap.length ? 'apply' : null,
      ...(crash ? { crashAt: 'upload' as const } : {}),
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
  const uploadSize = input.size ?? input.bytes.length;
  if (uploadSize === 0 || uploadSize > abi.limits.maxPayloadSize) {
    report('UPLOAD_SIZE', { size: uploadSize });
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
      // 4.18.4–4.20 print xen_build_id()'s -ENODATA; 4.21+ print parse_buildid's rc, 0 [Errata].
      report('XEN_BUILD_ID_UNAVAILABLE', { rc: r.features.xenBuildIdVariables ? 0 : -61 });
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

  // (g) prepare_payload. A .livepatch.funcs without SHF_ALLOC has no load address (NULL up to
  // 4.18.3 / 4.19.0; uninitialised before 4.10): reading its first entry faults [Errata].
  const funcsSec = secOf(abi.sections.funcs);
  if (funcsSec && !(funcsSec.flags & SHF.ALLOC) && funcsSec.size > 0 && !r.features.nonAllocBufferPointer && !col.errorsAt('upload').length) {
    report('CRASH_FUNCS_NOT_ALLOC', { section: funcsSec.name, where: r.features.alignChecks ? 'NULL' : 'uninitialised' }, { section: funcsSec.name });
    return finish();
  }
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
  checkBugFrames(elf, abi, r, col);

  // (h) 4.14–4.19: xen_build_id_dep after prepare_payload.
  if (xenDep && !r.features.xenDependsFirst) {
    if (!c.target.buildId) report('XEN_NO_BUILD_ID');
    else if (!eq(xenDep, c.target.buildId)) report('XEN_DEPENDS_MISMATCH', { found: toHex(xenDep), expected: toHex(c.target.buildId) }, { section: abi.sections.xenDepends! });
  }

  // (i) build_symbol_table.
  const exports = buildSymbolTable(elf, funcs, space, r, col, abi.limits.maxSymbolLen);
  // Not the loader's checks: code the target's mitigations expect, hooks that decide at run time.
  checkThunks(elf, c, col);
  noteDecidingHooks(elf, abi, col, secOf);

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
  if (!input.uploadOnly) applyChecks(lp, funcs, { ...c, col, xenBuildId: c.target.buildId });
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
    if (!(s.flags & SHF.ALLOC)) {
      report('UNCHECKED_NOT_ALLOC', {
        section: n,
        how: r.features.nonAllocBufferPointer ? 'a pointer into the upload buffer, freed when the upload returns: use-after-free' : undefined,
      }, { section: n });
    }
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
    // A NULL name with old_addr set is harmless: Xen prints "<NULL>" and uses name ?: "unknown".
    if (name === undefined && (f.oldAddr === 0n || (linkOk && e.name !== 0n))) {
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
      const endbr = !arm && r.features.endbr && startsWithEndbr(c, f.oldAddr, r.features.endbrPoison);
      if (f.newAddr === 0n && endbr && f.newSize > 0 && f.newSize < abi.endbrOffset) col.add('UNCHECKED_NOP_ENDBR', { symbol: label, size: f.newSize }, { ...ctx, symbol: label });
      if (arm ? f.oldSize < abi.patchSize : f.newAddr !== 0n) {
        const needed = abi.patchSize + (endbr ? abi.endbrOffset : 0);
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
    if (f.newAddr === 0n && !arm && f.resolvedFrom !== 'unchecked') checkNopRange(c, col, f, label, ctx);
    if (r.features.distanceCheck && f.newAddr !== 0n && f.resolvedFrom !== 'unchecked') {
      const reach = r.branchReach;
      const d = BigInt.asIntN(64, f.oldAddr - f.newAddr);
      if (d < -reach || d >= reach) {
        col.add('FUNC_DISTANCE', { symbol: label, oldAddr: f.oldAddr, newAddr: f.newAddr }, { ...ctx, symbol: label });
      }
    }
  });
  // Unchecked: scratch bytes the hypervisor reads (the row's hypervisorState: L2a/L2b applied, L2b patch_offset) and pads.
  const scratch = L.hypervisorState ?? [];
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

/** `len` bytes of code at `addr`: from a loaded payload, else from the target's image. */
function codeAt(c: Ctx, addr: bigint, len: number): Uint8Array | undefined {
  for (const p of c.loaded) {
    const s = sectionAt(p.elf, addr, len);
    if (s) return s.mem!.subarray(Number(addr - s.loadAddr!), Number(addr - s.loadAddr!) + len);
  }
  if (!c.target.bytesAt) return undefined;
  try {
    const b = c.target.bytesAt(addr, len);
    return b.length === len ? b : undefined;
  } catch {
    return undefined;
  }
}

const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

/**
 * x86 NOP patch [issue 10, §2.14]: Xen writes NOPs over [old_addr + patch_offset, old_addr +
 * new_size). Decoded from the target's own bytes: the range must end on an instruction boundary,
 * and a range covering the function's return (ret, or its jmp to __x86_return_thunk) or its final
 * jump lets execution fall through into what follows.
 */
function checkNopRange(c: Ctx, col: Collector, f: VerifiedFunc, label: string, ctx: DiagContext): void {
  const { abi, rules: r } = c;
  if (f.newSize === 0 || f.oldSize === 0 || f.oldSize > 1 << 16) return;
  const code = codeAt(c, f.oldAddr, f.oldSize);
  if (!code) return;
  const endbr = r.features.endbr && startsWithEndbr(c, f.oldAddr, r.features.endbrPoison);
  const start = endbr ? abi.endbrOffset : 0;
  const end = f.newSize;
  if (end <= start) return;
  const insns = decodeX86(code, f.oldAddr);
  const split = insns.find((i) => i.offset < end && i.offset + i.length > end);
  if (split) {
    col.add('UNCHECKED_NOP_SPLITS_INSN', { symbol: label, end, at: split.offset, len: split.length, insn: split.text }, { ...ctx, symbol: label });
    return;
  }
  const thunk = c.target.symbols?.find('__x86_return_thunk')[0]?.value;
  const inRange = insns.filter((i) => i.offset >= start && i.offset + i.length <= end);
  const last = insns[insns.length - 1];
  const covered = inRange.find((i) => i.kind === 'ret' || (i.kind === 'jmp' && thunk !== undefined && i.target === thunk))
    ?? (last && last.kind === 'jmp' && inRange.includes(last) ? last : undefined);
  if (covered) {
    const what = covered.kind === 'ret' ? 'return (ret)' : covered.target === thunk ? 'return (jmp __x86_return_thunk)' : `final jump (${covered.text})`;
    col.add('NOTE_NOP_COVERS_RETURN', { symbol: label, what, at: covered.offset }, { ...ctx, symbol: label });
  }
}

/**
 * 4.22+: every x86 `.bug_frames.*` entry points at UDB (d6); before 4.22 at ud2 (0f 0b). The
 * loader does not check it; do_invalid_op does not recognise the other one [Errata].
 */
function checkBugFrames(elf: LoadedElf, abi: PayloadAbi, r: LoaderRules, col: Collector): void {
  if (abi.arch !== 'x86_64' || !r.bugInstruction) return;
  const udb = r.bugInstruction === 'udb';
  for (const s of elf.sections) {
    if (!/^\.bug_frames\.\d+$/.test(s.name) || !s.mem || s.loadAddr === undefined) continue;
    if (elf.sections.find((x) => x.name === s.name) !== s) continue; // Xen uses the first of a name
    const dv = new DataView(s.mem.buffer, s.mem.byteOffset, s.mem.byteLength);
    for (let o = 0, i = 0; o + 8 <= s.size; o += 8, i++) {
      const disp = (dv.getInt32(o, true) << 8) >> 8; // loc_disp: the low 24 bits, signed
      if (disp === 0) continue; // the second half of an assert frame (msg_disp)
      const at = s.loadAddr + BigInt(o) + BigInt(disp);
      const t = sectionAt(elf, at, 1);
      if (!t || !(t.flags & SHF.EXECINSTR)) continue;
      const off = Number(at - t.loadAddr!);
      const b = t.mem!.subarray(off, Math.min(off + 2, t.size));
      const ok = udb ? b[0] === 0xd6 : b[0] === 0x0f && b[1] === 0x0b;
      if (!ok) {
        col.add('UNCHECKED_BUG_INSTR', { section: s.name, entry: i, found: hexBytes(b), addr: at, release: r.version.text, udb: udb ? 1 : undefined }, { section: s.name, offset: o });
      }
    }
  }
}

/** Where an address in the payload is: "function+0xoff" (or "section+0xoff"). */
function placeOf(elf: LoadedElf, s: XSection, off: number): string {
  let best: { name: string; value: bigint } | undefined;
  const at = s.loadAddr! + BigInt(off);
  for (const y of elf.symbols) {
    if (y.shndx !== s.index || (y.info & 0xf) !== 2 || !y.name || y.value > at) continue;
    if (!best || y.value > best.value) best = { name: y.name, value: y.value };
  }
  return best ? `${best.name}+0x${(at - best.value).toString(16)}` : `${s.name}+0x${off.toString(16)}`;
}

/**
 * Return thunks (XSA-469) and indirect-branch thunks: when the target has `__x86_return_thunk`
 * (resp. `__x86_indirect_thunk_*`), payload code returning with a plain `ret` (resp. branching
 * indirectly) bypasses the mitigation Xen is built with [Errata "Return thunks"].
 */
function checkThunks(elf: LoadedElf, c: Ctx, col: Collector): void {
  const syms = c.target.symbols;
  if (c.abi.arch !== 'x86_64' || !syms) return;
  const retThunk = syms.find('__x86_return_thunk').length > 0;
  const indThunk = syms.find('__x86_indirect_thunk_rax').length > 0;
  if (!retThunk && !indThunk) return;
  for (const s of elf.sections) {
    if (!(s.flags & SHF.EXECINSTR) || !s.mem || s.size === 0 || s.name === '.altinstr_replacement') continue;
    // Decode only when an opcode byte of interest occurs at all: in the file's bytes, relocated
    // fields are still zero (RELA), so addresses cannot fake one. ret: c3 c2 cb ca; indirect: ff.
    if (!s.data.some((x) => (retThunk && (x & 0xfc) === 0xc8 && (x & 2) !== 0) || (retThunk && (x === 0xc3 || x === 0xc2)) || (indThunk && x === 0xff))) continue;
    const insns: Insn[] = decodeX86(s.mem, s.loadAddr!);
    for (const i of insns) {
      if (retThunk && i.kind === 'ret') col.add('NOTE_RETURN_THUNK', { where: placeOf(elf, s, i.offset), insn: i.text }, { section: s.name, offset: i.offset });
      if (indThunk && (i.kind === 'jmp-indirect' || i.kind === 'call-indirect')) col.add('NOTE_INDIRECT_THUNK', { where: placeOf(elf, s, i.offset), insn: i.text }, { section: s.name, offset: i.offset });
    }
  }
}

/** Pre-apply / apply (and pre-revert / revert) hooks return the action's result [§1.4, §2.13]. */
function noteDecidingHooks(elf: LoadedElf, abi: PayloadAbi, col: Collector, secOf: (n: string) => XSection | undefined): void {
  for (const h of abi.hooks) {
    if (h.array || h.note || !['pre-apply', 'apply', 'pre-revert', 'revert'].includes(h.kind)) continue;
    const s = secOf(h.section);
    if (!s || !hookEnabled(elf, s)) continue;
    const target = readPtr(elf, s, 0);
    const fn = elf.symbols.find((y) => y.value === target && (y.info & 0xf) === 2 && y.name);
    col.add('NOTE_HOOK_DECIDES', { kind: h.kind, symbol: fn?.name ?? `0x${target.toString(16)}`, action: h.kind.endsWith('revert') ? 'REVERT' : 'APPLY' }, { section: s.name });
  }
}

/** is_endbr64, and from 4.17.0 the ENDBR "poison" `66 0f 1f 01` too [Errata "ENDBR poison"]. */
function startsWithEndbr(c: Ctx, addr: bigint, poison: boolean): boolean {
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
  return w === 'f30f1efa' || (poison && w === '660f1f01');
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
    else if (sectionOk(acs, entry('.alt_call_sites') ?? 4, col) && acs.size) {
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
    else if (!r.features.exTableEmptyOk && ex.size === 0) col.add('EX_TABLE_EMPTY', { entry: entry('.ex_table')!, size: 0 }, { section: ex.name });
    else sectionOk(ex, entry('.ex_table')!, col);
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
    // x86 _apply_alternatives: repl_len <= orig_len + pad_len <= MAX_PATCH_LEN (254), feature
    // (bit 15 ALT_FLAG_NOT masked where supported) < NCAPINTS * 32. BUG_ON (crash) before 4.20 /
    // 4.18.4 / 4.19.1, then -ENOSPC / -ERANGE [Errata "x86 alternatives limits", "ALT_FLAG_NOT"].
    // ARM: BUG_ON in every release.
    const total = origLen + padLen;
    const cpuid = x86 ? dv.getUint16(o + 8, true) : 0;
    const feat = r.features.altFlagNot ? cpuid & ~ALT_FLAG_NOT : cpuid;
    const limit = r.x86CapWords !== null ? r.x86CapWords * 32 : ALT_FLAG_NOT;
    const at = `0x${orig.toString(16)}`;
    const x86Fail: [string, number, string] | undefined = !x86 ? undefined
      : replLen > total ? [`Alt for ${at}, replacement size 0x${replLen.toString(16)} larger than origin 0x${total.toString(16)}`, -28, `replacement length ${replLen} exceeds origin ${origLen} + padding ${padLen}`]
        : total > MAX_PATCH_LEN ? [`Alt for ${at}, origin size 0x${total.toString(16)} bigger than buffer 0x${MAX_PATCH_LEN.toString(16)}`, -28, `origin length ${origLen} + padding ${padLen} exceeds MAX_PATCH_LEN ${MAX_PATCH_LEN}`]
          : feat >= limit ? [`Alt for ${at}, feature 0x${feat.toString(16)} outside of featureset range 0x${limit.toString(16)}`, -34, `feature 0x${feat.toString(16)} is not below NCAPINTS * 32 = 0x${limit.toString(16)}${cpuid & ALT_FLAG_NOT && !r.features.altFlagNot ? ' (ALT_FLAG_NOT, bit 15, is not known to this release)' : ''}`]
            : undefined;
    if (!r.features.altErrorsReturned) {
      const bad = x86 ? x86Fail?.[2]
        : (replLen !== origLen ? `replacement length ${replLen} differs from origin length ${origLen}` : undefined);
      const outside = !r.features.altStrict && (orig < elf.textAddr || orig + BigInt(origLen) > elf.textAddr + BigInt(elf.textSize))
        ? `origin ${'0x' + orig.toString(16)}+${origLen} is outside the payload text` : undefined;
      const why = bad ?? outside;
      if (why) col.add('UNCHECKED_ALT_ENTRY', { entry: i, why }, { section: alt.name, offset: o });
    } else if (x86Fail) {
      const [line, rc] = x86Fail;
      const d = makeDiagnostic('ALT_APPLY', r, col.name, { rc }, { section: alt.name, offset: o });
      d.errno = rc === -34 ? 'ERANGE' : 'ENOSPC';
      d.message = `${line}\n${d.message}`;
      col.list.push(d);
      return;
    }
  }
}

/** §2.11: payload symbols, overriding vs new, duplicates; returns the exported symbols. */
function buildSymbolTable(elf: LoadedElf, funcs: VerifiedFunc[], space: SymbolSpace, r: LoaderRules, col: Collector, maxSymbolLen: number): Map<string, bigint> {
  const exports = new Map<string, bigint>();
  const newAddrs = new Set(funcs.map((f) => f.newAddr));
  for (const s of elf.symbols) {
    if (s.index === 0 || s.shndx === 0 || s.shndx >= elf.shnum) continue;
    const sec = elf.sections[s.shndx]!;
    if (!(sec.flags & SHF.ALLOC) || s.name === '') continue;
    if ((sec.flags & SHF.MERGE) && s.name.startsWith('.L')) continue;
    if (r.arch !== 'x86_64' && /^\$(d|a|x)(\..*)?$/.test(s.name)) continue;
    const name = s.name.slice(0, maxSymbolLen); // KSYM_NAME_LEN - 1
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

/**
 * The checks `xsplice build` shares with verify (issue 10), run on the payload it just wrote:
 * `refuse` codes make build refuse, `warn` codes become warnings, and a NOP covering the
 * function's return is refused unless its length was given (`explicitNops`). Nothing is checked
 * when the target release is unknown.
 */
export const BUILD_SHARED_CHECKS = {
  refuse: ['UNCHECKED_NOP_SPLITS_INSN', 'UNCHECKED_BUG_INSTR'] as DiagCode[],
  warn: ['NOTE_RETURN_THUNK', 'NOTE_INDIRECT_THUNK', 'NOTE_NOP_COVERS_RETURN'] as DiagCode[],
};

export function sharedBuildChecks(bytes: Uint8Array, target: VerifyTarget, abi: PayloadAbi): Diagnostic[] {
  const xenVersion = abi.loader?.release ?? target.version;
  if (!xenVersion) return [];
  let r: VerifyResult;
  try {
    r = verifyPayloads([{ file: 'payload', bytes, name: 'payload' }], target, { abi, xenVersion, arch: abi.arch });
  } catch (e) {
    if (e instanceof UsageError) return [];
    throw e;
  }
  const codes = new Set([...BUILD_SHARED_CHECKS.refuse, ...BUILD_SHARED_CHECKS.warn]);
  return r.payloads[0]!.diagnostics.filter((d) => codes.has(d.code));
}

/** Human-readable rendering of a verify result. */
export function formatVerify(r: VerifyResult): string {
  const L: string[] = [];
  L.push(`target: Xen ${r.target.version} ${r.target.arch}, build-id ${r.target.buildId ?? '(none)'}, payload ABI ${r.target.abi}`);
  for (const p of r.payloads) {
    const decides = p.diagnostics.filter((d) => d.code === 'NOTE_HOOK_DECIDES').map((d) => d.message.replace(/^its (\S+) hook (\S+).*$/, '$1 hook $2'));
    const verdict = p.ok ? (decides.length ? `uploads; whether it applies is decided at run time by its ${decides.join(', ')}` : 'ok') : p.crashAt ? `CRASHES the hypervisor at ${p.crashAt}` : p.refusedAt ? `REFUSED at ${p.refusedAt} (${p.errno})` : 'accepted by the hypervisor, but UNSAFE';
    L.push(`${p.file} (name ${p.name}${p.buildId ? `, build-id ${p.buildId}` : ''}): ${verdict}`);
    for (const d of p.diagnostics) {
      const where = [d.section, d.symbol, d.offset !== undefined ? `+0x${d.offset.toString(16)}` : undefined].filter((x) => x !== undefined && x !== '').join(' ');
      const head = `  ${d.severity === 'error' ? 'error' : 'warning'} ${d.code}${d.errno ? ` ${d.errno}` : ''}${d.first ? ' (what the hypervisor returns)' : ''}${where ? ` [${where}]` : ''} (${ruleRef(d.code)})`;
      L.push(head);
      for (const line of d.message.split('\n')) L.push(`      ${line}`);
    }
  }
  const bad = r.payloads.filter((p) => !p.ok).length;
  const decided = r.payloads.filter((p) => p.ok && p.diagnostics.some((d) => d.code === 'NOTE_HOOK_DECIDES')).length;
  L.push(bad ? `${bad} of ${r.payloads.length} payload(s) refused` : `all ${r.payloads.length} payload(s) accepted${decided ? ` (${decided} subject to a hook's decision at run time)` : ''}`);
  return L.join('\n') + '\n';
}
