/**
 * The ELF writer: turns an ObjectBuilder model (sections, symbols and relocations that refer to
 * each other by ID) into one relocatable object.
 *
 * Two passes, as gimli's `object::write` does it. `planObject` (write-plan.ts) assigns every
 * section and symbol index, both string tables and every file offset; `emitObject` (here) then
 * writes into one preallocated buffer, checking that each record starts exactly where the plan
 * put it. Nothing depends on iteration order other than the model's own order, so the same model
 * always gives the same bytes.
 *
 * The loops over sections, symbols and relocations are indexed, not for-of, and records are
 * encoded field by field from the layout tables: bench/perf-notes.md says why, with the numbers.
 *
 * Extended numbering (gABI): with 0xff00 or more sections e_shnum is 0 and section 0's sh_size
 * holds the count; a .shstrtab index of 0xff00 or more goes into section 0's sh_link with
 * e_shstrndx = SHN_XINDEX; symbols in such sections get st_shndx = SHN_XINDEX and their real
 * index in .symtab_shndx.
 */
import { SHN, SHT } from './constants.js';
import { EI, encodeRecord, dataView, layoutsFor, writeBigField, writeNumField, type ClassLayouts } from './layout.js';
import type { SymbolSpec } from './types.js';
import { displayName, planObject, type WritePlan, type WriterModel } from './write-plan.js';

export { planObject, type WritePlan, type WriterModel } from './write-plan.js';

/**
 * A forward-only cursor over the output that checks the plan. Places are named by a section index
 * (-1: the section header table, -2: the end of the file), turned into words only for an error.
 */
class Emitter {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    private readonly describe: (where: number) => string,
  ) {}
  /** Pads with zeros up to `off`, which must not lie behind the cursor. */
  at(off: number, where: number): void {
    if (off < this.pos)
      throw new Error(`writer: ${this.describe(where)} planned at 0x${off.toString(16)} but the cursor is at 0x${this.pos.toString(16)}`);
    this.pos = off;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  skip(n: number): number {
    const p = this.pos;
    this.pos += n;
    return p;
  }
  done(off: number, where: number): void {
    if (off !== this.pos)
      throw new Error(`writer: ${this.describe(where)} should end at 0x${off.toString(16)}, ended at 0x${this.pos.toString(16)}`);
  }
}

