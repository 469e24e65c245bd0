/**
 * Build checks on the merged objects: what the hypervisor would refuse in the merged objects, before anything
 * is written: the carried sections and their relocations, undefined symbols the target does not
 * define, and new symbols that collide with the hypervisor's (or the payload below's).
 */
import { RefusedError } from '../../errors.js';
import { SHN, SHT, SHF, STT, relocTypeName } from '../../elf/constants.js';
import type { ElfFile } from '../../elf/types.js';
import type { PayloadAbi } from '../abi-types.js';
import { isSkippedMappingSymbol, relocWidth } from '../abi-rows.js';
import type { Target } from '../target.js';
import { F_ALLOC, F_EXEC, F_MERGE, F_TLS, F_WRITE, flagBits, nameOf, refuse, refuseAs, type EntryPlan, type Merged } from './model.js';
import type { BuildInput } from './types.js';

const RELOC_HINT: Record<string, string> = {
  R_X86_64_32S: 'compile with -fpic, as the hypervisor is built (-mcmodel=kernel -fno-pic gives R_X86_64_32S)',
  R_X86_64_32: 'compile with -fpic, as the hypervisor is built',
  R_X86_64_GOTPCREL: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_GOTPCRELX: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_REX_GOTPCRELX: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_PC64: 'use 32-bit PC-relative references (-mcmodel=small/kernel)',
  R_X86_64_TPOFF32: 'the hypervisor has no thread-local storage',
  R_AARCH64_NONE: 'Xen has no case for R_AARCH64_NONE',
  R_ARM_PREL31: 'unwind tables (.ARM.exidx): compile with -fno-unwind-tables -fno-asynchronous-unwind-tables, as Xen is built',
  R_ARM_THM_CALL: 'Thumb code: Xen is built as ARM code (-marm)',
  R_ARM_THM_JUMP24: 'Thumb code: Xen is built as ARM code (-marm)',
};

/** Section names whose entries Xen parses; refused when the row does not list them. */
const ARCH_SPECIAL = /^(\.altinstructions|\.ex_table|\.alt_call_sites|\.bug_frames\.\d+)$/;

