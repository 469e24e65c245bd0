/**
 * The hypervisor's relocation pass, simulated on the loaded copies (payload-format.md §2.8; Xen
 * xen/arch/{x86,arm}/livepatch.c arch_livepatch_perform_rel[a]): which relocation sections it
 * applies, the types each architecture handles, and the checks it makes on each entry.
 */
import { R_X86_64, SHF, SHT } from '../../elf/constants.js';
import { dataView, decodeRecord } from '../../elf/layout.js';
import type { PayloadAbi } from '../abi-types.js';
import { ABS_PTR_RELOC, relocWidth } from '../abi-rows.js';
import type { LoaderRules } from '../releases.js';
import type { LoadedElf, Report } from '../verify-load.js';

interface RelocOutcome {
  ok: boolean;
}

/** Section types that carry relocations the loader does not apply (it applies SHT_RELA and SHT_REL only). */
const IGNORED_RELOC_TYPES: Record<number, string> = {
  [SHT.CREL]: 'SHT_CREL',
  [SHT.RELR]: 'SHT_RELR',
  0x60000001: 'SHT_ANDROID_REL',
  0x60000002: 'SHT_ANDROID_RELA',
  0x6fffff00: 'SHT_ANDROID_RELR',
};

/**
 * §2.8 relocations. Per relocation section Xen stops at its first bad entry; this reports every bad
 * entry (further diagnostics after the first). Values are written into the loaded copies.
 */
