/**
 * `xsplice verify`: every check the target hypervisor's loader makes at upload and apply, offline,
 * for a list of payloads in load order (what `xen-livepatch load` does for each: upload, then
 * apply), plus the requirements the loader never checks but crashes or corrupts on (§2.16).
 *
 * `verifyOne` follows Xen's processing order (payload-format.md §2.0) so that the first error is the
 * one the hypervisor would return; where it is safe, checking goes on and further diagnostics are
 * collected (the first is marked `first: true`, and the payload's `errno` is its errno). The stages
 * live in src/payload/verify/: types.ts (records, the collector), load-checks.ts (upload, up to
 * check_special_sections), prepare-funcs.ts and prepare-checks.ts (prepare_payload and the symbol
 * table), relocate.ts (with ../verify-load.ts, the ELF loader), ../stack.ts (apply), format.ts (text output), files.ts (reading payloads and the target).
 *
 * Format facts come from the ABI row (abi.ts), loader behaviour per release from releases.ts, and
 * the diagnostic texts from diagnostics.ts.
 */
import { equalBytes, toHex } from '../buildid/note.js';
import { UsageError } from '../errors.js';
import type { Arch, PayloadAbi } from './abi-types.js';
import { abiForVersion } from './abi.js';
import type { DiagCode, Diagnostic } from './diagnostics.js';
import { parseXenVersion, rulesFor, type LoaderRules } from './releases.js';
import { applyChecks } from './stack.js';
import { loadElf, placeSections, resolveSymbols, type XSection } from './verify-load.js';
import { performRelocs } from './verify/relocate.js';
import {
  checkSpecialSections,
  checkUpload,
  checkXenDependsAfter,
  checkXenDependsFirst,
  crashesOnFuncs,
  noteDuplicateSections,
  symbolSpace,
  uncheckedSections,
  uploadName,
} from './verify/load-checks.js';
import {
  buildSymbolTable,
  checkBugFrames,
  checkThunks,
  hookEnabled,
  noteDecidingHooks,
  noteOf,
  prepareHooks,
  prepareSpecial,
} from './verify/prepare-checks.js';
import { prepareFuncs } from './verify/prepare-funcs.js';
import {
  Collector,
  type LoadedPayload,
  type PayloadVerdict,
  type VerifyContext,
  type VerifyInput,
  type VerifyOptions,
  type VerifyResult,
  type VerifyTarget,
} from './verify/types.js';

export * from './verify/types.js';
export { formatVerify } from './verify/format.js';
export { uploadName } from './verify/load-checks.js';
export type { LoadedElf } from './verify-load.js';

/** Fallback start of the x86 payload area when the target has no symbols (4.17 Debian: __2M_rwdata_end). */
const DEFAULT_BASE = 0xffff82d040800000n;

/** Resolves target version, arch, ABI row and loader rules; UsageError when the release is unknown. */
export function resolveTargetRules(
  target: VerifyTarget,
  opts: VerifyOptions = {},
): { rules: LoaderRules; abi: PayloadAbi; version: string; arch: Arch } {
  const arch: Arch = opts.arch ?? opts.abi?.arch ?? target.arch ?? 'x86_64';
  const version = opts.xenVersion ?? target.version ?? (opts.abi?.name === 'xsplice' ? 'xsplice' : undefined);
  if (!version) {
    throw new UsageError('XEN_VERSION_UNKNOWN', 'the target does not reveal its Xen version (a build-id alone); give --xen-version X.Y.Z');
  }
  const ver = parseXenVersion(version);
  if (!ver) throw new UsageError('XEN_VERSION_BAD', `cannot parse Xen version "${version}" (expected X.Y.Z, e.g. 4.17.7)`);
  const abi =
    opts.abi ??
    (ver.xsplice
      ? (() => {
          throw new UsageError('ABI_NEEDED', 'the xSplice tree needs --abi xsplice');
        })()
      : abiForVersion(version, arch));
  return { rules: rulesFor(abi, ver), abi, version, arch };
}

