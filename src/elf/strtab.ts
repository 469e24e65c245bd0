/**
 * String-table builder for .strtab / .shstrtab: names are bytes, equal names are stored once and a
 * name that is a suffix of another (".text" of ".rela.text") shares its tail. A name containing
 * NUL is refused (it could not be read back). Offsets are fixed by `finish()`, and the result does
 * not depend on insertion order beyond the order of first appearance, so output is deterministic.
 *
 * Each name is kept as its key: a string with one code unit per byte (latin1). An ASCII string
 * is its own key (no encoding on the way); other strings are UTF-8 encoded first. Keys order like
 * the bytes they stand for, so the layout is computed on the keys and written byte by byte.
 */
import { XspliceError } from '../errors.js';

const utf8 = new TextEncoder();

export function nameBytes(name: string | Uint8Array): Uint8Array {
  return typeof name === 'string' ? utf8.encode(name) : name;
}

/** True when every code unit of `s` is 0x01..0x7f (so its UTF-8 bytes are its code units). */
export function isAsciiName(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) return false;
  }
  return true;
}

/**
 * The name to give a model built from a read section or symbol: its text when that is ASCII (the
 * same bytes, and no encoding or decoding later), else its bytes (exactly as stored).
 */
export function modelName(x: { name: string; nameBytes: Uint8Array }): string | Uint8Array {
  return isAsciiName(x.name) ? x.name : x.nameBytes;
}

/** latin1 text of some bytes: one code unit per byte, so distinct byte strings give distinct keys. */
function keyOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

/** Orders keys by their bytes read backwards; among equal tails the longer key comes first. */
function byReversedBytes(a: string, b: string): number {
  let i = a.length - 1;
  let j = b.length - 1;
  while (i >= 0 && j >= 0) {
    const d = a.charCodeAt(i) - b.charCodeAt(j);
    if (d !== 0) return d;
    i--;
    j--;
  }
  return b.length - a.length;
}

/** Entries a chunked sort can tell apart (the index shares a float64 with a 36-bit chunk). */
const CHUNK_SORT_MAX = 1 << 17;

/**
 * Four code units from the end of `k`, starting `depth` units in, as one number (9 bits each; a
 * position past the start of the key reads 256, above every byte, so a key whose tail is another
 * key's whole text sorts first).
 */
function chunkAt(k: string, depth: number): number {
  let v = 0;
  for (let j = 0; j < 4; j++) {
    const p = k.length - 1 - depth - j;
    v = v * 512 + (p >= 0 ? k.charCodeAt(p) : 256);
  }
  return v;
}

/**
 * Sorts idx[lo, hi) by byReversedBytes, the keys being equal in their last `depth` units: an MSD
 * radix sort four units at a time, each step a native numeric sort of chunk * 2^17 + index.
 * Small ranges use the comparator. Same order as `keys.sort(byReversedBytes)`, without most of
 * its comparator calls.
 */
function sortRange(keys: string[], idx: Uint32Array, tmp: Float64Array, lo: number, hi: number, depth: number): void {
  if (hi - lo < 2) return;
  if (hi - lo <= 12) {
    for (let i = lo + 1; i < hi; i++) {
      const v = idx[i]!;
      let j = i - 1;
      while (j >= lo && byReversedBytes(keys[idx[j]!]!, keys[v]!) > 0) {
        idx[j + 1] = idx[j]!;
        j--;
      }
      idx[j + 1] = v;
    }
    return;
  }
  for (let i = lo; i < hi; i++) tmp[i] = chunkAt(keys[idx[i]!]!, depth) * CHUNK_SORT_MAX + idx[i]!;
  tmp.subarray(lo, hi).sort();
  for (let i = lo; i < hi; i++) idx[i] = tmp[i]! % CHUNK_SORT_MAX;
  // Runs of one chunk share four more units (distinct keys never end inside a shared chunk).
  let start = lo;
  let run = Math.floor(tmp[lo]! / CHUNK_SORT_MAX);
  for (let i = lo + 1; i <= hi; i++) {
    const c = i < hi ? Math.floor(tmp[i]! / CHUNK_SORT_MAX) : -1;
    if (c !== run) {
      if (i - start > 1) sortRange(keys, idx, tmp, start, i, depth + 4);
      start = i;
      run = c;
    }
  }
}

/** Indices of `keys` in byReversedBytes order. */
function sortByReversedBytes(keys: string[]): Uint32Array {
  const n = keys.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  if (n >= CHUNK_SORT_MAX) idx.sort((x, y) => byReversedBytes(keys[x]!, keys[y]!));
  else sortRange(keys, idx, new Float64Array(n), 0, n, 0);
  return idx;
}

export class StringTableBuilder {
  /** Key → index into `keys` (first appearance order). */
  private readonly index = new Map<string, number>();
  private readonly keys: string[] = [];
  private offsets: Float64Array | undefined;
  private data: Uint8Array | undefined;

  /** `what` names the table in errors (".strtab"). */
  constructor(readonly what: string) {}

  /** Registers a name; returns the key to look its offset up after `finish()`. The empty name is offset 0. */
  add(name: string | Uint8Array): string {
    if (this.data) throw new Error(`${this.what}: add() after finish()`);
    let k: string;
    if (typeof name === 'string' && isAsciiName(name)) {
      k = name;
    } else {
      const bytes = nameBytes(name);
      if (bytes.includes(0)) {
        throw new XspliceError('ELF_NAME_NUL', `name contains a NUL byte and cannot be stored in ${this.what}`, {
          section: this.what,
          found: JSON.stringify(new TextDecoder().decode(bytes)),
        });
      }
      k = keyOf(bytes);
    }
    if (k.length > 0 && !this.index.has(k)) {
      this.index.set(k, this.keys.length);
      this.keys.push(k);
    }
    return k;
  }

  /** Lays the table out; returns its bytes (leading NUL, every name NUL-terminated). */
  finish(): Uint8Array {
    if (this.data) return this.data;
    // Sort by reversed bytes, longest first among equal tails: a name that is a suffix of the one
    // placed just before it reuses that one's tail.
    const keys = this.keys;
    const order = sortByReversedBytes(keys);
    const offsets = new Float64Array(keys.length);
    const owners: number[] = [];
    let size = 1;
    let prev = '';
    let prevOff = 0;
    for (let j = 0; j < order.length; j++) {
      const i = order[j]!;
      const k = keys[i]!;
      if (prev.length >= k.length && prev.endsWith(k)) {
        offsets[i] = prevOff + prev.length - k.length;
      } else {
        offsets[i] = size;
        owners.push(i);
        prev = k;
        prevOff = size;
        size += k.length + 1;
      }
    }
    const out = new Uint8Array(size);
    const buf = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    // Keys are latin1: one byte per code unit.
    for (const i of owners) buf.write(keys[i]!, offsets[i]!, 'latin1');
    this.offsets = offsets;
    this.data = out;
    return out;
  }

  /** Offset of a name registered with `add` (0 for the empty name). */
  offsetOf(k: string): number {
    if (!this.offsets) throw new Error(`${this.what}: offsetOf() before finish()`);
    if (k === '') return 0;
    const i = this.index.get(k);
    if (i === undefined) throw new Error(`${this.what}: name was not added`);
    return this.offsets[i]!;
  }
}
