/**
 * The hypervisor's ELF loader, simulated on the raw upload bytes: `livepatch_elf_load` (header,
 * section headers, section names, symbols), `move_payload` (placement) and symbol resolution
 * [payload-format.md §2.2–§2.7; Xen xen/common/livepatch_elf.c, xen/common/livepatch.c]; the
 * relocation pass (§2.8) is verify/relocate.ts. Checks run in Xen's order on the bytes as Xen
 * reads them (the header in the hypervisor's native class, little-endian), not through the
 * project's ELF reader, so a payload Xen rejects gets exactly Xen's diagnostic rather than a
 * generic format error.
 *
 * Sections that Xen loads get a simulated load address and a private copy of their contents, into
 * which relocations are applied, so later checks (funcs entries, alternatives, symbol export) see
 * the same values the hypervisor would.
 *
 * Why one file: loading, placement and symbol resolution are consecutive stages of Xen's loader
 * over the one LoadedElf model defined here; relocation is already its own module.
 */
import { LAYOUT32, LAYOUT64, decodeRecord, dataView, type ClassLayouts } from '../elf/layout.js';
import { EM, SHF, SHN, SHT } from '../elf/constants.js';
import type { PayloadAbi } from './abi-types.js';
import { isDeniedMappingSymbol } from './abi-rows.js';
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
export function loadElf(
  bytes: Uint8Array,
  abi: PayloadAbi,
  rules: LoaderRules,
  report: Report,
): Omit<LoadedElf, 'textAddr' | 'textSize' | 'rwAddr' | 'rwSize' | 'roAddr' | 'roSize' | 'end' | 'rwSections'> | undefined {
  const is64 = abi.elfClass === 64;
  const L = is64 ? LAYOUT64 : LAYOUT32;
  const len = bytes.length;
  const dv = dataView(bytes);
  // §2.2 #1
  if (len < L.ehdr.size) return void report('HDR_SHORT', {}, { offset: 0 });
  // #2
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46)
    return void report('HDR_NOT_ELF', {}, { offset: 0 });
  const h = decodeRecord(L.ehdr, dv, 0, true);
  const ident = { cls: bytes[4]!, data: bytes[5]!, version: bytes[6]!, osabi: bytes[7]!, abiversion: bytes[8]! };
  // #3
  if (
    h.e_version !== 1 ||
    ident.version !== 1 ||
    ident.abiversion !== 0 ||
    (ident.osabi !== 0 && ident.osabi !== 9) ||
    h.e_type !== 1 ||
    h.e_phnum !== 0
  ) {
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
      index: i,
      name: '',
      nameOffset: Number(s.sh_name),
      type: Number(s.sh_type),
      flags: BigInt(s.sh_flags),
      addr: BigInt(s.sh_addr),
      offset: off > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(off),
      size: 0,
      rawSize: size,
      link: Number(s.sh_link),
      info: Number(s.sh_info),
      addralign: BigInt(s.sh_addralign),
      entsize: BigInt(s.sh_entsize),
      data: new Uint8Array(0),
    };
    sections.push(sec);
    if (i === 0) continue;
    if (off < BigInt(L.ehdr.size)) return void report('SEC_DATA_AT_HEADER', { index: i }, { offset: base });
    if (sec.type !== SHT.NOBITS && (off > BigInt(len) || off + size > BigInt(len)))
      return void report('SEC_DATA_PAST_END', { index: i }, { offset: base });
    const mask = is64 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
    if (rules.features.alignChecks) {
      if (sec.addralign & ((sec.addralign - 1n) & mask))
        return void report('SEC_ALIGN_UNSUPPORTED', { index: i, align: sec.addralign }, { offset: base });
      if (sec.addralign !== 0n && sec.addr % sec.addralign !== 0n)
        return void report('SEC_ADDR_UNALIGNED', { index: i, addr: sec.addr, align: sec.addralign }, { offset: base });
    }
    if (
      rules.features.nobitsLimit &&
      abi.limits.maxNobits !== null &&
      sec.flags & (SHF.WRITE | SHF.ALLOC) &&
      sec.type === SHT.NOBITS &&
      size > BigInt(abi.limits.maxNobits)
    ) {
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
      index: i,
      name: '',
      nameOffset: Number(s.st_name),
      value: BigInt(s.st_value),
      size: BigInt(s.st_size),
      info: Number(s.st_info),
      shndx: Number(s.st_shndx),
      ignored: false,
      resolved: true,
    };
    symbols.push(sym);
    if (i === 0) continue;
    if (sym.nameOffset >= strtab.size)
      return void report('SYM_NAME_OUTSIDE', { index: i }, { section: '.symtab', offset: symtab.offset + i * ent });
    sym.name = str(strtab.data, sym.nameOffset);
    if (isDeniedMappingSymbol(abi.arch, sym.name)) return void report('SYM_DENIED', { symbol: sym.name }, { symbol: sym.name });
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
export function placeSections(
  elf: ReturnType<typeof loadElf> & object,
  base: bigint,
  rules: LoaderRules,
  report: Report,
): LoadedElf | undefined {
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
    ...elf,
    textAddr,
    textSize: Number(sizes.text),
    rwAddr,
    rwSize: Number(sizes.rw),
    roAddr,
    roSize: Number(sizes.ro),
    end,
    rwSections,
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

/** Reads a pointer-sized little-endian value from a loaded copy. */
export function readPtr(elf: LoadedElf, s: XSection, off: number): bigint {
  const dv = dataView(s.mem!);
  return elf.is64 ? dv.getBigUint64(off, true) : BigInt(dv.getUint32(off, true));
}
