/**
 * Verify, upload (§2.1–§2.9, §2.16): the hypercall's arguments, the notes and unchecked
 * requirements read from the section headers, `.livepatch.xen_depends` before anything is loaded
 * (4.18.4+), the symbol space relocations resolve in, and check_special_sections.
 */
import { basename } from 'node:path';
import { SHF, SHT } from '../../elf/constants.js';
import { equalBytes, parseBuildIdNote, toHex } from '../../buildid/note.js';
import type { PayloadAbi } from '../abi-types.js';
import type { LoaderRules } from '../releases.js';
import type { SymbolSpace, XSection } from '../verify-load.js';
import type { Collector, VerifyContext, VerifyInput } from './types.js';

export function uploadName(file: string): string {
  const b = basename(file);
  const dot = b.lastIndexOf('.');
  return dot > 0 ? b.slice(0, dot) : b;
}

function isSpecial(abi: PayloadAbi, name: string): boolean {
  return Object.values(abi.sections).includes(name) || abi.special.some((s) => s.section === name) || name === '.altinstr_replacement';
}

/** §2.16 #1, #3: special sections that are not SHF_ALLOC, loaded sections with sh_addralign 0. */
export function uncheckedSections(sections: XSection[], abi: PayloadAbi, r: LoaderRules, report: Collector['add']): void {
  const special = new Set<string>([
    abi.sections.funcs,
    abi.sections.depends,
    abi.sections.buildId,
    ...(abi.sections.modinfo ? [abi.sections.modinfo] : []),
    ...abi.hooks.map((h) => h.section),
    ...(abi.sections.xenDepends && !r.features.xenDependsFirst ? [abi.sections.xenDepends] : []),
  ]);
  const firstOf = new Map<string, XSection>();
  for (const s of sections) if (s.index > 0 && !firstOf.has(s.name)) firstOf.set(s.name, s);
  for (const n of special) {
    const s = firstOf.get(n);
    if (!s) continue;
    if (!(s.flags & SHF.ALLOC)) {
      report(
        'UNCHECKED_NOT_ALLOC',
        {
          section: n,
          how: r.features.nonAllocBufferPointer
            ? 'a pointer into the upload buffer, freed when the upload returns: use-after-free'
            : undefined,
        },
        { section: n },
      );
    } else if (
      s.rawSize === 0n &&
      r.features.nopPatching &&
      !r.features.loadZeroSize &&
      n !== abi.sections.funcs &&
      !abi.hooks.some((h) => h.section === n)
    ) {
      report('UNCHECKED_ZERO_SIZE_SPECIAL', { section: n }, { section: n });
    }
  }
  for (const s of sections) {
    if (s.index === 0 || !(s.flags & SHF.ALLOC) || s.addralign !== 0n) continue;
    if (s.rawSize === 0n && r.features.nopPatching && !r.features.loadZeroSize) continue;
    report('UNCHECKED_ALIGN_ZERO', { section: s.name }, { section: s.name });
  }
}

/** §2.1: the hypercall's arguments (name, size), a hypervisor without live patching, a name in use. */
export function checkUpload(input: VerifyInput, name: string, c: VerifyContext, report: Collector['add']): boolean {
  const nameLen = Buffer.byteLength(name, 'latin1');
  if (nameLen === 0 || nameLen > c.abi.limits.maxNameLen) {
    report('UPLOAD_NAME', { name });
    return false;
  }
  const uploadSize = input.size ?? input.bytes.length;
  if (uploadSize === 0 || uploadSize > c.abi.limits.maxPayloadSize) {
    report('UPLOAD_SIZE', { size: uploadSize });
    return false;
  }
  // A hypervisor built without CONFIG_LIVEPATCH answers the sysctl itself with ENOSYS. Told by a
  // full symbol table (a linked xen-syms has thousands of symbols) that lacks livepatch_op.
  const syms = c.target.symbols as { find(n: string): unknown[]; size?: number } | undefined;
  if (syms && (syms.size ?? 0) > 1000 && syms.find('livepatch_op').length === 0) {
    report('NO_LIVEPATCH');
    return false;
  }
  const dup = c.loaded.find((p) => p.name === name);
  if (dup) {
    report('DUPLICATE_NAME', { name, other: dup.file });
    return false;
  }
  return true;
}