/** The carried sections and their relocations. */
export function checkSections(abi: PayloadAbi, merged: Merged, objects: readonly BuildInput[]): void {
  const { secs, syms, resolve } = merged;
  const specialSize = new Map(abi.special.map((s) => [s.section, s.entrySize]));
  // Alternatives need their replacement code (Xen 4.17.4+/4.18+ refuse the payload without it;
  // earlier releases patch from wherever the entries point).
  const alt = secs.find((s) => nameOf(s.spec.name) === '.altinstructions' && (s.spec.data?.length ?? 0) > 0);
  if (alt && specialSize.has('.altinstructions') && !secs.some((s) => nameOf(s.spec.name) === '.altinstr_replacement')) {
    refuseAs(
      'ALT_NO_REPLACEMENT',
      '.altinstructions provided, but no .altinstr_replacement (the hypervisor refuses this from 4.17.4/4.18)',
      { file: objects[alt.obj]!.name, section: '.altinstructions' },
    );
  }
  const allowed = new Set(abi.relocTypes);
  const allocSec = secs.map((s) => (flagBits(s.spec.flags) & F_ALLOC) !== 0);
  for (let si = 0; si < secs.length; si++) {
    const s = secs[si]!;
    const file = objects[s.obj]!.name;
    const name = nameOf(s.spec.name);
    const f = flagBits(s.spec.flags);
    const alloc = allocSec[si]!;
    if ((f & F_WRITE) !== 0 && (f & F_EXEC) !== 0 && alloc) {
      refuseAs('SEC_WRITE_EXEC', 'section is both writable and executable; the hypervisor refuses it ("Not supporting … section")', {
        file,
        section: name,
      });
    }
    if (
      s.spec.type === SHT.NOBITS &&
      (f & (F_WRITE | F_ALLOC)) !== 0 &&
      abi.limits.maxNobits !== null &&
      (s.spec.size ?? 0n) > abi.limits.maxNobits
    ) {
      refuseAs('SEC_NOBITS_TOO_BIG', `SHT_NOBITS section of ${s.spec.size} bytes; the hypervisor takes at most ${abi.limits.maxNobits}`, {
        file,
        section: name,
      });
    }
    if (alloc && (f & F_TLS) !== 0) refuse('BUILD_TLS', 'thread-local storage section: the hypervisor has none', { file, section: name });
    const size = s.spec.type === SHT.NOBITS ? Number(s.spec.size ?? 0n) : (s.spec.data?.length ?? 0);
    const es = specialSize.get(name);
    if (es !== undefined && size % es !== 0) {
      refuseAs('SEC_WRONG_SIZE', `size ${size} is not a multiple of the ${es}-byte entries the hypervisor expects`, {
        file,
        section: name,
        expected: `a multiple of ${es}`,
        found: size,
      });
    }
    if (es === undefined && ARCH_SPECIAL.test(name) && size > 0) {
      // .altinstructions and .ex_table the hypervisor refuses (ALT_UNSUPPORTED, EX_TABLE_UNSUPPORTED);
      // the others it would ignore, leaving what they describe undone.
      const detail = `the target (${abi.id}, ${abi.releases}) does not handle ${name} on ${abi.arch}`;
      if (name === '.altinstructions') refuseAs('ALT_UNSUPPORTED', detail, { file, section: name });
      if (name === '.ex_table') refuseAs('EX_TABLE_UNSUPPORTED', detail, { file, section: name });
      refuse('BUILD_SPECIAL_UNSUPPORTED', detail, { file, section: name });
    }
    if (!s.rel || !alloc) continue; // Xen skips relocations of non-alloc sections (debug info)
    if (!s.rel.rela && !abi.relAllowed) {
      refuseAs('RELOC_REL_UNSUPPORTED', `SHT_REL relocations: the ${abi.arch} loader takes only SHT_RELA`, { file, section: name });
    }
    const dataLen = s.spec.type === SHT.NOBITS ? 0 : (s.spec.data?.length ?? 0);
    const relSyms = s.rel.sym;
    const relEntries = s.rel.entries;
    for (let r = 0; r < relEntries.length; r++) {
      const e = relEntries[r]!;
      const esym = relSyms[r]!;
      if (esym < 0) {
        const tname = relocTypeName(abi.machine, e.type);
        const hint = tname === 'R_ARM_V4BX' ? ' (assemble for ARMv7, e.g. -march=armv7-a, as Xen is built)' : '';
        refuseAs(
          'RELOC_STN_UNDEF',
          `relocation ${tname} at 0x${e.offset.toString(16)} has no symbol (STN_UNDEF); the hypervisor refuses it ("Encountered STN_UNDEF")${hint}`,
          { file, section: name },
        );
      }
      if (!allowed.has(e.type)) {
        const tname = relocTypeName(abi.machine, e.type);
        const hint = RELOC_HINT[tname];
        refuseAs(
          'RELOC_UNHANDLED',
          `relocation type ${tname} (${e.type}) at 0x${e.offset.toString(16)} is not handled by the hypervisor's loader${hint ? `: ${hint}` : ''}`,
          { file, section: name, symbol: syms[resolve(esym)]!.name || undefined },
        );
      }
      const width = relocWidth(abi.arch, e.type);
      if (width > 0 && e.offset > dataLen - width && abi.arch !== 'arm32') {
        // e.offset + width > dataLen
        refuseAs('RELOC_OFFSET', `relocation at 0x${e.offset.toString(16)} runs past the end of the section`, { file, section: name });
      }
      const sym = syms[resolve(esym)]!;
      if (typeof sym.sec === 'number' && !allocSec[sym.sec]) {
        refuseAs(
          'RELOC_IGNORED_SYMBOL',
          `relocation against ${sym.name || nameOf(secs[sym.sec]!.spec.name)}, which lives in a non-SHF_ALLOC section the hypervisor does not load`,
          { file, section: name },
        );
      }
    }
  }
}

/**
 * Undefined symbols must resolve in the target (or the payload below in the stack). Returns
 * the names still undefined after binding, sorted; warns when the target cannot tell.
 */
