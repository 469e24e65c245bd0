/**
 * Read-modify-write model of an ET_REL object. Sections, symbols and relocations refer to each
 * other by ID; `write()` assigns ELF indices (null entries at 0, locals before globals,
 * sh_info = first non-local), plans every offset and string table, then emits one buffer.
 * The same model always gives the same bytes.
 *
 * The writer synthesises .symtab and .strtab (when there are symbols, relocations or groups, or
 * `keepEmptySymtab`), .shstrtab, .symtab_shndx (when needed) and one SHT_REL/SHT_RELA section per
 * target that has relocations (placed right after its target).
 */
import { XspliceError } from '../errors.js';
import { SHF, SHN, SHT, STT } from './constants.js';
import { writeObject, writeObjectWithPlan, planObject, type WritePlan } from './writer.js';
import { isAsciiName, modelName } from './strtab.js';
import type { ElfClass, ElfFile, ElfSection, RelocationSpec, SectionId, SectionSpec, SymbolId, SymbolSection, SymbolSpec } from './types.js';

export interface BuilderOptions {
  class: ElfClass;
  littleEndian: boolean;
  machine: number;
  /** e_flags (e.g. EF_ARM_EABI_VER5). */
  flags?: number;
  osabi?: number;
  abiVersion?: number;
  /** e_type, default ET_REL. */
  type?: number;
  /**
   * Write a .symtab even when the model has no symbols, relocations or groups (default false: like
   * GNU as, an object without symbols gets no symbol table). fromElf sets it when the input had one.
   */
  keepEmptySymtab?: boolean;
}

export interface RelocationSet {
  rela: boolean;
  entries: RelocationSpec[];
  /** Section name; default `.rela<target>` / `.rel<target>`. */
  name?: string | Uint8Array;
  /** sh_flags of the relocation section; default SHF_INFO_LINK (plus SHF_GROUP when the target has it). */
  flags?: bigint;
}

export interface GroupSpec {
  name?: string | Uint8Array;
  signature: SymbolId;
  flags: number;
  members: SectionId[];
}

export interface FromElfResult {
  builder: ObjectBuilder;
  /** ELF section index of the input → model ID (only sections the model keeps as sections). */
  sectionIds: Map<number, SectionId>;
  /** ELF symbol index of the input's .symtab → model ID. */
  symbolIds: Map<number, SymbolId>;
}

const decoder = new TextDecoder();
const nameText = (n: string | Uint8Array) => (typeof n === 'string' ? n : decoder.decode(n));

function unsupported(detail: string, sec?: ElfSection, file?: string): never {
  throw new XspliceError('ELF_UNSUPPORTED', detail, sec ? { file, sectionIndex: sec.index, section: sec.name } : { file });
}

export class ObjectBuilder {
  readonly options: Required<BuilderOptions>;
  private nextSection = 1;
  private nextSymbol = 1;
  private readonly sections = new Map<SectionId, SectionSpec>();
  private order: SectionId[] = [];
  private readonly groups = new Map<SectionId, GroupSpec>();
  private readonly symbols = new Map<SymbolId, SymbolSpec>();
  private symOrder: SymbolId[] = [];
  private readonly relocs = new Map<SectionId, RelocationSet>();
  private readonly infoLinks = new Map<SectionId, SectionId>();

  constructor(options: BuilderOptions) {
    this.options = { flags: 0, osabi: 0, abiVersion: 0, type: 1, keepEmptySymtab: false, ...options };
  }

