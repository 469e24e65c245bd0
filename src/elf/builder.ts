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
import { SHT, STT } from './constants.js';
import { objectView } from './object-view.js';
import { writeObject, writeObjectWithPlan, planObject, type WritePlan } from './writer.js';
import type {
  BuilderOptions,
  ElfFile,
  GroupSpec,
  RelocationSet,
  RelocationSpec,
  SectionId,
  SectionSpec,
  SymbolId,
  SymbolSpec,
} from './types.js';

export type { BuilderOptions, GroupSpec, RelocationSet } from './types.js';

export interface FromElfResult {
  builder: ObjectBuilder;
  /** ELF section index of the input → model ID (only sections the model keeps as sections). */
  sectionIds: Map<number, SectionId>;
  /** ELF symbol index of the input's .symtab → model ID. */
  symbolIds: Map<number, SymbolId>;
}

const decoder = new TextDecoder();
const nameText = (n: string | Uint8Array) => (typeof n === 'string' ? n : decoder.decode(n));

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
      sections: this.order.map((id) => ({
        id,
        spec: this.sections.get(id)!,
        group: this.groups.get(id),
        infoLink: this.infoLinks.get(id),
      })),
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
   * Builds a model from a relocatable object read by readElf (read → model → write round trip),
   * through the one converter (`objectView`): section contents are views into `elf.bytes` (not
   * copied); the writer's own sections (.symtab, its string table, .shstrtab, .symtab_shndx,
   * SHT_REL/SHT_RELA) become the model's symbols and relocations; SHT_GROUP sections become
   * groups. A reference the model cannot carry (sh_link or sh_info naming a section the writer
   * rebuilds, such a group member) is refused: the round trip would lose it.
   */
  static fromElf(elf: ElfFile): FromElfResult {
    const view = objectView(elf);
    const lost = view.lostReferences[0];
    if (lost) {
      const what = lost.field === 'sh_info' ? `sh_info ${lost.to} (SHF_INFO_LINK)` : `${lost.field} ${lost.to}`;
      throw new XspliceError('ELF_UNSUPPORTED', `${what} refers to a section the writer rebuilds`, {
        file: elf.file,
        sectionIndex: lost.from.index,
        section: lost.from.name,
      });
    }
    const h = elf.header;
    const b = new ObjectBuilder({
      class: h.class,
      littleEndian: h.littleEndian,
      machine: h.machine,
      flags: h.flags,
      osabi: h.osabi,
      abiVersion: h.abiVersion,
      type: h.type,
      keepEmptySymtab: elf.symtabSection() !== undefined,
    });
    const sectionIds = new Map<number, SectionId>();
    const inputSections = view.sectionIds();
    for (const index of inputSections) sectionIds.set(index, b.addSection(view.section(index)));
    const modelSection = (index: number): SectionId => sectionIds.get(index)!;
    for (const index of inputSections) {
      const id = modelSection(index);
      const spec = b.section(id);
      if (spec.link !== undefined) spec.link = modelSection(spec.link);
      const target = view.infoLinkOf(index);
      if (target !== undefined) b.infoLinks.set(id, modelSection(target));
    }
    const symbolIds = new Map<number, SymbolId>();
    for (const index of view.symbolIds()) {
      const spec = view.symbol(index);
      if (typeof spec.section === 'number') spec.section = modelSection(spec.section);
      symbolIds.set(index, b.addSymbol(spec));
    }
    const modelSymbol = (index: SymbolId | 0): SymbolId | 0 => (index === 0 ? 0 : symbolIds.get(index)!);
    for (const index of inputSections) {
      const group = view.group(index);
      if (group) {
        b.groups.set(modelSection(index), {
          name: group.name,
          signature: modelSymbol(group.signature) as SymbolId,
          flags: group.flags,
          members: group.members.map(modelSection),
        });
      }
      const relocs = view.relocationsOf(index);
      if (relocs) {
        // The model owns its entries (the view's are the reader's): copied, symbols mapped.
        const entries = relocs.entries.map((e): RelocationSpec => ({
          offset: e.offset,
          type: e.type,
          symbol: modelSymbol(e.symbol),
          addend: e.addend,
        }));
        b.relocs.set(modelSection(index), { ...relocs, entries });
      }
    }
    return { builder: b, sectionIds, symbolIds };
  }
}
