/**
 * Resolving a relocation to what it means (§3.1 step 2): the containing symbol of a section-symbol
 * or `.L` target (with the instruction-end bias for PC-relative fields in code), an undefined global,
 * a string by content, a `.rodata.cstN` constant by value, or an anonymous section range.
 */
import { SHN, STT } from '../elf/constants.js';
import { R_X86_64 } from '../elf/constants.js';
import type { ObjIndex, Rel, Sym, Target } from './objindex.js';
import { insnAt } from './x86.js';

export type { Target };

const latin1 = new TextDecoder('latin1');
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export function isPcRel(type: number): boolean {
  return type === R_X86_64.PC32 || type === R_X86_64.PLT32;
}
/** Width of the relocated field. */
export function fieldWidth(type: number): number {
  return type === R_X86_64['64'] || type === R_X86_64.PC64 ? 8 : 4;
}

/** Bytes from the relocated field to the end of its instruction (PC-relative fields in code), else 0. */
export function pcBias(idx: ObjIndex, sec: number, r: Rel): number {
  if (!isPcRel(r.type) || !idx.isExec(sec)) return 0;
  const insns = idx.insns(sec);
  const i = insnAt(insns, r.offset);
  if (i < 0) return 4;
  const x = insns[i]!;
  return x.off + x.len - r.offset;
}

export const BUG_LINE_SHIFT = 24n;
export const BUG_LINE_MASK = 0x7fn;

/** Resolves relocation `r` of section `sec`; `addend` overrides r.addend (bug-frame line bits removed). */
export function resolve(idx: ObjIndex, sec: number, r: Rel, addend?: bigint): Target {
  if (addend === undefined || addend === r.addend) {
    // Resolution depends only on the object: computed once per relocation.
    return (r.t ??= resolveUncached(idx, sec, r, r.addend));
  }
  return resolveUncached(idx, sec, r, addend);
}

function resolveUncached(idx: ObjIndex, sec: number, r: Rel, addend: bigint): Target {
  if (r.symbol === 0) return { kind: 'abs', addend };
  const s = idx.syms[r.symbol]!;
  if (s.shndx === SHN.UNDEF) return { kind: 'ext', name: s.name, addend };
  if (s.shndx >= SHN.LORESERVE) return { kind: 'abs', addend };
  if ((s.type === STT.FUNC || s.type === STT.OBJECT || s.type === STT.TLS) && s.name !== '') return { kind: 'sym', sym: s, addend };
  const tsec = s.shndx;
  const base = BigInt(s.value) + addend;
  const nb = Number(base);
  // The true target is base + (end of instruction − field), 4..8 bytes on; decode only when the
  // answer depends on it (what contains base+4 does not contain base+8).
  const pc = isPcRel(r.type) && idx.isExec(sec);
  let eff = pc ? nb + 4 : nb;
  if (pc && !biasFree(idx, tsec, nb)) eff = nb + pcBias(idx, sec, r);
  if (idx.isStrings(tsec)) {
    const d = idx.data(tsec);
    let j = Math.min(Math.max(eff, 0), d.length);
    while (j > 0 && d[j - 1] !== 0) j--;
    let e = j;
    while (e < d.length && d[e] !== 0) e++;
    return { kind: 'str', sec: tsec, start: j, content: latin1.decode(d.subarray(j, e)), addend: base - BigInt(j) };
  }
  if (idx.isConst(tsec)) {
    const n = Number(idx.section(tsec).entsize);
    const j = eff - (((eff % n) + n) % n);
    return { kind: 'cst', sec: tsec, start: j, content: hex(idx.data(tsec).subarray(j, j + n)), addend: base - BigInt(j) };
  }
  const c = idx.containing(tsec, eff);
  if (c) return { kind: 'sym', sym: c, addend: base - BigInt(c.value) };
  return { kind: 'anon', sec: tsec, addend: base };
}

function biasFree(idx: ObjIndex, tsec: number, nb: number): boolean {
  if (idx.isStrings(tsec)) {
    const d = idx.data(tsec);
    if (nb + 8 > d.length || nb + 4 < 0) return false;
    for (let k = nb + 4; k < nb + 8; k++) if (d[k] === 0) return false;
    return true;
  }
  if (idx.isConst(tsec)) {
    const n = Number(idx.section(tsec).entsize);
    return Math.floor((nb + 4) / n) === Math.floor((nb + 8) / n);
  }
  const c = idx.containing(tsec, nb + 4);
  return !!c && c.value <= nb + 4 && nb + 8 < c.value + c.size;
}

/** Names that are never correlated: a private copy is carried (§2.2). */
export function isSpecialStatic(s: Sym): boolean {
  return (
    s.bind === 0 &&
    /^(__func__|__FUNCTION__|__PRETTY_FUNCTION__|CSWTCH|__compound_literal|__key|__warned|_rs|descriptor)$/.test(s.base) &&
    s.kinds !== '' &&
    s.type === STT.OBJECT
  );
}
export { hex };