  /** Appends a section (after the existing ones, or before `before` when given). */
  addSection(spec: SectionSpec, before?: SectionId): SectionId {
    const id = this.nextSection++ as SectionId;
    this.sections.set(id, spec);
    if (before !== undefined) {
      const at = this.order.indexOf(before);
      if (at < 0) throw this.noSection(before);
      this.order.splice(at, 0, id);
    } else {
      this.order.push(id);
    }
    return id;
  }
  /** The mutable spec of a section. */
  section(id: SectionId): SectionSpec {
    const s = this.sections.get(id);
    if (!s) throw this.noSection(id);
    return s;
  }
  /**
   * Removes a section, its relocations, its STT_SECTION symbols, its group membership and the info
   * links to it (a group section removed this way takes nothing else with it). Other symbols still
   * defined in it, and sh_link of other sections still naming it, make `write()` fail
   * (ELF_WRITE_REF) rather than point somewhere else.
   */
  removeSection(id: SectionId): void {
    if (!this.sections.delete(id)) throw this.noSection(id);
    this.order = this.order.filter((s) => s !== id);
    this.relocs.delete(id);
    this.groups.delete(id);
    this.infoLinks.delete(id);
    for (const [from, to] of this.infoLinks) if (to === id) this.infoLinks.delete(from);
    for (const g of this.groups.values()) g.members = g.members.filter((m) => m !== id);
    for (const sid of this.symOrder) {
      const s = this.symbols.get(sid)!;
      if (s.type === STT.SECTION && s.section === id) this.removeSymbol(sid);
    }
  }
  /** Section IDs in output order. */
  sectionIds(): SectionId[] {
    return [...this.order];
  }
  /** The first section (in output order) with this name. */
  findSection(name: string): SectionId | undefined {
    return this.order.find((id) => nameText(this.sections.get(id)!.name) === name);
  }
  addSymbol(spec: SymbolSpec): SymbolId {
    const id = this.nextSymbol++ as SymbolId;
    this.symbols.set(id, spec);
    this.symOrder.push(id);
    return id;
  }
  symbol(id: SymbolId): SymbolSpec {
    const s = this.symbols.get(id);
    if (!s) throw this.noSymbol(id);
    return s;
  }
  /** Symbol IDs in model order (the writer puts locals first, keeping this order within each part). */
  symbolIds(): SymbolId[] {
    return [...this.symOrder];
  }
  /** The first symbol with this name. */
  findSymbol(name: string): SymbolId | undefined {
    return this.symOrder.find((id) => nameText(this.symbols.get(id)!.name) === name);
  }
  /** Removes a symbol; relocations or groups still referring to it make `write()` fail. */
  removeSymbol(id: SymbolId): void {
    if (!this.symbols.delete(id)) throw this.noSymbol(id);
    this.symOrder = this.symOrder.filter((s) => s !== id);
  }
  /** Sets (replaces) the relocations that apply to `target`. An empty list removes them. */
  setRelocations(target: SectionId, set: RelocationSet): void {
    if (!this.sections.has(target)) throw this.noSection(target);
    if (set.entries.length === 0) this.relocs.delete(target);
    else this.relocs.set(target, set);
  }
  relocationsOf(target: SectionId): RelocationSet | undefined {
    return this.relocs.get(target);
  }
  /**
   * Adds an SHT_GROUP section (name default ".group"); its contents (flags, member indices, and
   * the relocation section of each member that has one) and sh_link/sh_info are written by the
   * writer. Members should carry SHF_GROUP. Placed before `before` when given, else appended.
   */
  addGroup(spec: GroupSpec, before?: SectionId): SectionId {
    const id = this.addSection({ name: spec.name ?? '.group', type: SHT.GROUP, flags: 0n, addralign: 4n, entsize: 4n }, before);
    this.groups.set(id, spec);
    return id;
  }
  /**
   * Makes sh_info of `id` refer to section `target` (written as its final index), for sections with
   * SHF_INFO_LINK other than the relocation sections the writer makes; `undefined` clears it (then
   * `spec.info` is written as it is).
   */
  setInfoLink(id: SectionId, target: SectionId | undefined): void {
    if (!this.sections.has(id)) throw this.noSection(id);
    if (target === undefined) this.infoLinks.delete(id);
    else if (!this.sections.has(target)) throw this.noSection(target);
    else this.infoLinks.set(id, target);
  }
  infoLink(id: SectionId): SectionId | undefined {
    return this.infoLinks.get(id);
  }
  /** The group spec of an SHT_GROUP section added by addGroup/fromElf. */
  group(id: SectionId): GroupSpec | undefined {
    return this.groups.get(id);
  }

