/**
 * Per-object indexes (§2.2), built once in one pass over the symbol table and the relocation
 * sections: symbols with their FILE, symbols by name, per section the symbols sorted by value
 * ("which symbol contains offset X" is a binary search), relocations per target section sorted by
 * offset, and instruction boundaries of executable sections (decoded on first use).
 */
import { readElf } from '../elf/reader.js';
import { SHF, SHN, SHT, STB, STT } from '../elf/constants.js';
import type { ElfFile, ElfRelocation, ElfSection } from '../elf/types.js';
import { FormatError } from '../errors.js';
import { decode, type Insn } from './x86.js';

export interface Sym {
  index: number;
  name: string;
  /** STT_FILE in force ('' when none). */
  file: string;
  bind: number;
  type: number;
  shndx: number;
  value: number;
  size: number;
  /** Section name ('' for UND/ABS). */
  section: string;
  /** Demangled base and clone/static suffix kinds (§2.2). */
  base: string;
  kinds: string;
  /** Xen's name: plain for globals, `file#name` for locals. */
  xenName: string;
}

/** What a relocation points at (target.ts resolves it). */
export type Target =
  | { kind: 'abs'; addend: bigint }
  | { kind: 'ext'; name: string; addend: bigint }
  /** addend relative to the symbol's start. */
  | { kind: 'sym'; sym: Sym; addend: bigint }
  /** A string: `start` its offset in section `sec`, addend relative to it. */
  | { kind: 'str'; sec: number; start: number; content: string; addend: bigint }
  | { kind: 'cst'; sec: number; start: number; content: string; addend: bigint }
  /** A range of a section no symbol covers; addend relative to the section start. */
  | { kind: 'anon'; sec: number; addend: bigint };

export interface Rel {
  offset: number;
  type: number;
  symbol: number;
  addend: bigint;
  /** Cached resolution (target.ts). */
  t?: Target;
}

export const F_WRITE = Number(SHF.WRITE);
export const F_ALLOC = Number(SHF.ALLOC);
export const F_EXEC = Number(SHF.EXECINSTR);
export const F_MERGE = Number(SHF.MERGE);
export const F_STRINGS = Number(SHF.STRINGS);

const flagNum = (f: bigint): number => Number(BigInt.asUintN(32, f));

const CLONE_NUM = new Set(['isra', 'constprop', 'part', 'lto_priv']);

/** Splits `foo.isra.3`, `lock.4`, `f.part.0.cold` into (base, kinds). */
export function demangle(name: string): { base: string; kinds: string } {
  if (!name.includes('.')) return { base: name, kinds: '' };
  const toks = name.split('.');
  if (toks.length < 2 || toks[0] === '') return { base: name, kinds: '' };
  const kinds: string[] = [];
  let i = 1;
  while (i < toks.length) {
    const t = toks[i]!;
    if (CLONE_NUM.has(t) && i + 1 < toks.length && /^\d+$/.test(toks[i + 1]!)) {
      kinds.push(t);
      i += 2;
    } else if (t === 'cold') {
      kinds.push('cold');
      i += /^\d+$/.test(toks[i + 1] ?? '') ? 2 : 1;
    } else if (t === 'localalias') {
      kinds.push(t);
      i++;
    } else if (/^\d+$/.test(t)) {
      kinds.push('#');
      i++;
    } else return { base: name, kinds: '' };
  }
  return { base: toks[0]!, kinds: kinds.join('.') };
}

export class ObjIndex {
  readonly elf: ElfFile;
  readonly path: string;
  readonly syms: Sym[] = [];
  /** Defined FUNC/OBJECT symbols, symbol-table order. */
  readonly defined: Sym[] = [];
  readonly files: string[] = [];
  private readonly bySection = new Map<number, Sym[]>();
  private readonly relsOf = new Map<number, Rel[]>();
  private readonly insnCache = new Map<number, Insn[]>();
  private readonly flagCache: Int32Array;
  private readonly dataCache: (Uint8Array | undefined)[];

