/**
 * Correlation ORIG ↔ PATCHED (§2.2): symbol-first, FILE-scoped, deterministic, no positional level.
 *   L0 FILE symbols pair 1:1 in order;  L1 exact (file, scope, type, name) for names without a
 *   numeric suffix;  L2 (demangled base, clone kinds) when one candidate is left on each side;
 *   L3 equal fingerprint;  L4 reference context (who references it, and as which of its
 *   references to that base);  L5 `.init.*` TEMP_NAME renames (`name_<line>`).
 * Whatever is left with several candidates on a side is DIFF_AMBIGUOUS_CORRELATION.
 */
import { STB, STT } from '../elf/constants.js';
import type { ObjIndex, Sym } from './objindex.js';
import { isSpecialStatic, resolve } from './target.js';

export interface Correlation {
  /** ORIG symbol index → PATCHED twin, and back. */
  o2p: Map<number, Sym>;
  p2o: Map<number, Sym>;
  /** PATCHED indices paired as renamed init symbols (L5). */
  renamedInit: Set<number>;
  /** Level each PATCHED symbol was paired at. */
  level: Map<number, number>;
  errors: { code: string; symbol: string; message: string }[];
}

export const isInitSection = (n: string): boolean =>
  /^\.(init(\.|$)|initcall|text\.startup|init_array|ctors)/.test(n) || n === '.init.setup';

/** Symbols taking part in correlation. */
export function candidates(idx: ObjIndex): Sym[] {
  return idx.defined.filter((s) => !isSpecialStatic(s) && !s.section.startsWith('.livepatch.hooks'));
}

const scope = (s: Sym): string => (s.bind === STB.LOCAL ? 'l' : 'g');
const k1 = (s: Sym): string => `${s.file}\0${scope(s)}\0${s.type}\0${s.name}`;
const k2 = (s: Sym): string => `${s.file}\0${scope(s)}\0${s.type}\0${s.base}\0${s.kinds}`;

function group(list: Sym[], key: (s: Sym) => string): Map<string, Sym[]> {
  const m = new Map<string, Sym[]>();
  for (const s of list) {
    const k = key(s);
    const l = m.get(k);
    if (l) l.push(s);
    else m.set(k, [s]);
  }
  return m;
}

export type FpFn = (side: 'o' | 'p', s: Sym, c: Correlation) => string;

