/**
 * Build stage 2: merge the objects' sections, symbols and relocations into one model. COMDAT groups
 * keep their first copy; undefined references bind to another object's definition; two strong
 * definitions of a global are refused (a weak one yields to a strong one, as a linker does).
 */
import { objectView, type ObjectView } from '../../elf/object-view.js';
import { STB, STT, SHF } from '../../elf/constants.js';
import type { GroupSpec } from '../../elf/builder.js';
import type { ElfFile, SectionId } from '../../elf/types.js';
import type { PayloadAbi } from '../abi-types.js';
import { hookRule } from '../abi.js';
import { F_ALLOC, F_GROUP, concat, flagBits, nameOf, refuse, refuseAs, type MSection, type MSymbol, type Merged } from './model.js';
import type { BuildInput, HookRequest } from './types.js';

/** sh_flags without SHF_GROUP (the same bigint when it is not set). */
const withoutGroup = (f: bigint): bigint => ((flagBits(f) & F_GROUP) !== 0 ? f & ~SHF.GROUP : f);

/** A map from dense IDs (ELF indices) to numbers >= 0, in one typed array. */
class IndexMap {
  private readonly slots: Int32Array;
  constructor(size: number) {
    this.slots = new Int32Array(size).fill(-1);
  }
  get(i: number): number | undefined {
    const v = i >= 0 && i < this.slots.length ? this.slots[i]! : -1;
    return v < 0 ? undefined : v;
  }
  set(i: number, v: number): void {
    this.slots[i] = v;
  }
}

function maxId(ids: readonly number[]): number {
  let m = -1;
  for (let i = 0; i < ids.length; i++) if (ids[i]! > m) m = ids[i]!;
  return m;
}

/** What every object's merge adds to. */
interface MergeState {
  abi: PayloadAbi;
  objects: readonly BuildInput[];
  warn: (w: string) => void;
  /** Section names build generates: an object carrying one is refused. */
  generated: Set<string>;
  secs: MSection[];
  syms: MSymbol[];
  globals: Map<string, number>;
  undefinedByName: Map<string, number>;
  seenGroups: Set<string>;
  modinfoParts: Uint8Array[];
}

/** One object's part of the merge: input ELF indices → indices into the model. */
interface ObjectMaps {
  view: ObjectView;
  ids: readonly SectionId[];
  secMap: IndexMap;
  /** Sections not carried (later COMDAT copies, the input build-id, .modinfo). */
  skipped: Set<SectionId>;
  symMap: IndexMap;
}

export function mergeObjects(
  abi: PayloadAbi,
  objects: readonly BuildInput[],
  elves: readonly ElfFile[],
  hooks: readonly HookRequest[],
  warn: (w: string) => void,
): Merged {
  const generated = new Set<string>([
    abi.sections.funcs,
    abi.sections.depends,
    ...(abi.sections.xenDepends ? [abi.sections.xenDepends] : []),
  ]);
  for (const r of hooks) generated.add(hookRule(abi, r.kind).section);
  const st: MergeState = {
    abi,
    objects,
    warn,
    generated,
    secs: [],
    syms: [],
    globals: new Map(),
    undefinedByName: new Map(),
    seenGroups: new Set(),
    modinfoParts: [],
  };
  for (const [oi, elf] of elves.entries()) {
    const view = objectView(elf);
    const ids = view.sectionIds();
    // Input IDs are ELF indices: dense, so typed arrays instead of Maps.
    const maps: ObjectMaps = { view, ids, secMap: new IndexMap(maxId(ids) + 1), skipped: new Set(), symMap: new IndexMap(0) };
    mergeSections(st, oi, maps);
    linkSections(st, maps);
    mergeSymbols(st, oi, maps);
    mergeRelocations(st, oi, maps);
  }
  // Bind undefined references to definitions from other objects.
  const { syms, globals, undefinedByName } = st;
  for (const [name, u] of undefinedByName) {
    const g = globals.get(name);
    if (g !== undefined) syms[u]!.alias = g;
  }
  const resolve = (i: number): number => {
    let at = i;
    while (syms[at]!.alias !== undefined) at = syms[at]!.alias!;
    return at;
  };
  return { secs: st.secs, syms, undefinedByName, modinfoParts: st.modinfoParts, resolve };
}