  private model() {
    return {
      options: this.options,
      sections: this.order.map((id) => ({ id, spec: this.sections.get(id)!, group: this.groups.get(id), infoLink: this.infoLinks.get(id) })),
      symbols: this.symOrder.map((id) => ({ id, spec: this.symbols.get(id)! })),
      relocations: this.relocs,
    };
  }
  /** The layout `write()` would use (ELF indices of sections and symbols, offsets). */
  plan(): WritePlan {
    return planObject(this.model());
  }
  /** Plans the layout and emits the object. Deterministic. */
  write(): Uint8Array {
    return writeObject(this.model());
  }
  /** write(), with the plan it followed. */
  writeWithPlan(): { bytes: Uint8Array; plan: WritePlan } {
    return writeObjectWithPlan(this.model());
  }

  private noSection(id: SectionId): Error {
    return new XspliceError('ELF_WRITE_REF', 'no such section in the model', { found: `section ID ${id}` });
  }
  private noSymbol(id: SymbolId): Error {
    return new XspliceError('ELF_WRITE_REF', 'no such symbol in the model', { found: `symbol ID ${id}` });
  }

  /**
   * Builds a model from a relocatable object read by readElf (read → model → write round trip).
   * Section contents are views into `elf.bytes` (not copied). The writer's own sections
   * (.symtab, its string table, .shstrtab, .symtab_shndx, SHT_REL/SHT_RELA) become the model's
   * symbols and relocations; SHT_GROUP sections become groups.
   */
  static fromElf(elf: ElfFile): FromElfResult {
    const h = elf.header;
    if (elf.programHeaders.length > 0) unsupported('objects with program headers cannot be rebuilt (only relocatable objects)', undefined, elf.file);
    const b = new ObjectBuilder({
      class: h.class, littleEndian: h.littleEndian, machine: h.machine, flags: h.flags, osabi: h.osabi,
      abiVersion: h.abiVersion, type: h.type, keepEmptySymtab: elf.symtabSection() !== undefined,
    });
    const symtab = elf.symtabSection();
    const synthesized = new Set<number>([0, h.shstrndx]);
    if (symtab) {
      synthesized.add(symtab.index);
      synthesized.add(symtab.link);
    }
    const relocs = elf.relocations();
    for (const r of relocs) synthesized.add(r.section.index);
    for (const s of elf.sections) {
      if (s.type === SHT.SYMTAB_SHNDX) synthesized.add(s.index);
      if (s.type === SHT.SYMTAB && s !== symtab) unsupported('more than one SHT_SYMTAB section', s, elf.file);
    }

    const sectionIds = new Map<number, SectionId>();
    for (const s of elf.sections) {
      if (synthesized.has(s.index)) continue;
      const spec: SectionSpec = {
        name: modelName(s), type: s.type, flags: s.flags, addralign: s.addralign, entsize: s.entsize, addr: s.addr,
      };
      if (s.type === SHT.NOBITS) spec.size = s.size;
      else spec.data = s.data();
      if (s.type === SHT.GROUP) {
        // Placeholder group; members and signature are filled in once every ID is known.
        const id = b.addSection(spec);
        b.groups.set(id, { name: modelName(s), signature: 0 as SymbolId, flags: 0, members: [] });
        sectionIds.set(s.index, id);
        continue;
      }
      spec.info = s.info;
      sectionIds.set(s.index, b.addSection(spec));
    }
    // sh_link of kept sections (SHF_LINK_ORDER and the like), and sh_info of SHF_INFO_LINK ones,
    // must point at kept sections; they become references by ID.
    for (const s of elf.sections) {
      const id = sectionIds.get(s.index);
      if (id === undefined || s.type === SHT.GROUP) continue;
      if (s.link !== 0) {
        const l = sectionIds.get(s.link);
        if (l === undefined) unsupported(`sh_link ${s.link} refers to a section the writer rebuilds`, s, elf.file);
        b.section(id).link = l;
      }
      if (s.info !== 0 && (s.flags & SHF.INFO_LINK) !== 0n) {
        const t = sectionIds.get(s.info);
        if (t === undefined) unsupported(`sh_info ${s.info} (SHF_INFO_LINK) refers to a section the writer rebuilds`, s, elf.file);
        b.infoLinks.set(id, t);
      }
    }

    const symbolIds = new Map<number, SymbolId>();
    if (symtab) {
      const syms = elf.symbols(symtab);
      for (let i = 1; i < syms.length; i++) {
        const y = syms[i]!;
        let section: SymbolSection;
        // Special values are read from the stored st_shndx: through SHN_XINDEX, 0xfff1 is a real section.
        if (y.rawShndx === SHN.UNDEF) section = 'UND';
        else if (y.rawShndx === SHN.ABS) section = 'ABS';
        else if (y.rawShndx === SHN.COMMON) section = 'COM';
        else {
          const id = sectionIds.get(y.shndx);
          if (id === undefined) {
            throw new XspliceError('ELF_UNSUPPORTED', `symbol's section index ${y.shndx} is reserved or not a kept section`, {
              file: elf.file, symbol: y.name, section: '.symtab', sectionIndex: symtab.index,
            });
          }
          section = id;
        }
        symbolIds.set(i, b.addSymbol({
          name: modelName(y), bind: y.bind, type: y.type, other: y.other, section, value: y.value, size: y.size,
        }));
      }
    }

    for (const g of elf.groups()) {
      const id = sectionIds.get(g.section);
      const spec = id !== undefined ? b.groups.get(id) : undefined;
      if (!spec) continue;
      const sec = elf.sections[g.section]!;
      const sig = symbolIds.get(g.signature);
      if (sig === undefined) unsupported(`group signature symbol ${g.signature} is not in .symtab`, sec, elf.file);
      spec.signature = sig;
      spec.flags = g.flags;
      for (const m of g.members) {
        const mid = sectionIds.get(m);
        if (mid !== undefined) spec.members.push(mid);
        else if (!relocs.some((r) => r.section.index === m)) unsupported(`group member ${m} is a section the writer rebuilds`, sec, elf.file);
      }
    }

    for (const r of relocs) {
      const target = sectionIds.get(r.target);
      if (target === undefined) unsupported(`relocation section applies to section ${r.target}, which is not kept`, r.section, elf.file);
      if (r.entries.length > 0 && (!symtab || r.symtab !== symtab.index)) unsupported('relocation section does not use .symtab', r.section, elf.file);
      if (b.relocs.has(target)) unsupported('a second relocation section for the same target', r.section, elf.file);
      const entries: RelocationSpec[] = r.entries.map((e, k) => {
        if (e.symbol === 0) return { offset: e.offset, type: e.type, symbol: 0, addend: e.addend ?? 0n };
        const sym = symbolIds.get(e.symbol);
        if (sym === undefined) {
          throw new XspliceError('ELF_UNSUPPORTED', `relocation ${k} refers to symbol ${e.symbol}, which is not in .symtab`, {
            file: elf.file, sectionIndex: r.section.index, section: r.section.name,
          });
        }
        return { offset: e.offset, type: e.type, symbol: sym, addend: e.addend ?? 0n };
      });
      // Kept even when empty, so that an empty relocation section survives the round trip. The
      // name is kept only when it is not the default (so renaming the target renames it too).
      const prefix = r.rela ? '.rela' : '.rel';
      const tsec = elf.sections[r.target]!;
      let isDefault: boolean;
      if (isAsciiName(r.section.name) && isAsciiName(tsec.name)) {
        // ASCII text is its bytes: compare the strings.
        isDefault = r.section.name === prefix + tsec.name;
      } else {
        const tname = tsec.nameBytes;
        const nb = r.section.nameBytes;
        isDefault = nb.length === prefix.length + tname.length && [...prefix].every((c, i) => nb[i] === c.charCodeAt(0))
          && tname.every((c, i) => nb[prefix.length + i] === c);
      }
      const name = isDefault ? undefined : modelName(r.section);
      b.relocs.set(target, { rela: r.rela, entries, name, flags: r.section.flags });
    }
    return { builder: b, sectionIds, symbolIds };
  }
}

