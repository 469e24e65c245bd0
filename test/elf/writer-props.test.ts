/**
 * Property tests of the writer on pseudo-random models (deterministic seed), in all four target
 * shapes: every model writes deterministically, reads back (readElf → ObjectBuilder.fromElf) to
 * the same model — sections, links and infos by identity, symbols with locals first in model
 * order, relocations, groups — and readelf -a -W reads a sample of them without a warning.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rng } from '../helpers/rng.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { readElf } from '../../src/elf/reader.js';
import { EM, SHF, SHT, STB, STT } from '../../src/elf/constants.js';
import type { SectionId, SymbolId } from '../../src/elf/types.js';
import { toolStatus, tempDir, removeTempDirs } from '../helpers/corpus.js';

afterAll(removeTempDirs);

const SHAPES = [
  { class: 64, littleEndian: true, machine: EM.X86_64, rela: true, maxType: 42 },
  { class: 32, littleEndian: true, machine: EM['386'], rela: false, maxType: 43 },
  { class: 32, littleEndian: false, machine: EM.PPC, rela: true, maxType: 37 },
  { class: 64, littleEndian: false, machine: EM.S390, rela: true, maxType: 36 },
] as const;

const NAMES = ['.text', '.data', '.text.a', '.rodata', '.bss', '.a', '.text', 'données', '.x.y.z', '.meta', '.rodata.str1.1'];

interface Expected {
  sections: {
    name: string;
    type: number;
    flags: bigint;
    addralign: bigint;
    entsize: bigint;
    addr: bigint;
    size: bigint;
    data?: number[];
    link?: number;
    infoLink?: number;
  }[];
  symbols: { name: string; bind: number; type: number; other: number; section: string | number; value: bigint; size: bigint }[];
  relocs: Map<number, { rela: boolean; entries: { offset: bigint; type: number; symbol: number; addend: bigint }[] }>;
  groups: Map<number, { signature: number; flags: number; members: number[] }>;
}

/** A random model, and what reading it back must give (sections by model position, symbols by written position). */
function randomModel(r: () => number) {
  const shape = SHAPES[Math.floor(r() * SHAPES.length)]!;
  const int = (n: number) => Math.floor(r() * n);
  const max = shape.class === 64 ? (1n << 64n) - 1n : (1n << 32n) - 1n;
  const big = () => (BigInt(int(2 ** 30)) * BigInt(int(2 ** 30)) * BigInt(1 + int(16))) & max;
  const b = new ObjectBuilder({ class: shape.class, littleEndian: shape.littleEndian, machine: shape.machine });
  const nsec = 1 + int(10);
  const secIds: SectionId[] = [];
  const exp: Expected = { sections: [], symbols: [], relocs: new Map(), groups: new Map() };
  for (let i = 0; i < nsec; i++) {
    const nobits = r() < 0.15;
    const flags = [SHF.WRITE, SHF.ALLOC, SHF.EXECINSTR, SHF.MERGE | SHF.STRINGS, SHF.TLS]
      .filter(() => r() < 0.3)
      .reduce((a, f) => a | f, 0n);
    const addralign = [0n, 1n, 2n, 4n, 8n, 16n, 64n, 4096n][int(8)]!;
    const entsize = [0n, 0n, 1n, 4n][int(4)]!;
    const name = NAMES[int(NAMES.length)]!;
    const data = nobits ? undefined : Array.from({ length: int(48) }, () => int(256));
    const size = nobits ? BigInt(int(5000)) : BigInt(data!.length);
    const addr = r() < 0.2 ? BigInt(int(2 ** 20)) * 16n : 0n;
    secIds.push(
      b.addSection({
        name,
        type: nobits ? SHT.NOBITS : SHT.PROGBITS,
        flags,
        addralign,
        entsize,
        addr,
        ...(nobits ? { size } : { data: new Uint8Array(data!) }),
      }),
    );
    exp.sections.push({ name, type: nobits ? SHT.NOBITS : SHT.PROGBITS, flags, addralign, entsize, addr, size, data });
  }
  // Link-order and info links to other sections (by model position).
  for (let i = 0; i < nsec; i++) {
    if (r() < 0.2) {
      const t = int(nsec);
      b.section(secIds[i]!).flags |= SHF.LINK_ORDER;
      b.section(secIds[i]!).link = secIds[t]!;
      exp.sections[i]!.flags |= SHF.LINK_ORDER;
      exp.sections[i]!.link = t;
    }
    if (r() < 0.15) {
      const t = int(nsec);
      b.section(secIds[i]!).flags |= SHF.INFO_LINK;
      b.setInfoLink(secIds[i]!, secIds[t]!);
      exp.sections[i]!.flags |= SHF.INFO_LINK;
      exp.sections[i]!.infoLink = t;
    }
  }
  const nsym = int(20);
  const symIds: SymbolId[] = [];
  const specs: Expected['symbols'] = [];
  for (let i = 0; i < nsym; i++) {
    const where = r();
    const secPos = int(nsec);
    let section: 'UND' | 'ABS' | 'COM' | SectionId = where < 0.15 ? 'UND' : where < 0.25 ? 'ABS' : where < 0.3 ? 'COM' : secIds[secPos]!;
    const spec = {
      name: r() < 0.1 ? '' : `sym_${int(12)}${r() < 0.1 ? '_é' : ''}`,
      bind: [STB.LOCAL, STB.GLOBAL, STB.WEAK][int(3)]!,
      type: [STT.NOTYPE, STT.OBJECT, STT.FUNC, STT.SECTION, STT.FILE, STT.TLS][int(6)]!,
      other: int(4),
      value: r() < 0.3 ? big() : BigInt(int(1000)),
      size: BigInt(int(100)),
    };
    // Kept well-formed where readelf cares: section symbols are local, unnamed and in their section;
    // file symbols are local and absolute.
    if (spec.type === STT.SECTION) {
      Object.assign(spec, { bind: STB.LOCAL, name: '', value: 0n, size: 0n });
      section = secIds[secPos]!;
    }
    if (spec.type === STT.FILE) {
      Object.assign(spec, { bind: STB.LOCAL });
      section = 'ABS';
    }
    symIds.push(b.addSymbol({ ...spec, section }));
    specs.push({ ...spec, section: typeof section === 'string' ? section : secPos });
  }
  // Written order: locals first, each part in model order.
  const order = [...specs.keys()].sort((x, y) => Number(specs[x]!.bind !== STB.LOCAL) - Number(specs[y]!.bind !== STB.LOCAL) || x - y);
  exp.symbols = order.map((k) => specs[k]!);
  const written = new Map(order.map((k, i) => [k, i + 1]));
  for (let i = 0; i < nsec; i++) {
    if (r() < 0.4) {
      const n = int(6);
      const lo = shape.class === 64 ? -(1n << 63n) : -(1n << 31n);
      const entries = Array.from({ length: n }, () => {
        const s = nsym > 0 && r() < 0.85 ? int(nsym) : -1;
        let addend = shape.rela ? (r() < 0.5 ? -BigInt(int(1 << 20)) : BigInt(int(1 << 20))) : 0n;
        if (shape.rela && r() < 0.1) addend = r() < 0.5 ? lo : max;
        return { offset: BigInt(int(1 << 16)), type: int(shape.maxType + 1), s, addend };
      });
      b.setRelocations(secIds[i]!, {
        rela: shape.rela,
        entries: entries.map((e) => ({ offset: e.offset, type: e.type, symbol: e.s < 0 ? 0 : symIds[e.s]!, addend: e.addend })),
      });
      if (n > 0) {
        // An addend of max (2^64-1 / 2^32-1) is written as the same bits as -1: it reads back signed.
        const signed = (a: bigint) => (shape.class === 64 ? BigInt.asIntN(64, a) : BigInt.asIntN(32, a));
        exp.relocs.set(i, {
          rela: shape.rela,
          entries: entries.map((e) => ({
            offset: e.offset,
            type: e.type,
            symbol: e.s < 0 ? 0 : written.get(e.s)!,
            addend: signed(e.addend),
          })),
        });
      }
    }
  }
  if (nsym > 0 && r() < 0.5) {
    const members = [...new Set(Array.from({ length: 1 + int(3) }, () => int(nsec)))];
    for (const m of members) {
      b.section(secIds[m]!).flags |= SHF.GROUP;
      exp.sections[m]!.flags |= SHF.GROUP;
    }
    const sig = int(nsym);
    const gid = b.addGroup({ signature: symIds[sig]!, flags: 1, members: members.map((m) => secIds[m]!) }, secIds[0]);
    exp.groups.set(gid, { signature: written.get(sig)!, flags: 1, members });
  }
  return { b, exp, shape };
}

