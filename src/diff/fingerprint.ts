/**
 * Fingerprints (§3.1): a symbol's bytes with every relocated field zeroed, plus its relocations as
 * (offset, type, target key, normalised addend), sorted by offset; targets by meaning, never by
 * symbol index. A function's fingerprint also covers its `.cold` children and its special-section
 * entries (bug-frame line bits taken out and kept aside, §3.2).
 */
import { createHash } from 'node:crypto';
import type { ObjIndex, Sym } from './objindex.js';
import { fieldWidth, hex, isSpecialStatic, resolve, type Target } from './target.js';
import { bugFieldAddend, fixupChunk, isBugFrames, type SpecialEntry, type SpecialIndex } from './special.js';

export interface KeyCtx {
  symKey(s: Sym): string;
}

export interface RelKey {
  off: number;
  type: number;
  key: string;
  addend: bigint;
}

export interface Canon {
  bytes: Uint8Array;
  rels: RelKey[];
}

const sha = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

export class Fingerprinter {
  constructor(
    readonly idx: ObjIndex,
    readonly sp: SpecialIndex,
    readonly ctx: KeyCtx,
  ) {}

  keyOf(t: Target, entry?: SpecialEntry): string {
    switch (t.kind) {
      case 'abs':
        return 'abs';
      case 'ext':
        return `ext:${t.name}`;
      case 'str':
        return `str:${t.content}`;
      case 'cst':
        return `cst:${t.content}`;
      case 'sym':
        if (isSpecialStatic(t.sym)) return `copy:${hex(this.idx.data(t.sym.shndx).subarray(t.sym.value, t.sym.value + t.sym.size))}`;
        return this.ctx.symKey(t.sym);
      case 'anon': {
        const name = this.idx.section(t.sec).name;
        if (name === '.fixup') {
          const c = fixupChunk(this.sp, t.sec, Number(t.addend));
          return `fixup:${this.hashCanon(this.canon(t.sec, c.start, c.end))}`;
        }
        if (name === '.altinstr_replacement' && entry) {
          const d = this.idx.data(entry.sec);
          const len = d[entry.off + 11] ?? 0;
          const st = Number(t.addend);
          return `repl:${this.hashCanon(this.canon(t.sec, st, st + len))}`;
        }
        return `anon:${name}:${sha(this.idx.data(t.sec))}`;
      }
    }
  }

  /** Canonical form of [from, to) of section `sec`. */
  canon(sec: number, from: number, to: number, entry?: SpecialEntry): Canon {
    const data = this.idx.data(sec);
    const bytes = data.slice(from, Math.max(from, to));
    const rels: RelKey[] = [];
    const bug = entry !== undefined && isBugFrames(entry.secName);
    for (const r of this.idx.relsIn(sec, from, to)) {
      const w = fieldWidth(r.type);
      bytes.fill(0, r.offset - from, Math.min(bytes.length, r.offset - from + w));
      let addend = r.addend;
      // Bug-frame fields are frame-relative (`sym - frame`): the field's offset k is in the addend.
      if (bug) addend = bugFieldAddend(r.offset - from, addend).addend;
      const t = resolve(this.idx, sec, r, addend);
      const key = this.keyOf(t, entry);
      // Addend relative to what the key names (a whole-section key keeps the raw addend).
      rels.push({ off: r.offset - from, type: r.type, key, addend: key.startsWith('fixup:') || key.startsWith('repl:') ? 0n : t.addend });
    }
    return { bytes, rels };
  }

  hashCanon(c: Canon): string {
    const h = createHash('sha256');
    h.update(`${c.bytes.length}:`).update(c.bytes);
    for (const r of c.rels) h.update(`|${r.off},${r.type},${r.key},${r.addend}`);
    return h.digest('hex').slice(0, 32);
  }

  /**
   * Whether `s` (this side) and `t` (the other side) are the same without building either canonical
   * form: equal raw bytes and relocations with equal offsets, types, addends and target keys.
   * (Equal raw bytes include the relocated fields, so this can only answer "same" when canon would.)
   */
  sameOwn(other: Fingerprinter, s: Sym, t: Sym): boolean {
    if (s.size !== t.size) return false;
    const a = this.idx.data(s.shndx);
    const b = other.idx.data(t.shndx);
    if (s.value + s.size > a.length || t.value + t.size > b.length) return false;
    if (Buffer.compare(a.subarray(s.value, s.value + s.size), b.subarray(t.value, t.value + t.size)) !== 0) return false;
    const ra = this.idx.relsIn(s.shndx, s.value, s.value + s.size);
    const rb = other.idx.relsIn(t.shndx, t.value, t.value + t.size);
    if (ra.length !== rb.length) return false;
    for (let i = 0; i < ra.length; i++) {
      const x = ra[i]!;
      const y = rb[i]!;
      if (x.offset - s.value !== y.offset - t.value || x.type !== y.type) return false;
      const tx = resolve(this.idx, s.shndx, x);
      const ty = resolve(other.idx, t.shndx, y);
      if (tx.addend !== ty.addend || this.keyOf(tx) !== other.keyOf(ty)) return false;
    }
    return true;
  }

  /** Whether a function has `.cold` children or special-section entries (then sameOwn is not enough). */
  hasExtras(s: Sym, children: Sym[]): boolean {
    return children.length > 0 || this.sp.byOwner.has(s.index);
  }

  /** Canonical form of a symbol's own range. */
  symCanon(s: Sym): Canon {
    return this.canon(s.shndx, s.value, s.value + s.size);
  }

  entryCanon(e: SpecialEntry): Canon {
    const c = this.canon(e.sec, e.off, e.off + e.size, e);
    // The anchor is relative to the owner, whichever offset the entry has in its section.
    return c;
  }

  /** Fingerprint of a function with its children and special entries; lines kept aside. */
  func(s: Sym, children: Sym[]): { fp: string; own: string; rest: string; lines: number[] } {
    const own = this.hashCanon(this.symCanon(s));
    const h = createHash('sha256');
    const lines: number[] = [];
    let any = children.length > 0;
    for (const o of [s, ...children]) {
      if (this.sp.byOwner.has(o.index)) any = true;
      if (o !== s) h.update(`+child${o.size}:`).update(this.hashCanon(this.symCanon(o)));
      for (const e of this.sp.byOwner.get(o.index) ?? []) {
        h.update(`|${e.secName}@${o === s ? '' : 'c'}${e.anchor}:`).update(this.hashCanon(this.entryCanon(e)));
        if (e.line !== undefined) lines.push(e.line);
      }
    }
    const rest = any ? h.digest('hex').slice(0, 32) : '-';
    return { fp: `${s.size}:${own}:${rest}`, own, rest, lines };
  }

  object(s: Sym): string {
    return `${s.size}:${this.hashCanon(this.symCanon(s))}`;
  }
}
