/**
 * `xsplice elf`: a readelf-like view of an ELF file. `elfView` gives the JSON document of the CLI
 * contract (cli.md); `formatElfText` renders the same view as readelf-style tables.
 *
 * Names follow readelf: an unnamed STT_SECTION symbol (in the symbol table and as a relocation's
 * symbol) shows its section's name. 64-bit quantities (addresses, values, addends) are "0x…" strings; offsets, sizes and
 * indices are numbers (sizes above 2^53 are "0x…" strings too).
 */
import { EM, SHN, STT, emName, etName, flagLetters, relocTypeName, shtName, stbName, sttName, stvName } from './constants.js';
import type { ElfFile, ElfNote, ElfRelocSection, ElfRelocation, ElfSymbol } from './types.js';

export interface ElfSectionView {
  index: number;
  name: string;
  type: string;
  flags: string;
  addr: string;
  offset: number;
  size: number | string;
  link: number;
  info: number;
  addralign: number | string;
  entsize: number | string;
}

export interface ElfSymbolView {
  index: number;
  name: string;
  value: string;
  size: number | string;
  type: string;
  bind: string;
  visibility: string;
  /** A section index, 'UND', 'ABS', 'COM', or another reserved value spelled as readelf does ('LARGE_COM', 'PRC[0xff00]', …). */
  shndx: number | string;
}

export interface ElfRelocView {
  /** Name of the SHT_REL/SHT_RELA section, and of the section it applies to. */
  section: string;
  target: string;
  sectionIndex: number;
  targetIndex: number;
  entries: { offset: string; type: string; symbol: string; symbolIndex: number; addend: string | null }[];
}

export interface ElfNoteView {
  section: string;
  owner: string;
  type: number;
  desc: string;
}