/** Notes on duplicate section names of special sections (never rejected, §2.9). */
export function noteDuplicateSections(sections: readonly XSection[], abi: PayloadAbi, report: Collector['add']): void {
  const seen = new Map<string, number>();
  for (const s of sections) {
    if (s.index === 0 || !s.name) continue;
    const prev = seen.get(s.name);
    if (prev !== undefined && isSpecial(abi, s.name))
      report('NOTE_DUPLICATE_SECTION', { section: s.name, index: prev }, { section: s.name });
    else if (prev === undefined) seen.set(s.name, s.index);
  }
}

/** (b) 4.20+ (and 4.18.4+, 4.19.1+): `.livepatch.xen_depends` before anything is loaded. False: refused. */
export function checkXenDependsFirst(sec: XSection | undefined, c: VerifyContext, report: Collector['add']): boolean {
  const { abi, rules: r } = c;
  if (!abi.sections.xenDepends || !r.features.xenDependsFirst) return true;
  if (!sec) {
    report('XEN_DEPENDS_MISSING', {}, { section: abi.sections.xenDepends });
    return false;
  }
  const p =
    sec.type === SHT.NOBITS ? { ok: false as const, errno: 'EINVAL' as const, reason: 'SHT_NOBITS' } : parseBuildIdNote(sec.data, true);
  if (!p.ok) {
    report('XEN_DEPENDS_PARSE', { rc: -(p.errno === 'ENODATA' ? 61 : 22) }, { section: sec.name });
    return false;
  }
  if (!c.target.buildId) {
    // 4.18.4–4.20 print xen_build_id()'s -ENODATA; 4.21+ print parse_buildid's rc, 0 [Errata].
    report('XEN_BUILD_ID_UNAVAILABLE', { rc: r.features.xenBuildIdVariables ? 0 : -61 });
    return false;
  }
  if (!equalBytes(p.id, c.target.buildId)) {
    report('XEN_DEPENDS_MISMATCH', { found: toHex(p.id), expected: toHex(c.target.buildId) }, { section: sec.name });
    return false;
  }
  return true;
}

/** (h) 4.14–4.19: `.livepatch.xen_depends` compared after prepare_payload. */
export function checkXenDependsAfter(xenDep: Uint8Array | undefined, c: VerifyContext, report: Collector['add']): void {
  if (!xenDep || c.rules.features.xenDependsFirst) return;
  if (!c.target.buildId) report('XEN_NO_BUILD_ID');
  else if (!equalBytes(xenDep, c.target.buildId))
    report('XEN_DEPENDS_MISMATCH', { found: toHex(xenDep), expected: toHex(c.target.buildId) }, { section: c.abi.sections.xenDepends! });
}

/** Where the payload's undefined symbols resolve: the hypervisor's table, then the loaded payloads' exports. */
export function symbolSpace(c: VerifyContext): SymbolSpace {
  return {
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
}

/** (f) check_special_sections (+ check_patching_sections, 4.14+). */
export function checkSpecialSections(
  abi: PayloadAbi,
  r: LoaderRules,
  secOf: (n: string) => XSection | undefined,
  report: Collector['add'],
): void {
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
}

/**
 * (g) A .livepatch.funcs without SHF_ALLOC has no load address (NULL up to 4.18.3 / 4.19.0;
 * uninitialised before 4.10): reading its first entry faults [Errata]. True: the hypervisor crashes.
 */
export function crashesOnFuncs(sec: XSection | undefined, r: LoaderRules, col: Collector): boolean {
  if (!sec || sec.flags & SHF.ALLOC || sec.size === 0 || r.features.nonAllocBufferPointer || col.errorsAt('upload').length) return false;
  col.add('CRASH_FUNCS_NOT_ALLOC', { section: sec.name, where: r.features.alignChecks ? 'NULL' : 'uninitialised' }, { section: sec.name });
  return true;
}
