/**
 * The hypervisor's ELF loader, simulated on the raw upload bytes: `livepatch_elf_load` (header,
 * section headers, section names, symbols), `move_payload` (placement), symbol resolution and
 * relocation [payload-format.md §2.2–§2.8; Xen xen/common/livepatch_elf.c, xen/common/livepatch.c,
 * xen/arch/x86/livepatch.c]. Checks run in Xen's order on the bytes as Xen reads them (the header in
 * the hypervisor's native class, little-endian), not through the project's ELF reader, so a payload
 * Xen rejects gets exactly Xen's diagnostic rather than a generic format error.
 *
 * Sections that Xen loads get a simulated load address and a private copy of their contents, into
 * which relocations are applied, so later checks (funcs entries, alternatives, symbol export) see
 * the same values the hypervisor would.
 */
import { LAYOUT32, LAYOUT64, decodeRecord, dataView, type ClassLayouts } from '../elf/layout.js';
import { EM, SHF, SHN, SHT } from '../elf/constants.js';
import type { PayloadAbi } from './abi-types.js';
import type { LoaderRules } from './releases.js';
import type { DiagArgs, DiagCode, DiagContext } from './diagnostics.js';

/** Adds one diagnostic; returns nothing. Implemented by verify.ts. */
export type Report = (code: DiagCode, args?: DiagArgs, ctx?: DiagContext) => void;

export interface XSection {
  index: number;
  name: string;
  nameOffset: number;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number;
  /** sh_size as stored (NOBITS sizes may exceed the file). */
  rawSize: bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
  /** File bytes (empty for NOBITS). */
  data: Uint8Array;
  /** Set by placement for loaded (SHF_ALLOC) sections. */
  loadAddr?: bigint;
  /** The loaded copy (relocations applied). */
  mem?: Uint8Array;
  /** 'text' | 'rw' | 'ro' region. */
  region?: 'text' | 'rw' | 'ro';
}

export interface XSymbol {
  index: number;
  name: string;
  nameOffset: number;
  value: bigint;
  size: bigint;
  info: number;
  shndx: number;
  /** 4.17+: defined in a section the loader does not load. */
  ignored: boolean;
  /** SHN_UNDEF that resolved (against the hypervisor or an earlier payload); false when it failed. */
  resolved: boolean;
  /** Where an undefined symbol resolved: 'xen', an earlier payload's name, or 'unchecked'. */
  from?: string;
}

/** What the loader sees of the hypervisor and earlier payloads when resolving names. */
export interface SymbolSpace {
  /** Hypervisor symbol (locals as file#name); undefined when absent; null when the target has no symbol table. */
  xen(name: string): bigint | undefined | null;
  /** Exported symbols of loaded payloads, in upload order. */
  payloads(name: string): { value: bigint; payload: string } | undefined;
}

export interface LoadedElf {
  bytes: Uint8Array;
  layouts: ClassLayouts;
  is64: boolean;
  shnum: number;
  shstrndx: number;
  sections: XSection[];
  symtabIndex: number;
  strtabIndex: number;
  symbols: XSymbol[];
  textAddr: bigint;
  textSize: number;
  rwAddr: bigint;
  rwSize: number;
  roAddr: bigint;
  roSize: number;
  /** First address after this payload's pages. */
  end: bigint;
  /** RW sections with non-zero size (safe_to_reapply). */
  rwSections: XSection[];
}

const PAGE = 4096n;
const pageAlign = (n: bigint): bigint => (n + PAGE - 1n) & ~(PAGE - 1n);
const MAX_SIZE = 2 * 1024 * 1024;

const str = (b: Uint8Array, off: number): string => {
  let e = off;
  while (e < b.length && b[e] !== 0) e++;
  return Buffer.from(b.subarray(off, e)).toString('latin1');
};

/**
 * §2.2–§2.4: header, section headers, names, symbols. Returns undefined after the first error (Xen
 * stops there; nothing later is meaningful).
 */
