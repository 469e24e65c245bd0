/**
 * The fuzzer's generators (fast-check arbitraries): crafted ELF files with overlapping, aliased and
 * self-referencing tables, and a valid object with structural mutations. Used by
 * fuzz-structure.test.ts, and by findings.test.ts to replay what the fuzzer found.
 */
import fc from 'fast-check';
import { buildFixture, note, relas, symbols, words, type RawSection } from '../helpers/malformed.js';

const T = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  NOTE: 7,
  NOBITS: 8,
  REL: 9,
  DYNSYM: 11,
  GROUP: 17,
  SYMTAB_SHNDX: 18,
  RELR: 19,
  CREL: 0x40000014,
};
const TYPES = [T.PROGBITS, T.SYMTAB, T.STRTAB, T.RELA, T.NOTE, T.NOBITS, T.REL, T.DYNSYM, T.GROUP, T.SYMTAB_SHNDX, T.RELR, T.CREL];
const NAMES = [
  '.text',
  '.data',
  '.rela.text',
  '.symtab',
  '.strtab',
  '.note.gnu.build-id',
  '.livepatch.funcs',
  '.livepatch.depends',
  '.livepatch.xen_depends',
  '.bss',
  '.crel.text',
  '.group',
  '',
];

/** Blocks of plausible contents: the fuzzer's sections point into them (several sections may share one). */
const block = (cls: 32 | 64, le: boolean) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 96 }),
    fc
      .array(
        fc.tuple(
          fc.bigInt({ min: 0n, max: 0x7fn }),
          fc.nat(6),
          fc.constantFrom(1, 2, 4, 10, 11, 0xff),
          fc.bigInt({ min: -(1n << 31n), max: (1n << 31n) - 1n }),
        ),
        { maxLength: 40 },
      )
      .map((rows) => relas(cls, le, rows as [bigint, number, number, bigint][])),
    fc
      .array(
        fc.tuple(
          fc.nat(12),
          fc.bigInt({ min: 0n, max: 0x100n }),
          fc.bigInt({ min: 0n, max: 0x80n }),
          fc.constantFrom(0, 0x12, 0x10, 3, 0x11, 0x16),
          fc.constantFrom(0, 2),
          fc.constantFrom(0, 1, 2, 5, 0xfff1, 0xfff2, 0xffff),
        ),
        { maxLength: 12 },
      )
      .map((rows) => symbols(cls, le, [[0, 0n, 0n, 0, 0, 0], ...rows] as [number, bigint, bigint, number, number, number][])),
    fc
      .array(fc.tuple(fc.constantFrom('GNU', 'Xen', ''), fc.constantFrom(1, 3, 4), fc.array(fc.nat(255), { maxLength: 24 })), {
        maxLength: 30,
      })
      .map((ns) => concat(ns.map(([n, t, d]) => note(le, n, t, d)))),
    fc.constant(new Uint8Array([0, ...new TextEncoder().encode('f\0do_domctl\0.text\0')])),
    fc.array(fc.nat(12), { minLength: 1, maxLength: 6 }).map((ws) => words(le, ws)),
  );

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

interface SecPlan {
  type: number;
  name: string;
  flags: bigint;
  link: number;
  info: number;
  entsize: bigint;
  block: number;
  /** sh_size: the block's length, or this. */
  size?: bigint;
  /** Point this header at another section's bytes (aliasing / self-reference). */
  aliasOf?: number;
}

const secPlan = fc.record(
  {
    type: fc.constantFrom(...TYPES),
    name: fc.constantFrom(...NAMES),
    flags: fc.constantFrom(0n, 2n, 6n, 3n, 0x40n, 0x42n, 7n, 0x200n),
    link: fc.nat(16),
    info: fc.nat(16),
    entsize: fc.constantFrom(0n, 0n, 24n, 16n, 12n, 8n, 1n, 7n, 1n << 40n),
    block: fc.nat(3),
    size: fc.option(fc.constantFrom(0n, 1n, 24n, 4096n, 1n << 40n, (1n << 64n) - 1n), { nil: undefined, freq: 4 }),
    aliasOf: fc.option(fc.nat(12), { nil: undefined, freq: 2 }),
  },
  { requiredKeys: ['type', 'name', 'flags', 'link', 'info', 'entsize', 'block'] },
);

