/**
 * A read-only view of one input object with the slice of the ObjectBuilder interface that the
 * build's merge uses (sectionIds, section, group, symbolIds, symbol, relocationsOf), taken straight
 * from the reader: IDs are the ELF indices. It avoids building a throw-away ObjectBuilder per input
 * (the objects are merged into one fresh builder anyway), which matters with thousands of sections.
 */
import { XspliceError } from '../errors.js';
import { SHF, SHN, SHT } from '../elf/constants.js';
import type { ElfFile, RelocationSpec, SectionId, SectionSpec, SymbolId, SymbolSection, SymbolSpec } from '../elf/types.js';
import type { GroupSpec, RelocationSet } from '../elf/builder.js';
import { modelName } from '../elf/strtab.js';

/** The view's specs are made for one build: the caller may adjust them in place. */
export interface InputView {
  sectionIds(): SectionId[];
  section(id: SectionId): SectionSpec;
  group(id: SectionId): GroupSpec | undefined;
  symbolIds(): SymbolId[];
  symbol(id: SymbolId): SymbolSpec;
  relocationsOf(id: SectionId): RelocationSet | undefined;
  /** sh_info of an SHF_INFO_LINK section (not a relocation section) as a section reference. */
  infoLinkOf(id: SectionId): SectionId | undefined;
}

export function inputView(elf: ElfFile): InputView {
  const h = elf.header;
  if (elf.programHeaders.length > 0) {
    throw new XspliceError('ELF_UNSUPPORTED', 'objects with program headers cannot be carried (only relocatable objects)', { file: elf.file });
  }
  const symtab = elf.symtabSection();
  const nsec = elf.sections.length;
  // Sections the writer rebuilds (indexed by ELF index; 1 = not carried).
  const skip = new Uint8Array(Math.max(nsec, h.shstrndx + 1));
  skip[0] = 1;
  skip[h.shstrndx] = 1;
  if (symtab) {
    skip[symtab.index] = 1;
    if (symtab.link < nsec) skip[symtab.link] = 1;
  }
  const relocs = elf.relocations();
  for (const r of relocs) skip[r.section.index] = 1;
  const elfSections = elf.sections;
  for (let k = 0; k < elfSections.length; k++) {
    const s = elfSections[k]!;
    if (s.type === SHT.SYMTAB_SHNDX) skip[s.index] = 1;
    if (s.type === SHT.SYMTAB && s !== symtab) throw new XspliceError('ELF_UNSUPPORTED', 'more than one SHT_SYMTAB section', { file: elf.file, sectionIndex: s.index, section: s.name });
  }
  const skipped = (i: number): boolean => i < skip.length && skip[i] === 1;
  const ids: SectionId[] = [];
  // By ELF index (IDs are ELF indices): undefined for sections that are not carried.
  const specs: (SectionSpec | undefined)[] = new Array(nsec);
  const infoLinks = new Map<number, SectionId>();
  const infoLink = Number(SHF.INFO_LINK);
  for (let k = 0; k < elfSections.length; k++) {
    const s = elfSections[k]!;
    if (skip[s.index] === 1) continue;
    const f = s.flags;
    const isInfoLink = s.info !== 0 && (Number(f <= 0xffffffffn ? f : BigInt.asUintN(32, f)) & infoLink) !== 0;
    // sh_info of an SHF_INFO_LINK section becomes a reference (below), not a raw number.
    const spec: SectionSpec = isInfoLink
      ? { name: modelName(s), type: s.type, flags: f, addralign: s.addralign, entsize: s.entsize, addr: s.addr }
      : { name: modelName(s), type: s.type, flags: f, addralign: s.addralign, entsize: s.entsize, addr: s.addr, info: s.info };
    if (s.type === SHT.NOBITS) spec.size = s.size;
    else spec.data = s.data();
    if (s.link !== 0 && !skipped(s.link)) spec.link = s.link as SectionId;
    if (isInfoLink && !skipped(s.info) && s.info < nsec) infoLinks.set(s.index, s.info as SectionId);
    specs[s.index] = spec;
    ids.push(s.index as SectionId);
  }
  const has = (i: number): boolean => i < nsec && specs[i] !== undefined;
  const groups = new Map<number, GroupSpec>();
  for (const g of elf.groups()) {
    groups.set(g.section, { signature: g.signature as SymbolId, flags: g.flags, members: g.members.filter((m) => has(m)) as SectionId[] });
  }
  const syms = symtab ? elf.symbols(symtab) : [];
  const symIds: SymbolId[] = [];
  for (let i = 1; i < syms.length; i++) symIds.push(i as SymbolId);
  const relBy = new Map<number, RelocationSet>();
  for (let k = 0; k < relocs.length; k++) {
    const r = relocs[k]!;
    if (!has(r.target)) {
      throw new XspliceError('ELF_UNSUPPORTED', `relocation section applies to section ${r.target}, which is not carried`, { file: elf.file, sectionIndex: r.section.index, section: r.section.name });
    }
    if (relBy.has(r.target)) throw new XspliceError('ELF_UNSUPPORTED', 'a second relocation section for the same target', { file: elf.file, sectionIndex: r.section.index, section: r.section.name });
    if (r.entries.length > 0 && (!symtab || r.symtab !== symtab.index)) {
      throw new XspliceError('ELF_UNSUPPORTED', 'relocation section does not use .symtab', { file: elf.file, sectionIndex: r.section.index, section: r.section.name });
    }
    relBy.set(r.target, {
      rela: r.rela,
      name: modelName(r.section),
      flags: r.section.flags,
      // The reader's RELA entries already have this shape (offset, type, symbol = ELF index = ID,
      // a bigint addend): they are handed over as they are, read-only. REL entries get addend 0.
      entries: r.rela
        ? (r.entries as readonly RelocationSpec[] as RelocationSpec[])
        : r.entries.map((e) => ({ offset: e.offset, type: e.type, symbol: e.symbol as SymbolId | 0, addend: e.addend ?? 0n })),
    });
  }
  return {
    sectionIds: () => ids,
    section: (id) => specs[id]!,
    group: (id) => groups.get(id),
    symbolIds: () => symIds,
    symbol: (id) => {
      const y = syms[id]!;
      let section: SymbolSection;
      if (y.shndx === SHN.UNDEF) section = 'UND';
      else if (y.shndx === SHN.ABS) section = 'ABS';
      else if (y.shndx === SHN.COMMON) section = 'COM';
      else if (has(y.shndx) || groups.has(y.shndx)) section = y.shndx as SectionId;
      else {
        throw new XspliceError('ELF_UNSUPPORTED', `symbol's section index ${y.shndx} is reserved or not a carried section`, {
          file: elf.file, symbol: y.name, section: '.symtab', ...(symtab ? { sectionIndex: symtab.index } : {}),
        });
      }
      return { name: modelName(y), bind: y.bind, type: y.type, other: y.other, section, value: y.value, size: y.size };
    },
    relocationsOf: (id) => relBy.get(id),
    infoLinkOf: (id) => infoLinks.get(id),
  };
}