export function loadElf(bytes: Uint8Array, abi: PayloadAbi, rules: LoaderRules, report: Report): Omit<LoadedElf, 'textAddr' | 'textSize' | 'rwAddr' | 'rwSize' | 'roAddr' | 'roSize' | 'end' | 'rwSections'> | undefined {
  const is64 = abi.elfClass === 64;
  const L = is64 ? LAYOUT64 : LAYOUT32;
  const len = bytes.length;
  const dv = dataView(bytes);
  // §2.2 #1
  if (len < L.ehdr.size) return void report('HDR_SHORT', {}, { offset: 0 });
  // #2
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return void report('HDR_NOT_ELF', {}, { offset: 0 });
  const h = decodeRecord(L.ehdr, dv, 0, true);
  const ident = { cls: bytes[4]!, data: bytes[5]!, version: bytes[6]!, osabi: bytes[7]!, abiversion: bytes[8]! };
  // #3
  if (h.e_version !== 1 || ident.version !== 1 || ident.abiversion !== 0 || (ident.osabi !== 0 && ident.osabi !== 9)
    || h.e_type !== 1 || h.e_phnum !== 0) {
    return void report('HDR_INVALID', {}, { offset: 0 });
  }
  // #4 arch_livepatch_verify_elf
  if (!rules.features.armSupport && abi.arch !== 'x86_64') return void report('HDR_ARCH_UNSUPPORTED', { arch: abi.arch });
  if (abi.arch === 'x86_64') {
    if (h.e_machine !== EM.X86_64 || ident.cls !== 2 || ident.data !== 1) return void report('HDR_MACHINE', {}, { offset: 18 });
  } else if (abi.arch === 'arm64') {
    if (h.e_machine !== EM.AARCH64 || ident.cls !== 2) return void report('HDR_MACHINE', {}, { offset: 18 });
  } else {
    if (h.e_machine !== EM.ARM || ident.cls !== 1) return void report('HDR_MACHINE', {}, { offset: 18 });
    const fl = Number(h.e_flags);
    if ((fl & 0xff000000) !== 0x05000000) return void report('HDR_EABI', { flags: fl }, { offset: 36 });
  }
  const shnum = Number(h.e_shnum);
  const shstrndx = Number(h.e_shstrndx);
  const shoff = BigInt(h.e_shoff);
  const shentsize = Number(h.e_shentsize);
  if (shstrndx === SHN.UNDEF) return void report('HDR_SHSTRNDX_UNDEF');
  if (shnum >= abi.limits.maxSections) return void report('HDR_TOO_MANY_SECTIONS', { shnum });
  if (shstrndx >= shnum) return void report('HDR_SHSTRNDX_PAST_END', { shstrndx, shnum });
  if (shoff >= BigInt(len)) return void report('HDR_BOGUS_SHOFF', {}, { offset: is64 ? 40 : 32 });
  if (shentsize < L.shdr.size) return void report('HDR_SHENTSIZE', { shentsize, expected: L.shdr.size });
  if (Math.floor((len - Number(shoff)) / shentsize) < shnum) return void report('HDR_SHDRS_TRUNCATED');

  // §2.3 elf_resolve_sections
  const sections: XSection[] = [];
  let symtabIndex = 0;
  for (let i = 0; i < shnum; i++) {
    const base = Number(shoff) + i * shentsize;
    const s = decodeRecord(L.shdr, dv, base, true);
    const off = BigInt(s.sh_offset);
    const size = BigInt(s.sh_size);
    const sec: XSection = {
      index: i, name: '', nameOffset: Number(s.sh_name), type: Number(s.sh_type), flags: BigInt(s.sh_flags),
      addr: BigInt(s.sh_addr), offset: off > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(off),
      size: 0, rawSize: size, link: Number(s.sh_link), info: Number(s.sh_info), addralign: BigInt(s.sh_addralign),
      entsize: BigInt(s.sh_entsize), data: new Uint8Array(0),
    };
    sections.push(sec);
    if (i === 0) continue;
    if (off < BigInt(L.ehdr.size)) return void report('SEC_DATA_AT_HEADER', { index: i }, { offset: base });
    if (sec.type !== SHT.NOBITS && (off > BigInt(len) || off + size > BigInt(len))) return void report('SEC_DATA_PAST_END', { index: i }, { offset: base });
    const mask = is64 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
    if (rules.features.alignChecks) {
      if (sec.addralign & ((sec.addralign - 1n) & mask)) return void report('SEC_ALIGN_UNSUPPORTED', { index: i, align: sec.addralign }, { offset: base });
      if (sec.addralign !== 0n && sec.addr % sec.addralign !== 0n) return void report('SEC_ADDR_UNALIGNED', { index: i, addr: sec.addr, align: sec.addralign }, { offset: base });
    }
    if (rules.features.nobitsLimit && abi.limits.maxNobits !== null && (sec.flags & (SHF.WRITE | SHF.ALLOC)) && sec.type === SHT.NOBITS && size > BigInt(abi.limits.maxNobits)) {
      return void report('SEC_NOBITS_TOO_BIG', { index: i, size }, { offset: base });
    }
    if (sec.type !== SHT.NOBITS) {
      sec.size = Number(size);
      sec.data = bytes.subarray(sec.offset, sec.offset + sec.size);
    } else {
      // Loaded NOBITS are ≤ 2 MiB (checked above, 4.8+); others are never touched.
      sec.size = size > BigInt(MAX_SIZE) * 4n ? MAX_SIZE * 4 : Number(size);
    }
    if (sec.type === SHT.SYMTAB) {
      if (symtabIndex) return void report('SYMTAB_MULTIPLE', {}, { offset: base });
      symtabIndex = i;
      if (sec.link >= shnum) return void report('SYMTAB_LINK_PAST_END', { link: sec.link, shnum }, { offset: base });
    }
  }
  if (!symtabIndex) return void report('SYMTAB_MISSING');
  const symtab = sections[symtabIndex]!;
  if (symtab.size === 0 || symtab.entsize < BigInt(L.sym.size) || BigInt(symtab.size) % symtab.entsize !== 0n) {
    return void report('SYMTAB_CORRUPT', {}, { section: `[${symtabIndex}]` });
  }
  const strtabIndex = symtab.link;
  const verifyStrtab = (s: XSection): boolean => s.type === SHT.STRTAB && s.size > 0 && s.data[0] === 0 && s.data[s.size - 1] === 0;
  // sh_link 0: section 0 is never parsed; Xen dereferences its NULL descriptor (§2.16 #2).
  if (strtabIndex === 0) {
    report('UNCHECKED_LINK_ZERO', { section: '.symtab', field: 'sh_link' }, { section: '.symtab' });
    return undefined;
  }
  if (!verifyStrtab(sections[strtabIndex]!)) return void report('STRTAB_CORRUPT', {}, { section: `[${strtabIndex}]` });

  // elf_resolve_section_names
  const shstr = sections[shstrndx]!;
  if (!verifyStrtab(shstr)) return void report('SHSTRTAB_CORRUPT', {}, { section: `[${shstrndx}]` });
  for (let i = 1; i < shnum; i++) {
    const s = sections[i]!;
    if (s.nameOffset >= shstr.size) return void report('SEC_NAME_OUTSIDE', { index: i });
    s.name = str(shstr.data, s.nameOffset);
  }

  // §2.4 elf_get_sym
  const strtab = sections[strtabIndex]!;
  const nsym = Number(BigInt(symtab.size) / symtab.entsize);
  const ent = Number(symtab.entsize);
  const symbols: XSymbol[] = [];
  for (let i = 0; i < nsym; i++) {
    const s = decodeRecord(L.sym, dv, symtab.offset + i * ent, true);
    const sym: XSymbol = {
      index: i, name: '', nameOffset: Number(s.st_name), value: BigInt(s.st_value), size: BigInt(s.st_size),
      info: Number(s.st_info), shndx: Number(s.st_shndx), ignored: false, resolved: true,
    };
    symbols.push(sym);
    if (i === 0) continue;
    if (sym.nameOffset >= strtab.size) return void report('SYM_NAME_OUTSIDE', { index: i }, { section: '.symtab', offset: symtab.offset + i * ent });
    sym.name = str(strtab.data, sym.nameOffset);
    // arm32 denies Thumb mapping symbols (4.8+).
    if (abi.arch === 'arm32' && (sym.name === '$t' || sym.name.startsWith('$t.'))) return void report('SYM_DENIED', { symbol: sym.name }, { symbol: sym.name });
  }
  return { bytes, layouts: L, is64, shnum, shstrndx, sections, symtabIndex, strtabIndex, symbols };
}

