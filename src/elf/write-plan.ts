/**
 * The writer's first pass: `planObject` turns an ObjectBuilder model into a WritePlan, assigning
 * every section index (null section 0, each model section followed by its relocation section,
 * then .symtab, .symtab_shndx when needed and .strtab — only when there is something to put in
 * them — and .shstrtab), every symbol index (null symbol 0, locals before the rest, sh_info =
 * first non-local), both string tables and every file offset, and so the total size. Every field
 * is range-checked here, so emission cannot fail on the model's values. The second pass is
 * `emitObject` (writer.ts). Nothing depends on iteration order other than the model's own order.
 *
 * Loops are indexed, not for-of: bench/perf-notes.md says why, with the numbers.
 *
 * Why one file: it is one pass, `planObject`, whose section indexes, symbol indexes, string
 * tables and offsets are assigned in an order where each depends on the previous; splitting it would
 * mean passing a half-built plan between modules.
 */
import { XspliceError } from '../errors.js';
import { SHF, SHN, SHT, STB } from './constants.js';
import { layoutsFor } from './layout.js';
import { StringTableBuilder, nameBytes } from './strtab.js';
import type { BuilderOptions, GroupSpec, RelocationSet, SectionId, SectionSpec, SymbolId, SymbolSpec } from './types.js';

/** What the writer reads from the builder. */
export interface WriterModel {
  options: Required<BuilderOptions>;
  /** Model sections in output order. */
  sections: readonly { id: SectionId; spec: SectionSpec; group?: GroupSpec; infoLink?: SectionId }[];
  symbols: readonly { id: SymbolId; spec: SymbolSpec }[];
  relocations: ReadonlyMap<SectionId, RelocationSet>;
}

export type OutKind = 'null' | 'model' | 'group' | 'reloc' | 'symtab' | 'shndx' | 'strtab' | 'shstrtab';

/** One planned section header. */
export interface OutSection {
  kind: OutKind;
  name: string | Uint8Array;
  nameKey: string;
  type: number;
  flags: bigint;
  addr: bigint;
  offset: number;
  size: number | bigint;
  link: number;
  info: number;
  addralign: bigint;
  entsize: bigint;
  /** Bytes to place at `offset` (not for NOBITS and synthesised tables, which `emit` encodes). */
  data?: Uint8Array;
  id?: SectionId;
  group?: GroupSpec;
  relocs?: RelocationSet;
  relocTarget?: SectionId;
}

export interface WritePlan {
  sections: OutSection[];
  /** Section ID → ELF index. */
  sectionIndex: Map<SectionId, number>;
  /** Target section ID → ELF index of its relocation section. */
  relocIndex: Map<SectionId, number>;
  /** Symbol ID → ELF index in .symtab. */
  symbolIndex: Map<SymbolId, number>;
  /** Symbols in .symtab order (index 0 not included). */
  symbolOrder: { id: SymbolId; spec: SymbolSpec }[];
  firstNonLocal: number;
  strtab: StringTableBuilder;
  shstrtab: StringTableBuilder;
  symNameKeys: string[];
  shstrndx: number;
  shoff: number;
  total: number;
}

/** Largest object the writer will plan (it is built in one Uint8Array). */
const MAX_OUTPUT = 2 ** 31;

function fail(code: string, detail: string, ctx: ConstructorParameters<typeof XspliceError>[2] = {}): never {
  throw new XspliceError(code, detail, ctx);
}

export function displayName(n: string | Uint8Array): string {
  return typeof n === 'string' ? n : new TextDecoder().decode(n);
}

function alignUp(v: number, a: bigint, what: string | Uint8Array): number {
  if (a <= 1n) return v;
  if ((a & (a - 1n)) !== 0n) fail('ELF_WRITE_ALIGN', 'sh_addralign is not a power of two', { section: displayName(what), found: a });
  if (a > BigInt(MAX_OUTPUT)) fail('ELF_WRITE_TOO_LARGE', 'sh_addralign is too large to lay out', { section: displayName(what), found: a });
  const n = Number(a);
  return Math.ceil(v / n) * n;
}

/** What a planned section is made from; the rest of its fields default to 0 / none. */
interface OutSectionInit {
  kind: OutKind;
  name: string | Uint8Array;
  /** The name's key in .shstrtab (from `StringTableBuilder.add`). */
  nameKey: string;
  type: number;
  flags?: bigint;
  addr?: bigint;
  size: number | bigint;
  link?: number;
  info?: number;
  addralign: bigint;
  entsize?: bigint;
  data?: Uint8Array;
  id?: SectionId;
  group?: GroupSpec;
  relocs?: RelocationSet;
  relocTarget?: SectionId;
}