function mergeSections(st: MergeState, oi: number, m: ObjectMaps): void {
  const { abi, secs } = st;
  const { view, ids, secMap, skipped } = m;
  const file = st.objects[oi]!.name;
  // COMDAT groups: the first copy wins; members of later copies are dropped.
  const groupOf = new Map<SectionId, GroupSpec>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const g = view.group(id);
    if (!g) continue;
    groupOf.set(id, g);
    const sig = nameOf(view.symbol(g.signature).name);
    if (st.seenGroups.has(sig) && (g.flags & 1) === 1) for (const member of g.members) skipped.add(member);
    st.seenGroups.add(sig);
  }
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (groupOf.has(id)) continue; // group sections are not carried: the payload is loaded, not linked
    if (skipped.has(id)) continue;
    const spec = view.section(id);
    const name = nameOf(spec.name);
    if (name === abi.sections.buildId) {
      st.warn(`${file}: its ${name} is replaced by the payload's own`);
      skipped.add(id);
      continue;
    }
    if (abi.sections.modinfo && name === abi.sections.modinfo) {
      if (spec.data && spec.data.length) st.modinfoParts.push(spec.data.at(-1) === 0 ? spec.data : concat([spec.data, new Uint8Array(1)]));
      skipped.add(id);
      continue;
    }
    if (st.generated.has(name)) {
      refuse(
        'BUILD_SECTION_CONFLICT',
        `the object already has ${name}, which xsplice build generates from the command line; drop one of them`,
        { file, section: name },
      );
    }
    // The view made this spec for this build alone: it is adjusted in place, not copied.
    spec.flags = withoutGroup(spec.flags);
    if ((flagBits(spec.flags) & F_ALLOC) !== 0 && (spec.addralign ?? 0n) === 0n) spec.addralign = 1n; // Xen's ROUNDUP(x, 0) is 0
    secMap.set(id, secs.length);
    secs.push({ spec, obj: oi });
  }
}

/** sh_link and SHF_INFO_LINK sh_info, as indices into the model (a link to a dropped section goes). */
function linkSections(st: MergeState, m: ObjectMaps): void {
  const { view, ids, secMap } = m;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const at = secMap.get(id);
    if (at === undefined) continue;
    const link = view.section(id).link;
    if (link !== undefined) {
      const to = secMap.get(link);
      if (to === undefined) delete st.secs[at]!.spec.link;
      else st.secs[at]!.linkTo = to;
    }
    const infoLink = view.infoLinkOf(id);
    const infoTo = infoLink !== undefined ? secMap.get(infoLink) : undefined;
    if (infoTo !== undefined) st.secs[at]!.infoTo = infoTo;
  }
}

function mergeSymbols(st: MergeState, oi: number, m: ObjectMaps): void {
  const { syms, globals, undefinedByName } = st;
  const { view, secMap, skipped } = m;
  const file = st.objects[oi]!.name;
  let curFile: string | undefined;
  const inSyms = view.symbolIds();
  const symMap = (m.symMap = new IndexMap(maxId(inSyms) + 1));
  for (let i = 0; i < inSyms.length; i++) {
    const sid = inSyms[i]!;
    const spec = view.symbol(sid);
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
      const at = secMap.get(spec.section);
      if (at === undefined) continue; // group section symbol
      sec = at;
    }
    if (sec === 'COM')
      refuseAs('SYM_COMMON', 'COMMON symbol: the hypervisor refuses them ("Unexpected common symbol"); compile with -fno-common', {
        file,
        symbol: name,
      });
    const ms: MSymbol =
      spec.bind === STB.LOCAL && curFile !== undefined ? { spec, sec, obj: oi, name, file: curFile } : { spec, sec, obj: oi, name };
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
          refuse('BUILD_DUPLICATE_SYMBOL', `global symbol defined twice (in ${st.objects[prev.obj]!.name} and ${file})`, {
            file,
            symbol: name,
          });
        }
        globals.set(name, syms.length);
      }
    }
    symMap.set(sid, syms.length);
    syms.push(ms);
  }
}

function mergeRelocations(st: MergeState, oi: number, m: ObjectMaps): void {
  const { view, ids, secMap, symMap } = m;
  const file = st.objects[oi]!.name;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const at = secMap.get(id);
    if (at === undefined) continue;
    const rs = view.relocationsOf(id);
    if (!rs) continue;
    const list = rs.entries;
    const sym: number[] = new Array(list.length);
    for (let r = 0; r < list.length; r++) {
      const e = list[r]!;
      if (e.symbol === 0) {
        sym[r] = -1;
        continue;
      }
      const s = symMap.get(e.symbol);
      if (s === undefined) {
        refuse(
          'BUILD_RELOC_DROPPED_SYMBOL',
          `a relocation in ${nameOf(view.section(id).name)} refers to ${nameOf(view.symbol(e.symbol).name)}, defined in a section that is not carried (build-id or duplicate COMDAT)`,
          { file },
        );
      }
      sym[r] = s;
    }
    const rel: NonNullable<MSection['rel']> = { rela: rs.rela, entries: list, sym };
    if (rs.name !== undefined) rel.name = rs.name;
    if (rs.flags !== undefined) rel.flags = withoutGroup(rs.flags);
    st.secs[at]!.rel = rel;
  }
}