/** Whether move_payload loads this section (§2.6). */
export function isLoaded(s: XSection, rules: LoaderRules): boolean {
  if (s.index === 0 || !(s.flags & SHF.ALLOC)) return false;
  // 4.8–4.16 (without the backport): zero-size sections are not loaded.
  if (rules.features.nopPatching && !rules.features.loadZeroSize && s.size === 0) return false;
  return true;
}

/** §2.6 move_payload: regions, addresses, copies. Returns false on the W|X refusal. */
export function placeSections(elf: ReturnType<typeof loadElf> & object, base: bigint, rules: LoaderRules, report: Report): LoadedElf | undefined {
  const sizes = { text: 0n, rw: 0n, ro: 0n };
  const offsets = new Map<number, bigint>();
  for (const s of elf.sections) {
    if (!isLoaded(s, rules)) continue;
    const x = (s.flags & SHF.EXECINSTR) !== 0n;
    const w = (s.flags & SHF.WRITE) !== 0n;
    if (x && w) {
      report('SEC_WRITE_EXEC', { section: s.name }, { section: s.name });
      return undefined;
    }
    const region = x ? 'text' : w ? 'rw' : 'ro';
    s.region = region;
    // ROUNDUP(size, align); ROUNDUP(x, 0) is 0 in Xen's macro (§2.6 caveat).
    const a = s.addralign;
    const off = a === 0n ? 0n : ((sizes[region] + a - 1n) / a) * a;
    offsets.set(s.index, off);
    sizes[region] = off + BigInt(s.size);
  }
  const textAddr = base;
  const rwAddr = textAddr + pageAlign(sizes.text);
  const roAddr = rwAddr + pageAlign(sizes.rw);
  const regionAddr = { text: textAddr, rw: rwAddr, ro: roAddr };
  const rwSections: XSection[] = [];
  for (const s of elf.sections) {
    const off = offsets.get(s.index);
    if (off === undefined) continue;
    s.loadAddr = regionAddr[s.region!] + off;
    s.mem = s.type === SHT.NOBITS ? new Uint8Array(s.size) : Uint8Array.from(s.data);
    if (s.region === 'rw' && s.size) rwSections.push(s);
  }
  const end = pageAlign(roAddr + sizes.ro + PAGE);
  return {
    ...elf, textAddr, textSize: Number(sizes.text), rwAddr, rwSize: Number(sizes.rw), roAddr, roSize: Number(sizes.ro), end, rwSections,
  };
}