/** A planned section with every field present, so the emit loop sees one object shape. */
function outSection(init: OutSectionInit): OutSection {
  return {
    kind: init.kind,
    name: init.name,
    nameKey: init.nameKey,
    type: init.type,
    flags: init.flags ?? 0n,
    addr: init.addr ?? 0n,
    offset: 0,
    size: init.size,
    link: init.link ?? 0,
    info: init.info ?? 0,
    addralign: init.addralign,
    entsize: init.entsize ?? 0n,
    data: init.data,
    id: init.id,
    group: init.group,
    relocs: init.relocs,
    relocTarget: init.relocTarget,
  };
}

export function planObject(model: WriterModel): WritePlan {
  const o = model.options;
  const L = layoutsFor(o.class);
  const addrMax = o.class === 64 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
  const addendMin = o.class === 64 ? -(1n << 63n) : -(1n << 31n);
  const wordAlign = o.class === 64 ? 8n : 4n;
  const shstrtab = new StringTableBuilder('.shstrtab');
  const strtab = new StringTableBuilder('.strtab');
  for (const [field, v, max] of [
    ['EI_OSABI', o.osabi, 0xff],
    ['EI_ABIVERSION', o.abiVersion, 0xff],
    ['e_type', o.type, 0xffff],
    ['e_machine', o.machine, 0xffff],
    ['e_flags', o.flags, 0xffffffff],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max)
      fail('ELF_WRITE_RANGE', `${field} does not fit its field`, { expected: `0..${max}`, found: v });
  }

  const out: OutSection[] = [];
  const push = (s: OutSection): number => {
    out.push(s);
    return out.length - 1;
  };
  push(outSection({ kind: 'null', name: '', nameKey: shstrtab.add(''), type: SHT.NULL, size: 0, addralign: 0n }));

  // 1. Section indices: each model section, then its relocations.
  const sectionIndex = new Map<SectionId, number>();
  const relIndex = new Map<SectionId, number>();
  const relSize = L.rel.size;
  const relaSize = L.rela.size;
  const relEnt = BigInt(relSize);
  const relaEnt = BigInt(relaSize);
  const modelSections = model.sections;
  for (let position = 0; position < modelSections.length; position++) {
    const { id, spec, group } = modelSections[position]!;
    const name = spec.name;
    const addr = spec.addr ?? 0n;
    const entsize = spec.entsize ?? 0n;
    if (spec.flags < 0n || spec.flags > addrMax)
      fail('ELF_WRITE_RANGE', `sh_flags does not fit ELF${o.class}`, { section: displayName(name), found: spec.flags });
    if (addr < 0n || addr > addrMax)
      fail('ELF_WRITE_RANGE', `sh_addr does not fit ELF${o.class}`, { section: displayName(name), found: addr });
    if (spec.addralign < 0n || spec.addralign > addrMax)
      fail('ELF_WRITE_RANGE', `sh_addralign does not fit ELF${o.class}`, { section: displayName(name), found: spec.addralign });
    if (entsize < 0n || entsize > addrMax)
      fail('ELF_WRITE_RANGE', `sh_entsize does not fit ELF${o.class}`, { section: displayName(name), found: entsize });
    let data: Uint8Array | undefined;
    let size: number | bigint;
    if (group) {
      size = 0; // set below, once relocation sections are known
    } else if (spec.type === SHT.NOBITS) {
      size = spec.size ?? BigInt(spec.data?.length ?? 0);
      if (size < 0n || size > addrMax)
        fail('ELF_WRITE_RANGE', `sh_size does not fit ELF${o.class}`, { section: displayName(name), found: size });
    } else {
      data = spec.data ?? new Uint8Array(0);
      size = data.length;
    }
    const idx = push(
      outSection({
        kind: group ? 'group' : 'model',
        name,
        nameKey: shstrtab.add(name),
        type: spec.type,
        flags: spec.flags,
        addr,
        size,
        info: spec.info ?? 0,
        addralign: spec.addralign,
        entsize,
        data,
        id,
        group,
      }),
    );
    sectionIndex.set(id, idx);
    const rel = model.relocations.get(id);
    if (rel) {
      const prefix = rel.rela ? '.rela' : '.rel';
      const rname = rel.name !== undefined ? rel.name : typeof name === 'string' ? prefix + name : concat(nameBytes(prefix), name);
      const flags = rel.flags ?? SHF.INFO_LINK | (spec.flags & SHF.GROUP);
      relIndex.set(
        id,
        push(
          outSection({
            kind: 'reloc',
            name: rname,
            nameKey: shstrtab.add(rname),
            type: rel.rela ? SHT.RELA : SHT.REL,
            flags,
            size: rel.entries.length * (rel.rela ? relaSize : relSize),
            info: idx,
            addralign: wordAlign,
            entsize: rel.rela ? relaEnt : relEnt,
            relocs: rel,
            relocTarget: id,
          }),
        ),
      );
    }
  }

  // 2. Symbol indices: null, locals (model order), then everything else (model order).
  const symbolOrder: { id: SymbolId; spec: SymbolSpec }[] = [];
  const modelSymbols = model.symbols;
  for (let position = 0; position < modelSymbols.length; position++) {
    if (modelSymbols[position]!.spec.bind === STB.LOCAL) symbolOrder.push(modelSymbols[position]!);
  }
  const firstNonLocal = 1 + symbolOrder.length;
  for (let position = 0; position < modelSymbols.length; position++) {
    if (modelSymbols[position]!.spec.bind !== STB.LOCAL) symbolOrder.push(modelSymbols[position]!);
  }
  const symbolIndex = new Map<SymbolId, number>();
  const symNameKeys: string[] = new Array(symbolOrder.length);
  let needShndx = false;
  for (let position = 0; position < symbolOrder.length; position++) {
    const { id, spec } = symbolOrder[position]!;
    symbolIndex.set(id, position + 1);
    symNameKeys[position] = strtab.add(spec.name);
  }
  for (let position = 0; position < symbolOrder.length; position++) {
    const { spec } = symbolOrder[position]!;
    if (spec.value < 0n || spec.value > addrMax)
      fail('ELF_WRITE_RANGE', `st_value does not fit ELF${o.class}`, {
        symbol: displayName(spec.name),
        section: '.symtab',
        found: spec.value,
      });
    if (spec.size < 0n || spec.size > addrMax)
      fail('ELF_WRITE_RANGE', `st_size does not fit ELF${o.class}`, {
        symbol: displayName(spec.name),
        section: '.symtab',
        found: spec.size,
      });
    if (!(spec.bind >= 0 && spec.bind <= 15 && spec.type >= 0 && spec.type <= 15))
      fail('ELF_WRITE_RANGE', 'binding or type does not fit st_info', {
        symbol: displayName(spec.name),
        section: '.symtab',
        found: `${spec.bind}/${spec.type}`,
      });
    if (typeof spec.section === 'number') {
      const idx = sectionIndex.get(spec.section);
      if (idx === undefined)
        fail('ELF_WRITE_REF', 'symbol is defined in a section that is not in the model', {
          symbol: displayName(spec.name),
          found: `section ID ${spec.section}`,
        });
      if (idx >= SHN.LORESERVE) needShndx = true;
    }
  }

  // Relocations: every symbol they name is in the model and every field fits the class.
  const is64 = o.class === 64;
  model.relocations.forEach((rel, target) => {
    const ctx = (n: number) => ({
      section: displayName(model.sections.find((x) => x.id === target)?.spec.name ?? `#${target}`),
      found: `relocation ${n}`,
    });
    const entries = rel.entries;
    for (let entry = 0; entry < entries.length; entry++) {
      const r = entries[entry]!;
      const sym = r.symbol === 0 ? 0 : symbolIndex.get(r.symbol);
      if (sym === undefined)
        fail('ELF_WRITE_REF', `relocation ${entry} refers to a symbol that is not in the model`, {
          ...ctx(entry),
          found: `symbol ID ${r.symbol}`,
        });
      if (is64) {
        if (!(r.type >= 0 && r.type <= 0xffffffff))
          fail('ELF_WRITE_RANGE', 'relocation type does not fit ELF64_R_INFO', { ...ctx(entry), found: r.type });
      } else {
        if (sym > 0xffffff) fail('ELF_WRITE_RANGE', 'symbol index does not fit ELF32_R_INFO', { ...ctx(entry), found: sym });
        if (!(r.type >= 0 && r.type <= 0xff))
          fail('ELF_WRITE_RANGE', 'relocation type does not fit ELF32_R_INFO', { ...ctx(entry), found: r.type });
      }
      if (r.offset < 0n || r.offset > addrMax)
        fail('ELF_WRITE_RANGE', `r_offset does not fit ELF${o.class}`, { ...ctx(entry), found: r.offset });
      if (rel.rela && (r.addend < addendMin || r.addend > addrMax))
        fail('ELF_WRITE_RANGE', `r_addend does not fit ELF${o.class}`, { ...ctx(entry), found: r.addend });
    }
  });

  // 3. The synthesised tables (no symbol table for an object without symbols, as GNU as does).
  const nsyms = symbolOrder.length + 1;
  const wantSymtab = nsyms > 1 || model.relocations.size > 0 || model.sections.some((s) => s.group) || o.keepEmptySymtab;
  let symtabIdx = 0;
  if (wantSymtab) {
    symtabIdx = push(
      outSection({
        kind: 'symtab',
        name: '.symtab',
        nameKey: shstrtab.add('.symtab'),
        type: SHT.SYMTAB,
        size: nsyms * L.sym.size,
        info: firstNonLocal,
        addralign: wordAlign,
        entsize: BigInt(L.sym.size),
      }),
    );
    if (needShndx) {
      push(
        outSection({
          kind: 'shndx',
          name: '.symtab_shndx',
          nameKey: shstrtab.add('.symtab_shndx'),
          type: SHT.SYMTAB_SHNDX,
          size: nsyms * 4,
          link: symtabIdx,
          addralign: 4n,
          entsize: 4n,
        }),
      );
    }
    const strtabIdx = push(
      outSection({
        kind: 'strtab',
        name: '.strtab',
        nameKey: shstrtab.add('.strtab'),
        type: SHT.STRTAB,
        size: strtab.finish().length,
        addralign: 1n,
      }),
    );
    out[symtabIdx]!.link = strtabIdx;
  }
  const shstrndx = push(
    outSection({ kind: 'shstrtab', name: '.shstrtab', nameKey: shstrtab.add('.shstrtab'), type: SHT.STRTAB, size: 0, addralign: 1n }),
  );
  out[shstrndx]!.size = shstrtab.finish().length;

  // 4. Links and infos that refer to other sections or symbols.
  for (const s of out) if (s.kind === 'reloc') s.link = symtabIdx;
  for (let position = 0; position < modelSections.length; position++) {
    const { id, spec, group, infoLink } = modelSections[position]!;
    if (infoLink === undefined && spec.link === undefined && !group) continue;
    const s = out[sectionIndex.get(id)!]!;
    if (infoLink !== undefined) {
      const t = sectionIndex.get(infoLink);
      if (t === undefined)
        fail('ELF_WRITE_REF', 'sh_info refers to a section that is not in the model', {
          section: displayName(spec.name),
          found: `section ID ${infoLink}`,
        });
      s.info = t;
    }
    if (spec.link !== undefined) {
      const l = sectionIndex.get(spec.link);
      if (l === undefined)
        fail('ELF_WRITE_REF', 'sh_link refers to a section that is not in the model', {
          section: displayName(spec.name),
          found: `section ID ${spec.link}`,
        });
      s.link = l;
    }
    if (group) {
      s.link = symtabIdx;
      const sig = symbolIndex.get(group.signature);
      if (sig === undefined)
        fail('ELF_WRITE_REF', 'group signature is not a symbol of the model', {
          section: displayName(spec.name),
          found: `symbol ID ${group.signature}`,
        });
      s.info = sig;
      let words = 1;
      for (const member of group.members) {
        if (!sectionIndex.has(member))
          fail('ELF_WRITE_REF', 'group member is not a section of the model', {
            section: displayName(spec.name),
            found: `section ID ${member}`,
          });
        words += relIndex.has(member) ? 2 : 1;
      }
      s.size = words * 4;
    }
  }

  // 5. File offsets: ELF header, section contents in index order, then the section header table.
  let cursor = L.ehdr.size;
  for (let index = 1; index < out.length; index++) {
    const s = out[index]!;
    const start = alignUp(cursor, s.addralign, s.name);
    s.offset = start;
    if (s.type !== SHT.NOBITS) cursor = start + Number(s.size);
    if (cursor > MAX_OUTPUT)
      fail('ELF_WRITE_TOO_LARGE', "the object would exceed the writer's size limit", {
        section: displayName(s.name),
        expected: `at most ${MAX_OUTPUT} bytes`,
      });
  }
  const shoff = alignUp(cursor, wordAlign, 'section headers');
  const total = shoff + out.length * L.shdr.size;
  if (total > MAX_OUTPUT)
    fail('ELF_WRITE_TOO_LARGE', "the object would exceed the writer's size limit", {
      expected: `at most ${MAX_OUTPUT} bytes`,
      found: total,
    });
  return {
    sections: out,
    sectionIndex,
    relocIndex: relIndex,
    symbolIndex,
    symbolOrder,
    firstNonLocal,
    strtab,
    shstrtab,
    symNameKeys,
    shstrndx,
    shoff,
    total,
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}
