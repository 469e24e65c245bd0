/**
 * `xsplice build`: assembles a live-patch payload for one target ABI row from relocatable objects.
 *
 * 1. The objects' sections, symbols and relocations are merged into one ET_REL model (undefined
 *    references between objects are bound; two strong definitions of a global are refused).
 * 2. Everything the target hypervisor would refuse is refused here, with the reason (relocation
 *    types, W+X sections, COMMON symbols, special-section sizes, unresolved symbols, duplicate new
 *    symbols, old_size below the patch size, NOP lengths, …): RefusedError, exit status 1.
 * 3. Generated sections: the funcs array (one entry per --patch/--nop, `name` and `new_addr` by
 *    relocation), hook arrays, depends / xen_depends notes, `.modinfo`, the names, and the
 *    payload's own `.note.gnu.build-id`, computed with GNU ld's algorithm over the final bytes.
 *
 * Same inputs → same bytes: nothing reads the clock, the locale, the environment or the paths
 * (only base names of inputs go into `.modinfo`).
 */
import { createHash } from 'node:crypto';
import { RefusedError, UsageError, XspliceError } from '../errors.js';
import { readElf } from '../elf/reader.js';
import { bigOf } from '../elf/layout.js';
import { isAsciiName } from '../elf/strtab.js';
import { ObjectBuilder } from '../elf/builder.js';
import { ET, SHF, SHN, SHT, STB, STT, relocTypeName } from '../elf/constants.js';
import type { ElfFile, RelocationSpec, SectionId, SectionSpec, SymbolId, SymbolSpec } from '../elf/types.js';
import type { GroupSpec, RelocationSet } from '../elf/builder.js';
import { encodeBuildIdNote, parseBuildIdNote, toHex } from '../buildid/note.js';
import { gnuLdLayoutOfPlan, patchGnuLdBuildIdLaidOut } from '../buildid/gnu-ld.js';
import { ABS_PTR_RELOC, hookRule } from './abi.js';
import type { PayloadAbi } from './abi-types.js';
import { inputView } from './build-input.js';
import { encodeFuncEntryInto, type Expectation, type FuncEntry } from './funcs.js';
import type { Target, TargetSymbol } from './target.js';
import { sharedBuildChecks } from './verify.js';

export const TOOL_NAME = 'xsplice';

export interface BuildInput {
  /** Shown in messages; its base name goes into .modinfo. */
  name: string;
  bytes: Uint8Array;
}

export interface PatchRequest {
  /** Hypervisor function: a name (`file#name` for locals) or an address `0x…`. */
  old: string;
  /** Replacement symbol in the objects; default: `old` (its plain name). */
  new?: string;
  /** Overrides (needed when XEN is only a build-id). */
  oldSize?: number;
  newSize?: number;
  /** Explicit old_addr (0 = resolved by name by the hypervisor at upload). */
  oldAddr?: bigint;
}

export interface NopRequest {
  old: string;
  /** Bytes to NOP (default: old_size). */
  len?: number;
  oldSize?: number;
  oldAddr?: bigint;
}

export interface HookRequest {
  kind: string;
  symbol: string;
}

export interface DependsSpec {
  /** Build-id the payload stacks on (a payload's own id, or the hypervisor's). */
  buildId: Uint8Array;
  /** A payload file: its exported symbols resolve our undefined ones (as Xen does when it is loaded). */
  payload?: ElfFile;
  source: string;
}

export interface BuildOptions {
  objects: BuildInput[];
  target: Target;
  abi: PayloadAbi;
  patches?: PatchRequest[];
  nops?: NopRequest[];
  hooks?: HookRequest[];
  /** Default: the hypervisor (target build-id). */
  depends?: DependsSpec;
  /** Fill each entry's expectation block from the target's bytes at old_addr. */
  expect?: boolean;
  /** 'address' (default when the target has symbols): old_addr from the symbol table; 'name': 0, resolved by the hypervisor by `name`. */
  oldAddr?: 'address' | 'name';
  toolVersion?: string;
  /** Called with each warning as it arises (they are also returned on success). */
  onWarning?: (message: string) => void;
}

export interface BuiltFunc {
  name: string;
  newSymbol: string | null;
  oldAddr: bigint;
  newSize: number;
  oldSize: number;
  version: number;
  expect?: { len: number; data: string };
}

export interface BuildResult {
  bytes: Uint8Array;
  buildId: string;
  depends: string;
  xenDepends: string | null;
  abi: { id: string; name: string; arch: string; version: number };
  funcs: BuiltFunc[];
  hooks: Record<string, string[]>;
  /** The payload's sections in output order (its relocation sections, .symtab, .strtab and .shstrtab not listed). */
  sections: string[];
  undefinedSymbols: string[];
  warnings: string[];
}

/* ------------------------------------------------------------------------------------------ */
/* Merge model                                                                                 */

interface MSection {
  spec: SectionSpec;
  obj: number;
  /**
   * Relocations as the input view gives them (symbol = the input's ID), with `sym[k]` the index
   * into `syms` of entry k's symbol (-1 for STN_UNDEF).
   */
  rel?: { rela: boolean; name?: string | Uint8Array; flags?: bigint; entries: readonly RelocationSpec[]; sym: number[] };
  linkTo?: number;
  /** sh_info of an SHF_INFO_LINK section, as an index into `secs`. */
  infoTo?: number;
}

interface MSymbol {
  spec: SymbolSpec;
  /** Section as index into `secs`, or a special. */
  sec: number | 'UND' | 'ABS' | 'COM';
  obj: number;
  name: string;
  /** STT_FILE in force (locals). */
  file?: string;
  /** Merged into another symbol (index). */
  alias?: number;
}

const dec = new TextDecoder();
const nameOf = (n: string | Uint8Array): string => (typeof n === 'string' ? n : dec.decode(n));

function refuse(code: string, detail: string, ctx: ConstructorParameters<typeof RefusedError>[2] = {}): never {
  throw new RefusedError(code, detail, ctx);
}