/** Reads an object back and checks it against the expectation. */
function checkReadBack(bytes: Uint8Array, exp: Expected): void {
  const elf = readElf(bytes);
  const { builder, symbolIds } = ObjectBuilder.fromElf(elf);
  const ids = builder.sectionIds().filter((id) => builder.group(id) === undefined);
  const pos = new Map(ids.map((id, i) => [id, i]));
  const dec = (n: string | Uint8Array) => (typeof n === 'string' ? n : new TextDecoder().decode(n));
  expect(
    ids.map((id) => {
      const s = builder.section(id);
      return {
        name: dec(s.name),
        type: s.type,
        flags: s.flags,
        addralign: s.addralign,
        entsize: s.entsize ?? 0n,
        addr: s.addr ?? 0n,
        size: s.type === SHT.NOBITS ? s.size! : BigInt(s.data!.length),
        ...(s.type === SHT.NOBITS ? {} : { data: Array.from(s.data!) }),
        ...(s.link !== undefined ? { link: pos.get(s.link)! } : {}),
        ...(builder.infoLink(id) !== undefined ? { infoLink: pos.get(builder.infoLink(id)!)! } : {}),
      };
    }),
  ).toEqual(exp.sections);
  const symPos = new Map([...symbolIds].map(([elfIndex, id]) => [id, elfIndex]));
  expect(
    builder.symbolIds().map((id) => {
      const y = builder.symbol(id);
      return {
        name: dec(y.name),
        bind: y.bind,
        type: y.type,
        other: y.other ?? 0,
        section: typeof y.section === 'string' ? y.section : pos.get(y.section)!,
        value: y.value,
        size: y.size,
      };
    }),
  ).toEqual(exp.symbols);
  const relocs = new Map<number, unknown>();
  for (const id of ids) {
    const set = builder.relocationsOf(id);
    if (set)
      relocs.set(pos.get(id)!, {
        rela: set.rela,
        entries: set.entries.map((e) => ({
          offset: e.offset,
          type: e.type,
          symbol: e.symbol === 0 ? 0 : symPos.get(e.symbol)!,
          addend: e.addend,
        })),
      });
  }
  expect(relocs).toEqual(exp.relocs);
  const groups = builder
    .sectionIds()
    .map((id) => builder.group(id))
    .filter((g) => g !== undefined);
  expect(groups.map((g) => ({ signature: symPos.get(g.signature)!, flags: g.flags, members: g.members.map((m) => pos.get(m)!) }))).toEqual([
    ...exp.groups.values(),
  ]);
}

describe('writer properties on random models', () => {
  it('300 models: deterministic, and read back to the same model', () => {
    const r = rng(Number(process.env.XSPLICE_PROP_SEED ?? 7));
    for (let i = 0; i < 300; i++) {
      const { b, exp } = randomModel(r);
      const bytes = b.write();
      expect(Buffer.from(b.write()).equals(Buffer.from(bytes))).toBe(true);
      checkReadBack(bytes, exp);
    }
  });

  // (Not ld -r: random relocation types and offsets are not meant to be linkable.)
  it('readelf -a -W reads 24 of them without a warning', async () => {
    const r = rng(99);
    const dir = await tempDir('props');
    for (let i = 0; i < 24; i++) {
      const { b } = randomModel(r);
      const p = join(dir, `m${i}.o`);
      await writeFile(p, b.write());
      const re = await toolStatus('readelf', ['-a', '-W', p]);
      expect(re.stderr, `model ${i} (${p})`).toBe('');
      expect(re.code).toBe(0);
    }
  });
});
