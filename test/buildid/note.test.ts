/**
 * The GNU note codec against Xen's rules (xen_build_id_check + the live-patch callers), one test
 * per rule and in Xen's order, and the hex id parser.
 */
import { describe, expect, it } from 'vitest';
import { FormatError } from '../../src/errors.js';
import { buildIdNoteSize, encodeBuildIdNote, isHexId, parseBuildIdNote, parseHexId, toHex } from '../../src/buildid/note.js';

/** A small builder for (possibly malformed) notes that is not the encoder under test. */
function rawNote(
  f: { namesz: number; descsz: number; type: number; name?: number[]; body?: number[]; size?: number },
  le = true,
): Uint8Array {
  const out = new Uint8Array(f.size ?? 12 + (f.name?.length ?? 0) + (f.body?.length ?? 0));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, f.namesz, le);
  dv.setUint32(4, f.descsz, le);
  dv.setUint32(8, f.type, le);
  out.set(f.name ?? [], 12);
  out.set(f.body ?? [], 12 + (f.name?.length ?? 0));
  return out;
}
const GNU = [0x47, 0x4e, 0x55, 0];

describe('encodeBuildIdNote', () => {
  it('writes namesz 4, descsz, type 3, "GNU\\0", desc, padded to 4 (36 bytes for sha1, 32 for md5)', () => {
    const id = Uint8Array.from({ length: 20 }, (_, i) => i + 1);
    const n = encodeBuildIdNote(id);
    expect(n.length).toBe(36);
    expect(toHex(n.subarray(0, 16))).toBe('04000000140000000300000047' + '4e5500');
    expect(n.subarray(16)).toEqual(id);
    expect(buildIdNoteSize(16)).toBe(32);
    expect(encodeBuildIdNote(new Uint8Array(16)).length).toBe(32);
  });
  it('pads odd descriptor sizes and honours big-endian', () => {
    for (let len = 1; len <= 9; len++) {
      const n = encodeBuildIdNote(new Uint8Array(len).fill(0xaa), false);
      expect(n.length % 4).toBe(0);
      expect(n.length).toBe(16 + Math.ceil(len / 4) * 4);
      expect(new DataView(n.buffer).getUint32(4, false)).toBe(len);
      expect(parseBuildIdNote(n, false)).toEqual({ ok: true, id: new Uint8Array(len).fill(0xaa) });
    }
  });
  it('refuses an empty id', () => {
    expect(() => encodeBuildIdNote(new Uint8Array(0))).toThrow(FormatError);
  });
});

