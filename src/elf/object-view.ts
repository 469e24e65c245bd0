/**
 * The one converter from a relocatable object read by `readElf` to the model's vocabulary
 * (SectionSpec, SymbolSpec, GroupSpec, RelocationSet). `ObjectBuilder.fromElf` (read → model →
 * write) and the payload build's merge both use it, so what a section, a symbol's section or a
 * relocation becomes is decided here once.
 *
 * The view is read-only and cheap: IDs are the input's ELF indices (sections and symbols), nothing
 * is copied (section contents are views into the input, RELA entries are the reader's own), and
 * symbols are converted when asked for. The sections the writer rebuilds (the null section,
 * .shstrtab, .symtab and its string table, .symtab_shndx, SHT_REL/SHT_RELA) are not carried: they
 * become the model's symbols and relocations.
 *
 * A reference from a carried section to one that is not carried (sh_link, an SHF_INFO_LINK
 * sh_info, a group member other than a relocation section) cannot be expressed in the model: the
 * view leaves it out and lists it in `lostReferences`. Whoever consumes the view decides: a round
 * trip refuses (it would lose information), the payload build drops the link (the hypervisor
 * loads the payload, it does not link it).
 */
import { XspliceError } from '../errors.js';
import { SHF, SHN, SHT } from './constants.js';
import { isAsciiName, modelName } from './strtab.js';
import type {
  ElfFile,
  ElfSection,
  GroupSpec,
  RelocationSet,
  RelocationSpec,
  SectionId,
  SectionSpec,
  SymbolId,
  SymbolSection,
  SymbolSpec,
} from './types.js';

/** A reference the model cannot carry (see the module comment). */
export interface LostReference {
  /** The carried section holding the reference (a group section for 'group member'). */
  from: ElfSection;
  field: 'sh_link' | 'sh_info' | 'group member';
  /** ELF index of the section it names. */
  to: number;
}

export interface ObjectView {
  /** ELF indices of the carried sections, in file order. */
  sectionIds(): readonly SectionId[];
  /**
   * The spec of a carried section; made for this view alone, so the caller may adjust it in
   * place. `info` is left out for SHT_GROUP (the signature is `group(id).signature`) and for
   * SHF_INFO_LINK sections (the reference is `infoLinkOf(id)`).
   */
  section(id: SectionId): SectionSpec;
  /** For a carried SHT_GROUP section: signature, flags and carried members. */
  group(id: SectionId): GroupSpec | undefined;
  /** ELF indices of the symbols of .symtab, symbol 0 excluded. */
  symbolIds(): readonly SymbolId[];
  /**
   * A symbol as the model sees it (a fresh object per call). Its section comes from the stored
   * st_shndx: SHN_UNDEF, SHN_ABS and SHN_COMMON are the specials, SHN_XINDEX leads to the real
   * index (which may be 0xfff1 or 0xfff2: a section, not ABS or COMMON), any other reserved
   * index, or a section that is not carried, is refused (ELF_UNSUPPORTED).
   */
  symbol(id: SymbolId): SymbolSpec;
  /** The relocations that apply to a carried section. The name is given only when it is not the default. */
  relocationsOf(id: SectionId): RelocationSet | undefined;
  /** sh_info of an SHF_INFO_LINK section (not a relocation section) as a section reference. */
  infoLinkOf(id: SectionId): SectionId | undefined;
  /** References to sections that are not carried, in file order. */
  readonly lostReferences: readonly LostReference[];
}

function unsupported(detail: string, sec: ElfSection | undefined, file: string | undefined): never {
  throw new XspliceError('ELF_UNSUPPORTED', detail, sec ? { file, sectionIndex: sec.index, section: sec.name } : { file });
}

/** Whether `name` is `prefix` followed by `target` (byte for byte). */
function isDefaultRelocName(prefix: string, sec: ElfSection, target: ElfSection): boolean {
  if (isAsciiName(sec.name) && isAsciiName(target.name)) return sec.name === prefix + target.name;
  const own = sec.nameBytes;
  const tname = target.nameBytes;
  if (own.length !== prefix.length + tname.length) return false;
  for (let i = 0; i < prefix.length; i++) if (own[i] !== prefix.charCodeAt(i)) return false;
  for (let i = 0; i < tname.length; i++) if (own[prefix.length + i] !== tname[i]) return false;
  return true;
}

