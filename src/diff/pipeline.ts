/**
 * The diff pipeline (§1): pair objects → index → correlate → fingerprint/compare → classify →
 * include → cut special sections → emit objects → explain. Deterministic: iteration follows paths
 * (sorted) and symbol-table order; new names come from the inputs' digests, never from the clock.
 *
 * Why one file: it is the orchestration, `diffObjects` with its per-pair `analyse` step; the
 * stages themselves are in their own modules, so what remains here is the order they run in.
 */
import { createHash } from 'node:crypto';
import { STB, STT } from '../elf/constants.js';
import { abiForVersion } from '../payload/abi.js';
import type { PayloadAbi } from '../payload/abi-types.js';
import { loadTarget, type Target } from '../payload/target.js';
import { ObjIndex, type Sym } from './objindex.js';
import { isElf } from '../elf/reader.js';
import { indexSpecial, type SpecialIndex } from './special.js';
import { correlate, type Correlation } from './correlate.js';
import { Fingerprinter } from './fingerprint.js';
import { classify, coldChildren, type Classified } from './classify.js';
import { emitObject, newName } from './emit.js';
import { pairObjects } from './sources.js';
import { hookSkeleton } from './skeleton.js';
import { fieldWidth } from './target.js';
import type { DiffExplainObject, DiffOptions, DiffRefusal, DiffResult } from './types.js';
import { inspectPayload } from '../payload/inspect.js';

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

interface PairState {
  path: string;
  oi: ObjIndex | null;
  pi: ObjIndex;
  osp: SpecialIndex | null;
  psp: SpecialIndex;
  corr: Correlation;
  cls: Classified;
  errors: DiffRefusal[];
}

export function defaultAbi(target?: Target): PayloadAbi {
  if (target?.version) {
    try {
      return abiForVersion(target.version, 'x86_64');
    } catch {
      /* fall through: an unknown version still diffs with the 4.17 layouts */
    }
  }
  return abiForVersion('4.17.5', 'x86_64');
}

function emptyCorrelation(): Correlation {
  return { o2p: new Map(), p2o: new Map(), renamedInit: new Set(), level: new Map(), errors: [] };
}

