/**
 * Classification per symbol (§3): same / changed / new / removed / line-only / renamed-init, with
 * the first difference; and the data-side refusals of §4.4 (changed data even when unreferenced,
 * init changes, registration tables, new per-cpu data).
 *
 * Why one file: firstDifference and textLineOnly exist only to decide a symbol's class in
 * `classify`; keeping them with the class rules keeps that one decision in one place.
 */
import { STT } from '../elf/constants.js';
import type { ObjIndex, Sym } from './objindex.js';
import { candidates, isInitSection, type Correlation } from './correlate.js';
import type { Canon, Fingerprinter } from './fingerprint.js';
import type { DiffData, DiffFunction, DiffRefusal } from './types.js';
import { decode, insnAt, type Insn } from './x86.js';

/** Functions whose call makes a preceding `mov $imm32,%edx|%esi` a printed line number (§3.2). */
export const LINE_SINKS = new Set(['printk']);

const REGISTRATION =
  /^\.(init\.setup|data\.paramhypfs|data\.schedulers|lockprofile\.data|ctors|initcall|init\.rodata\.cf_clobber|init\.data\.cf_clobber)/;
export const isRegistration = (n: string): boolean => REGISTRATION.test(n);
export const isPercpu = (n: string): boolean => /^\.(bss|data)\.percpu/.test(n);

export interface Classified {
  functions: DiffFunction[];
  data: DiffData[];
  errors: DiffRefusal[];
  warnings: string[];
  /** PATCHED function indices to include (changed/new, or line-only with includeLineOnly). */
  roots: Sym[];
  /** PATCHED function index → status. */
  statusOf: Map<number, DiffFunction['status']>;
  /** `.cold` children by parent (PATCHED). */
  children: Map<number, Sym[]>;
  childSet: Set<number>;
  /** Harmless differences (for DIFF_NO_FUNCTIONAL_CHANGE). */
  harmless: string[];
  /** Changed data refused as DIFF_CHANGED_DATA: PATCHED symbol and ORIG's Xen name. */
  changedData: { sym: Sym; xenName: string }[];
}

const coldCache = new WeakMap<ObjIndex, { children: Map<number, Sym[]>; childSet: Set<number> }>();
export function coldChildren(idx: ObjIndex): { children: Map<number, Sym[]>; childSet: Set<number> } {
  let c = coldCache.get(idx);
  if (!c) {
    c = coldChildrenOf(idx);
    coldCache.set(idx, c);
  }
  return c;
}

function coldChildrenOf(idx: ObjIndex): { children: Map<number, Sym[]>; childSet: Set<number> } {
  const children = new Map<number, Sym[]>();
  const childSet = new Set<number>();
  if (!idx.defined.some((s) => s.kinds.endsWith('cold'))) return { children, childSet };
  const funcs = new Map<string, Sym>();
  for (const s of idx.defined) if (s.type === STT.FUNC) funcs.set(`${s.file}\0${s.name}`, s);
  for (const s of idx.defined) {
    if (s.type !== STT.FUNC || !/\.cold(\.\d+)?$/.test(s.name)) continue;
    const parent = funcs.get(`${s.file}\0${s.name.replace(/\.cold(\.\d+)?$/, '')}`);
    if (!parent) continue;
    const l = children.get(parent.index) ?? [];
    l.push(s);
    children.set(parent.index, l);
    childSet.add(s.index);
  }
  return { children, childSet };
}

