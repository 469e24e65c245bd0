/**
 * Inclusion (§4.1): what a changed or new function pulls in. Each relocation target is decided once:
 * internal (included function, `.cold` child, copied data), external by Xen's name (`file#name` of
 * the ORIG twin), a copied string/constant, or a refusal (init references).
 */
import { STT } from '../elf/constants.js';
import type { ObjIndex, Sym } from './objindex.js';
import { isInitSection, type Correlation } from './correlate.js';
import type { Classified } from './classify.js';
import { isSpecialStatic, type Target } from './target.js';

export type Decision =
  | { kind: 'func'; sym: Sym }
  | { kind: 'child'; sym: Sym }
  | { kind: 'data'; sym: Sym; named: boolean }
  | { kind: 'ext'; name: string; orig?: Sym }
  | { kind: 'pool' }
  | { kind: 'anon'; sec: number }
  | { kind: 'abs' }
  | { kind: 'refuse'; code: string; symbol: string; message: string; suggestion: string };

export interface IncludeCtx {
  pi: ObjIndex;
  corr: Correlation;
  cls: Classified;
  /** Functions already included (PATCHED indices). */
  funcs: Set<number>;
  /** Global names defined anew by this payload → their output names (other objects refer to them). */
  renamedGlobals: Map<string, string>;
}

export function decide(ctx: IncludeCtx, t: Target): Decision {
  switch (t.kind) {
    case 'abs':
      return { kind: 'abs' };
    case 'ext':
      return { kind: 'ext', name: ctx.renamedGlobals.get(t.name) ?? t.name };
    case 'str':
    case 'cst':
      return { kind: 'pool' };
    case 'anon':
      return { kind: 'anon', sec: t.sec };
    case 'sym':
      break;
  }
  const s = t.sym;
  const twin = ctx.corr.p2o.get(s.index);
  if (s.type === STT.FUNC) {
    if (ctx.cls.childSet.has(s.index)) {
      for (const [parent, l] of ctx.cls.children) if (l.includes(s) && ctx.funcs.has(parent)) return { kind: 'child', sym: s };
    }
    if (ctx.funcs.has(s.index)) return { kind: 'func', sym: s };
    if (isInitSection(s.section)) {
      return {
        kind: 'refuse',
        code: 'DIFF_INIT_REFERENCE',
        symbol: twin?.xenName ?? s.name,
        message: `an included function references ${twin?.xenName ?? s.name} in ${s.section}: init memory is freed after boot`,
        suggestion: 'do not call init code from runtime code; copy what is needed into the patch',
      };
    }
    if (twin) return { kind: 'ext', name: twin.xenName, orig: twin };
    return { kind: 'func', sym: s };
  }
  if (isSpecialStatic(s)) return { kind: 'data', sym: s, named: false };
  if (twin) {
    if (isInitSection(s.section)) {
      return {
        kind: 'refuse',
        code: 'DIFF_INIT_REFERENCE',
        symbol: twin.xenName,
        message: `an included function references ${twin.xenName} in ${s.section}: init data is freed after boot`,
        suggestion: 'move the data out of __initdata in a runtime variable, or reference a runtime copy',
      };
    }
    return { kind: 'ext', name: twin.xenName, orig: twin };
  }
  if (isInitSection(s.section)) {
    return {
      kind: 'refuse',
      code: 'DIFF_INIT_REFERENCE',
      symbol: s.name,
      message: `an included function references new init data ${s.name} in ${s.section}`,
      suggestion: 'make it ordinary data',
    };
  }
  return { kind: 'data', sym: s, named: true };
}
