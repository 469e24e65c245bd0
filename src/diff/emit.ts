/**
 * Emission (§4, §5): one relocatable object per changed translation unit. Replacement functions
 * are named like the Xen symbol they replace; new functions and data get `<name>.lp<8 hex>`
 * (§4.3); `.cold` children, copied special statics, strings and constants are reached through
 * section symbols only (nothing Xen would export). Special sections are cut per function: the
 * entries whose anchor is an included function, their `.fixup` chunks, and the kept
 * `.altinstr_replacement` ranges repacked.
 *
 * Why one file: it is one function, `emitObject`, building one object; its steps (hooks, the
 * closure over relocations, naming, copies, special-section cuts) share the builder, name map and
 * refusal list held in its locals.
 */
import { ObjectBuilder } from '../elf/builder.js';
import { SHF, SHT, STB, STT } from '../elf/constants.js';
import type { RelocationSpec, SectionId, SymbolId } from '../elf/types.js';
import type { HookRequest, PatchRequest } from '../payload/build.js';
import type { PayloadAbi } from '../payload/abi-types.js';
import type { ObjIndex, Rel, Sym } from './objindex.js';
import type { Correlation } from './correlate.js';
import type { Classified } from './classify.js';
import { decide, type IncludeCtx } from './include.js';
import { bugFieldAddend, fixupChunk, isBugFrames, type SpecialEntry, type SpecialIndex } from './special.js';
import { resolve, type Target } from './target.js';
import type { DiffExplainObject, DiffRefusal } from './types.js';

export interface EmitInput {
  object: string;
  pi: ObjIndex;
  psp: SpecialIndex;
  corr: Correlation;
  cls: Classified;
  abi: PayloadAbi;
  tag: string;
  renamedGlobals: Map<string, string>;
}

export interface EmitOutput {
  bytes: Uint8Array | null;
  patches: PatchRequest[];
  hooks: HookRequest[];
  errors: DiffRefusal[];
  warnings: string[];
  externals: Map<string, Sym | undefined>;
  explain: Pick<DiffExplainObject, 'pulledIn' | 'copied'>;
  /** Output names of included functions (PATCHED index → name or null for children). */
  names: Map<number, string>;
}

interface Copy {
  sym?: Sym;
  sec: number;
  from: number;
  to: number;
  out: SectionId;
  outSym: SymbolId;
  /** Offset in the output section where `from` lands. */
  at: number;
}

const A = SHF.ALLOC;

export function newName(name: string, tag: string): string {
  return `${name}.lp${tag}`;
}