/**
 * §2.7 symbol resolution. Xen stops at the first failure; this keeps going so every unknown symbol
 * is listed (each one after the first is a further diagnostic). Returns false if any failed.
 */
export function resolveSymbols(elf: LoadedElf, space: SymbolSpace, rules: LoaderRules, report: Report): boolean {
  let ok = true;
  for (const sym of elf.symbols) {
    if (sym.index === 0) continue;
    const idx = sym.shndx;
    if (idx === SHN.COMMON) {
      report('SYM_COMMON', { symbol: sym.name }, { symbol: sym.name });
      ok = false;
    } else if (idx === SHN.UNDEF) {
      const x = space.xen(sym.name);
      if (x) {
        sym.value = x;
        sym.from = 'xen';
        continue;
      }
      const p = space.payloads(sym.name);
      if (p && p.value) {
        sym.value = p.value;
        sym.from = p.payload;
        continue;
      }
      if (x === null) {
        // No symbol table for the target: cannot tell; give a plausible address inside Xen.
        sym.value = 0xffff82d040200000n;
        sym.from = 'unchecked';
        continue;
      }
      sym.resolved = false;
      report('SYM_UNKNOWN', { symbol: sym.name }, { symbol: sym.name });
      ok = false;
    } else if (idx === SHN.ABS) {
      continue;
    } else if (idx >= SHN.LORESERVE) {
      report('SYM_SHNDX_RESERVED', { shndx: idx }, { symbol: sym.name });
      ok = false;
    } else if (idx >= elf.shnum) {
      report('SYM_SHNDX_PAST_END', { shndx: idx }, { symbol: sym.name });
      ok = false;
    } else {
      const sec = elf.sections[idx]!;
      if (!(sec.flags & SHF.ALLOC)) {
        sym.ignored = rules.features.ignoredSymbolRelocs;
        continue;
      }
      if (sec.loadAddr === undefined) continue; // 4.8–4.16 zero-size section: value left as is
      sym.value = BigInt.asUintN(elf.is64 ? 64 : 32, sym.value + sec.loadAddr);
    }
  }
  return ok;
}