const RELOC_HINT: Record<string, string> = {
  R_X86_64_32S: 'compile with -fpic, as the hypervisor is built (-mcmodel=kernel -fno-pic gives R_X86_64_32S)',
  R_X86_64_32: 'compile with -fpic, as the hypervisor is built',
  R_X86_64_GOTPCREL: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_GOTPCRELX: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_REX_GOTPCRELX: 'compile with -fvisibility=hidden (the loader has no GOT)',
  R_X86_64_PC64: 'use 32-bit PC-relative references (-mcmodel=small/kernel)',
  R_X86_64_TPOFF32: 'the hypervisor has no thread-local storage',
  R_AARCH64_NONE: 'Xen has no case for R_AARCH64_NONE',
  R_ARM_PREL31: 'unwind tables (.ARM.exidx): compile with -fno-unwind-tables -fno-asynchronous-unwind-tables, as Xen is built',
  R_ARM_THM_CALL: 'Thumb code: Xen is built as ARM code (-marm)',
  R_ARM_THM_JUMP24: 'Thumb code: Xen is built as ARM code (-marm)',
};

/**
 * The low 32 bits of sh_flags as a number: every SHF_* bit tested here lives there, and testing a
 * number allocates nothing (a bigint `&` makes a new bigint each time).
 */
function flagBits(f: bigint): number {
  return f >= 0n && f <= 0xffffffffn ? Number(f) : Number(BigInt.asUintN(32, f));
}
const F_WRITE = Number(SHF.WRITE);
const F_ALLOC = Number(SHF.ALLOC);
const F_EXEC = Number(SHF.EXECINSTR);
const F_MERGE = Number(SHF.MERGE);
const F_GROUP = Number(SHF.GROUP);
const F_TLS = Number(SHF.TLS);
/** sh_flags without SHF_GROUP (the same bigint when it is not set). */
const withoutGroup = (f: bigint): bigint => ((flagBits(f) & F_GROUP) !== 0 ? f & ~SHF.GROUP : f);

/** A map from dense IDs (ELF indices) to numbers >= 0, in one typed array. */
class IndexMap {
  private readonly a: Int32Array;
  constructor(size: number) {
    this.a = new Int32Array(size).fill(-1);
  }
  get(i: number): number | undefined {
    const v = i >= 0 && i < this.a.length ? this.a[i]! : -1;
    return v < 0 ? undefined : v;
  }
  set(i: number, v: number): void {
    this.a[i] = v;
  }
}

function maxId(ids: readonly number[]): number {
  let m = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i]! > m) m = ids[i]!;
  return m;
}

/** Section names whose entries Xen parses; refused when the row does not list them. */
const ARCH_SPECIAL = /^(\.altinstructions|\.ex_table|\.alt_call_sites|\.bug_frames\.\d+)$/;

/* ------------------------------------------------------------------------------------------ */

