/**
 * Verify, prepare_payload and after (§2.10(b)–(j), §2.11): hooks, build-id notes, special sections
 * (bug frames, alternatives, exception table, .modinfo, alt-call sites), the payload's symbol
 * table, and the checks the loader never makes (bug-frame instruction, return / indirect thunks,
 * hooks that decide at run time).
 */
import { SHF } from '../../elf/constants.js';
import { parseBuildIdNote } from '../../buildid/note.js';
import type { PayloadAbi } from '../abi-types.js';
import { isSkippedMappingSymbol } from '../abi-rows.js';
import { makeDiagnostic } from '../diagnostics.js';
import type { LoaderRules } from '../releases.js';
import { readPtr, sectionAt, type LoadedElf, type SymbolSpace, type XSection } from '../verify-load.js';
import { decodeX86, type Insn } from '../x86-decode.js';
import type { Collector, VerifiedFunc, VerifyContext } from './types.js';

/** x86 MAX_PATCH_LEN (255 - 1) and ALT_FLAG_NOT (1 << 15) [xen/arch/x86/alternative.c, asm/alternative.h]. */
const MAX_PATCH_LEN = 254;
const ALT_FLAG_NOT = 0x8000;

/** Whether a section holds whole entries (a diagnostic when not). */
export function sectionOk(s: XSection, entry: number, col: Collector, silent = false): boolean {
  if (s.size % entry === 0) return true;
  if (silent) col.add('HOOK_ARRAY_SIZE', { section: s.name, size: s.size, entry }, { section: s.name });
  else col.add('SEC_WRONG_SIZE', { section: s.name, size: s.size, entry }, { section: s.name });
  return false;
}

export function hookEnabled(elf: LoadedElf, s: XSection | undefined): boolean {
  if (!s || !s.mem || s.size < (elf.is64 ? 8 : 4)) return false;
  return readPtr(elf, s, 0) !== 0n;
}

/** §2.10(b) hooks. */
export function prepareHooks(
  elf: LoadedElf,
  abi: PayloadAbi,
  r: LoaderRules,
  col: Collector,
  secOf: (n: string) => XSection | undefined,
): void {
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
export function noteOf(s: XSection | undefined, name: string, r: LoaderRules, col: Collector): Uint8Array | undefined {
  if (!s) return undefined;
  const bytes = s.mem ?? s.data;
  const p = parseBuildIdNote(bytes, true);
  if (!p.ok) {
    const errno = r.features.buildIdErrnoPassThrough ? p.errno : 'EINVAL';
    col.list.push(makeDiagnostic('NOTE_BUILD_ID', r, col.name, { section: name, why: p.reason }, { section: name }, { errno }));
    return undefined;
  }
  return p.id;
}

/** §2.10(f)–(j): bug frames, alternatives, exception table, .modinfo, alt-call sites. */
export function prepareSpecial(
  elf: LoadedElf,
  abi: PayloadAbi,
  r: LoaderRules,
  col: Collector,
  secOf: (n: string) => XSection | undefined,
): void {
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
            col.add(
              'ALT_CALL_NOT_RIPREL',
              { addr: site, bytes: Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ') },
              { section: acs.name, offset: o },
            );
            break;
          }
        }
      }
    }
  }
  const ex = secOf('.ex_table');
  if (ex) {
    if (!r.hasExTable) col.add('EX_TABLE_UNSUPPORTED', {}, { section: ex.name });
    else if (!r.features.exTableEmptyOk && ex.size === 0)
      col.add('EX_TABLE_EMPTY', { entry: entry('.ex_table')!, size: 0 }, { section: ex.name });
    else sectionOk(ex, entry('.ex_table')!, col);
  }
  const mi = abi.sections.modinfo ? secOf(abi.sections.modinfo) : undefined;
  if (mi) {
    if (mi.size === 0) col.add('UNCHECKED_MODINFO_EMPTY', {}, { section: mi.name });
    else if ((mi.mem ?? mi.data)[mi.size - 1] !== 0) col.add('MODINFO_FORMAT', {}, { section: mi.name });
  }
}

function checkAlternatives(
  elf: LoadedElf,
  alt: XSection,
  size: number,
  r: LoaderRules,
  col: Collector,
  secOf: (n: string) => XSection | undefined,
): void {
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
        col.add(
          'ALT_ORIG_OUTSIDE',
          { addr: orig, len: origLen, start: elf.textAddr, size: elf.textSize },
          { section: alt.name, offset: o },
        );
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
    const x86Fail: [string, number, string] | undefined = !x86
      ? undefined
      : replLen > total
        ? [
            `Alt for ${at}, replacement size 0x${replLen.toString(16)} larger than origin 0x${total.toString(16)}`,
            -28,
            `replacement length ${replLen} exceeds origin ${origLen} + padding ${padLen}`,
          ]
        : total > MAX_PATCH_LEN
          ? [
              `Alt for ${at}, origin size 0x${total.toString(16)} bigger than buffer 0x${MAX_PATCH_LEN.toString(16)}`,
              -28,
              `origin length ${origLen} + padding ${padLen} exceeds MAX_PATCH_LEN ${MAX_PATCH_LEN}`,
            ]
          : feat >= limit
            ? [
                `Alt for ${at}, feature 0x${feat.toString(16)} outside of featureset range 0x${limit.toString(16)}`,
                -34,
                `feature 0x${feat.toString(16)} is not below NCAPINTS * 32 = 0x${limit.toString(16)}${cpuid & ALT_FLAG_NOT && !r.features.altFlagNot ? ' (ALT_FLAG_NOT, bit 15, is not known to this release)' : ''}`,
              ]
            : undefined;
    if (!r.features.altErrorsReturned) {
      const bad = x86
        ? x86Fail?.[2]
        : replLen !== origLen
          ? `replacement length ${replLen} differs from origin length ${origLen}`
          : undefined;
      const outside =
        !r.features.altStrict && (orig < elf.textAddr || orig + BigInt(origLen) > elf.textAddr + BigInt(elf.textSize))
          ? `origin ${'0x' + orig.toString(16)}+${origLen} is outside the payload text`
          : undefined;
      const why = bad ?? outside;
      if (why) col.add('UNCHECKED_ALT_ENTRY', { entry: i, why }, { section: alt.name, offset: o });
    } else if (x86Fail) {
      const [line, rc] = x86Fail;
      col.list.push(
        makeDiagnostic(
          'ALT_APPLY',
          r,
          col.name,
          { rc },
          { section: alt.name, offset: o },
          { errno: rc === -34 ? 'ERANGE' : 'ENOSPC', before: line },
        ),
      );
      return;
    }
  }
}