export interface ElfView {
  class: 32 | 64;
  endian: 'little' | 'big';
  type: string;
  machine: string;
  sections: ElfSectionView[];
  symbols: ElfSymbolView[];
  relocations: ElfRelocView[];
  notes: ElfNoteView[];
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const hex = (v: bigint | number) => (v < 0 ? '-0x' + (-BigInt(v)).toString(16) : '0x' + v.toString(16));
const num = (v: bigint): number | string => (v <= MAX_SAFE ? Number(v) : hex(v));
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/**
 * st_shndx as readelf shows it. The special values are decided on the stored st_shndx: a real
 * index 0xfff1 reached through SHN_XINDEX is a section, not SHN_ABS. Other reserved values are
 * strings (so they cannot be mistaken for a section index): LARGE_COM (x86-64), SCOM (MIPS), and
 * otherwise PRC[0x…], OS [0x…] or RSV[0x…] by range, as readelf spells them.
 */
function shndxView(s: ElfSymbol, machine: number): ElfSymbolView['shndx'] {
  const raw = s.rawShndx;
  if (raw === SHN.UNDEF) return 'UND';
  if (raw === SHN.ABS) return 'ABS';
  if (raw === SHN.COMMON) return 'COM';
  if (raw < SHN.LORESERVE || raw === SHN.XINDEX) return s.shndx;
  if (raw === 0xff02 && machine === EM.X86_64) return 'LARGE_COM';
  if (raw === 0xff03 && machine === EM.MIPS) return 'SCOM';
  const h = '0x' + raw.toString(16).padStart(4, '0');
  if (raw <= SHN.HIPROC) return `PRC[${h}]`;
  if (raw >= SHN.LOOS && raw <= SHN.HIOS) return `OS [${h}]`;
  return `RSV[${h}]`;
}

/** f with its results remembered (the tables below have few distinct values and many rows). */
function memo<K, V>(f: (k: K) => V): (k: K) => V {
  const m = new Map<K, V>();
  return (k) => {
    let v = m.get(k);
    if (v === undefined) {
      v = f(k);
      m.set(k, v);
    }
    return v;
  };
}

/** The per-record views of one file (shared by elfView and streamElfView). */
function viewers(elf: ElfFile) {
  const h = elf.header;
  const sname = (i: number) => elf.sections[i]?.name ?? '';
  const typeName = memo((t: number) => shtName(t, h.machine));
  const flagsOf = memo((f: bigint) => flagLetters(f, h.machine, h.osabi));
  const relocName = memo((t: number) => relocTypeName(h.machine, t));
  const symtab = elf.symtabSection();
  const syms = symtab ? elf.symbols(symtab) : [];
  // As readelf: an unnamed STT_SECTION symbol shows its section's name.
  const symName = (s: ElfSymbol) => (s.name === '' && s.type === STT.SECTION && s.index !== 0 ? sname(s.shndx) : s.name);
  return {
    head: () => ({
      class: h.class,
      endian: h.littleEndian ? ('little' as const) : ('big' as const),
      type: etName(h.type),
      machine: emName(h.machine),
    }),
    section: (s: ElfFile['sections'][number]): ElfSectionView => ({
      index: s.index,
      name: s.name,
      type: typeName(s.type),
      flags: flagsOf(s.flags),
      addr: hex(s.addr),
      offset: s.offset,
      size: num(s.size),
      link: s.link,
      info: s.info,
      addralign: num(s.addralign),
      entsize: num(s.entsize),
    }),
    syms,
    symbol: (s: ElfSymbol): ElfSymbolView => ({
      index: s.index,
      name: symName(s),
      value: hex(s.value),
      size: num(s.size),
      type: sttName(s.type),
      bind: stbName(s.bind),
      visibility: stvName(s.visibility),
      shndx: shndxView(s, h.machine),
    }),
    relocHead: (r: ElfRelocSection) => ({
      section: r.section.name,
      target: sname(r.target),
      sectionIndex: r.section.index,
      targetIndex: r.target,
      table: r.symtab === 0 ? [] : r.symtab === symtab?.index ? syms : elf.symbols(elf.sections[r.symtab]),
    }),
    relocEntry: (table: ElfSymbol[], e: ElfRelocation): ElfRelocView['entries'][number] => {
      // The reader has checked e.symbol against the linked table's length.
      const sym = e.symbol === 0 ? undefined : table[e.symbol];
      return {
        offset: hex(e.offset),
        type: relocName(e.type),
        symbol: sym ? symName(sym) : '',
        symbolIndex: e.symbol,
        addend: e.addend === null ? null : hex(e.addend),
      };
    },
    note: (n: ElfNote): ElfNoteView => ({ section: sname(n.section), owner: n.name, type: n.type, desc: toHex(n.desc) }),
  };
}

export function elfView(elf: ElfFile): ElfView {
  const v = viewers(elf);
  return {
    ...v.head(),
    sections: elf.sections.map(v.section),
    symbols: v.syms.map(v.symbol),
    relocations: elf.relocations().map((r) => {
      const { table, ...head } = v.relocHead(r);
      return { ...head, entries: r.entries.map((e) => v.relocEntry(table, e)) };
    }),
    notes: elf.notes().map(v.note),
  };
}

/**
 * The `elf` view written out as it is made, in pieces of about 64 KiB: the same text as
 * formatElfText(elfView(elf)), or the same JSON as JSON.stringify({ file, ...elfView(elf) }, null, 2),
 * without ever holding the whole document (a file with a million relocations is a few hundred
 * MiB of JSON).
 */
export function streamElfView(elf: ElfFile, o: { json: boolean; file: string }, write: (s: string) => void): void {
  const v = viewers(elf);
  // Everything that can fail is decoded before the first byte is written (one document, or one error).
  const relocs = elf.relocations().map((r) => ({ r, ...v.relocHead(r) }));
  const notes = elf.notes();
  let buf = '';
  const put = (s: string): void => {
    buf += s;
    if (buf.length >= 65536) {
      write(buf);
      buf = '';
    }
  };
  if (o.json) {
    const ind = (depth: number, x: unknown): string => JSON.stringify(x, null, 2).replace(/\n/g, '\n' + '  '.repeat(depth));
    const list = <T>(depth: number, key: string, items: Iterable<T>, each: (t: T) => void, last: boolean): void => {
      const pre = '  '.repeat(depth);
      let first = true;
      for (const it of items) {
        put(first ? `${pre}${JSON.stringify(key)}: [\n` : ',\n');
        first = false;
        each(it);
      }
      put(first ? `${pre}${JSON.stringify(key)}: []${last ? '' : ','}\n` : `\n${pre}]${last ? '' : ','}\n`);
    };
    const head = { ok: true, file: o.file, ...v.head() };
    put('{\n');
    for (const [k, val] of Object.entries(head)) put(`  ${JSON.stringify(k)}: ${JSON.stringify(val)},\n`);
    list(1, 'sections', elf.sections, (s) => put('    ' + ind(2, v.section(s))), false);
    list(1, 'symbols', v.syms, (s) => put('    ' + ind(2, v.symbol(s))), false);
    list(
      1,
      'relocations',
      relocs,
      ({ r, table, ...h }) => {
        put('    {\n');
        for (const [k, val] of Object.entries(h)) put(`      ${JSON.stringify(k)}: ${JSON.stringify(val)},\n`);
        list(3, 'entries', r.entries, (e) => put('        ' + ind(4, v.relocEntry(table, e))), true);
        put('    }');
      },
      false,
    );
    list(1, 'notes', notes, (n) => put('    ' + ind(2, v.note(n))), true);
    put('}\n');
  } else {
    const h = v.head();
    const w = h.class === 64 ? 16 : 8;
    put(`ELF${h.class} ${h.endian}-endian ${h.type} ${h.machine}\n\n`);
    put(`Section Headers (${elf.sections.length}):\n`);
    put(`  [Nr] ${pad('Name', 17)} ${pad('Type', 15)} ${pad('Address', w)} Off      Size     ES Flg Lk Inf Al\n`);
    for (const s of elf.sections) put(sectionLine(v.section(s), w) + '\n');
    put(`\nSymbol table .symtab (${v.syms.length} entries):\n`);
    put(`   Num: ${pad('Value', w)}  Size Type    Bind   Vis       Ndx Name\n`);
    for (const s of v.syms) put(symbolLine(v.symbol(s), w) + '\n');
    for (const { r, table, ...rh } of relocs) {
      put(`\n${relocTitle({ ...rh, entries: r.entries })}\n`);
      put(`    ${pad('Offset', w)}  ${pad('Type', 22)} Symbol + Addend\n`);
      for (const e of r.entries) put(relocLine(v.relocEntry(table, e), w) + '\n');
    }
    if (notes.length) {
      put(`\nNotes:\n  ${pad('Section', 24)} ${pad('Owner', 10)} ${pad('Type', 10)} Description\n`);
      for (const n of notes) put(noteLine(v.note(n)) + '\n');
    }
  }
  if (buf) write(buf);
}

const pad = (s: string | number, n: number) => String(s).padEnd(n);
const lpad = (s: string | number, n: number) => String(s).padStart(n);
const hx = (s: string | number, w: number) => (typeof s === 'number' ? s.toString(16) : s.replace(/^-?0x/, '')).padStart(w, '0');

const sectionLine = (s: ElfSectionView, w: number): string =>
  `  [${lpad(s.index, 2)}] ${pad(s.name, 17)} ${pad(s.type.replace(/^SHT_/, ''), 15)} ${hx(s.addr, w)} ${hx(s.offset, 8)} ${hx(s.size, 8)} ${hx(s.entsize, 2)} ${lpad(s.flags, 3)} ${lpad(s.link, 2)} ${lpad(s.info, 3)} ${lpad(String(s.addralign), 2)}`;
const symbolLine = (s: ElfSymbolView, w: number): string =>
  `${lpad(s.index, 6)}: ${hx(s.value, w)} ${lpad(String(s.size), 5)} ${pad(s.type.replace(/^STT_/, ''), 7)} ${pad(s.bind.replace(/^STB_/, ''), 6)} ${pad(s.visibility.replace(/^STV_/, ''), 8)} ${lpad(String(s.shndx), 4)} ${s.name}`;
const relocTitle = (r: { sectionIndex: number; section: string; targetIndex: number; target: string; entries: unknown[] }): string =>
  `Relocation section [${r.sectionIndex}] ${r.section} for [${r.targetIndex}] ${r.target} (${r.entries.length} entries):`;
const relocLine = (e: ElfRelocView['entries'][number], w: number): string => {
  const add = e.addend === null ? '' : e.addend.startsWith('-') ? ` - ${e.addend.slice(1)}` : ` + ${e.addend}`;
  return `    ${hx(e.offset, w)}  ${pad(e.type, 22)} ${e.symbol}${add}`;
};
const noteLine = (n: ElfNoteView): string =>
  `  ${pad(n.section, 24)} ${pad(n.owner, 10)} ${pad('0x' + n.type.toString(16).padStart(8, '0'), 10)} ${n.desc}`;

/** readelf-style tables of a view. */
export function formatElfText(v: ElfView): string {
  const w = v.class === 64 ? 16 : 8;
  const out: string[] = [];
  out.push(`ELF${v.class} ${v.endian}-endian ${v.type} ${v.machine}`, '');
  out.push(`Section Headers (${v.sections.length}):`);
  out.push(`  [Nr] ${pad('Name', 17)} ${pad('Type', 15)} ${pad('Address', w)} Off      Size     ES Flg Lk Inf Al`);
  for (const s of v.sections) out.push(sectionLine(s, w));
  out.push('', `Symbol table .symtab (${v.symbols.length} entries):`);
  out.push(`   Num: ${pad('Value', w)}  Size Type    Bind   Vis       Ndx Name`);
  for (const s of v.symbols) out.push(symbolLine(s, w));
  for (const r of v.relocations) {
    out.push('', relocTitle(r));
    out.push(`    ${pad('Offset', w)}  ${pad('Type', 22)} Symbol + Addend`);
    for (const e of r.entries) out.push(relocLine(e, w));
  }
  if (v.notes.length) {
    out.push('', 'Notes:', `  ${pad('Section', 24)} ${pad('Owner', 10)} ${pad('Type', 10)} Description`);
    for (const n of v.notes) out.push(noteLine(n));
  }
  return out.join('\n') + '\n';
}