/** A section's loaded copy as a DataView, and the section holding an address. */
export function sectionAt(elf: LoadedElf, addr: bigint, len = 1): XSection | undefined {
  for (const s of elf.sections) {
    if (s.loadAddr === undefined || !s.mem) continue;
    if (addr >= s.loadAddr && addr + BigInt(len) <= s.loadAddr + BigInt(s.size)) return s;
  }
  return undefined;
}

/** Reads a NUL-terminated string at a loaded address (undefined when it is not inside the payload). */
export function stringAt(elf: LoadedElf, addr: bigint): string | undefined {
  const s = sectionAt(elf, addr);
  if (!s) return undefined;
  const off = Number(addr - s.loadAddr!);
  const end = s.mem!.indexOf(0, off);
  if (end < 0) return undefined;
  return Buffer.from(s.mem!.subarray(off, end)).toString('latin1');
}

interface RelocOutcome {
  ok: boolean;
}

/** Section types that carry relocations the loader does not apply (it applies SHT_RELA and SHT_REL only). */
const IGNORED_RELOC_TYPES: Record<number, string> = {
  [SHT.CREL]: 'SHT_CREL', [SHT.RELR]: 'SHT_RELR', 0x60000001: 'SHT_ANDROID_REL', 0x60000002: 'SHT_ANDROID_RELA', 0x6fffff00: 'SHT_ANDROID_RELR',
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
      if (target.flags & SHF.ALLOC) report('UNCHECKED_RELOC_IGNORED', { section: r.name, type: IGNORED_RELOC_TYPES[r.type], target: target.name }, { section: r.name });
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
        if (symndx === 0) { report('RELOC_STN_UNDEF', {}, ctx); ok = false; continue; }
        if (symndx >= nsym) { report('RELOC_SYM_PAST_END', { symndx }, ctx); ok = false; continue; }
      } else if (symndx > nsym || symndx === 0) {
        // X–4.9: sym[0] (uninitialised) or one past the end is used: undefined behaviour.
        report(symndx === 0 ? 'RELOC_STN_UNDEF' : 'RELOC_SYM_PAST_END', { symndx }, ctx); ok = false; continue;
      }
      const sym = elf.symbols[symndx];
      if (!sym) { report('RELOC_SYM_PAST_END', { symndx }, ctx); ok = false; continue; }
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
          case 0: break;
          case 1:
            if (!inBounds(8)) { report('RELOC_OFFSET', { section: base.name }, ctx); ok = false; break; }
            mem.setBigUint64(Number(roff), val, true);
            break;
          case 2: case 4: {
            if (!inBounds(4)) { report('RELOC_OFFSET', { section: base.name }, ctx); ok = false; break; }
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
        if (abi.arch === 'arm64' && !inBounds(4)) { report('RELOC_OFFSET', { section: base.name }, ctx); ok = false; continue; }
        if (!abi.relocTypes.includes(type)) {
          report('RELOC_UNHANDLED', { type }, { ...ctx, symbol: sym.name });
          ok = false;
          continue;
        }
        if (abi.arch === 'arm64' && (type === 257 || type === 260) && !inBounds(8)) { report('RELOC_OFFSET', { section: base.name }, ctx); ok = false; continue; }
        const w = elf.is64 ? 8 : 4;
        if ((type === 257 || type === 2) && inBounds(w)) {
          if (w === 8) mem.setBigUint64(Number(roff), val, true);
          else mem.setUint32(Number(roff), Number(BigInt.asUintN(32, val)), true);
        }
      }
    }
  }
  return { ok };
}

/** Reads a pointer-sized little-endian value from a loaded copy. */
export function readPtr(elf: LoadedElf, s: XSection, off: number): bigint {
  const dv = dataView(s.mem!);
  return elf.is64 ? dv.getBigUint64(off, true) : BigInt(dv.getUint32(off, true));
}