/** Verifies payloads in load order against one target. */
export function verifyPayloads(inputs: VerifyInput[], target: VerifyTarget, opts: VerifyOptions = {}): VerifyResult {
  const { rules, abi, version, arch } = resolveTargetRules(target, opts);
  const loaded: LoadedPayload[] = [];
  const applied: LoadedPayload[] = [];
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

type Outcome = { verdict: PayloadVerdict; loaded?: LoadedPayload };

/** One payload through the simulated hypervisor: upload (a)–(i), then apply, in Xen's order. */
function verifyOne(input: VerifyInput, c: VerifyContext): Outcome {
  const { abi, rules: r } = c;
  const name = input.name ?? uploadName(input.file);
  const col = new Collector(r, name);
  const report = col.add;
  const finish = (lp?: LoadedPayload, buildId?: Uint8Array, depends?: Uint8Array): Outcome =>
    verdictOf(input, name, col, lp, buildId, depends);

  // §2.1 hypercall arguments.
  if (!checkUpload(input, name, c, report)) return finish();

  // (a) livepatch_elf_load.
  const raw = loadElf(input.bytes, abi, r, report);
  if (!raw) return finish();
  const secOf = (n: string | null): XSection | undefined =>
    n === null ? undefined : raw.sections.find((s) => s.index > 0 && s.name === n);
  noteDuplicateSections(raw.sections, abi, report);
  // §2.16 requirements checked up front (the loader would crash on them later).
  uncheckedSections(raw.sections, abi, r, report);

  // (b) 4.18.4+: .livepatch.xen_depends before anything is loaded.
  const xenDepSec = secOf(abi.sections.xenDepends);
  if (!checkXenDependsFirst(xenDepSec, c, report)) return finish();

  // (c) move_payload.
  const elf = placeSections(raw, c.base, r, report);
  if (!elf) return finish();

  // (d) symbols, (e) relocations: collect every failure; Xen stops at the first.
  const space = symbolSpace(c);
  const before = col.count();
  resolveSymbols(elf, space, r, report);
  performRelocs(elf, abi, r, report);
  const linkOk = col.count() === before;
  if (!c.target.symbols) {
    const und = elf.symbols.filter((x) => x.from === 'unchecked').length;
    if (und) report('NOTE_UNCHECKED_TARGET', { what: `${und} undefined symbol(s) and relocation overflow against them` });
  }

  // (f) check_special_sections (+ check_patching_sections, 4.14+).
  checkSpecialSections(abi, r, secOf, report);

  // (g) prepare_payload: funcs, hooks, build-id notes, special sections.
  if (crashesOnFuncs(secOf(abi.sections.funcs), r, col)) return finish();
  const funcs = prepareFuncs(elf, secOf(abi.sections.funcs), c, col, space, linkOk);
  prepareHooks(elf, abi, r, col, secOf);
  const ownId = noteOf(secOf(abi.sections.buildId), abi.sections.buildId, r, col);
  if (ownId) {
    const other = c.loaded.find((p) => equalBytes(p.buildId, ownId));
    if (other) report('DUPLICATE_BUILD_ID', { other: other.name }, { section: abi.sections.buildId });
  }
  const depends = noteOf(secOf(abi.sections.depends), abi.sections.depends, r, col);
  const xenDep = abi.sections.xenDepends && !r.features.xenDependsFirst ? noteOf(xenDepSec, abi.sections.xenDepends, r, col) : undefined;
  prepareSpecial(elf, abi, r, col, secOf);
  checkBugFrames(elf, abi, r, col);

  // (h) 4.14–4.19: xen_build_id_dep after prepare_payload.
  checkXenDependsAfter(xenDep, c, report);

  // (i) build_symbol_table.
  const exports = buildSymbolTable(elf, funcs, space, r, col, abi.limits.maxSymbolLen);
  // Not the loader's checks: code the target's mitigations expect, hooks that decide at run time.
  checkThunks(elf, c, col);
  noteDecidingHooks(elf, abi, col, secOf);

  if (col.errorsAt('upload').length) return finish(undefined, ownId, depends);

  // Uploaded: now the simulated hypervisor holds it.
  const lp: LoadedPayload = {
    name,
    file: input.file,
    buildId: ownId!,
    depends: depends!,
    exports,
    funcs: funcs.map((f) => ({ name: f.name ?? '', oldAddr: f.oldAddr, newAddr: f.newAddr })),
    vetoingHooks: abi.hooks.some((h) => !h.array && h.kind !== 'apply' && h.kind !== 'revert' && hookEnabled(elf, secOf(h.section))),
    elf,
  };
  c.loaded.push(lp);

  // Apply (§2.13): stacking, expectations, REPLACE, safe_to_reapply.
  if (!input.uploadOnly) applyChecks(lp, funcs, { ...c, col, xenBuildId: c.target.buildId });
  return finish(lp, ownId, depends);
}

/** The verdict on one payload from its diagnostics: the first one the hypervisor meets decides. */
function verdictOf(
  input: VerifyInput,
  name: string,
  col: Collector,
  lp?: LoadedPayload,
  buildId?: Uint8Array,
  depends?: Uint8Array,
): Outcome {
  const up = col.errorsAt('upload');
  const ap = col.errorsAt('apply');
  // A crash during the upload (§2.16, Errata) is what the hypervisor meets first: nothing after it runs.
  const crash = col.list.find((d) => d.code === 'CRASH_FUNCS_NOT_ALLOC');
  const first = crash ?? up[0] ?? ap[0];
  if (first) first.first = true;
  const verdict: PayloadVerdict = {
    file: input.file,
    name,
    buildId: buildId ? toHex(buildId) : null,
    depends: depends ? toHex(depends) : null,
    ok: !col.list.some((d) => d.severity === 'error'),
    errno: first ? first.errno : null,
    refusedAt: crash ? null : up.length ? 'upload' : ap.length ? 'apply' : null,
    ...(crash ? { crashAt: 'upload' as const } : {}),
    diagnostics: col.list,
  };
  return lp ? { verdict, loaded: lp } : { verdict };
}

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
