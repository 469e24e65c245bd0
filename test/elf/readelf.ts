/**
 * Parsers for GNU readelf's -W output (binutils 2.40): the oracle the differential and round-trip
 * tests compare against. Only what the tests compare is parsed; a line that should match and does
 * not makes the parser throw, so a format drift cannot turn into an empty comparison.
 */
import { tool } from '../helpers/corpus.js';

export interface RSection {
  index: number;
  /** Name and type as printed ("name TYPE"), whitespace collapsed: readelf pads both columns. */
  nameType: string;
  addr: bigint;
  off: number;
  size: bigint;
  es: bigint;
  flg: string;
  lk: number;
  inf: number;
  al: bigint;
}

const SEC_RE =
  /^\s*\[\s*(\d+)\]\s(.*?)\s+([0-9a-f]{8}|[0-9a-f]{16})\s([0-9a-f]+)\s([0-9a-f]+)\s([0-9a-f]+)\s+([A-Za-z]*)\s+(\d+)\s+(\d+)\s+(\d+)$/;

export function parseSections(out: string): RSection[] {
  const rows: RSection[] = [];
  let inTable = false;
  for (const line of out.split('\n')) {
    if (line.startsWith('Section Headers:')) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    if (line.startsWith('Key to Flags:')) break;
    if (/^\s*\[Nr\]/.test(line)) continue;
    const m = SEC_RE.exec(line);
    if (!m) throw new Error(`readelf -S: unparsed line ${JSON.stringify(line)}`);
    rows.push({
      index: Number(m[1]),
      nameType: m[2]!.trim().replace(/\s+/g, ' '),
      addr: BigInt('0x' + m[3]),
      off: parseInt(m[4]!, 16),
      size: BigInt('0x' + m[5]),
      es: BigInt('0x' + m[6]),
      flg: m[7]!,
      lk: Number(m[8]),
      inf: Number(m[9]),
      al: BigInt(m[10]!),
    });
  }
  if (!inTable) throw new Error('readelf -S: no section table in output');
  return rows;
}

export interface RSymbol {
  num: number;
  value: bigint;
  size: bigint;
  type: string;
  bind: string;
  vis: string;
  ndx: string;
  name: string;
}

const SYM_RE = /^\s*(\d+):\s([0-9a-f]+)\s+(\d+|0x[0-9a-f]+)\s(\S+)\s+(\S+)\s+(\S+)\s+(OS \[0x[0-9a-f]+\]|\S+)(?: (.*))?$/;

/** Rows of the `.symtab` table only. */
export function parseSymbols(out: string): RSymbol[] {
  const rows: RSymbol[] = [];
  let inTable = false;
  for (const line of out.split('\n')) {
    const h = /^Symbol table '([^']*)' contains (\d+) entr/.exec(line);
    if (h) {
      inTable = h[1] === '.symtab';
      continue;
    }
    if (!inTable || line.trim() === '' || /^\s*Num:/.test(line)) continue;
    const m = SYM_RE.exec(line);
    if (!m) throw new Error(`readelf -s: unparsed line ${JSON.stringify(line)}`);
    rows.push({
      num: Number(m[1]),
      value: BigInt('0x' + m[2]),
      size: BigInt(m[3]!),
      type: m[4]!,
      bind: m[5]!,
      vis: m[6]!,
      ndx: m[7]!,
      name: m[8] ?? '',
    });
  }
  return rows;
}

export interface RReloc {
  offset: bigint;
  info: bigint;
  type: string;
  symbol: string;
  /** null for REL sections; for RELA the signed addend. */
  addend: bigint | null;
}

export interface RRelocSection {
  name: string;
  count: number;
  entries: RReloc[];
}