const elfInput = fc
  .record({
    cls: fc.constantFrom<32 | 64>(64, 64, 32),
    le: fc.constantFrom(true, true, false),
    etype: fc.constantFrom(1, 1, 2),
    seed: fc.nat(),
  })
  .chain(({ cls, le, etype }) =>
    fc.record({
      cls: fc.constant(cls),
      le: fc.constant(le),
      etype: fc.constant(etype),
      blocks: fc.array(block(cls, le), { minLength: 1, maxLength: 4 }),
      secs: fc.array(secPlan, { minLength: 1, maxLength: 12 }),
      /** One header repeated this many times (the "4,000 headers, one block" shape). */
      repeat: fc.option(fc.record({ which: fc.nat(11), times: fc.integer({ min: 2, max: 2000 }) }), { nil: undefined, freq: 3 }),
    }),
  );

/**
 * A valid object (`f` in .text calling the hypervisor's do_domctl through .rela.text, data, a
 * symbol table) with a few structural mutations: headers aliased to other sections' bytes, links
 * and infos anywhere, types, flags, sizes and entry sizes changed, symbol values and addends
 * pushed out of range. Many still build: the build/verify agreement is exercised here.
 */
const mutation = fc.oneof(
  fc.record({ k: fc.constant('alias' as const), i: fc.integer({ min: 1, max: 7 }), j: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ k: fc.constantFrom('sh_link' as const, 'sh_info' as const), i: fc.integer({ min: 1, max: 7 }), v: fc.nat(9) }),
  fc.record({ k: fc.constant('sh_type' as const), i: fc.integer({ min: 1, max: 7 }), v: fc.constantFrom(...TYPES) }),
  fc.record({ k: fc.constant('sh_flags' as const), i: fc.integer({ min: 1, max: 7 }), v: fc.constantFrom(0, 2, 3, 6, 7, 0x40, 0x42) }),
  fc.record({
    k: fc.constantFrom('sh_size' as const, 'sh_entsize' as const, 'sh_addr' as const),
    i: fc.integer({ min: 1, max: 7 }),
    v: fc.constantFrom(0n, 1n, 8n, 24n, 0x1000n, 1n << 40n),
  }),
  fc.record({
    k: fc.constantFrom('st_value' as const, 'st_size' as const),
    i: fc.integer({ min: 1, max: 3 }),
    v: fc.constantFrom(0n, 4n, 15n, 16n, 17n, 0x1000n, 1n << 62n),
  }),
  fc.record({ k: fc.constant('r_addend' as const), i: fc.nat(1), v: fc.constantFrom(-4n, 0n, 0x7fffffffn, -0x80000000n, 1n << 40n) }),
  fc.record({
    k: fc.constant('r_info' as const),
    i: fc.nat(1),
    v: fc.constantFrom((2n << 32n) | 2n, (3n << 32n) | 4n, (9n << 32n) | 2n, (3n << 32n) | 11n, 0n),
  }),
);

export interface Shape {
  /** Relocations in .rela.text (the first two are real; the rest repeat the PC32 to f). */
  rows?: number;
  /** Section header `i` (1..6) repeated `times` more times, each naming the same bytes. */
  repeat?: { i: number; times: number };
}

export function mutatedValid(muts: { k: string; i: number; j?: number; v?: number | bigint }[], shape: Shape = {}): Uint8Array {
  const rows: [bigint, number, number, bigint][] = [
    [1n, 3, 4, -4n],
    [6n, 2, 2, -4n],
  ];
  for (let r = 2; r < (shape.rows ?? 2); r++) rows.push([6n, 2, 2, -4n]);
  const strtab = new Uint8Array([0, ...new TextEncoder().encode('f\0do_domctl\0')]);
  const text = new Uint8Array(16).fill(0x90);
  text.set([0xe8, 0, 0, 0, 0], 0);
  text[15] = 0xc3;
  const fx = buildFixture({
    class: 64,
    littleEndian: true,
    sections: [
      { name: '.text', type: T.PROGBITS, flags: 6n, addralign: 16n, data: text },
      { name: '.rela.text', type: T.RELA, flags: 0x40n, link: 5, info: 1, entsize: 24n, addralign: 8n, data: relas(64, true, rows) },
      { name: '.data', type: T.PROGBITS, flags: 3n, addralign: 8n, data: new Uint8Array(16) },
      { name: '.note.gnu.property', type: T.NOTE, flags: 2n, addralign: 8n, data: note(true, 'GNU', 5, [0, 0, 0, 0]) },
      {
        name: '.symtab',
        type: T.SYMTAB,
        link: 6,
        info: 2,
        entsize: 24n,
        addralign: 8n,
        data: symbols(64, true, [
          [0, 0n, 0n, 0, 0, 0],
          [0, 0n, 0n, 3, 0, 1],
          [1, 0n, 16n, 0x12, 0, 1],
          [3, 0n, 0n, 0x10, 0, 0],
        ]),
      },
      { name: '.strtab', type: T.STRTAB, addralign: 1n, data: strtab },
      ...repeated(shape),
    ],
  });
  const dv = new DataView(fx.bytes.buffer, fx.bytes.byteOffset, fx.bytes.byteLength);
  if (shape.repeat) {
    for (let k = 0; k < shape.repeat.times; k++) fx.setShdr(7 + k, 'sh_offset', fx.offsets[shape.repeat.i]!);
  }
  const symAt = (i: number) => fx.offsets[5]! + 24 * i;
  const relAt = (i: number) => fx.offsets[2]! + 24 * i;
  for (const m of muts) {
    if (m.k === 'alias') fx.setShdr(m.i, 'sh_offset', fx.offsets[m.j!] ?? 0);
    else if (m.k.startsWith('sh_')) fx.setShdr(m.i, m.k as 'sh_link', m.v!);
    else if (m.k === 'st_value') dv.setBigUint64(symAt(m.i) + 8, BigInt(m.v!), true);
    else if (m.k === 'st_size') dv.setBigUint64(symAt(m.i) + 16, BigInt(m.v!), true);
    else if (m.k === 'r_addend') dv.setBigInt64(relAt(m.i) + 16, BigInt.asIntN(64, BigInt(m.v!)), true);
    else if (m.k === 'r_info') dv.setBigUint64(relAt(m.i) + 8, BigInt(m.v!), true);
  }
  return fx.bytes;
}