const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

/**
 * 4.22+: every x86 `.bug_frames.*` entry points at UDB (d6); before 4.22 at ud2 (0f 0b). The
 * loader does not check it; do_invalid_op does not recognise the other one [Errata].
 */
export function checkBugFrames(elf: LoadedElf, abi: PayloadAbi, r: LoaderRules, col: Collector): void {
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
        col.add(
          'UNCHECKED_BUG_INSTR',
          { section: s.name, entry: i, found: hexBytes(b), addr: at, release: r.version.text, udb: udb ? 1 : undefined },
          { section: s.name, offset: o },
        );
      }
    }
  }
}

/** §2.11: payload symbols, overriding vs new, duplicates; returns the exported symbols. */
export function buildSymbolTable(
  elf: LoadedElf,
  funcs: VerifiedFunc[],
  space: SymbolSpace,
  r: LoaderRules,
  col: Collector,
  maxSymbolLen: number,
): Map<string, bigint> {
  const exports = new Map<string, bigint>();
  const newAddrs = new Set(funcs.map((f) => f.newAddr));
  for (const s of elf.symbols) {
    if (s.index === 0 || s.shndx === 0 || s.shndx >= elf.shnum) continue;
    const sec = elf.sections[s.shndx]!;
    if (!(sec.flags & SHF.ALLOC) || s.name === '') continue;
    if (sec.flags & SHF.MERGE && s.name.startsWith('.L')) continue;
    if (isSkippedMappingSymbol(r.arch, s.name)) continue;
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
export function checkThunks(elf: LoadedElf, c: VerifyContext, col: Collector): void {
  const syms = c.target.symbols;
  if (c.abi.arch !== 'x86_64' || !syms) return;
  const retThunk = syms.find('__x86_return_thunk').length > 0;
  const indThunk = syms.find('__x86_indirect_thunk_rax').length > 0;
  if (!retThunk && !indThunk) return;
  for (const s of elf.sections) {
    if (!(s.flags & SHF.EXECINSTR) || !s.mem || s.size === 0 || s.name === '.altinstr_replacement') continue;
    // Decode only when an opcode byte of interest occurs at all: in the file's bytes, relocated
    // fields are still zero (RELA), so addresses cannot fake one. ret: c3 c2 cb ca; indirect: ff.
    if (
      !s.data.some(
        (x) => (retThunk && (x & 0xfc) === 0xc8 && (x & 2) !== 0) || (retThunk && (x === 0xc3 || x === 0xc2)) || (indThunk && x === 0xff),
      )
    )
      continue;
    const insns: Insn[] = decodeX86(s.mem, s.loadAddr!);
    for (const i of insns) {
      if (retThunk && i.kind === 'ret')
        col.add('NOTE_RETURN_THUNK', { where: placeOf(elf, s, i.offset), insn: i.text }, { section: s.name, offset: i.offset });
      if (indThunk && (i.kind === 'jmp-indirect' || i.kind === 'call-indirect'))
        col.add('NOTE_INDIRECT_THUNK', { where: placeOf(elf, s, i.offset), insn: i.text }, { section: s.name, offset: i.offset });
    }
  }
}

/** Pre-apply / apply (and pre-revert / revert) hooks return the action's result [§1.4, §2.13]. */
export function noteDecidingHooks(elf: LoadedElf, abi: PayloadAbi, col: Collector, secOf: (n: string) => XSection | undefined): void {
  for (const h of abi.hooks) {
    if (h.array || h.note || !['pre-apply', 'apply', 'pre-revert', 'revert'].includes(h.kind)) continue;
    const s = secOf(h.section);
    if (!s || !hookEnabled(elf, s)) continue;
    const target = readPtr(elf, s, 0);
    const fn = elf.symbols.find((y) => y.value === target && (y.info & 0xf) === 2 && y.name);
    col.add(
      'NOTE_HOOK_DECIDES',
      { kind: h.kind, symbol: fn?.name ?? `0x${target.toString(16)}`, action: h.kind.endsWith('revert') ? 'REVERT' : 'APPLY' },
      { section: s.name },
    );
  }
}