  constructor(path: string, bytes: Uint8Array) {
    this.path = path;
    this.elf = readElf(bytes, { file: path });
    const e = this.elf;
    this.flagCache = new Int32Array(e.sections.length).fill(-1);
    this.dataCache = new Array(e.sections.length);
    if (e.header.type !== 1) throw new FormatError('DIFF_NOT_RELOCATABLE', 'not a relocatable object (ET_REL)', { file: path });
    if (e.header.machine !== 62)
      throw new FormatError('DIFF_ARCH', `machine ${e.header.machine}: diff handles x86-64 objects`, { file: path });
    let file = '';
    for (const s of e.symbols()) {
      if (s.type === STT.FILE) {
        file = s.name;
        this.files.push(s.name);
      }
      const secName = s.shndx > 0 && s.shndx < SHN.LORESERVE && e.sections[s.shndx] ? e.sections[s.shndx]!.name : '';
      const dm = demangle(s.name);
      const sym: Sym = {
        index: s.index,
        name: s.name,
        file,
        bind: s.bind,
        type: s.type,
        shndx: s.shndx,
        value: Number(s.value),
        size: Number(s.size),
        section: secName,
        base: dm.base,
        kinds: dm.kinds,
        xenName: s.bind === STB.LOCAL && file ? `${file}#${s.name}` : s.name,
      };
      this.syms.push(sym);
      if (s.index === 0 || s.name === '') continue;
      if (s.shndx !== SHN.UNDEF && s.shndx < SHN.LORESERVE && !e.sections[s.shndx]) {
        throw new FormatError('DIFF_SYMBOL_SECTION', `symbol [${s.index}] ${s.name} is in section ${s.shndx}, which does not exist`, {
          file: path,
          symbol: s.name,
        });
      }
      if ((s.type === STT.FUNC || s.type === STT.OBJECT || s.type === STT.TLS) && s.shndx !== SHN.UNDEF && s.shndx < SHN.LORESERVE) {
        this.defined.push(sym);
        const l = this.bySection.get(s.shndx);
        if (l) l.push(sym);
        else this.bySection.set(s.shndx, [sym]);
      }
    }
    for (const l of this.bySection.values()) l.sort((a, b) => a.value - b.value || b.size - a.size || a.index - b.index);
    for (const rs of e.relocations()) {
      if (!rs.rela) continue;
      const tgt = e.sections[rs.target];
      if (!tgt || (flagNum(tgt.flags) & F_ALLOC) === 0) continue;
      const list: Rel[] = rs.entries.map((r: ElfRelocation) => {
        if (r.symbol >= this.syms.length)
          throw new FormatError(
            'DIFF_RELOC_SYMBOL',
            `relocation at 0x${r.offset.toString(16)} of ${tgt.name} names symbol ${r.symbol}, past the symbol table`,
            { file: path, section: rs.section.name },
          );
        if (r.offset > tgt.size)
          throw new FormatError('DIFF_RELOC_OFFSET', `relocation at 0x${r.offset.toString(16)} lies past the end of ${tgt.name}`, {
            file: path,
            section: rs.section.name,
          });
        return { offset: Number(r.offset), type: r.type, symbol: r.symbol, addend: r.addend ?? 0n };
      });
      let sorted = true;
      for (let k = 1; k < list.length && sorted; k++) sorted = list[k - 1]!.offset <= list[k]!.offset;
      if (!sorted) list.sort((a, b) => a.offset - b.offset);
      const prev = this.relsOf.get(rs.target);
      this.relsOf.set(rs.target, prev ? [...prev, ...list].sort((a, b) => a.offset - b.offset) : list);
    }
  }

  section(i: number): ElfSection {
    return this.elf.sections[i]!;
  }
  flags(i: number): number {
    let f = this.flagCache[i]!;
    if (f < 0) {
      f = flagNum(this.elf.sections[i]!.flags) & 0x7fffffff;
      this.flagCache[i] = f;
    }
    return f;
  }
  /** Section bytes (zeros for NOBITS). */
  data(i: number): Uint8Array {
    let d = this.dataCache[i];
    if (!d) {
      const s = this.elf.sections[i]!;
      d = s.type === SHT.NOBITS ? new Uint8Array(Number(s.size)) : s.data();
      this.dataCache[i] = d;
    }
    return d;
  }
  symsIn(sec: number): Sym[] {
    return this.bySection.get(sec) ?? [];
  }
  rels(sec: number): Rel[] {
    return this.relsOf.get(sec) ?? [];
  }
  /** Relocations with offset in [from, to). */
  relsIn(sec: number, from: number, to: number): Rel[] {
    const all = this.rels(sec);
    let lo = 0;
    let hi = all.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (all[m]!.offset < from) lo = m + 1;
      else hi = m;
    }
    const out: Rel[] = [];
    for (let i = lo; i < all.length && all[i]!.offset < to; i++) out.push(all[i]!);
    return out;
  }
  /** The FUNC/OBJECT symbol of `sec` containing `off` (largest value ≤ off, within its size; a zero-size symbol only at its value). */
  containing(sec: number, off: number): Sym | undefined {
    const l = this.bySection.get(sec);
    if (!l) return undefined;
    let lo = 0;
    let hi = l.length - 1;
    let best = -1;
    while (lo <= hi) {
      const m = (lo + hi) >> 1;
      if (l[m]!.value <= off) {
        best = m;
        lo = m + 1;
      } else hi = m - 1;
    }
    for (let i = best; i >= 0; i--) {
      const s = l[i]!;
      if (off < s.value + s.size || (off === s.value && s.size === 0)) return s;
      if (s.value + Math.max(s.size, 1) <= off && i < best - 4) break;
    }
    return undefined;
  }
  /** Instruction boundaries of an executable section (cached). */
  insns(sec: number): Insn[] {
    let l = this.insnCache.get(sec);
    if (!l) {
      l = decode(this.data(sec));
      this.insnCache.set(sec, l);
    }
    return l;
  }
  isExec(sec: number): boolean {
    return (this.flags(sec) & F_EXEC) !== 0;
  }
  isStrings(sec: number): boolean {
    const f = this.flags(sec);
    return (f & F_MERGE) !== 0 && (f & F_STRINGS) !== 0;
  }
  isConst(sec: number): boolean {
    const f = this.flags(sec);
    return (f & F_MERGE) !== 0 && (f & F_STRINGS) === 0 && Number(this.elf.sections[sec]!.entsize) > 0;
  }
}
