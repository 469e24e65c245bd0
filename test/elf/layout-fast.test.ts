/**
 * The allocation-free codec helpers (readBigField, readSafeField, writeBigField, writeNumField)
 * against the plain ones (readField, writeField) they stand in for: same values read, same bytes
 * written, for every kind that uses them, both byte orders, edges and random values.
 */
import { describe, expect, it } from 'vitest';
import {
  readBigField,
  readField,
  readSafeField,
  writeBigField,
  writeField,
  writeNumField,
  type FieldDef,
  type FieldKind,
} from '../../src/elf/layout.js';
import { rng } from '../helpers/rng.js';

const EDGES = [
  0n,
  1n,
  4095n,
  4096n,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  (1n << 53n) - 1n,
  1n << 53n,
  (1n << 63n) - 1n,
  1n << 63n,
  (1n << 64n) - 1n,
  -1n,
  -4n,
  -256n,
  -257n,
  -(1n << 31n),
  -(1n << 31n) - 1n,
  -(1n << 63n),
];

describe('layout fast paths', () => {
  const r = rng(7);
  const rand64 = (): bigint => (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
  const values = [
    ...EDGES,
    ...Array.from({ length: 200 }, () => rand64()),
    ...Array.from({ length: 200 }, () => BigInt(Math.floor(r() * 10000)) - 300n),
  ];
  for (const le of [true, false]) {
    for (const kind of ['U32', 'I32', 'U64', 'I64'] as FieldKind[]) {
      it(`${kind} ${le ? 'LE' : 'BE'}: read and write agree with readField/writeField`, () => {
        const def: FieldDef = { offset: 3, kind };
        for (const v of values) {
          const a = new Uint8Array(16);
          const b = new Uint8Array(16);
          writeField(new DataView(a.buffer), 0, def, le, v);
          writeBigField(new DataView(b.buffer), 0, def, le, v);
          expect(Array.from(b), `${kind} ${v}`).toEqual(Array.from(a));
          const dv = new DataView(a.buffer);
          expect(readBigField(dv, 0, def, le)).toBe(readField(dv, 0, def, le));
          if (kind === 'U32' || kind === 'U64') {
            const x = readField(dv, 0, def, le) as bigint;
            expect(readSafeField(dv, 0, def, le)).toBe(x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : -1);
          }
          if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
            const c = new Uint8Array(16);
            writeNumField(new DataView(c.buffer), 0, def, le, Number(v));
            expect(Array.from(c), `${kind} ${v} as number`).toEqual(Array.from(a));
          }
        }
      });
    }
  }
});