export function emitObject(model: WriterModel, plan: WritePlan): Uint8Array {
  const o = model.options;
  const L: ClassLayouts = layoutsFor(o.class);
  const le = o.littleEndian;
  const buf = new Uint8Array(plan.total);
  const dv = dataView(buf);
  const e = new Emitter(buf, (i) =>
    i === -1 ? 'section header table' : i === -2 ? 'end of file' : `section [${i}] ${displayName(plan.sections[i]!.name)}`,
  );
  const shnum = plan.sections.length;
  const is64 = o.class === 64;

  // ELF header.
  buf.set([0x7f, 0x45, 0x4c, 0x46], EI.MAG0);
  buf[EI.CLASS] = is64 ? 2 : 1;
  buf[EI.DATA] = le ? 1 : 2;
  buf[EI.VERSION] = 1;
  buf[EI.OSABI] = o.osabi;
  buf[EI.ABIVERSION] = o.abiVersion;
  encodeRecord(L.ehdr, dv, 0, le, {
    e_type: o.type,
    e_machine: o.machine,
    e_version: 1,
    e_entry: 0n,
    e_phoff: 0n,
    e_shoff: BigInt(plan.shoff),
    e_flags: o.flags,
    e_ehsize: L.ehdr.size,
    e_phentsize: 0,
    e_phnum: 0,
    e_shentsize: L.shdr.size,
    e_shnum: shnum >= SHN.LORESERVE ? 0 : shnum,
    e_shstrndx: plan.shstrndx >= SHN.LORESERVE ? SHN.XINDEX : plan.shstrndx,
  });
  e.skip(L.ehdr.size);

  /** The ELF index of a symbol's section (SHN_* for the specials), before SHN_XINDEX folding. */
  const symSectionIndex = (spec: SymbolSpec): number => {
    if (spec.section === 'UND') return SHN.UNDEF;
    if (spec.section === 'ABS') return SHN.ABS;
    if (spec.section === 'COM') return SHN.COMMON;
    return plan.sectionIndex.get(spec.section)!;
  };
  const isSpecial = (spec: SymbolSpec): boolean => typeof spec.section !== 'number';

  for (let index = 1; index < shnum; index++) {
    const s = plan.sections[index]!;
    if (s.type === SHT.NOBITS) continue;
    e.at(s.offset, index);
    switch (s.kind) {
      case 'model':
        e.bytes(s.data!);
        break;
      case 'group': {
        const g = s.group!;
        const base = e.skip(Number(s.size));
        dv.setUint32(base, g.flags >>> 0, le);
        let word = 1;
        for (const member of g.members) {
          dv.setUint32(base + 4 * word++, plan.sectionIndex.get(member)!, le);
          const relocSection = plan.relocIndex.get(member);
          if (relocSection !== undefined) dv.setUint32(base + 4 * word++, relocSection, le);
        }
        break;
      }
      case 'reloc': {
        const rel = s.relocs!;
        const lay = rel.rela ? L.rela : L.rel;
        const F = lay.fields;
        const oInfo = F.r_info.offset;
        const addendDef = rel.rela ? L.rela.fields.r_addend : undefined;
        const entries = rel.entries;
        for (let entry = 0; entry < entries.length; entry++) {
          const r = entries[entry]!;
          const sym = r.symbol === 0 ? 0 : plan.symbolIndex.get(r.symbol)!;
          const base = e.skip(lay.size);
          writeBigField(dv, base, F.r_offset, le, r.offset);
          // r_info: ELF64 symbol in the high word, type in the low word; ELF32 symbol << 8 | type.
          if (is64) {
            dv.setUint32(base + (le ? oInfo + 4 : oInfo), sym, le);
            dv.setUint32(base + (le ? oInfo : oInfo + 4), r.type, le);
          } else {
            dv.setUint32(base + oInfo, (sym * 256 + r.type) >>> 0, le);
          }
          if (addendDef) writeBigField(dv, base, addendDef, le, r.addend);
        }
        break;
      }
      case 'symtab': {
        e.skip(L.sym.size); // null symbol
        const F = L.sym.fields;
        const order = plan.symbolOrder;
        for (let position = 0; position < order.length; position++) {
          const spec = order[position]!.spec;
          const base = e.skip(L.sym.size);
          const idx = symSectionIndex(spec);
          writeNumField(dv, base, F.st_name, le, plan.strtab.offsetOf(plan.symNameKeys[position]!));
          writeBigField(dv, base, F.st_value, le, spec.value);
          writeBigField(dv, base, F.st_size, le, spec.size);
          buf[base + F.st_info.offset] = (spec.bind << 4) | spec.type;
          buf[base + F.st_other.offset] = (spec.other ?? 0) & 0xff;
          writeNumField(dv, base, F.st_shndx, le, !isSpecial(spec) && idx >= SHN.LORESERVE ? SHN.XINDEX : idx);
        }
        break;
      }
      case 'shndx': {
        e.skip(4);
        const order = plan.symbolOrder;
        for (let position = 0; position < order.length; position++) {
          const { spec } = order[position]!;
          const idx = symSectionIndex(spec);
          dv.setUint32(e.skip(4), !isSpecial(spec) && idx >= SHN.LORESERVE ? idx : 0, le);
        }
        break;
      }
      case 'strtab':
        e.bytes(plan.strtab.finish());
        break;
      case 'shstrtab':
        e.bytes(plan.shstrtab.finish());
        break;
      case 'null':
        break;
    }
    e.done(s.offset + Number(s.size), index);
  }

  // Section header table.
  e.at(plan.shoff, -1);
  const F = L.shdr.fields;
  for (let index = 0; index < shnum; index++) {
    const s = plan.sections[index]!;
    const base = e.skip(L.shdr.size);
    if (index === 0) {
      if (shnum >= SHN.LORESERVE) writeNumField(dv, base, F.sh_size, le, shnum);
      if (plan.shstrndx >= SHN.LORESERVE) writeNumField(dv, base, F.sh_link, le, plan.shstrndx);
      continue;
    }
    writeNumField(dv, base, F.sh_name, le, plan.shstrtab.offsetOf(s.nameKey));
    writeNumField(dv, base, F.sh_type, le, s.type);
    writeBigField(dv, base, F.sh_flags, le, s.flags);
    writeBigField(dv, base, F.sh_addr, le, s.addr);
    writeNumField(dv, base, F.sh_offset, le, s.offset);
    if (typeof s.size === 'number') writeNumField(dv, base, F.sh_size, le, s.size);
    else writeBigField(dv, base, F.sh_size, le, s.size);
    writeNumField(dv, base, F.sh_link, le, s.link);
    writeNumField(dv, base, F.sh_info, le, s.info);
    writeBigField(dv, base, F.sh_addralign, le, s.addralign);
    writeBigField(dv, base, F.sh_entsize, le, s.entsize);
  }
  e.done(plan.total, -2);
  return buf;
}

export function writeObject(model: WriterModel): Uint8Array {
  return emitObject(model, planObject(model));
}

/** writeObject, also returning the plan it followed (where each section and header went). */
export function writeObjectWithPlan(model: WriterModel): { bytes: Uint8Array; plan: WritePlan } {
  const plan = planObject(model);
  return { bytes: emitObject(model, plan), plan };
}