function analyse(
  path: string,
  orig: Uint8Array | undefined,
  patched: Uint8Array,
  abi: PayloadAbi,
  o: DiffOptions,
  files: { orig?: string; patched?: string } = {},
): PairState {
  const errors: DiffRefusal[] = [];
  const pi = new ObjIndex(files.patched ?? path, patched);
  const oi = orig ? new ObjIndex(files.orig ?? path, orig) : null;
  const psp = indexSpecial(pi, abi);
  const osp = oi ? indexSpecial(oi, abi) : null;
  for (const e of [...psp.errors, ...(osp?.errors ?? [])])
    errors.push({
      code: 'DIFF_SPECIAL_LAYOUT',
      object: path,
      message: e,
      suggestion: 'the objects were not built for this release (wrong --xen or ABI row?)',
    });
  if (pi.files.length === 0 || pi.files.some((f) => /\.[sS]$/.test(f)) || /(^|\/)arch\/x86\/boot\//.test(path)) {
    errors.push({
      code: 'DIFF_ASSEMBLY',
      object: path,
      message: `${path} is built from assembly (${pi.files.join(', ') || 'no STT_FILE symbol'}) or is 32-bit boot code`,
      suggestion: 'change the C code instead, or write the replacement by hand and use xsplice build',
    });
  }
  // Correlation, with provisional fingerprints for its level 3.
  let corr = emptyCorrelation();
  if (oi) {
    const ochild = coldChildren(oi);
    const pchild = coldChildren(pi);
    let cur = emptyCorrelation();
    const pre =
      (side: 'o' | 'p') =>
      (s: Sym): string => {
        const paired = side === 'o' ? cur.o2p.has(s.index) : cur.p2o.has(s.index);
        return paired ? `sym:${side === 'o' ? s.xenName : cur.p2o.get(s.index)!.xenName}` : `dm:${s.file}#${s.base}.${s.kinds}`;
      };
    const ofp0 = new Fingerprinter(oi, osp!, { symKey: pre('o') });
    const pfp0 = new Fingerprinter(pi, psp, { symKey: pre('p') });
    corr = correlate(oi, pi, (side, s, c) => {
      cur = c;
      const f = side === 'o' ? ofp0 : pfp0;
      const ch = side === 'o' ? ochild : pchild;
      return s.type === STT.FUNC ? f.func(s, ch.children.get(s.index) ?? []).fp : f.object(s);
    });
    for (const e of corr.errors)
      errors.push({
        code: e.code,
        object: path,
        symbol: e.symbol,
        message: e.message,
        suggestion: 'check that ORIG is the build of the running hypervisor (same compiler, same .config, same command lines)',
      });
  }
  const ofp = oi
    ? new Fingerprinter(oi, osp!, { symKey: (s) => (corr.o2p.has(s.index) ? `sym:${s.xenName}` : `gone:${s.xenName}`) })
    : null;
  const pfp = new Fingerprinter(pi, psp, {
    symKey: (s) => {
      const t = corr.p2o.get(s.index);
      return t ? `sym:${t.xenName}` : `new:${s.xenName}`;
    },
  });
  const cls = classify(path, oi, pi, corr, ofp, pfp, { includeLineOnly: !!o.includeLineOnly, allowInit: (o.allow ?? []).includes('init') });
  errors.push(...cls.errors);
  const rootSet = new Set(cls.roots.map((s) => s.index));
  for (const u of psp.unsupported) {
    if (u.owner && !rootSet.has(u.owner.index)) continue;
    if (!u.owner && cls.roots.length === 0) continue;
    if (!u.owner) continue;
    errors.push({
      code: 'DIFF_UNSUPPORTED_SPECIAL',
      object: path,
      symbol: u.owner.name,
      message: `${u.owner.name} has entries in ${u.secName}: Xen's loader has no such table`,
      suggestion: 'move the construct out of the patched function',
    });
  }
  return { path, oi, pi, osp, psp, corr, cls, errors };
}

