/**
 * XXH64 against published vectors and an independent BigInt implementation written here from
 * the spec; tree hashes and the plan executor against direct hashing with node:crypto.
 * (lld's --build-id=fast output is the third oracle: see linkers.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { blake3 } from '@noble/hashes/blake3.js';
import { Xxh64, xxh64 } from '../../src/buildid/xxh64.js';
import { TreeHasher, createHasher } from '../../src/buildid/hash.js';
import { FileSource, MemorySource, rangeMinus, runPlan, runPlanAsync, type Segment } from '../../src/buildid/stream.js';
import { toHex } from '../../src/buildid/note.js';
import { Workdir } from './toolchain.js';

const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n,
  P2 = 0xc2b2ae3d27d4eb4fn,
  P3 = 0x165667b19e3779f9n,
  P4 = 0x85ebca77c2b2ae63n,
  P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
const rnd = (acc: bigint, v: bigint): bigint => (rotl((acc + v * P2) & M, 31n) * P1) & M;
function refXxh64(b: Uint8Array, seed = 0n): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 0;
  let h: bigint;
  if (b.length >= 32) {
    let v1 = (seed + P1 + P2) & M,
      v2 = (seed + P2) & M,
      v3 = seed,
      v4 = (seed - P1) & M;
    for (; p + 32 <= b.length; p += 32) {
      v1 = rnd(v1, dv.getBigUint64(p, true));
      v2 = rnd(v2, dv.getBigUint64(p + 8, true));
      v3 = rnd(v3, dv.getBigUint64(p + 16, true));
      v4 = rnd(v4, dv.getBigUint64(p + 24, true));
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    for (const v of [v1, v2, v3, v4]) h = ((h ^ rnd(0n, v)) * P1 + P4) & M;
  } else h = (seed + P5) & M;
  h = (h + BigInt(b.length)) & M;
  for (; p + 8 <= b.length; p += 8) h = (rotl(h ^ rnd(0n, dv.getBigUint64(p, true)), 27n) * P1 + P4) & M;
  if (p + 4 <= b.length) {
    h = (rotl(h ^ ((BigInt(dv.getUint32(p, true)) * P1) & M), 23n) * P2 + P3) & M;
    p += 4;
  }
  for (; p < b.length; p++) h = (rotl(h ^ ((BigInt(b[p]!) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

const enc = new TextEncoder();

describe('XXH64', () => {
  it('matches published vectors', () => {
    expect(xxh64(new Uint8Array(0))).toBe(0xef46db3751d8e999n);
    expect(xxh64(enc.encode('a'))).toBe(0xd24ec4f1a98c6e5bn);
    expect(xxh64(enc.encode('abc'))).toBe(0x44bc2cf5ad770999n);
    expect(xxh64(enc.encode('Nobody inspects the spammish repetition'))).toBe(0xfbcea83c8a378bf1n);
  });
  it('matches an independent BigInt implementation for every length 0..200 and with seeds', () => {
    const data = new Uint8Array(randomBytes(200));
    for (let n = 0; n <= 200; n++) expect([n, xxh64(data.subarray(0, n))]).toEqual([n, refXxh64(data.subarray(0, n))]);
    for (const seed of [1n, 0x9e3779b185ebca87n, M]) expect(xxh64(data, seed)).toBe(refXxh64(data, seed));
  });
  it('streams: any split of the input gives the same hash; digest() is 8 little-endian bytes', () => {
    const data = new Uint8Array(randomBytes(1000));
    const want = refXxh64(data);
    for (const cut of [1, 7, 31, 32, 33, 64, 999]) {
      const h = new Xxh64();
      for (let p = 0; p < data.length; p += cut) h.update(data.subarray(p, p + cut));
      expect(h.digestBigInt()).toBe(want);
    }
    const d = new Xxh64().update(data).digest();
    expect(new DataView(d.buffer).getBigUint64(0, true)).toBe(want);
  });
});

describe('tree hashes', () => {
  const data = new Uint8Array(randomBytes(3 * 1024 + 100));
  const sha1 = (...p: Uint8Array[]): Buffer => p.reduce((h, x) => h.update(x), createHash('sha1')).digest();
  it('lld: H(H(c0) || H(c1) || …); one chunk gives H(H(file)); no empty trailing chunk', () => {
    const t = new TreeHasher('sha1', 'sha1', 1024);
    t.update(data);
    const leaves = [0, 1, 2, 3].map((i) => sha1(data.subarray(i * 1024, (i + 1) * 1024)));
    expect(toHex(t.digest())).toBe(sha1(...leaves).toString('hex'));
    const one = new TreeHasher('sha1', 'sha1', 1 << 20);
    one.update(data);
    expect(toHex(one.digest())).toBe(sha1(sha1(data)).toString('hex'));
    const exact = new TreeHasher('sha1', 'sha1', 1024);
    exact.update(data.subarray(0, 2048));
    expect(toHex(exact.digest())).toBe(sha1(sha1(data.subarray(0, 1024)), sha1(data.subarray(1024, 2048))).toString('hex'));
  });
  it('gold tree: sha1 over md5 leaves; lld >= 15: truncated BLAKE3 leaves and root', () => {
    const g = new TreeHasher('md5', 'sha1', 1024);
    for (let p = 0; p < data.length; p += 100) g.update(data.subarray(p, p + 100));
    const md5 = (x: Uint8Array): Buffer => createHash('md5').update(x).digest();
    expect(toHex(g.digest())).toBe(sha1(...[0, 1, 2, 3].map((i) => md5(data.subarray(i * 1024, (i + 1) * 1024)))).toString('hex'));
    const b = new TreeHasher('blake3-20', 'blake3-20', 2048);
    b.update(data);
    const leaves = [blake3(data.subarray(0, 2048), { dkLen: 20 }), blake3(data.subarray(2048), { dkLen: 20 })];
    expect(toHex(b.digest())).toBe(toHex(blake3(new Uint8Array([...leaves[0]!, ...leaves[1]!]), { dkLen: 20 })));
  });
});

describe('plans', () => {
  it('rangeMinus cuts zero ranges out of a file range, clipped and in order', () => {
    expect(rangeMinus(10, 20, [])).toEqual([{ kind: 'file', off: 10, len: 20 }]);
    expect(
      rangeMinus(10, 20, [
        { offset: 25, size: 2 },
        { offset: 5, size: 7 },
        { offset: 28, size: 10 },
      ]),
    ).toEqual([
      { kind: 'zero', len: 2 },
      { kind: 'file', off: 12, len: 13 },
      { kind: 'zero', len: 2 },
      { kind: 'file', off: 27, len: 1 },
      { kind: 'zero', len: 2 },
    ]);
  });
  it('the file executor (small window) and the memory executor feed the same bytes', () => {
    const w = new Workdir();
    try {
      const data = new Uint8Array(randomBytes(300_000));
      writeFileSync(w.path('f'), data);
      const plan: Segment[] = [
        { kind: 'data', data: new Uint8Array([1, 2, 3]) },
        { kind: 'file', off: 5, len: 100_000 },
        { kind: 'zero', len: 70_000 },
        { kind: 'file', off: 0, len: 10 },
        ...rangeMinus(200_000, 100_000, [{ offset: 250_000, size: 36 }]),
      ];
      const a = createHasher('sha1');
      runPlan(plan, new MemorySource(data), a);
      const fd = openSync(w.path('f'), 'r');
      const b = createHasher('sha1');
      try {
        runPlan(plan, new FileSource(fd, data.length, 4096), b);
      } finally {
        closeSync(fd);
      }
      const flat = new Uint8Array([
        1,
        2,
        3,
        ...data.subarray(5, 100_005),
        ...new Uint8Array(70_000),
        ...data.subarray(0, 10),
        ...data.subarray(200_000, 250_000),
        ...new Uint8Array(36),
        ...data.subarray(250_036, 300_000),
      ]);
      const want = createHash('sha1').update(flat).digest('hex');
      expect(toHex(a.digest())).toBe(want);
      expect(toHex(b.digest())).toBe(want);
    } finally {
      w.cleanup();
    }
  });
  it('runPlanAsync (read-ahead for big ranges) feeds the same bytes as runPlan', async () => {
    const w = new Workdir();
    try {
      const data = new Uint8Array(randomBytes(9 * 1024 * 1024 + 123));
      writeFileSync(w.path('big'), data);
      const plan: Segment[] = [
        { kind: 'data', data: new Uint8Array([9]) },
        ...rangeMinus(17, data.length - 17, [{ offset: 5_000_000, size: 36 }]),
        { kind: 'file', off: 0, len: 5 },
      ];
      const a = createHasher('sha1');
      runPlan(plan, new MemorySource(data), a);
      const fd = openSync(w.path('big'), 'r');
      const b = createHasher('sha1');
      try {
        await runPlanAsync(plan, new FileSource(fd, data.length, 1 << 20), b);
        await expect(
          runPlanAsync([{ kind: 'file', off: 1, len: data.length }], new FileSource(fd, data.length), createHasher('md5')),
        ).rejects.toThrow(/outside/);
      } finally {
        closeSync(fd);
      }
      expect(toHex(b.digest())).toBe(toHex(a.digest()));
    } finally {
      w.cleanup();
    }
  });
  it('a range outside the file is a FormatError, not a short hash', () => {
    expect(() => runPlan([{ kind: 'file', off: 10, len: 100 }], new MemorySource(new Uint8Array(50)), createHasher('md5'))).toThrow(
      /outside the 50-byte file/,
    );
  });
});