export function correlate(oi: ObjIndex, pi: ObjIndex, fp: FpFn): Correlation {
  const c: Correlation = { o2p: new Map(), p2o: new Map(), renamedInit: new Set(), level: new Map(), errors: [] };
  // L0
  if (oi.files.length !== pi.files.length || oi.files.some((f, i) => f !== pi.files[i])) {
    c.errors.push({
      code: 'DIFF_FILE_MISMATCH',
      symbol: pi.files.find((f, i) => f !== oi.files[i]) ?? oi.files[pi.files.length] ?? '',
      message: `FILE symbols differ (ORIG ${JSON.stringify(oi.files)}, PATCHED ${JSON.stringify(pi.files)}): possible toolchain or config mismatch with the running build`,
    });
    return c;
  }
  const pair = (o: Sym, p: Sym, level: number): void => {
    c.o2p.set(o.index, p);
    c.p2o.set(p.index, o);
    c.level.set(p.index, level);
  };
  const oc = candidates(oi);
  const pc = candidates(pi);
  // L1: exact names, for names that carry no number gcc may renumber.
  const pBy1 = group(
    pc.filter((s) => s.kinds === ''),
    k1,
  );
  for (const o of oc) {
    if (o.kinds !== '') continue;
    const l = pBy1.get(k1(o));
    if (l && l.length === 1) pair(o, l[0]!, 1);
  }
  const freeO = (): Sym[] => oc.filter((s) => !c.o2p.has(s.index));
  const freeP = (): Sym[] => pc.filter((s) => !c.p2o.has(s.index));
  const uniquePairs = (level: number): void => {
    const po = group(freeP(), k2);
    for (const [k, os] of group(freeO(), k2)) {
      const ps = po.get(k);
      if (os.length === 1 && ps && ps.length === 1) pair(os[0]!, ps[0]!, level);
    }
  };
  // L2
  uniquePairs(2);
  // L3: equal fingerprints, repeated while it makes progress (a pair can make another's keys equal).
  for (let round = 0; round < 4; round++) {
    let progress = false;
    const po = group(freeP(), k2);
    for (const [k, os] of group(freeO(), k2)) {
      const ps = po.get(k);
      if (!ps) continue;
      const ofp = group(os, (s) => fp('o', s, c));
      const pfp = group(ps, (s) => fp('p', s, c));
      for (const [f, ol] of ofp) {
        const pl = pfp.get(f);
        if (ol.length === 1 && pl && pl.length === 1) {
          pair(ol[0]!, pl[0]!, 3);
          progress = true;
        }
      }
    }
    uniquePairs(3);
    if (!progress) break;
  }
  // L4: reference context.
  const ctxOf = (idx: ObjIndex, side: 'o' | 'p', free: Sym[]): Map<number, string> => {
    const want = new Set(free.map((s) => s.index));
    const out = new Map<number, string[]>();
    const paired = side === 'o' ? c.o2p : c.p2o;
    for (const ref of candidates(idx)) {
      if (!paired.has(ref.index)) continue;
      const refId = side === 'o' ? ref.xenName : c.p2o.get(ref.index)!.xenName;
      const seen = new Map<string, number[]>();
      for (const r of idx.relsIn(ref.shndx, ref.value, ref.value + ref.size)) {
        const t = resolve(idx, ref.shndx, r);
        if (t.kind !== 'sym' || !want.has(t.sym.index)) continue;
        const bk = `${t.sym.base}.${t.sym.kinds}`;
        const l = seen.get(bk) ?? [];
        if (!l.includes(t.sym.index)) l.push(t.sym.index);
        seen.set(bk, l);
        const ord = l.indexOf(t.sym.index);
        const arr = out.get(t.sym.index) ?? [];
        const tag = `${refId}/${ord}`;
        if (!arr.includes(tag)) arr.push(tag);
        out.set(t.sym.index, arr);
      }
    }
    return new Map([...out].map(([k, v]) => [k, v.sort().join(',')]));
  };
  {
    const fo = freeO();
    const fpp = freeP();
    if (fo.length && fpp.length) {
      const oCtx = ctxOf(oi, 'o', fo);
      const pCtx = ctxOf(pi, 'p', fpp);
      const po = group(fpp, k2);
      for (const [k, os] of group(fo, k2)) {
        const ps = po.get(k);
        if (!ps) continue;
        const og = group(
          os.filter((s) => oCtx.has(s.index)),
          (s) => oCtx.get(s.index)!,
        );
        const pg = group(
          ps.filter((s) => pCtx.has(s.index)),
          (s) => pCtx.get(s.index)!,
        );
        for (const [cx, ol] of og) {
          const pl = pg.get(cx);
          if (ol.length === 1 && pl && pl.length === 1) pair(ol[0]!, pl[0]!, 4);
        }
      }
      uniquePairs(4);
    }
  }
  // L5: TEMP_NAME renames of init symbols.
  {
    const tn = (s: Sym): string | null => {
      const m = /^(.*)_\d+$/.exec(s.name);
      return m && /^\.init/.test(s.section) ? `${s.file}\0${scope(s)}\0${s.type}\0${m[1]}` : null;
    };
    const po = group(
      freeP().filter((s) => tn(s) !== null),
      (s) => tn(s)!,
    );
    for (const [k, os] of group(
      freeO().filter((s) => tn(s) !== null),
      (s) => tn(s)!,
    )) {
      const ps = po.get(k);
      if (os.length === 1 && ps && ps.length === 1) {
        pair(os[0]!, ps[0]!, 5);
        c.renamedInit.add(ps[0]!.index);
      }
    }
  }
  // Leftovers with several candidates: refuse.
  const po = group(freeP(), k2);
  for (const [k, os] of group(freeO(), k2)) {
    const ps = po.get(k);
    if (!ps || (os.length < 2 && ps.length < 2)) continue;
    const desc = (side: string, l: Sym[]): string =>
      l
        .map(
          (s) => `${side} ${s.name} (size ${s.size}${s.type === STT.FUNC ? ', ' + fp(side === 'ORIG' ? 'o' : 'p', s, c).slice(-8) : ''})`,
        )
        .join(', ');
    c.errors.push({
      code: 'DIFF_AMBIGUOUS_CORRELATION',
      symbol: os[0]!.xenName,
      message: `cannot pair ${os[0]!.base}${os[0]!.kinds ? ' (' + os[0]!.kinds + ')' : ''} without guessing: ${desc('ORIG', os)}; ${desc('PATCHED', ps)}; possible toolchain or config mismatch with the running build`,
    });
  }
  return c;
}
