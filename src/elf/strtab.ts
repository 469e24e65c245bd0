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

export class StringTableBuilder {
  /** Key → offset (-1 until `finish()`). */
  private readonly entries = new Map<string, number>();
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
          section: this.what, found: JSON.stringify(new TextDecoder().decode(bytes)),
        });
      }
      k = keyOf(bytes);
    }
    if (k.length > 0 && !this.entries.has(k)) this.entries.set(k, -1);
    return k;
  }

  /** Lays the table out; returns its bytes (leading NUL, every name NUL-terminated). */
  finish(): Uint8Array {
    if (this.data) return this.data;
    // Sort by reversed bytes, longest first among equal tails: a name that is a suffix of the one
    // placed just before it reuses that one's tail.
    const list = [...this.entries.keys()];
    list.sort(byReversedBytes);
    let size = 1;
    let prev = '';
    let prevOff = 0;
    const offsets = this.entries;
    for (const k of list) {
      if (prev.length >= k.length && prev.endsWith(k)) {
        offsets.set(k, prevOff + prev.length - k.length);
      } else {
        offsets.set(k, size);
        prev = k;
        prevOff = size;
        size += k.length + 1;
      }
    }
    const out = new Uint8Array(size);
    for (const k of list) {
      const o = offsets.get(k)!;
      for (let i = 0; i < k.length; i++) out[o + i] = k.charCodeAt(i);
    }
    this.data = out;
    return out;
  }

  /** Offset of a name registered with `add` (0 for the empty name). */
  offsetOf(k: string): number {
    if (!this.data) throw new Error(`${this.what}: offsetOf() before finish()`);
    if (k === '') return 0;
    const o = this.entries.get(k);
    if (o === undefined) throw new Error(`${this.what}: name was not added`);
    return o;
  }
}