export function performRelocs(elf: LoadedElf, abi: PayloadAbi, rules: LoaderRules, report: Report): RelocOutcome {
  let ok = true;
  const nsym = elf.symbols.length;
  for (const r of elf.sections) {
    if (IGNORED_RELOC_TYPES[r.type] !== undefined && r.info > 0 && r.info < elf.shnum) {
      // Xen skips any other section type: relocations packed another way are never applied.
      const target = elf.sections[r.info]!;
      if (target.flags & SHF.ALLOC)
        report('UNCHECKED_RELOC_IGNORED', { section: r.name, type: IGNORED_RELOC_TYPES[r.type], target: target.name }, { section: r.name });
    }
    if (r.index === 0 || (r.type !== SHT.RELA && r.type !== SHT.REL)) continue;
    if (r.info >= elf.shnum) continue;
    if (r.info === 0) {
      // sec[0] has no descriptor: Xen dereferences NULL (§2.16 #2).
      report('UNCHECKED_LINK_ZERO', { section: r.name, field: 'sh_info' }, { section: r.name });
      ok = false;
      continue;
    }
    const base = elf.sections[r.info]!;
    if (!(base.flags & SHF.ALLOC)) continue;
    if (r.link !== elf.symtabIndex) {
      report('RELOC_LINK', { section: r.name, link: r.link, expected: elf.symtabIndex }, { section: r.name });
      ok = false;
      continue;
    }
    const rela = r.type === SHT.RELA;
    const L = rela ? elf.layouts.rela : elf.layouts.rel;
    if (r.size === 0) continue;
    if (rules.features.relocHeaderChecks || rela) {
      if (r.entsize < BigInt(L.size) || BigInt(r.size) % r.entsize !== 0n) {
        report('RELOC_HEADER', {}, { section: r.name });
        ok = false;
        continue;
      }
    }
    if (!rela) {
      if (abi.arch === 'x86_64') {
        report('RELOC_REL_UNSUPPORTED', {}, { section: r.name });
        ok = false;
        continue;
      }
      if (abi.arch === 'arm64') {
        report('RELOC_REL_ARM64', { section: r.name }, { section: r.name });
        ok = false;
        continue;
      }
    }
    if (!base.mem || base.loadAddr === undefined) continue; // 4.8–4.16: zero-size target not loaded
    const ent = Number(r.entsize);
    const n = r.size / ent;
    const dv = dataView(elf.bytes);
    const mem = dataView(base.mem);
    for (let i = 0; i < n; i++) {
      const at = r.offset + i * ent;
      const e = decodeRecord(L, dv, at, true) as Record<string, number | bigint>;
      const info = BigInt(e.r_info!);
      const symndx = elf.is64 ? Number(info >> 32n) : Number(info >> 8n);
      const type = elf.is64 ? Number(info & 0xffffffffn) : Number(info & 0xffn);
      const addend = rela ? BigInt(e.r_addend!) : 0n;
      const roff = BigInt(e.r_offset!);
      const ctx = { section: r.name, offset: i * ent };
      if (rules.features.stnUndefReject) {
        if (symndx === 0) {
          report('RELOC_STN_UNDEF', {}, ctx);
          ok = false;
          continue;
        }
        if (symndx >= nsym) {
          report('RELOC_SYM_PAST_END', { symndx }, ctx);
          ok = false;
          continue;
        }
      } else if (symndx > nsym || symndx === 0) {
        // X–4.9: sym[0] (uninitialised) or one past the end is used: undefined behaviour.
        report(symndx === 0 ? 'RELOC_STN_UNDEF' : 'RELOC_SYM_PAST_END', { symndx }, ctx);
        ok = false;
        continue;
      }
      const sym = elf.symbols[symndx];
      if (!sym) {
        report('RELOC_SYM_PAST_END', { symndx }, ctx);
        ok = false;
        continue;
      }
      if (sym.ignored) {
        report('RELOC_IGNORED_SYMBOL', { symbol: sym.name || `[${symndx}]` }, { ...ctx, symbol: sym.name });
        ok = false;
        continue;
      }
      const S = sym.value;
      const P = base.loadAddr + roff;
      const val = BigInt.asUintN(64, S + addend);
      const inBounds = (w: number): boolean => roff < BigInt(base.size) && roff + BigInt(w) <= BigInt(base.size);
      if (abi.arch === 'x86_64') {
        // The row's relocation set; the cases below are how Xen applies each [§2.8].
        if (!abi.relocTypes.includes(type)) {
          report('RELOC_UNHANDLED', { type }, { ...ctx, symbol: sym.name });
          ok = false;
          continue;
        }
        switch (type) {
          case R_X86_64.NONE:
            break;
          case R_X86_64['64']:
            if (!inBounds(8)) {
              report('RELOC_OFFSET', { section: base.name }, ctx);
              ok = false;
              break;
            }
            mem.setBigUint64(Number(roff), val, true);
            break;
          case R_X86_64.PC32:
          case R_X86_64.PLT32: {
            if (!inBounds(4)) {
              report('RELOC_OFFSET', { section: base.name }, ctx);
              ok = false;
              break;
            }
            const rel = BigInt.asIntN(64, val - P);
            mem.setInt32(Number(roff), Number(BigInt.asIntN(32, rel)), true);
            if (sym.resolved && sym.from !== 'unchecked' && (rel < -(1n << 31n) || rel >= 1n << 31n)) {
              report('RELOC_OVERFLOW', { index: i, rsection: r.name, section: base.name }, { ...ctx, symbol: sym.name });
              ok = false;
            }
            break;
          }
          default:
            report('RELOC_UNHANDLED', { type }, { ...ctx, symbol: sym.name });
            ok = false;
        }
      } else {
        // ARM: offsets and the type list; field encodings are not simulated. arm64 checks
        // r_offset + 4 <= sh_size before the type, and ABS64/PREL64 need 8 bytes [Errata "arm64
        // relocation checks"; xen/arch/arm/arm64/livepatch.c].
        if (abi.arch === 'arm64' && !inBounds(4)) {
          report('RELOC_OFFSET', { section: base.name }, ctx);
          ok = false;
          continue;
        }
        if (!abi.relocTypes.includes(type)) {
          report('RELOC_UNHANDLED', { type }, { ...ctx, symbol: sym.name });
          ok = false;
          continue;
        }
        if (relocWidth(abi.arch, type) === 8 && !inBounds(8)) {
          report('RELOC_OFFSET', { section: base.name }, ctx);
          ok = false;
          continue;
        }
        const w = elf.is64 ? 8 : 4;
        if (type === ABS_PTR_RELOC[abi.arch] && inBounds(w)) {
          if (w === 8) mem.setBigUint64(Number(roff), val, true);
          else mem.setUint32(Number(roff), Number(BigInt.asUintN(32, val)), true);
        }
      }
    }
  }
  return { ok };
}
