/**
 * Special sections (§5): split into entries with the stride of the ABI row (never a constant of the
 * differ), each entry owned by the function its +0 ("anchor") relocation points into. `.fixup`
 * chunks run from one `.ex_table` continuation target to the next; replacement ranges are
 * `[repl_offset, +repl_len)` of each `.altinstructions` entry.
 */
import { STT } from '../elf/constants.js';
import type { PayloadAbi } from '../payload/abi-types.js';
import type { ObjIndex, Rel, Sym } from './objindex.js';
import { BUG_LINE_MASK, BUG_LINE_SHIFT, resolve, type Target } from './target.js';

export interface SpecialEntry {
  sec: number;
  secName: string;
  off: number;
  size: number;
  rels: Rel[];
  /** Function the anchor points into (undefined: no symbol covers it). */
  owner?: Sym;
  /** Offset of the anchor within the owner. */
  anchor: number;
  /** Bug frames: the line (hi<<7|lo) taken out of the addends. */
  line?: number;
}

export interface SpecialIndex {
  entries: SpecialEntry[];
  /** Per function symbol index: its entries. */
  byOwner: Map<number, SpecialEntry[]>;
  /** `.fixup` section → sorted chunk start offsets. */
  fixupCuts: Map<number, number[]>;
  /** Sections with entries of unknown layout (`.ex_table.pre`, unknown SHF_ALLOC tables) → owners they reference. */
  unsupported: { secName: string; owner?: Sym }[];
  errors: string[];
}

export const isBugFrames = (n: string): boolean => /^\.bug_frames\.\d+$/.test(n);

/** Entry stride per special section of the row; `.bug_frames.3` frames carry a second 8-byte frame (message). */
export function strideOf(abi: PayloadAbi, name: string): number | undefined {
  if (name.startsWith('.text') || name.startsWith('.rodata') || name.startsWith('.data') || name.startsWith('.bss')) return undefined;
  const r = abi.special.find((s) => s.section === name);
  if (!r || name === abi.sections.modinfo || name.includes('.hooks.')) return undefined;
  return name === '.bug_frames.3' && abi.arch === 'x86_64' ? r.entrySize * 2 : r.entrySize;
}

/** Splits a bug-frame addend into (addend without line bits, line bits). */
export function splitLine(a: bigint): { addend: bigint; bits: number } {
  const bits = Number((a >> BUG_LINE_SHIFT) & BUG_LINE_MASK);
  return { addend: a - (BigInt(bits) << BUG_LINE_SHIFT), bits };
}

/**
 * A bug-frame field at offset k holds `target − frame` (+ line bits at k = 0 and 4): the relocation's
 * addend is target offset + k (+ line bits). Returns the target-relative addend and what to add back.
 */
export function bugFieldAddend(k: number, a: bigint): { addend: bigint; back: bigint } {
  const bits = k === 0 || k === 4 ? BigInt(splitLine(a).bits) << BUG_LINE_SHIFT : 0n;
  return { addend: a - bits - BigInt(k), back: bits + BigInt(k) };
}

const KNOWN_ALLOC =
  /^\.(text|data|bss|rodata|init|initcall|fixup|altinstr_replacement|discard|note|livepatch\.hooks|comment|lockprofile|ctors|tbss|tdata|exit|eh_frame|gnu)/;

export function indexSpecial(idx: ObjIndex, abi: PayloadAbi): SpecialIndex {
  const out: SpecialIndex = { entries: [], byOwner: new Map(), fixupCuts: new Map(), unsupported: [], errors: [] };
  const secs = idx.elf.sections;
  for (let i = 1; i < secs.length; i++) {
    const s = secs[i]!;
    if ((idx.flags(i) & 2) === 0) continue;
    const stride = strideOf(abi, s.name);
    if (stride === undefined) {
      if (!KNOWN_ALLOC.test(s.name) || s.name === '.ex_table.pre' || (s.name.startsWith('.alt') && s.name !== '.altinstr_replacement')) {
        const owners = new Set<Sym | undefined>();
        for (const r of idx.rels(i)) {
          const t = resolve(idx, i, r);
          owners.add(t.kind === 'sym' && t.sym.type === STT.FUNC ? t.sym : undefined);
        }
        if (owners.size === 0) owners.add(undefined);
        for (const o of owners) out.unsupported.push(o ? { secName: s.name, owner: o } : { secName: s.name });
      }
      continue;
    }
    const size = Number(s.size);
    if (size % stride !== 0) {
      out.errors.push(`${s.name}: size ${size} is not a multiple of its ${stride}-byte entries (DIFF_SPECIAL_LAYOUT)`);
      continue;
    }
    const bug = isBugFrames(s.name);
    const rels = idx.rels(i);
    let k = 0;
    for (let off = 0; off < size; off += stride) {
      const er: Rel[] = [];
      while (k < rels.length && rels[k]!.offset < off + stride) {
        if (rels[k]!.offset >= off) er.push(rels[k]!);
        k++;
      }
      const e: SpecialEntry = { sec: i, secName: s.name, off, size: stride, rels: er, anchor: 0 };
      const a = er.find((r) => r.offset === off);
      if (a) {
        let addend = a.addend;
        if (bug) {
          const lo = er.find((r) => r.offset === off + 4);
          const hi = splitLine(a.addend);
          addend = hi.addend;
          e.line = (hi.bits << 7) | (lo ? splitLine(lo.addend).bits : 0);
        }
        const t: Target = resolve(idx, i, a, addend);
        if (t.kind === 'sym' && t.sym.type === STT.FUNC) {
          e.owner = t.sym;
          e.anchor = Number(t.addend);
        }
      }
      out.entries.push(e);
      if (e.owner) {
        const l = out.byOwner.get(e.owner.index);
        if (l) l.push(e);
        else out.byOwner.set(e.owner.index, [e]);
      }
      // .ex_table continuation into .fixup: a chunk boundary.
      if (s.name === '.ex_table') {
        const c = er.find((r) => r.offset === off + 4);
        if (c) {
          const t = resolve(idx, i, c);
          if (t.kind === 'anon' && secs[t.sec]!.name === '.fixup') {
            const l = out.fixupCuts.get(t.sec) ?? [];
            l.push(Number(t.addend));
            out.fixupCuts.set(t.sec, l);
          }
        }
      }
    }
  }
  for (const [sec, l] of out.fixupCuts) out.fixupCuts.set(sec, [...new Set(l)].sort((a, b) => a - b).concat(Number(secs[sec]!.size)));
  return out;
}

/** The `.fixup` chunk starting at `start`: [start, next cut). */
export function fixupChunk(sp: SpecialIndex, sec: number, start: number): { start: number; end: number } {
  const cuts = sp.fixupCuts.get(sec) ?? [];
  const next = cuts.find((c) => c > start);
  return { start, end: next ?? start };
}