export async function buildPayload(opts: BuildOptions): Promise<BuildResult> {
  const { abi, target } = opts;
  const warnings: string[] = [];
  const warn = (w: string): void => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  const patches = opts.patches ?? [];
  const nops = opts.nops ?? [];
  const hookReqs = opts.hooks ?? [];
  if (opts.objects.length === 0 && patches.length + hookReqs.length > 0) throw new UsageError('BUILD_NO_OBJECTS', 'no input objects (only --nop needs none)');
  if (patches.length + nops.length + hookReqs.length === 0) {
    throw new UsageError('BUILD_NOTHING', 'nothing to patch: give at least one --patch, --nop or --hook');
  }
  for (const h of abi.hooks) if (h.note && hookReqs.some((r) => r.kind === h.kind)) warn(`${h.section}: ${h.note}`);

  /* 1. Read and check the objects. */
  const elves: ElfFile[] = opts.objects.map((o) => {
    let e: ElfFile;
    try {
      e = readElf(o.bytes, { file: o.name });
    } catch (err) {
      if (err instanceof XspliceError) err.withFile(o.name);
      throw err;
    }
    const h = e.header;
    if (h.type !== ET.REL) throw new UsageError('BUILD_NOT_REL', 'not a relocatable object (ET_REL)', { file: o.name });
    if (h.class !== abi.elfClass || h.machine !== abi.machine) {
      refuse('BUILD_WRONG_MACHINE', `object is ELFCLASS${h.class} machine ${h.machine}; payload ABI ${abi.id} wants ELFCLASS${abi.elfClass} machine ${abi.machine}`, { file: o.name });
    }
    if (abi.arch === 'x86_64' && !h.littleEndian) refuse('BUILD_WRONG_ENDIAN', 'x86-64 objects must be little-endian', { file: o.name });
    if (abi.eFlags !== undefined && (h.flags & 0xff000000) !== (abi.eFlags & 0xff000000)) {
      refuse('BUILD_WRONG_EABI', `e_flags EABI version 0x${(h.flags >>> 0).toString(16)} (the hypervisor wants 0x${abi.eFlags.toString(16)})`, { file: o.name });
    }
    return e;
  });
  const le = elves[0]?.header.littleEndian ?? true;
  for (const [i, e] of elves.entries()) {
    if (e.header.littleEndian !== le) refuse('BUILD_WRONG_ENDIAN', 'objects of both byte orders', { file: opts.objects[i]!.name });
  }

  /* 2. Merge. */
  const generated = new Set<string>([abi.sections.funcs, abi.sections.depends, ...(abi.sections.xenDepends ? [abi.sections.xenDepends] : [])]);
  for (const r of hookReqs) generated.add(hookRule(abi, r.kind).section);
  const secs: MSection[] = [];
  const syms: MSymbol[] = [];
  const globals = new Map<string, number>();
  const undefinedByName = new Map<string, number>();
  const seenGroups = new Set<string>();
  const modinfoParts: Uint8Array[] = [];

  // Each loop over thousands of sections or symbols lives in its own small function (here and
  // below): V8 then optimises it on its own, quickly, instead of recompiling all of buildPayload.
  const mergeObject = (oi: number, elf: ElfFile): void => {
    const file = opts.objects[oi]!.name;
    const fb = inputView(elf);
    const ids = fb.sectionIds();
    // Input IDs are ELF indices: dense, so typed arrays instead of Maps (no per-entry allocation).
    const secMap = new IndexMap(maxId(ids) + 1);
    const skipped = new Set<SectionId>();
    // COMDAT groups: the first copy wins; members of later copies are dropped.
    const groupOf = new Map<SectionId, GroupSpec>();
    // Indexed loops, here and in the writer: in a cold process a for-of loop allocates an
    // iterator result per step (~20 MB of a 5,000-function build), which the GC then pays for.
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const g = fb.group(id);
      if (!g) continue;
      groupOf.set(id, g);
      const sig = nameOf(fb.symbol(g.signature).name);
      if (seenGroups.has(sig) && (g.flags & 1) === 1) for (const m of g.members) skipped.add(m);
      seenGroups.add(sig);
    }
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      if (groupOf.has(id)) continue; // group sections are not carried: the payload is loaded, not linked
      if (skipped.has(id)) continue;
      const spec = fb.section(id);
      const name = nameOf(spec.name);
      if (name === abi.sections.buildId) {
        warn(`${file}: its ${name} is replaced by the payload's own`);
        skipped.add(id);
        continue;
      }
      if (abi.sections.modinfo && name === abi.sections.modinfo) {
        if (spec.data && spec.data.length) modinfoParts.push(spec.data.at(-1) === 0 ? spec.data : concat([spec.data, new Uint8Array(1)]));
        skipped.add(id);
        continue;
      }
      if (generated.has(name)) {
        refuse('BUILD_SECTION_CONFLICT', `the object already has ${name}, which xsplice build generates from the command line; drop one of them`, { file, section: name });
      }
      // The view made this spec for this build alone: it is adjusted in place, not copied.
      spec.flags = withoutGroup(spec.flags);
      if ((flagBits(spec.flags) & F_ALLOC) !== 0 && (spec.addralign ?? 0n) === 0n) spec.addralign = 1n; // Xen's ROUNDUP(x, 0) is 0
      secMap.set(id, secs.length);
      secs.push({ spec, obj: oi });
    }
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k]!;
      const m = secMap.get(id);
      if (m === undefined) continue;
      const l = fb.section(id).link;
      if (l !== undefined) {
        const lm = secMap.get(l);
        if (lm === undefined) delete secs[m]!.spec.link;
        else secs[m]!.linkTo = lm;
      }
      const il = fb.infoLinkOf(id);
      const im = il !== undefined ? secMap.get(il) : undefined;
      if (im !== undefined) secs[m]!.infoTo = im;
    }
    // Symbols
    let curFile: string | undefined;
    const inSyms = fb.symbolIds();
    const symMap = new IndexMap(maxId(inSyms) + 1);
    for (let k = 0; k < inSyms.length; k++) {
      const sid = inSyms[k]!;
      const spec = fb.symbol(sid);
      const name = nameOf(spec.name);
      if (spec.type === STT.FILE) curFile = name;
      let sec: MSymbol['sec'];
      if (spec.section === 'UND' || spec.section === 'ABS' || spec.section === 'COM') sec = spec.section;
      else {
        if (skipped.has(spec.section)) {
          // Defined in a dropped section: a later COMDAT copy binds to the first; the input build-id symbol vanishes.
          if (spec.bind !== STB.LOCAL && globals.has(name)) symMap.set(sid, globals.get(name)!);
          continue;
        }
        const m = secMap.get(spec.section);
        if (m === undefined) continue; // group section symbol
        sec = m;
      }
      if (sec === 'COM') refuse('BUILD_COMMON_SYMBOL', 'COMMON symbol: the hypervisor refuses them ("Unexpected common symbol"); compile with -fno-common', { file, symbol: name });
      const ms: MSymbol = spec.bind === STB.LOCAL && curFile !== undefined ? { spec, sec, obj: oi, name, file: curFile } : { spec, sec, obj: oi, name };
      if (spec.bind !== STB.LOCAL && name !== '') {
        if (sec === 'UND') {
          const u = undefinedByName.get(name);
          if (u !== undefined) {
            symMap.set(sid, u);
            continue;
          }
          undefinedByName.set(name, syms.length);
        } else {
          const g = globals.get(name);
          if (g !== undefined) {
            const prev = syms[g]!;
            if (spec.bind === STB.WEAK) {
              symMap.set(sid, g); // an earlier definition wins over a weak one
              continue;
            }
            if (prev.spec.bind === STB.WEAK) {
              // A strong definition replaces the earlier weak one (as a linker does).
              prev.alias = syms.length;
              globals.set(name, syms.length);
              symMap.set(sid, syms.length);
              syms.push(ms);
              continue;
            }
            refuse('BUILD_DUPLICATE_SYMBOL', `global symbol defined twice (in ${opts.objects[prev.obj]!.name} and ${file})`, { file, symbol: name });
          }
          globals.set(name, syms.length);
        }
      }
      symMap.set(sid, syms.length);
      syms.push(ms);
    }
    // Relocations
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j]!;
      const m = secMap.get(id);
      if (m === undefined) continue;
      const rs = fb.relocationsOf(id);
      if (!rs) continue;
      const list = rs.entries;
      const sym: number[] = new Array(list.length);
      for (let k = 0; k < list.length; k++) {
        const e = list[k]!;
        if (e.symbol === 0) {
          sym[k] = -1;
          continue;
        }
        const s = symMap.get(e.symbol);
        if (s === undefined) {
          refuse('BUILD_RELOC_DROPPED_SYMBOL', `a relocation in ${nameOf(fb.section(id).name)} refers to ${nameOf(fb.symbol(e.symbol).name)}, defined in a section that is not carried (build-id or duplicate COMDAT)`, { file });
        }
        sym[k] = s;
      }
      const rel: NonNullable<MSection['rel']> = { rela: rs.rela, entries: list, sym };
      if (rs.name !== undefined) rel.name = rs.name;
      if (rs.flags !== undefined) rel.flags = withoutGroup(rs.flags);
      secs[m]!.rel = rel;
    }
  };
  for (const [oi, elf] of elves.entries()) mergeObject(oi, elf);
  // Bind undefined references to definitions from other objects.
  for (const [name, u] of undefinedByName) {
    const g = globals.get(name);
    if (g !== undefined) syms[u]!.alias = g;
  }
  const resolve = (i: number): number => {
    let k = i;
    while (syms[k]!.alias !== undefined) k = syms[k]!.alias!;
    return k;
  };

  /* 3. What the hypervisor would refuse in the carried sections. */
  checkSections(abi, secs, syms, opts.objects, resolve);

  /* 4. Undefined symbols must resolve in the target (or the payload below in the stack). */
  const depPayloadSyms = opts.depends?.payload ? exportedSymbols(opts.depends.payload) : new Set<string>();
  const undefinedNames: string[] = [];
  for (const [name, u] of undefinedByName) {
    if (syms[u]!.alias !== undefined) continue;
    undefinedNames.push(name);
  }
  undefinedNames.sort();
  if (target.symbols) {
    const missing = undefinedNames.filter((n) => !target.symbols!.has(n) && !depPayloadSyms.has(n));
    if (missing.length) {
      const local = missing.map((n) => {
        try {
          target.symbols!.lookup(n);
          return n;
        } catch (e) {
          return e instanceof RefusedError && e.code === 'SYMBOL_LOCAL' ? `${n} (${e.detail.replace(/^.*?: /, '')})` : n;
        }
      });
      refuse('BUILD_UNDEFINED', `undefined symbol${missing.length > 1 ? 's' : ''} neither the objects nor the target define${opts.depends?.payload ? ' (nor the payload it depends on)' : ''}: ${local.join(', ')}; the hypervisor would refuse the upload ("Unknown symbol")`, { symbol: missing[0]!, file: opts.objects[syms[undefinedByName.get(missing[0]!)!]!.obj]!.name });
    }
  } else if (undefinedNames.length) {
    warn(`the target is only a build-id: cannot check that the hypervisor defines ${undefinedNames.join(', ')}`);
  }

  /* 5. Funcs entries. */
  const oldMode = opts.oldAddr ?? 'address';
  const entries: { name: string; newSym: number | null; oldAddr: bigint; newSize: number; oldSize: number; expect?: Expectation }[] = [];
  const seenOld = new Map<string, string>();

  const symIndex = new Map<string, number[]>();
  syms.forEach((s, i) => {
    if (s.name === '') return;
    const l = symIndex.get(s.name);
    if (l) l.push(i);
    else symIndex.set(s.name, [i]);
  });
  const findNew = (name: string): number => findObjectSymbol(syms, symIndex, name, resolve, opts.objects);
  const oldFromTarget = (old: string, req: { oldSize?: number; oldAddr?: bigint }): { name: string; addr: bigint; size: number; sym?: TargetSymbol } => {
    const isAddr = /^0x[0-9a-f]+$/i.test(old);
    if (isAddr) {
      const addr = BigInt(old);
      if (!target.symbols) refuse('BUILD_OLD_ADDR', `OLD given as address ${old}, but XEN has no symbol table to name it`, { symbol: old });
      const at = [...target.symbols.all()].filter((s) => s.value === addr && s.type === STT.FUNC);
      if (at.length === 0) refuse('BUILD_OLD_ADDR', `no function of the target starts at ${old}`, { symbol: old });
      if (at.length > 1) refuse('SYMBOL_AMBIGUOUS', `several functions start at ${old}: ${at.map((s) => s.name).join(', ')}; name one instead`, { symbol: old });
      const s = at[0]!;
      return { name: s.name, addr: req.oldAddr ?? (oldMode === 'name' ? 0n : s.value), size: req.oldSize ?? Number(s.size), sym: s };
    }
    // A function the payload below in the stack introduced: Xen resolves old_addr 0 by name among
    // the loaded payloads (livepatch_symbols_lookup_by_name), as verify models.
    const lower = opts.depends?.payload && !(target.symbols?.has(old)) ? dependsFunction(opts.depends.payload, old) : undefined;
    if (lower) return { name: old, addr: req.oldAddr ?? 0n, size: req.oldSize ?? lower.size };
    if (target.symbols) {
      const s = target.symbols.lookup(old);
      if (s.type !== STT.FUNC) refuse('BUILD_OLD_NOT_FUNC', `the target's ${old} is not a function (STT ${s.type})`, { symbol: old });
      return { name: s.name, addr: req.oldAddr ?? (oldMode === 'name' ? 0n : s.value), size: req.oldSize ?? Number(s.size), sym: s };
    }
    if (req.oldSize === undefined) {
      throw new UsageError('BUILD_NEED_SIZE', `XEN is only a build-id: give oldSize for ${old} in --spec`, { symbol: old });
    }
    return { name: old, addr: req.oldAddr ?? 0n, size: req.oldSize };
  };
  const targetStartsWithEndbr = (addr: bigint): boolean => {
    if (!target.bytesAt || addr === 0n || abi.endbrOffset === 0) return false;
    try {
      const b = target.bytesAt(addr, 4);
      // The ENDBR "poison" counts from 4.17.0 only (the row's endbrPoison; unknown release: assume it does).
      const poison = abi.loader?.features?.endbrPoison ?? true;
      return (b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && b[3] === 0xfa) || (poison && b[0] === 0x66 && b[1] === 0x0f && b[2] === 0x1f && b[3] === 0x01);
    } catch {
      return false;
    }
  };
  const expectFor = (addrOfBytes: bigint, oldSize: number, old: string): Expectation | undefined => {
    if (!opts.expect) return undefined;
    if (!abi.funcEntry.fields.expect) throw new UsageError('EXPECT_UNSUPPORTED', `--expect: payload ABI ${abi.id} has no expectation block (Xen 4.14+)`);
    if (!target.bytesAt || addrOfBytes === 0n) throw new UsageError('EXPECT_NO_BYTES', `--expect needs the target's code: XEN must be a symbol file or image (for ${old})`, { symbol: old });
    const len = Math.min(31, oldSize);
    const data = target.bytesAt(addrOfBytes, len).slice();
    return { enabled: true, len, rsv: 0, data };
  };
  const checkDup = (name: string, what: string): void => {
    const prev = seenOld.get(name);
    if (prev) refuse('BUILD_DUPLICATE_OLD', `${name} is patched twice (${prev} and ${what})`, { symbol: name });
    seenOld.set(name, what);
  };

  const addPatch = (p: PatchRequest): void => {
    const o = oldFromTarget(p.old, p);
    const newName = p.new ?? (p.old.includes('#') ? p.old.slice(p.old.lastIndexOf('#') + 1) : p.old);
    if (/^0x/i.test(newName)) throw new UsageError('BUILD_PATCH_NEW', `--patch ${p.old}: give the replacement symbol as OLD=NEW`);
    const ni = findNew(newName);
    const ns = syms[ni]!;
    const newSize = p.newSize ?? Number(ns.spec.size);
    checkDup(o.name, `--patch ${p.old}`);
    if (newSize === 0 && !abi.nopAllowed) refuse('BUILD_NEW_SIZE', `${newName} has size 0 (no .size directive?); ${abi.id} refuses new_size 0 — give newSize in --spec`, { symbol: newName });
    if (newSize === 0) warn(`${newName} has st_size 0 (no .size directive?): new_size 0`);
    if (o.size === 0) refuse('BUILD_OLD_SIZE', `old_size of ${o.name} is 0 ("Address or size fields are zero")`, { symbol: o.name });
    const addrForBytes = o.sym?.value ?? o.addr;
    const endbr = targetStartsWithEndbr(addrForBytes);
    const need = abi.patchSize + (endbr ? abi.endbrOffset : 0);
    if (o.size < need) {
      refuse('BUILD_OLD_TOO_SMALL', `${o.name} is ${o.size} bytes, smaller than the ${need}-byte patch${endbr ? ' (jump after ENDBR64)' : ''}; the hypervisor would refuse it (-EINVAL)`, { symbol: o.name, expected: `old_size ≥ ${need}`, found: o.size });
    }
    if (ns.spec.type !== STT.FUNC && ns.spec.type !== STT.NOTYPE) warn(`replacement ${newName} is not a function symbol`);
    const exp = expectFor(addrForBytes, o.size, p.old);
    entries.push(exp ? { name: o.name, newSym: ni, oldAddr: o.addr, newSize, oldSize: o.size, expect: exp } : { name: o.name, newSym: ni, oldAddr: o.addr, newSize, oldSize: o.size });
  };
  for (const p of patches) addPatch(p);
  for (const n of nops) {
    if (!abi.nopAllowed) refuse('BUILD_NOP_UNSUPPORTED', `payload ABI ${abi.id} has no NOP patching (Xen 4.8+)`, { symbol: n.old });
    const o = oldFromTarget(n.old, n);
    const len = n.len ?? o.size;
    checkDup(o.name, `--nop ${n.old}`);
    const addrForBytes = o.sym?.value ?? o.addr;
    const endbr = targetStartsWithEndbr(addrForBytes);
    if (len > abi.nopMaxLen) refuse('BUILD_NOP_LEN', `NOP length ${len} for ${o.name} exceeds ${abi.nopMaxLen} bytes${n.len === undefined ? ' (give :LEN)' : ''}`, { symbol: o.name, expected: `≤ ${abi.nopMaxLen}`, found: len });
    const gran = abi.nopGranule ?? 1;
    if (len % gran) refuse('BUILD_NOP_LEN', `NOP length ${len} for ${o.name} is not a multiple of ${gran} (whole instructions)`, { symbol: o.name });
    if (o.size === 0) refuse('BUILD_OLD_SIZE', `old_size of ${o.name} is 0`, { symbol: o.name });
    if (o.size < len) refuse('BUILD_NOP_LEN', `NOP length ${len} exceeds ${o.name}'s ${o.size} bytes`, { symbol: o.name });
    if (abi.arch !== 'x86_64' && o.size < abi.patchSize) refuse('BUILD_OLD_TOO_SMALL', `${o.name} is smaller than one instruction`, { symbol: o.name });
    if (endbr && len <= abi.endbrOffset) refuse('BUILD_NOP_LEN', `${o.name} starts with ENDBR64: a NOP length of ${len} would underflow (needs > ${abi.endbrOffset})`, { symbol: o.name });
    const exp = expectFor(addrForBytes, o.size, n.old);
    entries.push(exp ? { name: o.name, newSym: null, oldAddr: o.addr, newSize: len, oldSize: o.size, expect: exp } : { name: o.name, newSym: null, oldAddr: o.addr, newSize: len, oldSize: o.size });
  }
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    if (e.name.length > abi.limits.maxSymbolLen) refuse('BUILD_NAME_LONG', `${e.name} is longer than the hypervisor's ${abi.limits.maxSymbolLen}-character symbol names`, { symbol: e.name });
  }

  /* 6. Hooks. */
  const hookArrays = new Map<string, { rule: ReturnType<typeof hookRule>; syms: { sym: number | string; name: string }[] }>();
  for (const r of hookReqs) {
    const rule = hookRule(abi, r.kind);
    let entry = hookArrays.get(rule.section);
    if (!entry) hookArrays.set(rule.section, (entry = { rule, syms: [] }));
    if (!rule.array && entry.syms.length >= 1) refuse('BUILD_HOOK_SINGLE', `hook kind ${r.kind} takes exactly one function (${rule.section} must hold one pointer)`, { symbol: r.symbol });
    let si: number | string;
    try {
      si = findNew(r.symbol);
    } catch (e) {
      if (!(e instanceof RefusedError) || e.code !== 'BUILD_NEW_UNKNOWN' || !target.symbols?.has(r.symbol)) throw e;
      si = r.symbol; // a hypervisor function
    }
    entry.syms.push({ sym: si, name: r.symbol });
  }

  /* 7. New symbols must not collide with the hypervisor's (or the lower payload's) exported ones. */
  // Section (of the merge) → values of the replacement symbols defined there.
  const overriding = new Map<number, Set<bigint>>();
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    if (e.newSym === null) continue;
    const s = syms[e.newSym]!;
    if (typeof s.sec !== 'number') continue; // only symbols in sections are checked below
    const set = overriding.get(s.sec);
    if (set) set.add(s.spec.value);
    else overriding.set(s.sec, new Set([s.spec.value]));
  }
  const checkNewSymbols = (): void => {
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i]!;
      if (resolve(i) !== i || typeof s.sec !== 'number' || s.name === '') continue;
      const sf = flagBits(secs[s.sec]!.spec.flags);
      if ((sf & F_ALLOC) === 0) continue;
      if (s.spec.type === STT.SECTION || s.spec.type === STT.FILE) continue;
      if ((sf & F_MERGE) !== 0 && s.name.startsWith('.L')) continue;
      if (abi.arch !== 'x86_64' && /^\$[adx](\.|$)/.test(s.name)) continue;
      if (overriding.get(s.sec)?.has(s.spec.value)) continue;
      const nm = s.name.slice(0, abi.limits.maxSymbolLen);
      if (target.symbols?.has(nm) || depPayloadSyms.has(nm)) {
        refuse('BUILD_DUPLICATE_NEW_SYMBOL', `${s.name} would be a new symbol of the payload, but the ${target.symbols?.has(nm) ? 'hypervisor' : 'payload below'} already has one of that name; the hypervisor would refuse the upload ("duplicate new symbol", -EEXIST) — rename it, or make it the replacement of a --patch`, { symbol: s.name, file: opts.objects[s.obj]!.name });
      }
    }
  };
  if (target.symbols || depPayloadSyms.size) checkNewSymbols();

  /* 8. Emit the model. */
  const b = new ObjectBuilder({ class: abi.elfClass, littleEndian: le, machine: abi.machine, flags: abi.eFlags ?? elves[0]?.header.flags ?? 0 });
  const secIds: SectionId[] = secs.map((s) => b.addSection(s.spec));
  secs.forEach((s, i) => {
    if (s.linkTo !== undefined) b.section(secIds[i]!).link = secIds[s.linkTo]!;
    if (s.infoTo !== undefined) b.setInfoLink(secIds[i]!, secIds[s.infoTo]!);
  });
  const symIds: (SymbolId | undefined)[] = new Array(syms.length);
  const addSymbols = (): void => {
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i]!;
      if (resolve(i) !== i) continue;
      const section = typeof s.sec === 'number' ? secIds[s.sec]! : s.sec;
      const y = s.spec;
      symIds[i] = b.addSymbol({ name: y.name, bind: y.bind, type: y.type, other: y.other, section, value: y.value, size: y.size });
    }
  };
  addSymbols();
  const symId = (i: number): SymbolId => symIds[resolve(i)]!;
  secs.forEach((s, i) => {
    if (!s.rel) return;
    const set: RelocationSet = {
      rela: s.rel.rela,
      entries: s.rel.entries.map((e, k): RelocationSpec => {
        const m = s.rel!.sym[k]!;
        return { offset: e.offset, type: e.type, symbol: m < 0 ? 0 : symId(m), addend: e.addend };
      }),
    };
    if (s.rel.name !== undefined) set.name = s.rel.name;
    if (s.rel.flags !== undefined) set.flags = s.rel.flags;
    b.setRelocations(secIds[i]!, set);
  });

  const ptr = abi.pointerSize;
  const absReloc = abi.absPointerReloc ?? ABS_PTR_RELOC[abi.arch];
  const useRela = !abi.relAllowed || abi.arch !== 'arm32' ? true : false;
  /** Absolute pointer relocations into `data`: RELA entries, or (arm32 SHT_REL) the addend stored in place. */
  const absRelocs = (data: Uint8Array): { add(offset: number, symbol: SymbolId, addend: bigint): void; set(): RelocationSet } => {
    const dv = useRela ? undefined : new DataView(data.buffer, data.byteOffset, data.byteLength);
    const entries: RelocationSpec[] = [];
    return {
      add(offset, symbol, addend) {
        if (dv) {
          if (ptr === 4) dv.setUint32(offset, Number(BigInt.asUintN(32, addend)), le);
          else dv.setBigUint64(offset, BigInt.asUintN(64, addend), le);
        }
        entries.push({ offset: bigOf(offset), type: absReloc, symbol, addend: useRela ? addend : 0n });
      },
      set: () => ({ rela: useRela, entries }),
    };
  };

  // Names of the patched functions.
  const strOffsets = new Map<string, number>();
  // Each name NUL-terminated, in order of first use: ASCII names are written as they are, others
  // UTF-8 encoded.
  const strParts: (string | Uint8Array)[] = [];
  let strSize = 0;
  const enc = new TextEncoder();
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    if (strOffsets.has(e.name)) continue;
    strOffsets.set(e.name, strSize);
    if (isAsciiName(e.name)) {
      strParts.push(e.name);
      strSize += e.name.length + 1;
    } else {
      const bytes = enc.encode(e.name + '\0');
      strParts.push(bytes);
      strSize += bytes.length;
    }
  }
  const strData = new Uint8Array(strSize);
  {
    const sb = Buffer.from(strData.buffer, strData.byteOffset, strData.byteLength);
    let at = 0;
    for (const p of strParts) {
      if (typeof p === 'string') {
        sb.write(p, at, 'latin1');
        at += p.length + 1; // the NUL is already there
      } else {
        strData.set(p, at);
        at += p.length;
      }
    }
  }
  if (entries.length) {
    // The names live beside the funcs section: .livepatch.strings, .xsplice.strings, .acme.strings.
    const strName = abi.sections.funcs.endsWith('.funcs') ? abi.sections.funcs.slice(0, -'.funcs'.length) + '.strings' : abi.sections.funcs + '.strings';
    const strSec = b.addSection({ name: strName, type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.MERGE | SHF.STRINGS, addralign: 1n, entsize: 1n, data: strData });
    const strSym = b.addSymbol({ name: '', bind: STB.LOCAL, type: STT.SECTION, section: strSec, value: 0n, size: 0n });
    const L = abi.funcEntry;
    const funcs = new Uint8Array(L.size * entries.length);
    const rel = absRelocs(funcs);
    entries.forEach((e, i) => {
      const fe: FuncEntry = { name: 0n, newAddr: 0n, oldAddr: e.oldAddr, newSize: e.newSize, oldSize: e.oldSize };
      if (e.expect) fe.expect = e.expect;
      encodeFuncEntryInto(abi, fe, le, funcs, i * L.size);
      rel.add(i * L.size + L.fields.name.offset, strSym, bigOf(strOffsets.get(e.name)!));
      if (e.newSym !== null) rel.add(i * L.size + L.fields.newAddr.offset, symId(e.newSym), 0n);
    });
    const writable = abi.funcsWritable ?? abi.funcsMustBeWritable;
    const fsec = b.addSection({ name: abi.sections.funcs, type: SHT.PROGBITS, flags: SHF.ALLOC | (writable || abi.funcsMustBeWritable ? SHF.WRITE : 0n), addralign: BigInt(L.align), data: funcs });
    b.setRelocations(fsec, rel.set());
  } else if (!abi.atLeastOneOf.length) {
    refuse('BUILD_NO_FUNCS', `${abi.sections.funcs} is mandatory for ${abi.id}: give at least one --patch or --nop`);
  }
  const hooksOut: Record<string, string[]> = {};
  for (const [section, h] of hookArrays) {
    const data = new Uint8Array(ptr * h.syms.length);
    const rel = absRelocs(data);
    h.syms.forEach((s, i) => {
      let sid: SymbolId;
      if (typeof s.sym === 'number') sid = symId(s.sym);
      else sid = b.addSymbol({ name: s.sym, bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
      rel.add(i * ptr, sid, 0n);
    });
    const sec = b.addSection({ name: section, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: BigInt(ptr), data });
    b.setRelocations(sec, rel.set());
    hooksOut[h.rule.kind] = h.syms.map((s) => s.name);
  }
  const depId = opts.depends?.buildId ?? target.buildId;
  b.addSection({ name: abi.sections.depends, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: encodeBuildIdNote(depId, le) });
  if (abi.sections.xenDepends) {
    b.addSection({ name: abi.sections.xenDepends, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: encodeBuildIdNote(target.buildId, le) });
  }
  if (abi.sections.modinfo) {
    const lines = [
      `${TOOL_NAME}=${opts.toolVersion ?? 'unknown'}`,
      `abi=${abi.id}`,
      ...opts.objects.map((o) => `input=${baseName(o.name)} sha256:${createHash('sha256').update(o.bytes).digest('hex')}`),
    ];
    const mod = concat([...modinfoParts, enc.encode(lines.join('\0') + '\0')]);
    b.addSection({ name: abi.sections.modinfo, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: mod });
  }
  const noteId = b.addSection({ name: abi.sections.buildId, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(36) });

  // GNU ld's id over the final bytes, hashed along the writer's own plan (no read-back).
  const written = b.writeWithPlan();
  let bytes = written.bytes;
  const id = patchGnuLdBuildIdLaidOut(gnuLdLayoutOfPlan(bytes, written.plan, abi.elfClass), written.plan.sectionIndex.get(noteId)!, 'sha1', le);
  if (bytes.length > abi.limits.maxPayloadSize) {
    refuse('BUILD_TOO_BIG', `the payload is ${bytes.length} bytes; the hypervisor takes at most ${abi.limits.maxPayloadSize}`, { expected: `≤ ${abi.limits.maxPayloadSize}`, found: bytes.length });
  }
  const shnum = sectionCount(bytes, abi.elfClass, le);
  if (shnum >= abi.limits.maxSections) {
    refuse('BUILD_TOO_MANY_SECTIONS', `the payload has ${shnum} sections; the hypervisor takes fewer than ${abi.limits.maxSections}`);
  }
  // What verify would refuse or flag in the written payload (bug-frame instruction, NOP ranges
  // decoded from the target, return / indirect thunks).
  for (const d of sharedBuildChecks(bytes, target, abi)) {
    const explicit = d.code === 'NOTE_NOP_COVERS_RETURN' && nops.some((n) => n.len !== undefined && (n.old === d.symbol || entries.some((e) => e.name === d.symbol && e.newSym === null && e.newSize === n.len)));
    if (d.severity === 'error' || (d.code === 'NOTE_NOP_COVERS_RETURN' && !explicit)) {
      refuse(`BUILD_${d.code.replace(/^(UNCHECKED|NOTE)_/, '')}`, `${d.message}${d.code === 'NOTE_NOP_COVERS_RETURN' ? ' (or give the length explicitly: --nop F:LEN)' : ''}`, d.symbol ? { symbol: d.symbol } : {});
    }
    warn(d.message);
  }
  if (opts.depends?.payload) {
    const own = opts.depends.payload.sectionByName(abi.sections.buildId);
    if (own) {
      const p = parseBuildIdNote(own.data(), opts.depends.payload.header.littleEndian);
      if (p.ok && toHex(p.id) === toHex(id)) refuse('BUILD_SAME_BUILDID', 'the payload has the same build-id as the one it depends on');
    }
  }

  return {
    bytes,
    buildId: toHex(id),
    depends: toHex(depId),
    xenDepends: abi.sections.xenDepends ? toHex(target.buildId) : null,
    abi: { id: abi.id, name: abi.name, arch: abi.arch, version: abi.funcEntry.version },
    funcs: entries.map((e) => ({
      name: e.name,
      newSymbol: e.newSym === null ? null : syms[resolve(e.newSym)]!.name,
      oldAddr: e.oldAddr,
      newSize: e.newSize,
      oldSize: e.oldSize,
      version: abi.funcEntry.version,
      ...(e.expect ? { expect: { len: e.expect.len, data: toHex(e.expect.data.subarray(0, e.expect.len)) } } : {}),
    })),
    hooks: hooksOut,
    sections: b.sectionIds().map((id) => nameOf(b.section(id).name)),
    undefinedSymbols: [...new Set([...undefinedNames, ...[...hookArrays.values()].flatMap((h) => h.syms.filter((x) => typeof x.sym === 'string').map((x) => x.name))])].sort(),
    warnings,
  };
}

/* ------------------------------------------------------------------------------------------ */

function checkSections(abi: PayloadAbi, secs: MSection[], syms: MSymbol[], objects: BuildInput[], resolve: (i: number) => number): void {
  const specialSize = new Map(abi.special.map((s) => [s.section, s.entrySize]));
  // Alternatives need their replacement code (Xen 4.17.4+/4.18+ refuse the payload without it;
  // earlier releases patch from wherever the entries point).
  const alt = secs.find((s) => nameOf(s.spec.name) === '.altinstructions' && (s.spec.data?.length ?? 0) > 0);
  if (alt && specialSize.has('.altinstructions') && !secs.some((s) => nameOf(s.spec.name) === '.altinstr_replacement')) {
    refuse('BUILD_ALT_NO_REPLACEMENT', '.altinstructions provided, but no .altinstr_replacement (the hypervisor refuses this from 4.17.4/4.18)', { file: objects[alt.obj]!.name, section: '.altinstructions' });
  }
  const allowed = new Set(abi.relocTypes);
  const allocSec = secs.map((s) => (flagBits(s.spec.flags) & F_ALLOC) !== 0);
  for (let si = 0; si < secs.length; si++) {
    const s = secs[si]!;
    const file = objects[s.obj]!.name;
    const name = nameOf(s.spec.name);
    const f = flagBits(s.spec.flags);
    const alloc = allocSec[si]!;
    if ((f & F_WRITE) !== 0 && (f & F_EXEC) !== 0 && alloc) {
      refuse('BUILD_WX_SECTION', 'section is both writable and executable; the hypervisor refuses it ("Not supporting … section")', { file, section: name });
    }
    if (s.spec.type === SHT.NOBITS && (f & (F_WRITE | F_ALLOC)) !== 0 && abi.limits.maxNobits !== null && (s.spec.size ?? 0n) > abi.limits.maxNobits) {
      refuse('BUILD_NOBITS_SIZE', `SHT_NOBITS section of ${s.spec.size} bytes; the hypervisor takes at most ${abi.limits.maxNobits}`, { file, section: name });
    }
    if (alloc && (f & F_TLS) !== 0) refuse('BUILD_TLS', 'thread-local storage section: the hypervisor has none', { file, section: name });
    const size = s.spec.type === SHT.NOBITS ? Number(s.spec.size ?? 0n) : s.spec.data?.length ?? 0;
    const es = specialSize.get(name);
    if (es !== undefined && size % es !== 0) {
      refuse('BUILD_SPECIAL_SIZE', `size ${size} is not a multiple of the ${es}-byte entries the hypervisor expects`, { file, section: name, expected: `a multiple of ${es}`, found: size });
    }
    if (es === undefined && ARCH_SPECIAL.test(name) && size > 0) {
      refuse('BUILD_SPECIAL_UNSUPPORTED', `the target (${abi.id}, ${abi.releases}) does not handle ${name} on ${abi.arch}`, { file, section: name });
    }
    if (!s.rel || !alloc) continue; // Xen skips relocations of non-alloc sections (debug info)
    if (!s.rel.rela && !abi.relAllowed) {
      refuse('BUILD_REL', `SHT_REL relocations: the ${abi.arch} loader takes only SHT_RELA`, { file, section: name });
    }
    const dataLen = s.spec.type === SHT.NOBITS ? 0 : s.spec.data?.length ?? 0;
    const relSyms = s.rel.sym;
    const relEntries = s.rel.entries;
    for (let k = 0; k < relEntries.length; k++) {
      const e = relEntries[k]!;
      const esym = relSyms[k]!;
      if (esym < 0) {
        const tname = relocTypeName(abi.machine, e.type);
        const hint = tname === 'R_ARM_V4BX' ? ' (assemble for ARMv7, e.g. -march=armv7-a, as Xen is built)' : '';
        refuse('BUILD_RELOC_STN_UNDEF', `relocation ${tname} at 0x${e.offset.toString(16)} has no symbol (STN_UNDEF); the hypervisor refuses it ("Encountered STN_UNDEF")${hint}`, { file, section: name });
      }
      if (!allowed.has(e.type)) {
        const tname = relocTypeName(abi.machine, e.type);
        const hint = RELOC_HINT[tname];
        refuse('BUILD_RELOC_TYPE', `relocation type ${tname} (${e.type}) at 0x${e.offset.toString(16)} is not handled by the hypervisor's loader${hint ? `: ${hint}` : ''}`, { file, section: name, symbol: syms[resolve(esym)]!.name || undefined });
      }
      const width = relocWidth(abi, e.type);
      if (width > 0 && e.offset > dataLen - width && abi.arch !== 'arm32') { // e.offset + width > dataLen
        refuse('BUILD_RELOC_OFFSET', `relocation at 0x${e.offset.toString(16)} runs past the end of the section`, { file, section: name });
      }
      const sym = syms[resolve(esym)]!;
      if (typeof sym.sec === 'number' && !allocSec[sym.sec]) {
        refuse('BUILD_RELOC_IGNORED', `relocation against ${sym.name || nameOf(secs[sym.sec]!.spec.name)}, which lives in a non-SHF_ALLOC section the hypervisor does not load`, { file, section: name });
      }
    }
  }
}

function relocWidth(abi: PayloadAbi, type: number): number {
  if (abi.arch === 'x86_64') return type === 1 ? 8 : type === 2 || type === 4 ? 4 : 0;
  if (abi.arch === 'arm64') return type === 257 || type === 260 ? 8 : 4;
  return 4;
}

/** A defined symbol of the merged objects by name (plain, or `file#name` for a local). */
function findObjectSymbol(syms: MSymbol[], index: Map<string, number[]>, name: string, resolve: (i: number) => number, objects: BuildInput[]): number {
  // A global whose name is itself `file#name` (what diff emits for a replaced static function).
  const exact = (index.get(name) ?? []).filter((i) => resolve(i) === i && typeof syms[i]!.sec === 'number' && syms[i]!.spec.bind !== STB.LOCAL);
  if (name.includes('#') && exact.length === 1) return exact[0]!;
  const hash = name.lastIndexOf('#');
  const file = hash > 0 ? name.slice(0, hash) : undefined;
  const plain = hash > 0 ? name.slice(hash + 1) : name;
  const defined = (s: MSymbol): boolean => typeof s.sec === 'number' || s.sec === 'ABS';
  const globals: number[] = [];
  const locals: number[] = [];
  const candidates = index.get(plain) ?? [];
  candidates.forEach((i) => {
    const s = syms[i]!;
    if (resolve(i) !== i || !defined(s) || s.spec.type === STT.SECTION || s.spec.type === STT.FILE) return;
    if (s.spec.bind === STB.LOCAL) {
      if (file === undefined || s.file === file || (s.file && s.file.endsWith('/' + file))) locals.push(i);
    } else if (file === undefined) globals.push(i);
  });
  if (globals.length === 1) return globals[0]!;
  if (globals.length === 0 && locals.length === 1) return locals[0]!;
  if (globals.length + locals.length === 0) {
    const und = candidates.some((i) => syms[i]!.sec === 'UND');
    refuse('BUILD_NEW_UNKNOWN', `the objects define no symbol ${name}${und ? ' (it is only referenced)' : ''}`, { symbol: name });
  }
  const where = [...globals, ...locals].map((i) => `${syms[i]!.file ? syms[i]!.file + '#' : ''}${plain} in ${objects[syms[i]!.obj]!.name}`);
  refuse('SYMBOL_AMBIGUOUS', `${name} names several symbols of the objects: ${where.join(', ')}; name it as file#name`, { symbol: name });
}

/** Symbols a loaded payload exports (Xen's is_payload_symbol rule, without the overriding test). */
function exportedSymbols(elf: ElfFile): Set<string> {
  const out = new Set<string>();
  for (const s of elf.symbols()) {
    if (s.index === 0 || s.name === '' || s.shndx === SHN.UNDEF || s.shndx >= elf.sections.length) continue;
    const sec = elf.sections[s.shndx]!;
    if ((sec.flags & SHF.ALLOC) === 0n) continue;
    if (s.name.startsWith('.L') && (sec.flags & SHF.MERGE) !== 0n) continue;
    if (s.type === STT.SECTION || s.type === STT.FILE) continue;
    out.add(s.name);
  }
  return out;
}

/** A function symbol `name` that payload `elf` exports (a new symbol Xen makes visible to later payloads). */
function dependsFunction(elf: ElfFile, name: string): { size: number } | undefined {
  if (!exportedSymbols(elf).has(name)) return undefined;
  const s = elf.symbols().find((y) => y.name === name && y.type === STT.FUNC && y.shndx !== SHN.UNDEF);
  return s ? { size: Number(s.size) } : undefined;
}

/** e_shnum of a written object (section 0's sh_size under extended numbering). */
function sectionCount(bytes: Uint8Array, cls: 32 | 64, le: boolean): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint16(cls === 64 ? 0x3c : 0x30, le);
  if (n !== 0) return n;
  const shoff = cls === 64 ? Number(dv.getBigUint64(0x28, le)) : dv.getUint32(0x20, le);
  return cls === 64 ? Number(dv.getBigUint64(shoff + 0x20, le)) : dv.getUint32(shoff + 0x14, le);
}

function baseName(p: string): string {
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i >= 0 ? p.slice(i + 1) : p;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