export function parseRelocs(out: string, is64: boolean): RRelocSection[] {
  const secs: RRelocSection[] = [];
  let cur: RRelocSection | undefined;
  let rela = false;
  for (const line of out.split('\n')) {
    const h = /^Relocation section '([^']*)' at offset 0x[0-9a-f]+ contains (\d+) entr/.exec(line);
    if (h) {
      cur = { name: h[1]!, count: Number(h[2]), entries: [] };
      secs.push(cur);
      continue;
    }
    if (!cur || line.trim() === '') continue;
    if (/^\s*Offset\s+Info/.test(line)) {
      rela = /Addend/.test(line);
      continue;
    }
    const m = /^([0-9a-f]+)\s+([0-9a-f]+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`readelf -r: unparsed line ${JSON.stringify(line)}`);
    const info = BigInt('0x' + m[2]);
    const sym = is64 ? info >> 32n : info >> 8n;
    const rest = m[4]!.trim();
    let symbol = '';
    let addend: bigint | null = null;
    if (rela) {
      if (sym === 0n) {
        addend = rest === '' ? 0n : rest.startsWith('-') ? -BigInt('0x' + rest.slice(1).trim()) : BigInt('0x' + rest);
      } else {
        // The value column: hex, or "name()" for an STT_GNU_IFUNC symbol.
        const r = /^(?:[0-9a-f]+|\S+\(\))\s+(.*?)\s([+-])\s([0-9a-f]+)$/.exec(rest);
        if (!r) throw new Error(`readelf -r: unparsed RELA entry ${JSON.stringify(line)}`);
        symbol = r[1]!;
        addend = (r[2] === '-' ? -1n : 1n) * BigInt('0x' + r[3]);
      }
    } else if (sym !== 0n) {
      const r = /^(?:[0-9a-f]+|\S+\(\))\s+(.*)$/.exec(rest);
      if (!r) throw new Error(`readelf -r: unparsed REL entry ${JSON.stringify(line)}`);
      symbol = r[1]!;
    }
    cur.entries.push({ offset: BigInt('0x' + m[1]), info, type: m[3]!, symbol, addend });
  }
  return secs;
}

export interface RNote {
  section: string;
  owner: string;
  size: number;
  description: string;
  /** Descriptor bytes as hex when readelf prints them raw (build-id, unknown types). */
  descHex?: string;
}

export function parseNotes(out: string): RNote[] {
  const notes: RNote[] = [];
  let section = '';
  for (const line of out.split('\n')) {
    const h = /^Displaying notes found in: (.*)$/.exec(line);
    if (h) {
      section = h[1]!.trim();
      continue;
    }
    const m = /^\s{2}(\S.*?)\s+0x([0-9a-f]{8})\t(.*)$/.exec(line);
    if (m && section) {
      const description = m[3]!;
      let descHex: string | undefined;
      const b = /Build ID: ([0-9a-f]+)/.exec(description);
      const d = /description data: ((?:[0-9a-f]{2} )*)/.exec(description);
      if (b) descHex = b[1];
      else if (d) descHex = d[1]!.replace(/ /g, '');
      notes.push({ section, owner: m[1]!, size: parseInt(m[2]!, 16), description, descHex });
    }
  }
  return notes;
}

export interface RGroup {
  section: string;
  signature: string;
  members: string[];
}

export function parseGroups(out: string): RGroup[] {
  const groups: RGroup[] = [];
  let cur: RGroup | undefined;
  for (const line of out.split('\n')) {
    const h = /^(?:COMDAT )?group section \[\s*\d+\] `([^']*)' \[([^\]]*)\] contains \d+ sections?:/.exec(line);
    if (h) {
      cur = { section: h[1]!, signature: h[2]!, members: [] };
      groups.push(cur);
      continue;
    }
    const m = /^\s+\[\s*\d+\]\s+(\S.*)$/.exec(line);
    if (cur && m && !/^\s+\[Index\]/.test(line)) cur.members.push(m[1]!.trim());
  }
  return groups;
}

export async function readelf(args: string[], file: string): Promise<string> {
  return tool('readelf', ['-W', ...args, file]);
}

/** readelf's spelling of a section type from our SHT_ name. */
export function readelfShType(sht: string): string {
  const t = sht.replace(/^SHT_/, '');
  // Where readelf 2.40's vocabulary differs from ours: it has no names for the LLVM types.
  const special: Record<string, string> = {
    SYMTAB_SHNDX: 'SYMTAB SECTION INDICES',
    GNU_verdef: 'VERDEF',
    GNU_verneed: 'VERNEED',
    GNU_versym: 'VERSYM',
    LLVM_ODRTAB: 'LOOS+0xfff4c00',
    LLVM_LINKER_OPTIONS: 'LOOS+0xfff4c01',
    LLVM_ADDRSIG: 'LOOS+0xfff4c03',
    LLVM_DEPENDENT_LIBRARIES: 'LOOS+0xfff4c04',
  };
  const small = /^0x([0-9a-f]+)$/.exec(t);
  if (small) return `${small[1]!.padStart(8, '0')}: <unknown>`;
  return special[t] ?? t;
}

export function readelfSymType(stt: string): string {
  const t = stt.replace(/^STT_/, '');
  return t === 'GNU_IFUNC' ? 'IFUNC' : t;
}

export function readelfBind(stb: string): string {
  const b = stb.replace(/^STB_/, '');
  return b === 'GNU_UNIQUE' ? 'UNIQUE' : b;
}