export async function diffObjects(o: DiffOptions): Promise<DiffResult> {
  const target = typeof o.xen === 'string' ? await loadTarget(o.xen) : o.xen;
  const abi = o.abi ?? defaultAbi(target);
  const { pairs, identical, removed } = await pairObjects(o.orig, o.patched);
  const errors: DiffRefusal[] = [];
  for (const r of removed)
    errors.push({
      code: 'DIFF_REMOVED_OBJECT',
      object: r,
      message: `${r} exists only in ORIG`,
      suggestion: 'a payload cannot remove an object; keep the file and stop calling its functions',
    });
  // Deterministic tag for new names (§4.3): sorted input digests plus the patch name.
  const dig = createHash('sha256');
  for (const p of pairs) dig.update(`${p.path}\0${p.orig ? sha256(p.orig) : '-'}\0${sha256(p.patched!)}\n`);
  dig.update(`name\0${o.patchName ?? ''}`);
  const inputDigest = dig.digest('hex');
  const tag = inputDigest.slice(0, 8);

  const stacked = o.stackedOn ? stackedCopies(o.stackedOn) : null;
  /** ORIG's twin is what runs: XEN's bytes, or the stacked-on payload's copy when it replaces the function. */
  const running = (oi: ObjIndex, s: Sym, name: string, addr: bigint): { ok: boolean; inDepends: boolean } => {
    const copy = stacked?.get(name);
    if (copy) return { ok: sameAsCopy(oi, s, copy.oi, copy.sym), inDepends: true };
    return { ok: sameBytes(oi, s, target!, addr), inDepends: false };
  };

  const states: PairState[] = [];
  for (const p of pairs) {
    // PE/COFF objects (machine 0x8664, xen.efi's) are refused; anything else not ELF is malformed (exit 2).
    const coff = (b: Uint8Array): boolean => b.length >= 20 && b[0] === 0x64 && b[1] === 0x86;
    if ((!isElf(p.patched!) && coff(p.patched!)) || (p.orig && !isElf(p.orig) && coff(p.orig))) {
      errors.push({
        code: 'DIFF_NOT_ELF',
        object: p.path,
        message: `${p.path} differs and is not an ELF object (e.g. the PE/COFF objects of xen.efi)`,
        suggestion: 'only ELF objects of the hypervisor can be live-patched',
      });
      continue;
    }
    if (/(^|\/)arch\/x86\/boot\//.test(p.path)) {
      errors.push({
        code: 'DIFF_ASSEMBLY',
        object: p.path,
        message: `${p.path} is 32-bit boot code`,
        suggestion: 'boot code has run; it cannot be live-patched',
      });
      continue;
    }
    const machine = (b: Uint8Array): number => (isElf(b) && b.length >= 20 ? b[18]! | (b[19]! << 8) : 62);
    if (machine(p.patched!) !== 62 || (p.orig && machine(p.orig) !== 62)) {
      errors.push({
        code: 'DIFF_ARCH',
        object: p.path,
        message: `${p.path} is not an x86-64 object (e_machine ${machine(p.patched!)})`,
        suggestion: 'diff handles x86-64 hypervisor objects',
      });
      continue;
    }
    states.push(
      analyse(p.path, p.orig, p.patched!, abi, o, {
        ...(p.origFile ? { orig: p.origFile } : {}),
        ...(p.patchedFile ? { patched: p.patchedFile } : {}),
      }),
    );
  }
  // Globals defined anew anywhere are renamed; references from other objects follow.
  const renamedGlobals = new Map<string, string>();
  for (const s of states) {
    const origGlobals = new Set(s.oi ? s.oi.defined.filter((x) => x.bind !== STB.LOCAL).map((x) => x.name) : []);
    for (const sym of s.pi.defined) {
      if (sym.bind === STB.LOCAL || s.corr.p2o.has(sym.index) || origGlobals.has(sym.name)) continue;
      renamedGlobals.set(sym.name, newName(sym.name, tag));
    }
  }
  const result: DiffResult = {
    ok: false,
    functions: [],
    data: [],
    errors,
    warnings: [],
    objects: [],
    patches: [],
    hooks: [],
    explain: { objects: [], identical, equivalent: [], warnings: [] },
    inputDigest,
  };
  for (const s of states) {
    errors.push(...s.errors);
    result.functions.push(...s.cls.functions);
    result.data.push(...s.cls.data);
    const ex: DiffExplainObject = {
      object: s.path,
      changed: s.cls.functions.filter((f) => f.status === 'changed'),
      new: s.cls.functions.filter((f) => f.status === 'new'),
      lineOnly: s.cls.functions.filter((f) => f.status === 'line-only'),
      pulledIn: [],
      external: [],
      copied: [],
      excluded: s.cls.functions.filter((f) => !f.included).map((f) => ({ name: f.name, why: f.reason, rule: f.rule })),
      refusals: s.errors,
    };
    result.explain.objects.push(ex);
    if (s.cls.functions.length === 0 && s.cls.data.length === 0) result.explain.equivalent.push(s.path);
    const hasHooks = s.pi.elf.sections.some((x) => x.name.startsWith('.livepatch.hooks'));
    if (s.cls.roots.length === 0 && !hasHooks) continue;
    const em = emitObject({ object: s.path, pi: s.pi, psp: s.psp, corr: s.corr, cls: s.cls, abi, tag, renamedGlobals });
    errors.push(...em.errors);
    ex.refusals = [...s.errors, ...em.errors];
    result.warnings.push(...em.warnings);
    ex.pulledIn = em.explain.pulledIn;
    ex.copied = em.explain.copied;
    const byName = new Map(s.cls.functions.map((f) => [f.name, f] as const));
    for (const p of em.explain.pulledIn) {
      const f = byName.get(p.name);
      if (f && !f.included) f.included = true;
    }
    for (const [name, orig] of em.externals) {
      const entry: DiffExplainObject['external'][number] = { name };
      if (target?.symbols) {
        const hits = target.symbols.find(name);
        if (hits.length !== 1) {
          errors.push({
            code: 'DIFF_XEN_UNRESOLVED',
            object: s.path,
            symbol: name,
            message: hits.length
              ? `${name} names ${hits.length} symbols in XEN`
              : `XEN has no symbol ${name}: the payload would not load ("Unknown symbol")`,
            suggestion: 'check that XEN is the running build and ORIG its objects',
          });
        } else {
          entry.address = `0x${hits[0]!.value.toString(16)}`;
          if (orig && orig.type === STT.FUNC && s.oi && target.bytesAt) {
            const run = running(s.oi, orig, name, hits[0]!.value);
            entry.verified = run.ok;
            if (run.inDepends) entry.runningIn = 'depends';
            if (!entry.verified)
              errors.push({
                code: 'DIFF_XEN_MISMATCH',
                object: s.path,
                symbol: name,
                message: run.inDepends
                  ? `${name} as the payload stacked on (--depends) replaces it does not hold ORIG's bytes: ORIG is not the running build plus that payload`
                  : `${name} in XEN does not hold ORIG's bytes: ORIG is not the running build`,
                suggestion: run.inDepends
                  ? 'diff against the objects the --depends payload was made from'
                  : 'diff against the objects that built XEN',
              });
          }
        }
      }
      ex.external.push(entry);
    }
    const origFuncs = new Map((s.oi?.defined ?? []).filter((x) => x.type === STT.FUNC).map((x) => [x.xenName, x] as const));
    for (const p of em.patches) {
      const twin = origFuncs.get(p.old);
      if (twin && twin.size < 5) {
        errors.push({
          code: 'DIFF_TOO_SMALL',
          object: s.path,
          symbol: p.old,
          message: `${p.old} is ${twin.size} bytes, smaller than the 5-byte jump the patch writes`,
          suggestion: 'patch its callers instead',
        });
      }
      if (!target?.symbols) continue;
      const hits = target.symbols.find(p.old);
      if (hits.length !== 1) {
        errors.push({
          code: 'DIFF_XEN_UNRESOLVED',
          object: s.path,
          symbol: p.old,
          message: `XEN has no function ${p.old} to patch`,
          suggestion: 'check that XEN is the running build and ORIG its objects',
        });
      } else if (twin && target.bytesAt && stacked?.has(p.old)) {
        if (!running(s.oi!, twin, p.old, hits[0]!.value).ok) {
          errors.push({
            code: 'DIFF_XEN_MISMATCH',
            object: s.path,
            symbol: p.old,
            message: `${p.old} as the payload stacked on (--depends) replaces it does not hold ORIG's bytes: ORIG is not the running build plus that payload`,
            suggestion: 'diff against the objects the --depends payload was made from (its PATCHED side)',
          });
        }
      } else if (twin && target.bytesAt && !sameBytes(s.oi!, twin, target, hits[0]!.value)) {
        errors.push({
          code: 'DIFF_XEN_MISMATCH',
          object: s.path,
          symbol: p.old,
          message: `${p.old} in XEN (0x${hits[0]!.value.toString(16)}) does not hold ORIG's bytes: ORIG is not the build of the running hypervisor`,
          suggestion: 'diff against the objects that built XEN (same source, compiler, .config and command lines)',
        });
      }
    }
    result.patches.push(...em.patches);
    result.hooks.push(...em.hooks);
    if (em.bytes) result.objects.push({ name: `${s.path.replace(/\//g, '_').replace(/\.o$/, '')}.lp.o`, bytes: em.bytes });
  }
  const included = result.functions.filter((f) => f.included);
  if (included.length === 0 && result.hooks.length === 0 && !errors.some((e) => e.code === 'DIFF_DATA_ONLY')) {
    const changedData = result.data.filter((d) => d.status === 'changed' || d.status === 'new');
    if (changedData.length) {
      errors.unshift({
        code: 'DIFF_DATA_ONLY',
        object: changedData[0]!.object,
        symbol: changedData[0]!.xenName ?? changedData[0]!.name,
        message: `no function changed, but data did: ${changedData.map((d) => d.xenName ?? d.name).join(', ')}`,
        suggestion: 'The running value will not change. Write a LIVEPATCH_LOAD_HOOK that updates it, or change the code that uses it.',
      });
    } else if (errors.length === 0) {
      const what = [
        ...states.flatMap((s) => s.cls.harmless),
        ...states.flatMap((s) => s.cls.functions.filter((f) => !f.included).map((f) => `${f.name}: ${f.status}`)),
      ];
      const uniq = [...new Set(what)];
      errors.push({
        code: 'DIFF_NO_FUNCTIONAL_CHANGE',
        object: states[0]?.path ?? identical[0] ?? '',
        message: `no functional change${uniq.length ? ': only ' + uniq.join('; ') : identical.length ? ` (${identical.length} identical object${identical.length > 1 ? 's' : ''})` : ''}`,
        suggestion: uniq.length
          ? 'pass --include-line-only to patch functions whose only change is a line number'
          : 'ORIG and PATCHED are the same build',
      });
    }
  }
  if (o.hookSkeleton) {
    const vars = states.flatMap((s) =>
      s.cls.changedData.map(({ sym, xenName }) => ({
        xenName,
        size: sym.size,
        bytes: s.pi.relsIn(sym.shndx, sym.value, sym.value + sym.size).length
          ? null
          : s.pi.data(sym.shndx).slice(sym.value, sym.value + sym.size),
      })),
    );
    if (vars.length) result.hookSkeleton = hookSkeleton(vars);
  }
  result.warnings.push(...states.flatMap((s) => s.cls.warnings));
  result.explain.warnings = result.warnings;
  result.ok = errors.length === 0 && (included.length > 0 || result.hooks.length > 0);
  return result;
}