function firstByte(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

const BRANCH = /^(j[a-z]+|call|loop[a-z]*) 0x([0-9A-Fa-f]+)$/;
function sameBranch(x: string, y: string, xi: Insn[], yi: Insn[]): boolean {
  const a = BRANCH.exec(x);
  const b = BRANCH.exec(y);
  if (!a || !b || a[1] !== b[1]) return false;
  const ta = parseInt(a[2]!, 16);
  const tb = parseInt(b[2]!, 16);
  const ia = xi.findIndex((i) => i.off === ta);
  const ib = yi.findIndex((i) => i.off === tb);
  return ia >= 0 && ia === ib;
}

/** First differing instruction or relocation of two canonical functions. */
export function firstDifference(o: Canon, p: Canon): { offset: number; orig?: string; patched?: string; what: string } {
  const oi = decode(o.bytes, true);
  const pi = decode(p.bytes, true);
  const relAt = (c: Canon, from: number, to: number): string =>
    c.rels
      .filter((r) => r.off >= from && r.off < to)
      .map((r) => `${r.key}${r.addend >= 0n ? '+' : ''}${r.addend}`)
      .join(' ');
  const n = Math.max(oi.length, pi.length);
  for (let i = 0; i < n; i++) {
    const a = oi[i];
    const b = pi[i];
    if (!a || !b) {
      const at = a ?? b!;
      return {
        offset: at.off,
        ...(a ? { orig: a.text! } : {}),
        ...(b ? { patched: b.text! } : {}),
        what: a ? 'removed instruction' : 'added instruction',
      };
    }
    const ab = o.bytes.subarray(a.off, a.off + a.len);
    const bb = p.bytes.subarray(b.off, b.off + b.len);
    const ra = relAt(o, a.off, a.off + a.len);
    const rb = relAt(p, b.off, b.off + b.len);
    // A relative branch whose target is the same instruction (by index) on both sides is the same
    // branch, whatever its displacement: code moved, the branch did not change.
    if (ra === rb && sameBranch(a.text!, b.text!, oi, pi)) continue;
    if (a.off !== b.off || firstByte(ab, bb) < Math.max(ab.length, bb.length) || ra !== rb) {
      const why = ra !== rb ? `relocation ${ra || '(none)'} → ${rb || '(none)'}` : 'instruction';
      return { offset: a.off, orig: `${a.text}${ra ? ' <' + ra + '>' : ''}`, patched: `${b.text}${rb ? ' <' + rb + '>' : ''}`, what: why };
    }
  }
  return { offset: o.bytes.length, what: 'special-section entries or .cold part' };
}

/** `__LINE__`-only text change (§3.2 rule 2): same length and relocations, only imm32 of mov→%edx/%esi before a call to a sink. */
export function textLineOnly(o: Canon, p: Canon): { orig: number[]; patched: number[] } | null {
  if (o.bytes.length !== p.bytes.length || o.rels.length !== p.rels.length) return null;
  for (let i = 0; i < o.rels.length; i++) {
    const a = o.rels[i]!;
    const b = p.rels[i]!;
    if (a.off !== b.off || a.type !== b.type || a.key !== b.key || a.addend !== b.addend) return null;
  }
  const insns = decode(o.bytes);
  const lines = { orig: [] as number[], patched: [] as number[] };
  let lastInsn = -1;
  let any = false;
  const dv = (b: Uint8Array, off: number): number => b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
  for (let i = 0; i < o.bytes.length; i++) {
    if (o.bytes[i] === p.bytes[i]) continue;
    any = true;
    const k = insnAt(insns, i);
    if (k < 0) return null;
    if (k === lastInsn) continue;
    lastInsn = k;
    const x = insns[k]!;
    const op = o.bytes[x.off]!;
    if (x.len !== 5 || (op !== 0xba && op !== 0xbe) || i < x.off + 1) return null;
    // The next call must go to a sink.
    let sink = false;
    for (let j = k + 1; j < insns.length; j++) {
      const y = insns[j]!;
      if (o.bytes[y.off] === 0xe8) {
        const r = o.rels.find((q) => q.off === y.off + 1);
        sink = !!r && r.key.startsWith('ext:') && LINE_SINKS.has(r.key.slice(4));
        break;
      }
    }
    if (!sink) return null;
    lines.orig.push(dv(o.bytes, x.off + 1));
    lines.patched.push(dv(p.bytes, x.off + 1));
  }
  return any ? lines : null;
}

export interface ClassifyOptions {
  includeLineOnly: boolean;
  allowInit: boolean;
}

export function classify(
  object: string,
  oi: ObjIndex | null,
  pi: ObjIndex,
  corr: Correlation,
  ofp: Fingerprinter | null,
  pfp: Fingerprinter,
  opts: ClassifyOptions,
): Classified {
  const out: Classified = {
    functions: [],
    data: [],
    errors: [],
    warnings: [],
    roots: [],
    statusOf: new Map(),
    harmless: [],
    changedData: [],
    ...coldChildren(pi),
  };
  const oc = oi ? coldChildren(oi) : { children: new Map<number, Sym[]>(), childSet: new Set<number>() };
  const refuse = (code: string, symbol: string, message: string, suggestion: string): void => {
    out.errors.push({ code, object, symbol, message, suggestion });
  };
  const HOOK_DATA =
    'The running value will not change. Write a LIVEPATCH_LOAD_HOOK that updates it, or add a new variable and change the code that uses it.';
  for (const p of candidates(pi)) {
    const o = corr.p2o.get(p.index);
    if (p.type === STT.FUNC) {
      if (out.childSet.has(p.index)) continue;
      const base: Omit<DiffFunction, 'status' | 'included' | 'reason' | 'rule'> = {
        name: p.name,
        object,
        file: p.file,
        xenName: o ? o.xenName : null,
        ...(o && o.name !== p.name ? { origName: o.name } : {}),
      };
      const push = (f: DiffFunction): void => {
        out.functions.push(f);
        out.statusOf.set(p.index, f.status);
      };
      if (!o) {
        if (isInitSection(p.section)) {
          push({
            ...base,
            status: 'new',
            included: false,
            reason: `new init function in ${p.section}: runs only at boot, never in a payload`,
            rule: '§4.4',
          });
          continue;
        }
        push({ ...base, status: 'new', included: true, reason: 'new function', rule: '§4.1' });
        out.roots.push(p);
        continue;
      }
      const och = oc.children.get(o.index) ?? [];
      const pch = out.children.get(p.index) ?? [];
      if (!corr.renamedInit.has(p.index) && !ofp!.hasExtras(o, och) && !pfp.hasExtras(p, pch) && ofp!.sameOwn(pfp, o, p)) {
        out.statusOf.set(p.index, 'same');
        continue;
      }
      const fo = ofp!.func(o, och);
      const fpp = pfp.func(p, pch);
      if (corr.renamedInit.has(p.index)) {
        push({
          ...base,
          status: 'renamed-init',
          included: false,
          reason: `init symbol renamed ${o.name} → ${p.name} (TEMP_NAME carries __LINE__)`,
          rule: '§2.1.4',
        });
        out.harmless.push(`${p.name}: renamed init symbol`);
        continue;
      }
      if (fo.fp === fpp.fp) {
        if (fo.lines.join() === fpp.lines.join()) {
          out.statusOf.set(p.index, 'same');
          continue;
        }
        const inc = opts.includeLineOnly;
        push({
          ...base,
          status: 'line-only',
          included: inc,
          reason: `only bug-frame line numbers differ [${fo.lines.join(',')}]→[${fpp.lines.join(',')}]${inc ? '' : "; the old line numbers stay in the running hypervisor's messages"}`,
          rule: '§3.2',
          lines: { orig: fo.lines, patched: fpp.lines },
        });
        if (inc) out.roots.push(p);
        else out.harmless.push(`${p.name}: bug-frame lines`);
        continue;
      }
      const oc1 = ofp!.symCanon(o);
      const pc1 = pfp.symCanon(p);
      const lo = fo.rest === fpp.rest ? textLineOnly(oc1, pc1) : null;
      if (lo && fo.lines.length === fpp.lines.length) {
        const inc = opts.includeLineOnly;
        const lines = { orig: [...lo.orig, ...fo.lines], patched: [...lo.patched, ...fpp.lines] };
        push({
          ...base,
          status: 'line-only',
          included: inc,
          reason: `only __LINE__ immediates passed to printk differ [${lo.orig.join(',')}]→[${lo.patched.join(',')}]${inc ? '' : "; the old line numbers stay in the running hypervisor's messages"}`,
          rule: '§3.2',
          lines,
        });
        if (inc) out.roots.push(p);
        else out.harmless.push(`${p.name}: __LINE__ immediates`);
        continue;
      }
      const first = firstDifference(oc1, pc1);
      const where = first.what.startsWith('special')
        ? first.what
        : `+0x${first.offset.toString(16)}: ${first.orig ?? '(end)'} → ${first.patched ?? '(end)'}`;
      if (isInitSection(p.section)) {
        if (opts.allowInit) {
          push({
            ...base,
            status: 'changed',
            included: false,
            reason: `init code changed (${where}); ignored (--allow init)`,
            rule: '§4.4',
          });
        } else {
          push({ ...base, status: 'changed', included: false, reason: `init code changed (${where})`, rule: '§4.4' });
          refuse(
            'DIFF_INIT_CHANGED',
            o.xenName,
            `${o.xenName} in ${p.section} changed (${where}): init code has already run and its memory is freed`,
            'move the fix into a runtime path, or pass --allow init to leave it out',
          );
        }
        continue;
      }
      push({
        ...base,
        status: 'changed',
        included: true,
        reason: `changed at ${where}`,
        rule: '§3.1',
        first: { offset: first.offset, ...(first.orig ? { orig: first.orig } : {}), ...(first.patched ? { patched: first.patched } : {}) },
      });
      out.roots.push(p);
      continue;
    }
    // Data.
    const dbase = { name: p.name, object, file: p.file, xenName: o ? o.xenName : null, section: p.section };
    if (!o) {
      if (isPercpu(p.section)) {
        out.data.push({ ...dbase, status: 'new', reason: 'new per-cpu variable' });
        refuse(
          'DIFF_NEW_PERCPU',
          p.name,
          `new per-cpu variable ${p.name} in ${p.section}: per-cpu areas are laid out at boot`,
          'use a lazily allocated shadow, or xmalloc the storage in a LIVEPATCH_LOAD_HOOK',
        );
      } else if (isRegistration(p.section)) {
        out.data.push({ ...dbase, status: 'new', reason: 'new registration-table entry' });
        refuse(
          'DIFF_REGISTRATION_TABLE',
          p.name,
          `new entry ${p.name} in ${p.section}: tables walked at boot are not re-walked`,
          'do the registration in a LIVEPATCH_LOAD_HOOK',
        );
      } else {
        out.data.push({
          ...dbase,
          status: 'new',
          reason: isInitSection(p.section)
            ? 'new init data (never carried)'
            : 'new data: copied when referenced, initialised at load, state not migrated',
        });
      }
      continue;
    }
    if (corr.renamedInit.has(p.index)) {
      out.data.push({ ...dbase, status: 'renamed-init', reason: `init symbol renamed ${o.name} → ${p.name}` });
      out.harmless.push(`${p.name}: renamed init symbol`);
      continue;
    }
    if (ofp!.sameOwn(pfp, o, p)) continue;
    const a = ofp!.object(o);
    const b = pfp.object(p);
    if (a === b) continue;
    const ca = ofp!.symCanon(o);
    const cb = pfp.symCanon(p);
    let fb = firstByte(ca.bytes, cb.bytes);
    if (fb === Math.min(ca.bytes.length, cb.bytes.length) && ca.bytes.length === cb.bytes.length) {
      const r = ca.rels.findIndex((x, i) => {
        const y = cb.rels[i];
        return !y || x.off !== y.off || x.key !== y.key || x.addend !== y.addend;
      });
      fb = r >= 0 ? ca.rels[r]!.off : (cb.rels[ca.rels.length]?.off ?? 0);
    }
    const sizeNote = o.size !== p.size ? `size ${o.size} → ${p.size}, ` : '';
    out.data.push({ ...dbase, status: 'changed', reason: `${sizeNote}first differing byte +0x${fb.toString(16)}`, firstByte: fb });
    if (isRegistration(p.section)) {
      refuse(
        'DIFF_REGISTRATION_TABLE',
        o.xenName,
        `${o.xenName} in ${p.section} changed (first differing byte +0x${fb.toString(16)}): tables walked at boot are not re-walked`,
        'do the registration in a LIVEPATCH_LOAD_HOOK',
      );
    } else if (isInitSection(p.section)) {
      if (!opts.allowInit)
        refuse(
          'DIFF_INIT_CHANGED',
          o.xenName,
          `${o.xenName} in ${p.section} changed: init data has already been used and its memory is freed`,
          'pass --allow init to leave it out',
        );
    } else {
      refuse(
        'DIFF_CHANGED_DATA',
        o.xenName,
        `${o.xenName} in ${p.section} changed (${sizeNote}first differing byte +0x${fb.toString(16)})`,
        HOOK_DATA,
      );
      out.changedData.push({ sym: p, xenName: o.xenName });
    }
  }
  if (oi) {
    for (const o of candidates(oi)) {
      if (corr.o2p.has(o.index) || oc.childSet.has(o.index)) continue;
      if (o.type === STT.FUNC)
        out.functions.push({
          name: o.name,
          object,
          file: o.file,
          xenName: o.xenName,
          status: 'removed',
          included: false,
          reason: 'not in PATCHED: the running function stays in place (callers in the payload no longer use it)',
          rule: '§3.1',
        });
      else
        out.data.push({
          name: o.name,
          object,
          file: o.file,
          xenName: o.xenName,
          section: o.section,
          status: 'removed',
          reason: 'not in PATCHED',
        });
    }
  }
  return out;
}
