/**
 * A read-only view of one input object with the slice of the ObjectBuilder interface that the
 * build's merge uses (sectionIds, section, group, symbolIds, symbol, relocationsOf), taken straight
 * from the reader: IDs are the ELF indices. It avoids building a throw-away ObjectBuilder per input
 * (the objects are merged into one fresh builder anyway), which matters with thousands of sections.
 */
import { XspliceError } from '../errors.js';
import { SHF, SHN, SHT } from '../elf/constants.js';
import type { ElfFile, SectionId, SectionSpec, SymbolId, SymbolSection, SymbolSpec } from '../elf/types.js';
import type { GroupSpec, RelocationSet } from '../elf/builder.js';
import { modelName } from '../elf/strtab.js';

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
  const skip = new Set<number>([0, h.shstrndx]);
  if (symtab) {
    skip.add(symtab.index);
    skip.add(symtab.link);
  }
  const relocs = elf.relocations();
  for (const r of relocs) skip.add(r.section.index);
  for (const s of elf.sections) {
    if (s.type === SHT.SYMTAB_SHNDX) skip.add(s.index);
    if (s.type === SHT.SYMTAB && s !== symtab) throw new XspliceError('ELF_UNSUPPORTED', 'more than one SHT_SYMTAB section', { file: elf.file, sectionIndex: s.index, section: s.name });
  }
  const ids: SectionId[] = [];
  const specs = new Map<number, SectionSpec>();
  const infoLinks = new Map<number, SectionId>();
  for (const s of elf.sections) {
    if (skip.has(s.index)) continue;
    const spec: SectionSpec = { name: modelName(s), type: s.type, flags: s.flags, addralign: s.addralign, entsize: s.entsize, addr: s.addr, info: s.info };
    if (s.type === SHT.NOBITS) spec.size = s.size;
    else spec.data = s.data();
    if (s.link !== 0 && !skip.has(s.link)) spec.link = s.link as SectionId;
    if ((s.flags & SHF.INFO_LINK) !== 0n && s.info !== 0) {
      delete spec.info;
      if (!skip.has(s.info) && s.info < elf.sections.length) infoLinks.set(s.index, s.info as SectionId);
    }
    specs.set(s.index, spec);
    ids.push(s.index as SectionId);
  }
  const groups = new Map<number, GroupSpec>();
  for (const g of elf.groups()) {
    groups.set(g.section, { signature: g.signature as SymbolId, flags: g.flags, members: g.members.filter((m) => specs.has(m)) as SectionId[] });
  }
  const syms = symtab ? elf.symbols(symtab) : [];
  const symIds: SymbolId[] = [];
  for (let i = 1; i < syms.length; i++) symIds.push(i as SymbolId);
  const relBy = new Map<number, RelocationSet>();
  for (const r of relocs) {
    if (!specs.has(r.target)) {
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
      entries: r.entries.map((e) => ({ offset: e.offset, type: e.type, symbol: e.symbol as SymbolId | 0, addend: e.addend ?? 0n })),
    });
  }
  return {
    sectionIds: () => ids,
    section: (id) => specs.get(id)!,
    group: (id) => groups.get(id),
    symbolIds: () => symIds,
    symbol: (id) => {
      const y = syms[id]!;
      let section: SymbolSection;
      if (y.shndx === SHN.UNDEF) section = 'UND';
      else if (y.shndx === SHN.ABS) section = 'ABS';
      else if (y.shndx === SHN.COMMON) section = 'COM';
      else if (specs.has(y.shndx) || groups.has(y.shndx)) section = y.shndx as SectionId;
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