describe("parseBuildIdNote: Xen's checks, in Xen's order", () => {
  const good = encodeBuildIdNote(Uint8Array.from({ length: 20 }, (_, i) => i));
  it('accepts what GNU ld writes', () => {
    const r = parseBuildIdNote(good);
    expect(r.ok && toHex(r.id)).toBe('000102030405060708090a0b0c0d0e0f10111213');
  });
  it('sh_size <= 12 → EINVAL, checked first (even with a wrong type)', () => {
    for (const n of [0, 1, 12]) expect(parseBuildIdNote(new Uint8Array(n))).toMatchObject({ ok: false, errno: 'EINVAL' });
    expect(parseBuildIdNote(rawNote({ namesz: 4, descsz: 0, type: 1 }))).toMatchObject({ ok: false, errno: 'EINVAL' });
  });
  it('type != 3 → ENODATA, before any size check', () => {
    expect(parseBuildIdNote(rawNote({ namesz: 0, descsz: 999, type: 1, size: 16 }))).toMatchObject({ ok: false, errno: 'ENODATA' });
  });
  it('namesz + descsz overflowing 32 bits → EINVAL', () => {
    expect(parseBuildIdNote(rawNote({ namesz: 0xffffffff, descsz: 2, type: 3, size: 16 }))).toMatchObject({
      ok: false,
      errno: 'EINVAL',
      reason: expect.stringMatching(/overflow/),
    });
  });
  it('namesz < 4 → EINVAL', () => {
    expect(parseBuildIdNote(rawNote({ namesz: 3, descsz: 1, type: 3, name: [0x47, 0x4e, 0x55], body: [1] }))).toMatchObject({
      ok: false,
      errno: 'EINVAL',
    });
  });
  it('namesz + descsz > n_sz - 12 (unaligned) → EINVAL; exactly equal is accepted', () => {
    const fits = rawNote({ namesz: 4, descsz: 4, type: 3, name: GNU, body: [1, 2, 3, 4] });
    expect(parseBuildIdNote(fits)).toMatchObject({ ok: true });
    expect(parseBuildIdNote(fits.subarray(0, fits.length - 1))).toMatchObject({ ok: false, errno: 'EINVAL' });
  });
  it('owner not "GNU" → ENODATA; strncmp stops at the NUL, so "GNU\\0xyz" passes', () => {
    expect(parseBuildIdNote(rawNote({ namesz: 4, descsz: 4, type: 3, name: [0x47, 0x4e, 0x56, 0], body: [1, 2, 3, 4] }))).toMatchObject({
      ok: false,
      errno: 'ENODATA',
    });
    const long = rawNote({ namesz: 8, descsz: 4, type: 3, name: [...GNU, 0x78, 0x79, 0x7a, 0], body: [9, 9, 9, 9] });
    expect(parseBuildIdNote(long)).toEqual({ ok: true, id: new Uint8Array([9, 9, 9, 9]) });
  });
  it('descsz == 0 → EINVAL (the live-patch callers), after the owner check', () => {
    expect(parseBuildIdNote(rawNote({ namesz: 4, descsz: 0, type: 3, name: GNU }))).toMatchObject({
      ok: false,
      errno: 'EINVAL',
      reason: expect.stringMatching(/descsz is 0/),
    });
    expect(parseBuildIdNote(rawNote({ namesz: 4, descsz: 0, type: 3, name: [0, 0, 0, 0] }))).toMatchObject({ ok: false, errno: 'ENODATA' });
  });
  it('only the first note counts', () => {
    const two = new Uint8Array([...encodeBuildIdNote(new Uint8Array([1, 1, 1, 1])), ...encodeBuildIdNote(new Uint8Array([2, 2]))]);
    expect(parseBuildIdNote(two)).toEqual({ ok: true, id: new Uint8Array([1, 1, 1, 1]) });
    const badFirst = new Uint8Array([
      ...rawNote({ namesz: 4, descsz: 4, type: 1, name: GNU, body: [0, 0, 0, 0] }),
      ...encodeBuildIdNote(new Uint8Array([2])),
    ]);
    expect(parseBuildIdNote(badFirst)).toMatchObject({ ok: false, errno: 'ENODATA' });
  });
  it('a hostile descriptor past the section (name padding) is refused, never read out of bounds', () => {
    // namesz 5: Xen's unaligned check passes (5 + 3 <= 8) but the descriptor starts at 20.
    const n = rawNote({ namesz: 5, descsz: 3, type: 3, name: [...GNU, 0], body: [1, 2, 3], size: 20 });
    expect(parseBuildIdNote(n)).toMatchObject({ ok: false, errno: 'EINVAL' });
  });
  it('reads big-endian notes when told', () => {
    const be = encodeBuildIdNote(new Uint8Array([7, 7]), false);
    expect(parseBuildIdNote(be, false)).toEqual({ ok: true, id: new Uint8Array([7, 7]) });
    expect(parseBuildIdNote(be, true)).toMatchObject({ ok: false, errno: 'ENODATA' });
  });
});

describe('hex ids', () => {
  it('accepts optional 0x and drops ":" and "-" separators', () => {
    expect(toHex(parseHexId('151B373F'))).toBe('151b373f');
    expect(toHex(parseHexId('0xdeadbeef-cafe:babe'))).toBe('deadbeefcafebabe');
    expect(toHex(parseHexId('  0Xab:cd\n'))).toBe('abcd');
    expect(isHexId('ab-cd')).toBe(true);
  });
  it.each([
    ['', /no digits/],
    ['0x', /no digits/],
    ['abc', /odd number/],
    ['zz', /only hex digits/],
    ['12 34', /only hex digits/],
    ['::', /no digits/],
  ])('refuses %j with a FormatError naming the problem', (text, re) => {
    let err: unknown;
    try {
      parseHexId(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('BUILDID_HEX');
    expect((err as FormatError).message).toMatch(re);
    expect(isHexId(text)).toBe(false);
  });
});
