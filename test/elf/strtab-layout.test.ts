/**
 * The string-table layout against a plain reference (the original algorithm: sort the names by
 * their bytes read backwards, longest first among equal tails, and let a name that is a suffix of
 * the last one placed share its tail). The builder's own sort is a chunked radix sort and its keys
 * are latin1 strings; the bytes must not differ from the reference for any set of names.
 */
import { describe, expect, it } from 'vitest';
import { StringTableBuilder } from '../../src/elf/strtab.js';
import { rng } from '../helpers/rng.js';

function reference(names: Uint8Array[]): { bytes: Uint8Array; offsets: number[] } {
  const key = (b: Uint8Array) => Array.from(b).join(',');
  const uniq = new Map<string, { bytes: Uint8Array; offset: number }>();
  for (const b of names) if (b.length && !uniq.has(key(b))) uniq.set(key(b), { bytes: b, offset: -1 });
  const list = [...uniq.values()];
  list.sort((a, b) => {
    const n = Math.min(a.bytes.length, b.bytes.length);
    for (let i = 0; i < n; i++) {
      const d = a.bytes[a.bytes.length - 1 - i]! - b.bytes[b.bytes.length - 1 - i]!;
      if (d !== 0) return d;
    }
    return b.bytes.length - a.bytes.length;
  });
  let size = 1;
  let prev: { bytes: Uint8Array; offset: number } | undefined;
  for (const e of list) {
    const d = prev ? prev.bytes.length - e.bytes.length : -1;
    if (prev && d >= 0 && e.bytes.every((c, i) => prev!.bytes[d + i] === c)) e.offset = prev.offset + d;
    else {
      e.offset = size;
      size += e.bytes.length + 1;
      prev = e;
    }
  }
  const bytes = new Uint8Array(size);
  for (const e of list) bytes.set(e.bytes, e.offset);
  return { bytes, offsets: names.map((b) => (b.length ? uniq.get(key(b))!.offset : 0)) };
}

describe('string table layout', () => {
  const enc = new TextEncoder();
  const cases: [string, (r: () => number) => Uint8Array[]][] = [
    [
      'section-like names sharing long tails',
      (r) =>
        Array.from({ length: 3000 }, () => {
          const n = Math.floor(r() * 400);
          const forms = [`.text.f${n}`, `.rela.text.f${n}`, `.rodata.f${n}.str1.1`, `f${n}`, `${n}`, `.LC${n}`, `.str1.1`, '.1'];
          return enc.encode(forms[Math.floor(r() * forms.length)]!);
        }),
    ],
    [
      'random bytes from a small alphabet (many suffixes)',
      (r) =>
        Array.from({ length: 2000 }, () =>
          Uint8Array.from({ length: Math.floor(r() * 9) }, () => [0x61, 0x62, 0x2e][Math.floor(r() * 3)]!),
        ),
    ],
    [
      'any non-NUL byte, ASCII strings and bytes mixed',
      (r) => Array.from({ length: 2000 }, () => Uint8Array.from({ length: 1 + Math.floor(r() * 12) }, () => 1 + Math.floor(r() * 255))),
    ],
    [
      'a few names',
      (r) => Array.from({ length: 1 + Math.floor(r() * 10) }, () => enc.encode(['a', 'ba', 'cba', 'x', 'ax'][Math.floor(r() * 5)]!)),
    ],
  ];
  for (const [what, gen] of cases) {
    it(what, () => {
      for (let seed = 1; seed <= 5; seed++) {
        const names = gen(rng(seed));
        const t = new StringTableBuilder('.strtab');
        // Pure-ASCII names go in as strings half of the time (the writer's fast path).
        const keys = names.map((b, i) => t.add(i % 2 === 0 && b.every((c) => c < 0x80) ? new TextDecoder().decode(b) : b));
        const bytes = t.finish();
        const ref = reference(names);
        expect(Array.from(bytes)).toEqual(Array.from(ref.bytes));
        expect(keys.map((k) => t.offsetOf(k))).toEqual(ref.offsets);
      }
    });
  }
});