export function checkUndefined(
  merged: Merged,
  target: Target,
  depPayloadSyms: ReadonlySet<string>,
  hasDependsPayload: boolean,
  objects: readonly BuildInput[],
  warn: (w: string) => void,
): string[] {
  const { syms, undefinedByName } = merged;
  const undefinedNames: string[] = [];
  for (const [name, u] of undefinedByName) {
    if (syms[u]!.alias !== undefined) continue;
    undefinedNames.push(name);
  }
  undefinedNames.sort();
  if (target.symbols) {
    const symbols = target.symbols;
    const missing = undefinedNames.filter((n) => !symbols.has(n) && !depPayloadSyms.has(n));
    if (missing.length) {
      const local = missing.map((n) => {
        try {
          symbols.lookup(n);
          return n;
        } catch (e) {
          return e instanceof RefusedError && e.code === 'SYMBOL_LOCAL' ? `${n} (${e.detail.replace(/^.*?: /, '')})` : n;
        }
      });
      refuseAs(
        'SYM_UNKNOWN',
        `undefined symbol${missing.length > 1 ? 's' : ''} neither the objects nor the target define${hasDependsPayload ? ' (nor the payload it depends on)' : ''}: ${local.join(', ')}; the hypervisor would refuse the upload ("Unknown symbol")`,
        { symbol: missing[0]!, file: objects[syms[undefinedByName.get(missing[0]!)!]!.obj]!.name },
      );
    }
  } else if (undefinedNames.length) {
    warn(`the target is only a build-id: cannot check that the hypervisor defines ${undefinedNames.join(', ')}`);
  }
  return undefinedNames;
}

/** New symbols must not collide with the hypervisor's (or the lower payload's) exported ones. */
export function checkNewSymbols(
  abi: PayloadAbi,
  merged: Merged,
  entries: readonly EntryPlan[],
  target: Target,
  depPayloadSyms: ReadonlySet<string>,
  objects: readonly BuildInput[],
): void {
  if (!target.symbols && !depPayloadSyms.size) return;
  const { secs, syms, resolve } = merged;
  // Section (of the merge) → values of the replacement symbols defined there.
  const overriding = new Map<number, Set<bigint>>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.newSym === null) continue;
    const s = syms[e.newSym]!;
    if (typeof s.sec !== 'number') continue; // only symbols in sections are checked below
    const set = overriding.get(s.sec);
    if (set) set.add(s.spec.value);
    else overriding.set(s.sec, new Set([s.spec.value]));
  }
  for (let i = 0; i < syms.length; i++) {
    const s = syms[i]!;
    if (resolve(i) !== i || typeof s.sec !== 'number' || s.name === '') continue;
    const sf = flagBits(secs[s.sec]!.spec.flags);
    if ((sf & F_ALLOC) === 0) continue;
    if (s.spec.type === STT.SECTION || s.spec.type === STT.FILE) continue;
    if ((sf & F_MERGE) !== 0 && s.name.startsWith('.L')) continue;
    if (isSkippedMappingSymbol(abi.arch, s.name)) continue;
    if (overriding.get(s.sec)?.has(s.spec.value)) continue;
    const nm = s.name.slice(0, abi.limits.maxSymbolLen);
    if (target.symbols?.has(nm) || depPayloadSyms.has(nm)) {
      refuseAs(
        'DUPLICATE_SYMBOL',
        `${s.name} would be a new symbol of the payload, but the ${target.symbols?.has(nm) ? 'hypervisor' : 'payload below'} already has one of that name; the hypervisor would refuse the upload ("duplicate new symbol", -EEXIST) — rename it, or make it the replacement of a --patch`,
        { symbol: s.name, file: objects[s.obj]!.name },
      );
    }
  }
}

/** Symbols a loaded payload exports (Xen's is_payload_symbol rule, without the overriding test). */
export function exportedSymbols(elf: ElfFile): Set<string> {
  const out = new Set<string>();
  for (const s of elf.symbols()) {
    if (s.index === 0 || s.name === '' || s.shndx === SHN.UNDEF || s.shndx >= elf.sections.length) continue;
    const sec = elf.sections[s.shndx]!;
    if ((sec.flags & SHF.ALLOC) === 0n) continue;
    if (s.name.startsWith('.L') && (sec.flags & SHF.MERGE) !== 0n) continue;
    if (s.type === STT.SECTION || s.type === STT.FILE) continue;
    out.add(s.name);
  }
  return out;
}

/** A function symbol `name` that payload `elf` exports (a new symbol Xen makes visible to later payloads). */
export function dependsFunction(elf: ElfFile, name: string): { size: number } | undefined {
  if (!exportedSymbols(elf).has(name)) return undefined;
  const s = elf.symbols().find((y) => y.name === name && y.type === STT.FUNC && y.shndx !== SHN.UNDEF);
  return s ? { size: Number(s.size) } : undefined;
}
