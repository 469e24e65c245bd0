/**
 * Read-modify-write model of an ET_REL object. Sections, symbols and relocations refer to each
 * other by ID; `write()` assigns ELF indices (null entries at 0, locals before globals,
 * sh_info = first non-local), plans every offset and string table, then emits one buffer.
 * The same model always gives the same bytes.
 *
 * The writer synthesises .symtab, .strtab, .shstrtab, .symtab_shndx (when needed) and one
 * SHT_REL/SHT_RELA section per target that has relocations (placed right after its target).
 */
import type { ElfClass, ElfFile, RelocationSpec, SectionId, SectionSpec, SymbolId, SymbolSpec } from './types.js';

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

export class ObjectBuilder {
  readonly options: Required<BuilderOptions>;

  constructor(options: BuilderOptions) {
    this.options = { flags: 0, osabi: 0, abiVersion: 0, type: 1, ...options };
  }

  addSection(_spec: SectionSpec): SectionId {
    throw new Error('not implemented');
  }
  /** The mutable spec of a section. */
  section(_id: SectionId): SectionSpec {
    throw new Error('not implemented');
  }
  removeSection(_id: SectionId): void {
    throw new Error('not implemented');
  }
  /** Section IDs in output order. */
  sectionIds(): SectionId[] {
    throw new Error('not implemented');
  }
  findSection(_name: string): SectionId | undefined {
    throw new Error('not implemented');
  }
  addSymbol(_spec: SymbolSpec): SymbolId {
    throw new Error('not implemented');
  }
  symbol(_id: SymbolId): SymbolSpec {
    throw new Error('not implemented');
  }
  symbolIds(): SymbolId[] {
    throw new Error('not implemented');
  }
  removeSymbol(_id: SymbolId): void {
    throw new Error('not implemented');
  }
  /** Sets (replaces) the relocations that apply to `target`. An empty list removes them. */
  setRelocations(_target: SectionId, _set: RelocationSet): void {
    throw new Error('not implemented');
  }
  relocationsOf(_target: SectionId): RelocationSet | undefined {
    throw new Error('not implemented');
  }
  addGroup(_spec: GroupSpec): SectionId {
    throw new Error('not implemented');
  }
  /** Plans the layout and emits the object. Deterministic. */
  write(): Uint8Array {
    throw new Error('not implemented');
  }
  /** Builds a model from a relocatable object read by readElf (read → model → write round trip). */
  static fromElf(_elf: ElfFile): FromElfResult {
    throw new Error('not implemented');
  }
}