/** The functions a loaded payload replaces (by the name its funcs entry patches) → its copy. */
function stackedCopies(bytes: Uint8Array): Map<string, { oi: ObjIndex; sym: Sym }> {
  const out = new Map<string, { oi: ObjIndex; sym: Sym }>();
  const oi = new ObjIndex('depends', bytes);
  const byName = new Map(oi.defined.filter((s) => s.type === STT.FUNC).map((s) => [s.name, s] as const));
  for (const f of inspectPayload(bytes, 'depends').funcs) {
    const sym = f.name && f.newSymbol ? byName.get(f.newSymbol) : undefined;
    if (sym && f.name) out.set(f.name, { oi, sym });
  }
  return out;
}

/** ORIG's function equals a payload's copy outside the fields either side relocates. */
function sameAsCopy(oi: ObjIndex, s: Sym, di: ObjIndex, d: Sym): boolean {
  if (s.size !== d.size) return false;
  const a = oi.data(s.shndx).slice(s.value, s.value + s.size);
  const b = di.data(d.shndx).slice(d.value, d.value + d.size);
  for (const [idx, sym] of [
    [oi, s],
    [di, d],
  ] as const) {
    for (const r of idx.relsIn(sym.shndx, sym.value, sym.value + sym.size)) {
      const at = r.offset - sym.value;
      const w = fieldWidth(r.type);
      a.fill(0, at, at + w);
      b.fill(0, at, at + w);
    }
  }
  return a.every((v, i) => v === b[i]);
}

/** XEN's bytes of a function equal ORIG's outside relocated fields (§8.4). */
function sameBytes(oi: ObjIndex, s: Sym, target: Target, addr: bigint): boolean {
  let xb: Uint8Array;
  try {
    xb = target.bytesAt!(addr, s.size);
  } catch {
    return false;
  }
  const ob = oi.data(s.shndx).slice(s.value, s.value + s.size);
  const x = xb.slice();
  for (const r of oi.relsIn(s.shndx, s.value, s.value + s.size)) {
    const at = r.offset - s.value;
    const w = fieldWidth(r.type);
    ob.fill(0, at, at + w);
    x.fill(0, at, at + w);
  }
  return ob.length === x.length && ob.every((v, i) => v === x[i]);
}