export function emitObject(inp: EmitInput): EmitOutput {
  const { pi, psp, corr, cls, object } = inp;
  const errors: DiffRefusal[] = [];
  const warnings: string[] = [];
  const refuse = (code: string, symbol: string, message: string, suggestion: string): void => {
    if (!errors.some((e) => e.code === code && e.symbol === symbol)) errors.push({ code, object, symbol, message, suggestion });
  };
  const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: 62 });
  const funcs = new Set<number>();
  const ctx: IncludeCtx = { pi, corr, cls, funcs, renamedGlobals: inp.renamedGlobals };
  const patches: PatchRequest[] = [];
  const hooks: HookRequest[] = [];
  const externals = new Map<string, Sym | undefined>();
  const pulledIn: { name: string; via: string[] }[] = [];
  const copied: DiffExplainObject['copied'] = [];
  const names = new Map<number, string>();

  // Hooks written in the patch (§4.6) become requests; their functions are included.
  const hookFns: { kind: string; sym: Sym }[] = [];
  for (let i = 1; i < pi.elf.sections.length; i++) {
    const name = pi.section(i).name;
    const rule = inp.abi.hooks.find((h) => h.section === name);
    if (!name.startsWith('.livepatch.hooks')) continue;
    if (!rule) {
      refuse(
        'DIFF_UNSUPPORTED_SPECIAL',
        name,
        `${name}: the target's loader has no such hook section`,
        'use LIVEPATCH_LOAD_HOOK / LIVEPATCH_UNLOAD_HOOK',
      );
      continue;
    }
    for (const r of pi.rels(i)) {
      const t = resolve(pi, i, r);
      if (t.kind !== 'sym' || t.sym.type !== STT.FUNC) {
        refuse(
          'DIFF_HOOK',
          name,
          `${name}: entry does not point at a function of the object`,
          'hooks must name a function defined in the patch',
        );
        continue;
      }
      hookFns.push({ kind: rule.kind, sym: t.sym });
    }
  }

  // Closure over relocations.
  const queue: { sym: Sym; via: string[] }[] = cls.roots.map((s) => ({ sym: s, via: [] }));
  const queued = new Set<number>(cls.roots.map((s) => s.index));
  for (const h of hookFns) {
    if (queued.has(h.sym.index)) continue;
    queued.add(h.sym.index);
    queue.push({ sym: h.sym, via: [`hook ${h.kind}`] });
  }
  const dataCopies: { sym: Sym; named: boolean }[] = [];
  const dataSeen = new Set<number>();
  const anonSecs = new Set<number>();
  const poolNeeds: { t: Target }[] = [];
  const scanRange = (sec: number, from: number, to: number, who: string, via: string[], isSpecial?: SpecialEntry): void => {
    for (const r of pi.relsIn(sec, from, to)) {
      const t = targetOf(sec, r, isSpecial);
      const d = decide(ctx, t);
      switch (d.kind) {
        case 'func':
          if (!funcs.has(d.sym.index) && !queued.has(d.sym.index)) {
            queued.add(d.sym.index);
            queue.push({ sym: d.sym, via: [...via, who] });
          }
          break;
        case 'data':
          if (!dataSeen.has(d.sym.index)) {
            dataSeen.add(d.sym.index);
            dataCopies.push({ sym: d.sym, named: d.named });
            scanRange(d.sym.shndx, d.sym.value, d.sym.value + d.sym.size, d.sym.name, [...via, who]);
          }
          break;
        case 'ext':
          if (!externals.has(d.name)) externals.set(d.name, d.orig);
          break;
        case 'pool':
          poolNeeds.push({ t });
          break;
        case 'anon': {
          const n = pi.section(d.sec).name;
          if (n === '.fixup' || n === '.altinstr_replacement') break;
          if (!anonSecs.has(d.sec)) {
            anonSecs.add(d.sec);
            scanRange(d.sec, 0, Number(pi.section(d.sec).size), n, [...via, who]);
          }
          break;
        }
        case 'refuse':
          refuse(d.code, d.symbol, d.message, d.suggestion);
          break;
        case 'abs':
        case 'child':
          break;
      }
    }
  };
  const targetOf = (sec: number, r: Rel, entry?: SpecialEntry): Target => {
    if (entry && isBugFrames(entry.secName)) return resolve(pi, sec, r, bugFieldAddend(r.offset - entry.off, r.addend).addend);
    return resolve(pi, sec, r);
  };
  const order: { sym: Sym; via: string[] }[] = [];
  for (let qi = 0; qi < queue.length; qi++) {
    const q = queue[qi]!;
    if (funcs.has(q.sym.index)) continue;
    funcs.add(q.sym.index);
    order.push(q);
    if (q.via.length) pulledIn.push({ name: q.sym.name, via: q.via });
    const parts = [q.sym, ...(cls.children.get(q.sym.index) ?? [])];
    for (const s of parts) {
      scanRange(s.shndx, s.value, s.value + s.size, q.sym.name, q.via);
      for (const e of psp.byOwner.get(s.index) ?? []) scanRange(e.sec, e.off, e.off + e.size, q.sym.name, q.via, e);
    }
  }
  // Fixup chunks and replacement ranges are scanned with their entries below.

  // ---- Sections ------------------------------------------------------------------------------
  const copies = new Map<number, Copy>();
  const secSym = (sec: SectionId): SymbolId =>
    b.addSymbol({ name: '', bind: STB.LOCAL, type: STT.SECTION, section: sec, value: 0n, size: 0n });
  let anonN = 0;
  let lastFile: string | undefined;
  const copySym = (s: Sym, secName: string, symName: string | null, bind: number, file?: string): void => {
    const src = pi.section(s.shndx);
    const nobits = src.type === SHT.NOBITS;
    const out = b.addSection({
      name: secName,
      type: nobits ? SHT.NOBITS : SHT.PROGBITS,
      flags: src.flags & (SHF.ALLOC | SHF.WRITE | SHF.EXECINSTR),
      addralign: src.addralign > 0n ? src.addralign : 1n,
      ...(nobits ? { size: BigInt(s.size) } : { data: pi.data(s.shndx).slice(s.value, s.value + s.size) }),
    });
    const ss = secSym(out);
    if (symName !== null) {
      // A replaced static keeps its plain name under its STT_FILE, as Xen names it (file#name).
      if (file !== undefined && file !== lastFile) {
        b.addSymbol({ name: file, bind: STB.LOCAL, type: STT.FILE, section: 'ABS', value: 0n, size: 0n });
        lastFile = file;
      }
      b.addSymbol({ name: symName, bind, type: s.type, section: out, value: 0n, size: BigInt(s.size) });
    }
    copies.set(s.index, { sym: s, sec: s.shndx, from: s.value, to: s.value + s.size, out, outSym: ss, at: 0 });
  };
  const rootSet = new Set(cls.roots.map((s) => s.index));
  for (const { sym: s, via } of order) {
    // A hook function the patch did not change is carried as a new function, not as a replacement.
    const twin = via[0]?.startsWith('hook') && !rootSet.has(s.index) ? undefined : corr.p2o.get(s.index);
    const name = twin ? twin.xenName : newName(s.name, inp.tag);
    names.set(s.index, name);
    if (twin && twin.bind === STB.LOCAL && twin.file) copySym(s, `.text.${twin.name}`, twin.name, STB.LOCAL, twin.file);
    else copySym(s, `.text.${name}`, name, STB.GLOBAL);
    if (twin) patches.push({ old: twin.xenName, new: name });
    for (const c of cls.children.get(s.index) ?? []) {
      copySym(c, `.text.unlikely.${name}`, null, STB.LOCAL);
      names.set(c.index, '');
    }
  }
  for (const h of hookFns) hooks.push({ kind: h.kind, symbol: names.get(h.sym.index)! });
  for (const d of dataCopies) {
    const s = d.sym;
    const src = pi.section(s.shndx);
    const kind = src.type === SHT.NOBITS ? '.bss' : (src.flags & SHF.WRITE) !== 0n ? '.data' : '.rodata';
    if (d.named) {
      const name = newName(s.name, inp.tag);
      copySym(s, `${kind}.${name}`, name, STB.GLOBAL);
      warnings.push(`${object}: new data ${s.name} (as ${name}): initialised at load, state not migrated, not restored on revert`);
      copied.push({ kind: 'data', name: s.name, size: s.size });
    } else {
      copySym(s, `${kind}.lp.${anonN++}`, null, STB.LOCAL);
      copied.push({ kind: 'special-static', name: s.name, size: s.size });
    }
  }
  const anonOut = new Map<number, Copy>();
  for (const sec of anonSecs) {
    const src = pi.section(sec);
    const nobits = src.type === SHT.NOBITS;
    const out = b.addSection({
      name: `${src.flags & SHF.WRITE ? '.data' : '.rodata'}.lp.${anonN++}`,
      type: nobits ? SHT.NOBITS : SHT.PROGBITS,
      flags: src.flags & (SHF.ALLOC | SHF.WRITE),
      addralign: src.addralign || 1n,
      ...(nobits ? { size: src.size } : { data: pi.data(sec).slice() }),
    });
    anonOut.set(sec, { sec, from: 0, to: Number(src.size), out, outSym: secSym(out), at: 0 });
    copied.push({ kind: 'rodata', name: src.name, size: Number(src.size) });
  }
  // String and constant pools: only what is referenced, by content.
  const pools = new Map<
    string,
    { bytes: number[]; at: Map<string, number>; align: number; entsize: number; strings: boolean; out?: SectionId; sym?: SymbolId }
  >();
  const poolKey = (t: Target): string =>
    t.kind === 'str' ? `s${Number(pi.section(t.sec).addralign) || 1}` : t.kind === 'cst' ? `c${Number(pi.section(t.sec).entsize)}` : '';
  const place = (t: Target): { pool: string; off: number } => {
    if (t.kind !== 'str' && t.kind !== 'cst') throw new Error('not a pool target');
    const k = poolKey(t);
    let p = pools.get(k);
    if (!p) {
      const align = t.kind === 'str' ? Number(pi.section(t.sec).addralign) || 1 : Number(pi.section(t.sec).entsize);
      p = { bytes: [], at: new Map(), align, entsize: t.kind === 'str' ? 1 : align, strings: t.kind === 'str' };
      pools.set(k, p);
    }
    let off = p.at.get(t.content);
    if (off === undefined) {
      while (p.bytes.length % p.align) p.bytes.push(0);
      off = p.bytes.length;
      if (t.kind === 'str') {
        for (let i = 0; i < t.content.length; i++) p.bytes.push(t.content.charCodeAt(i) & 0xff);
        p.bytes.push(0);
        copied.push({ kind: 'string', name: JSON.stringify(t.content), size: t.content.length + 1 });
      } else {
        for (let i = 0; i < t.content.length; i += 2) p.bytes.push(parseInt(t.content.slice(i, i + 2), 16));
        copied.push({ kind: 'constant', name: t.content, size: t.content.length / 2 });
      }
      p.at.set(t.content, off);
    }
    return { pool: k, off };
  };
  for (const n of poolNeeds) place(n.t);

  // ---- Special sections ----------------------------------------------------------------------
  interface OutSpecial {
    out: SectionId;
    bytes: number[];
    rels: { off: number; r: Rel; entry: SpecialEntry; srcSec: number }[];
  }
  const specials = new Map<string, OutSpecial>();
  const fixupOut = new Map<string, number>();
  const fixupBytes: number[] = [];
  const fixupRels: { off: number; r: Rel; srcSec: number }[] = [];
  const replRanges: { sec: number; from: number; to: number }[] = [];
  const kept = psp.entries.filter((e) => (e.owner && funcs.has(e.owner.index)) || (e.owner && copies.has(e.owner.index)));
  for (const e of kept) {
    for (const r of e.rels) {
      const t = targetOf(e.sec, r, e);
      if (t.kind === 'anon' && pi.section(t.sec).name === '.fixup') {
        const c = fixupChunk(psp, t.sec, Number(t.addend));
        const key = `${t.sec}:${c.start}`;
        if (!fixupOut.has(key)) {
          fixupOut.set(key, fixupBytes.length);
          const base = fixupBytes.length;
          fixupBytes.push(...pi.data(t.sec).subarray(c.start, c.end));
          for (const fr of pi.relsIn(t.sec, c.start, c.end)) fixupRels.push({ off: base + fr.offset - c.start, r: fr, srcSec: t.sec });
          scanRange(t.sec, c.start, c.end, '.fixup', []);
        }
      } else if (t.kind === 'anon' && pi.section(t.sec).name === '.altinstr_replacement') {
        const len = pi.data(e.sec)[e.off + 11] ?? 0;
        replRanges.push({ sec: t.sec, from: Number(t.addend), to: Number(t.addend) + len });
        scanRange(t.sec, Number(t.addend), Number(t.addend) + len, '.altinstr_replacement', []);
      } else if (
        isBugFrames(e.secName) &&
        r.offset - e.off === 4 &&
        t.kind !== 'str' &&
        !(t.kind === 'sym' && (funcs.has(t.sym.index) || copies.has(t.sym.index)))
      ) {
        refuse(
          'DIFF_BUGFRAME_FAR',
          e.owner!.name,
          `${e.secName} entry of ${e.owner!.name} points outside the payload (${t.kind === 'sym' ? t.sym.name : t.kind}): its 24-bit displacement can overflow`,
          'carry the pointed-to function in the patch, or drop the run_in_exception_handler call',
        );
      } else if (t.kind === 'str' || t.kind === 'cst') {
        place(t);
      } else {
        scanRange(e.sec, r.offset, r.offset + 1, e.owner!.name, [], e);
      }
    }
  }
  for (const p of pools.values()) {
    const name = p.strings ? `.rodata.str1.${p.align}` : `.rodata.cst${p.entsize}`;
    p.out = b.addSection({
      name,
      type: SHT.PROGBITS,
      flags: A | SHF.MERGE | (p.strings ? SHF.STRINGS : 0n),
      addralign: BigInt(p.align),
      entsize: BigInt(p.entsize),
      data: Uint8Array.from(p.bytes),
    });
    p.sym = secSym(p.out);
  }
  // Replacement ranges: union, packed in order.
  const replMap: { sec: number; from: number; to: number; at: number }[] = [];
  let replOut: SectionId | undefined;
  let replSym: SymbolId | undefined;
  const replBytes: number[] = [];
  const replRels: { off: number; r: Rel; srcSec: number }[] = [];
  if (kept.some((e) => e.secName === '.altinstructions')) {
    const sorted = [...replRanges].sort((x, y) => x.sec - y.sec || x.from - y.from || x.to - y.to);
    for (const r of sorted) {
      const last = replMap[replMap.length - 1];
      if (last && last.sec === r.sec && r.from <= last.to) {
        if (r.to > last.to) {
          replBytes.push(...pi.data(r.sec).subarray(last.to, r.to));
          last.to = r.to;
        }
        continue;
      }
      replMap.push({ sec: r.sec, from: r.from, to: r.to, at: replBytes.length });
      replBytes.push(...pi.data(r.sec).subarray(r.from, r.to));
    }
    for (const m of replMap)
      for (const rr of pi.relsIn(m.sec, m.from, m.to)) replRels.push({ off: m.at + rr.offset - m.from, r: rr, srcSec: m.sec });
  }
  for (const e of kept) {
    let s = specials.get(e.secName);
    if (!s) {
      const src = pi.section(e.sec);
      s = {
        out: b.addSection({
          name: e.secName,
          type: SHT.PROGBITS,
          flags: src.flags & (SHF.ALLOC | SHF.WRITE),
          addralign: src.addralign || 1n,
          data: new Uint8Array(0),
        }),
        bytes: [],
        rels: [],
      };
      specials.set(e.secName, s);
    }
    const base = s.bytes.length;
    s.bytes.push(...pi.data(e.sec).subarray(e.off, e.off + e.size));
    for (const r of e.rels) s.rels.push({ off: base + r.offset - e.off, r, entry: e, srcSec: e.sec });
  }
  let fixupSec: SectionId | undefined;
  let fixupSym: SymbolId | undefined;
  if (fixupOut.size) {
    fixupSec = b.addSection({
      name: '.fixup',
      type: SHT.PROGBITS,
      flags: A | SHF.EXECINSTR,
      addralign: 1n,
      data: Uint8Array.from(fixupBytes),
    });
    fixupSym = secSym(fixupSec);
  }
  if (kept.some((e) => e.secName === '.altinstructions')) {
    replOut = b.addSection({
      name: '.altinstr_replacement',
      type: SHT.PROGBITS,
      flags: A | SHF.EXECINSTR,
      addralign: 1n,
      data: Uint8Array.from(replBytes),
    });
    replSym = secSym(replOut);
  }

  // ---- Relocations ---------------------------------------------------------------------------
  const und = new Map<string, SymbolId>();
  const undSym = (name: string): SymbolId => {
    let id = und.get(name);
    if (id === undefined) {
      id = b.addSymbol({ name, bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
      und.set(name, id);
    }
    return id;
  };
  const translate = (srcSec: number, r: Rel, entry?: SpecialEntry): { symbol: SymbolId | 0; addend: bigint } | null => {
    let bits = 0n;
    let t: Target;
    if (entry && isBugFrames(entry.secName)) {
      const bf = bugFieldAddend(r.offset - entry.off, r.addend);
      bits = bf.back;
      t = resolve(pi, srcSec, r, bf.addend);
    } else t = resolve(pi, srcSec, r);
    const d = decide(ctx, t);
    const add = (x: { symbol: SymbolId | 0; addend: bigint }) => ({ symbol: x.symbol, addend: x.addend + bits });
    switch (d.kind) {
      case 'abs':
        return add({ symbol: 0, addend: t.addend });
      case 'ext':
        return add({ symbol: undSym(d.name), addend: t.addend });
      case 'func':
      case 'child':
      case 'data': {
        const c = copies.get(d.sym.index);
        if (!c) return null;
        return add({ symbol: c.outSym, addend: t.addend + BigInt(c.at) });
      }
      case 'pool': {
        const pl = place(t);
        const p = pools.get(pl.pool)!;
        return add({ symbol: p.sym!, addend: BigInt(pl.off) + t.addend });
      }
      case 'anon': {
        const n = pi.section(d.sec).name;
        const off = Number(t.addend);
        if (n === '.fixup') {
          const c = fixupChunk(psp, d.sec, off);
          const at = fixupOut.get(`${d.sec}:${c.start}`);
          return at === undefined || !fixupSym ? null : add({ symbol: fixupSym, addend: BigInt(at + off - c.start) });
        }
        if (n === '.altinstr_replacement') {
          const m = replMap.find((x) => x.sec === d.sec && off >= x.from && off <= x.to);
          return m && replSym
            ? add({ symbol: replSym, addend: BigInt(m.at + off - m.from) })
            : replSym
              ? add({ symbol: replSym, addend: 0n })
              : null;
        }
        const c = anonOut.get(d.sec);
        return c ? add({ symbol: c.outSym, addend: t.addend }) : null;
      }
      case 'refuse':
        refuse(d.code, d.symbol, d.message, d.suggestion);
        return { symbol: 0, addend: 0n };
    }
  };
  const setRels = (out: SectionId, list: { off: number; r: Rel; srcSec: number; entry?: SpecialEntry }[], what: string): void => {
    const entries: RelocationSpec[] = [];
    for (const x of list) {
      const tr = translate(x.srcSec, x.r, x.entry);
      if (!tr) {
        refuse(
          'DIFF_SPECIAL_REF',
          what,
          `${what}: a relocation at +0x${x.off.toString(16)} points at code or data the payload does not carry`,
          'report this: the cut lost a target',
        );
        continue;
      }
      entries.push({ offset: BigInt(x.off), type: x.r.type, symbol: tr.symbol, addend: tr.addend });
    }
    if (entries.length) b.setRelocations(out, { rela: true, entries });
  };
  for (const c of [...copies.values(), ...anonOut.values()]) {
    setRels(
      c.out,
      pi.relsIn(c.sec, c.from, c.to).map((r) => ({ off: r.offset - c.from + c.at, r, srcSec: c.sec })),
      c.sym?.name ?? pi.section(c.sec).name,
    );
  }
  for (const [name, s] of specials) {
    b.section(s.out).data = Uint8Array.from(s.bytes);
    setRels(s.out, s.rels, name);
  }
  if (fixupSec) setRels(fixupSec, fixupRels, '.fixup');
  if (replOut) setRels(replOut, replRels, '.altinstr_replacement');

  const bytes = funcs.size ? b.write() : null;
  return { bytes, patches, hooks, errors, warnings, externals, explain: { pulledIn, copied }, names };
}