/** The copies of header `repeat.i` (laid out empty by the builder, then pointed at the original's bytes). */
function repeated(shape: Shape): RawSection[] {
  if (!shape.repeat) return [];
  const like: Record<number, Omit<RawSection, 'size' | 'data'> & { size: bigint }> = {
    1: { name: '.text', type: T.PROGBITS, flags: 6n, addralign: 16n, size: 16n },
    2: {
      name: '.rela.text',
      type: T.RELA,
      flags: 0x40n,
      link: 5,
      info: 1,
      entsize: 24n,
      addralign: 8n,
      size: BigInt(24 * Math.max(2, shape.rows ?? 2)),
    },
    3: { name: '.data', type: T.PROGBITS, flags: 3n, addralign: 8n, size: 16n },
    4: { name: '.note.gnu.property', type: T.NOTE, flags: 2n, addralign: 8n, size: 20n },
    5: { name: '.symtab', type: T.SYMTAB, link: 6, info: 2, entsize: 24n, addralign: 8n, size: 96n },
    6: { name: '.strtab', type: T.STRTAB, addralign: 1n, size: 13n },
  };
  const s = like[shape.repeat.i]!;
  return Array.from({ length: shape.repeat.times }, () => ({ ...s }));
}

const shape = fc.record(
  {
    rows: fc.constantFrom(2, 2, 50, 2000),
    repeat: fc.option(fc.record({ i: fc.integer({ min: 1, max: 6 }), times: fc.constantFrom(1, 10, 500, 2000) }), {
      nil: undefined,
      freq: 3,
    }),
  },
  { requiredKeys: [] },
);

export const anyInput = fc.oneof(
  { weight: 1, arbitrary: elfInput.map((x) => ({ kind: 'crafted', bytes: materialize(x) })) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.array(mutation, { maxLength: 3 }), shape).map(([m, s]) => ({ kind: 'mutated', bytes: mutatedValid(m, s) })),
  },
);

type ElfInput = typeof elfInput extends fc.Arbitrary<infer X> ? X : never;

/** Lays the plan out with the independent builder, then aliases headers and repeats one. */
export function materialize(x: ElfInput): Uint8Array {
  let plans: SecPlan[] = x.secs;
  if (x.repeat && x.repeat.which < plans.length) {
    const p = plans[x.repeat.which]!;
    plans = [...plans, ...Array.from({ length: x.repeat.times }, () => ({ ...p, aliasOf: x.repeat!.which }))];
  }
  const raw: RawSection[] = plans.map((p) => {
    const data = x.blocks[p.block % x.blocks.length]!;
    return {
      name: p.name,
      type: p.type,
      flags: p.flags,
      link: p.link,
      info: p.info,
      entsize: p.entsize,
      addralign: 4n,
      ...(p.aliasOf !== undefined ? { size: p.size ?? BigInt(data.length) } : { data, ...(p.size !== undefined ? { size: p.size } : {}) }),
    };
  });
  const fx = buildFixture({ class: x.cls, littleEndian: x.le, sections: raw });
  fx.setEhdr('e_type', x.etype);
  plans.forEach((p, i) => {
    if (p.aliasOf === undefined) return;
    const target = (p.aliasOf % plans.length) + 1; // may be itself
    fx.setShdr(i + 1, 'sh_offset', fx.offsets[target] ?? 0);
  });
  return fx.bytes;
}
