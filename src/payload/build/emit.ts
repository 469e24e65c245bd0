/**
 * Build stage: emit the payload. The merged sections, symbols and relocations go into an
 * ObjectBuilder; then the generated sections (the names, the funcs array, hook arrays, depends /
 * xen_depends notes, `.modinfo`, the build-id note); the object is written once and its own
 * build-id computed with GNU ld's algorithm along the writer's plan (no read-back).
 */
import { createHash } from 'node:crypto';
import { ObjectBuilder, type RelocationSet } from '../../elf/builder.js';
import { SHF, SHT, STB, STT } from '../../elf/constants.js';
import { bigOf } from '../../elf/layout.js';
import { isAsciiName } from '../../elf/strtab.js';
import type { RelocationSpec, SectionId, SymbolId } from '../../elf/types.js';
import { encodeBuildIdNote } from '../../buildid/note.js';
import { gnuLdLayoutOfPlan, patchGnuLdBuildIdLaidOut } from '../../buildid/gnu-ld.js';
import { ABS_PTR_RELOC } from '../abi.js';
import type { PayloadAbi } from '../abi-types.js';
import { encodeFuncEntryInto, type FuncEntry } from '../funcs.js';
import { baseName, concat, nameOf, refuseAs, type EntryPlan, type HookArray, type Merged } from './model.js';
import { TOOL_NAME, type BuildOptions } from './types.js';

export interface Emitted {
  bytes: Uint8Array;
  /** The payload's own build-id. */
  id: Uint8Array;
  /** The build-id its depends note names. */
  depId: Uint8Array;
  /** Functions of each hook kind. */
  hooks: Record<string, string[]>;
  /** Section names in output order. */
  sections: string[];
}

interface EmitInput {
  opts: BuildOptions;
  merged: Merged;
  entries: readonly EntryPlan[];
  hooks: ReadonlyMap<string, HookArray>;
  littleEndian: boolean;
  /** e_flags when the row has none: the first object's. */
  inputFlags: number;
}

const enc = new TextEncoder();

export function emitPayload(input: EmitInput): Emitted {
  const { opts, littleEndian: le } = input;
  const { abi, target } = opts;
  const b = new ObjectBuilder({ class: abi.elfClass, littleEndian: le, machine: abi.machine, flags: abi.eFlags ?? input.inputFlags });
  const symId = addMerged(b, input.merged);
  const absRelocs = absRelocations(abi, le);
  if (input.entries.length) addFuncs(b, abi, input.entries, symId, absRelocs, le);
  else if (!abi.atLeastOneOf.length) {
    refuseAs('SEC_MISSING', `${abi.sections.funcs} is mandatory for ${abi.id}: give at least one --patch or --nop`);
  }
  const hooks = addHooks(b, abi, input.hooks, symId, absRelocs);
  const depId = opts.depends?.buildId ?? target.buildId;
  b.addSection({ name: abi.sections.depends, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: encodeBuildIdNote(depId, le) });
  if (abi.sections.xenDepends) {
    b.addSection({
      name: abi.sections.xenDepends,
      type: SHT.NOTE,
      flags: SHF.ALLOC,
      addralign: 4n,
      data: encodeBuildIdNote(target.buildId, le),
    });
  }
  if (abi.sections.modinfo) {
    const lines = [
      `${TOOL_NAME}=${opts.toolVersion ?? 'unknown'}`,
      `abi=${abi.id}`,
      ...opts.objects.map((o) => `input=${baseName(o.name)} sha256:${createHash('sha256').update(o.bytes).digest('hex')}`),
      ...(opts.modinfo ?? []).map((l) => l.replace(/\0/g, '')),
    ];
    const mod = concat([...input.merged.modinfoParts, enc.encode(lines.join('\0') + '\0')]);
    b.addSection({ name: abi.sections.modinfo, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: mod });
  }
  const noteId = b.addSection({ name: abi.sections.buildId, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(36) });

  const written = b.writeWithPlan();
  const id = patchGnuLdBuildIdLaidOut(
    gnuLdLayoutOfPlan(written.bytes, written.plan, abi.elfClass),
    written.plan.sectionIndex.get(noteId)!,
    'sha1',
    le,
  );
  return { bytes: written.bytes, id, depId, hooks, sections: b.sectionIds().map((s) => nameOf(b.section(s).name)) };
}