export function objectView(elf: ElfFile): ObjectView {
  const h = elf.header;
  const file = elf.file;
  if (elf.programHeaders.length > 0)
    unsupported('objects with program headers cannot be carried (only relocatable objects)', undefined, file);
  const symtab = elf.symtabSection();
  const sections = elf.sections;
  const nsec = sections.length;

  // Sections the writer rebuilds, by ELF index (1 = not carried).
  const rebuilt = new Uint8Array(Math.max(nsec, h.shstrndx + 1));
  rebuilt[0] = 1;
  rebuilt[h.shstrndx] = 1;
  if (symtab) {
    rebuilt[symtab.index] = 1;
    if (symtab.link < nsec) rebuilt[symtab.link] = 1;
  }
  const relocs = elf.relocations();
  for (let i = 0; i < relocs.length; i++) rebuilt[relocs[i]!.section.index] = 1;
  for (let i = 0; i < nsec; i++) {
    const s = sections[i]!;
    if (s.type === SHT.SYMTAB_SHNDX) rebuilt[s.index] = 1;
    if (s.type === SHT.SYMTAB && s !== symtab) unsupported('more than one SHT_SYMTAB section', s, file);
  }

  const ids: SectionId[] = [];
  // By ELF index: undefined for sections that are not carried.
  const specs: (SectionSpec | undefined)[] = new Array(nsec);
  for (let i = 0; i < nsec; i++) {
    const s = sections[i]!;
    if (rebuilt[s.index] === 1) continue;
    const spec: SectionSpec = {
      name: modelName(s),
      type: s.type,
      flags: s.flags,
      addralign: s.addralign,
      entsize: s.entsize,
      addr: s.addr,
    };
    if (s.type === SHT.NOBITS) spec.size = s.size;
    else spec.data = s.data();
    specs[s.index] = spec;
    ids.push(s.index as SectionId);
  }
  const carried = (i: number): boolean => i < nsec && specs[i] !== undefined;

  const lostReferences: LostReference[] = [];
  const infoLinks = new Map<number, SectionId>();
  const infoLinkBit = Number(SHF.INFO_LINK);
  for (let i = 0; i < ids.length; i++) {
    const s = sections[ids[i]!]!;
    const spec = specs[s.index]!;
    // A group's sh_link and sh_info (its symbol table and signature) are the writer's to set.
    if (s.type === SHT.GROUP) continue;
    if (s.link !== 0) {
      if (carried(s.link)) spec.link = s.link as SectionId;
      else lostReferences.push({ from: s, field: 'sh_link', to: s.link });
    }
    // sh_flags tested as a number: a bigint `&` allocates (the flag is in the low 32 bits).
    const f = s.flags;
    const isInfoLink = s.info !== 0 && (Number(f <= 0xffffffffn ? f : BigInt.asUintN(32, f)) & infoLinkBit) !== 0;
    if (!isInfoLink) spec.info = s.info;
    else if (carried(s.info)) infoLinks.set(s.index, s.info as SectionId);
    else lostReferences.push({ from: s, field: 'sh_info', to: s.info });
  }

  const relBy = new Map<number, RelocationSet>();
  const isRelocSection = new Uint8Array(nsec);
  for (let i = 0; i < relocs.length; i++) {
    const r = relocs[i]!;
    isRelocSection[r.section.index] = 1;
    if (!carried(r.target)) unsupported(`relocation section applies to section ${r.target}, which is not carried`, r.section, file);
    if (relBy.has(r.target)) unsupported('a second relocation section for the same target', r.section, file);
    if (r.entries.length > 0 && (!symtab || r.symtab !== symtab.index))
      unsupported('relocation section does not use .symtab', r.section, file);
    const set: RelocationSet = {
      rela: r.rela,
      // The reader's RELA entries already have the model's shape (symbol = ELF index = ID, a
      // bigint addend): handed over as they are, read-only. REL entries get addend 0.
      entries: r.rela
        ? (r.entries as readonly RelocationSpec[] as RelocationSpec[])
        : r.entries.map((e) => ({ offset: e.offset, type: e.type, symbol: e.symbol as SymbolId | 0, addend: 0n })),
      flags: r.section.flags,
    };
    // The name is kept only when it is not the default, so renaming the target renames it too.
    if (!isDefaultRelocName(r.rela ? '.rela' : '.rel', r.section, sections[r.target]!)) set.name = modelName(r.section);
    relBy.set(r.target, set);
  }

  const groups = new Map<number, GroupSpec>();
  const elfGroups = elf.groups();
  for (let i = 0; i < elfGroups.length; i++) {
    const g = elfGroups[i]!;
    if (!carried(g.section)) continue;
    const members: SectionId[] = [];
    for (const m of g.members) {
      if (carried(m)) members.push(m as SectionId);
      else if (isRelocSection[m] !== 1) lostReferences.push({ from: sections[g.section]!, field: 'group member', to: m });
    }
    groups.set(g.section, { name: specs[g.section]!.name, signature: g.signature as SymbolId, flags: g.flags, members });
  }
  if (lostReferences.length > 1) lostReferences.sort((a, b) => a.from.index - b.from.index);

  const syms = symtab ? elf.symbols(symtab) : [];
  const symIds: SymbolId[] = new Array(Math.max(0, syms.length - 1));
  for (let i = 1; i < syms.length; i++) symIds[i - 1] = i as SymbolId;

  return {
    sectionIds: () => ids,
    section: (id) => specs[id]!,
    group: (id) => groups.get(id),
    symbolIds: () => symIds,
    symbol: (id) => {
      const y = syms[id]!;
      const raw = y.rawShndx;
      let section: SymbolSection;
      if (raw === SHN.UNDEF) section = 'UND';
      else if (raw === SHN.ABS) section = 'ABS';
      else if (raw === SHN.COMMON) section = 'COM';
      else if ((raw < SHN.LORESERVE || raw === SHN.XINDEX) && carried(y.shndx)) section = y.shndx as SectionId;
      else {
        throw new XspliceError('ELF_UNSUPPORTED', `symbol's section index ${y.shndx} is reserved or not a carried section`, {
          file,
          symbol: y.name,
          section: '.symtab',
          ...(symtab ? { sectionIndex: symtab.index } : {}),
        });
      }
      return { name: modelName(y), bind: y.bind, type: y.type, other: y.other, section, value: y.value, size: y.size };
    },
    relocationsOf: (id) => relBy.get(id),
    infoLinkOf: (id) => infoLinks.get(id),
    lostReferences,
  };
}