/** The merged sections, symbols (bound ones once) and relocations; returns model index → symbol ID. */
function addMerged(b: ObjectBuilder, merged: Merged): (i: number) => SymbolId {
  const { secs, syms, resolve } = merged;
  const secIds: SectionId[] = secs.map((s) => b.addSection(s.spec));
  secs.forEach((s, i) => {
    if (s.linkTo !== undefined) b.section(secIds[i]!).link = secIds[s.linkTo]!;
    if (s.infoTo !== undefined) b.setInfoLink(secIds[i]!, secIds[s.infoTo]!);
  });
  const symIds: (SymbolId | undefined)[] = new Array(syms.length);
  for (let i = 0; i < syms.length; i++) {
    const s = syms[i]!;
    if (resolve(i) !== i) continue;
    const section = typeof s.sec === 'number' ? secIds[s.sec]! : s.sec;
    const y = s.spec;
    symIds[i] = b.addSymbol({ name: y.name, bind: y.bind, type: y.type, other: y.other, section, value: y.value, size: y.size });
  }
  const symId = (i: number): SymbolId => symIds[resolve(i)]!;
  secs.forEach((s, i) => {
    if (!s.rel) return;
    const rel = s.rel;
    const set: RelocationSet = {
      rela: rel.rela,
      entries: rel.entries.map((e, r): RelocationSpec => {
        const m = rel.sym[r]!;
        return { offset: e.offset, type: e.type, symbol: m < 0 ? 0 : symId(m), addend: e.addend };
      }),
    };
    if (rel.name !== undefined) set.name = rel.name;
    if (rel.flags !== undefined) set.flags = rel.flags;
    b.setRelocations(secIds[i]!, set);
  });
  return symId;
}

interface AbsRelocs {
  add(offset: number, symbol: SymbolId, addend: bigint): void;
  set(): RelocationSet;
}

/** Absolute pointer relocations into `data`: RELA entries, or (arm32 SHT_REL) the addend stored in place. */
function absRelocations(abi: PayloadAbi, le: boolean): (data: Uint8Array) => AbsRelocs {
  const ptr = abi.pointerSize;
  const absReloc = abi.absPointerReloc ?? ABS_PTR_RELOC[abi.arch];
  const useRela = !abi.relAllowed || abi.arch !== 'arm32';
  return (data) => {
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
}

/** The names section (each name once, NUL-terminated, in order of first use) and the funcs array. */
function addFuncs(
  b: ObjectBuilder,
  abi: PayloadAbi,
  entries: readonly EntryPlan[],
  symId: (i: number) => SymbolId,
  absRelocs: (d: Uint8Array) => AbsRelocs,
  le: boolean,
): void {
  const { data: strData, offsets: strOffsets } = nameTable(entries);
  // The names live beside the funcs section: .livepatch.strings, .xsplice.strings, .acme.strings.
  const strName = abi.sections.funcs.endsWith('.funcs')
    ? abi.sections.funcs.slice(0, -'.funcs'.length) + '.strings'
    : abi.sections.funcs + '.strings';
  const strSec = b.addSection({
    name: strName,
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.MERGE | SHF.STRINGS,
    addralign: 1n,
    entsize: 1n,
    data: strData,
  });
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
  const fsec = b.addSection({
    name: abi.sections.funcs,
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | (writable || abi.funcsMustBeWritable ? SHF.WRITE : 0n),
    addralign: BigInt(L.align),
    data: funcs,
  });
  b.setRelocations(fsec, rel.set());
}

/** Each name NUL-terminated, in order of first use: ASCII names written as they are, others UTF-8 encoded. */
function nameTable(entries: readonly EntryPlan[]): { data: Uint8Array; offsets: Map<string, number> } {
  const offsets = new Map<string, number>();
  const parts: (string | Uint8Array)[] = [];
  let size = 0;
  for (const e of entries) {
    if (offsets.has(e.name)) continue;
    offsets.set(e.name, size);
    if (isAsciiName(e.name)) {
      parts.push(e.name);
      size += e.name.length + 1;
    } else {
      const bytes = enc.encode(e.name + '\0');
      parts.push(bytes);
      size += bytes.length;
    }
  }
  const data = new Uint8Array(size);
  const view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  for (const p of parts) {
    if (typeof p === 'string') {
      view.write(p, at, 'latin1');
      at += p.length + 1; // the NUL is already there
    } else {
      data.set(p, at);
      at += p.length;
    }
  }
  return { data, offsets };
}

function addHooks(
  b: ObjectBuilder,
  abi: PayloadAbi,
  arrays: ReadonlyMap<string, HookArray>,
  symId: (i: number) => SymbolId,
  absRelocs: (d: Uint8Array) => AbsRelocs,
): Record<string, string[]> {
  const ptr = abi.pointerSize;
  const out: Record<string, string[]> = {};
  for (const [section, h] of arrays) {
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
    out[h.rule.kind] = h.syms.map((s) => s.name);
  }
  return out;
}
