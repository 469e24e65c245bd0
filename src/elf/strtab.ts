/**
 * String-table builder for .strtab / .shstrtab: names are bytes, equal names are stored once and a
 * name that is a suffix of another (".text" of ".rela.text") shares its tail. A name containing
 * NUL is refused (it could not be read back). Offsets are fixed by `finish()`, and the result does
 * not depend on insertion order beyond the order of first appearance, so output is deterministic.
 */
import { XspliceError } from '../errors.js';

const utf8 = new TextEncoder();

export function nameBytes(name: string | Uint8Array): Uint8Array {
  return typeof name === 'string' ? utf8.encode(name) : name;
}

// windows-1252 as WHATWG decodes it maps each byte to one distinct code unit, so distinct byte
// strings give distinct keys.
const latin1 = new TextDecoder('latin1');
const key = (b: Uint8Array): string => latin1.decode(b);

export class StringTableBuilder {
  private readonly entries = new Map<string, { bytes: Uint8Array; offset: number }>();
  private data: Uint8Array | undefined;

  /** `what` names the table in errors (".strtab"). */
  constructor(readonly what: string) {}

  /** Registers a name; returns the key to look its offset up after `finish()`. The empty name is offset 0. */
  add(name: string | Uint8Array): string {
    if (this.data) throw new Error(`${this.what}: add() after finish()`);
    const bytes = nameBytes(name);
    if (bytes.includes(0)) {
      throw new XspliceError('ELF_NAME_NUL', `name contains a NUL byte and cannot be stored in ${this.what}`, {
        section: this.what, found: JSON.stringify(new TextDecoder().decode(bytes)),
      });
    }
    const k = key(bytes);
    if (bytes.length > 0 && !this.entries.has(k)) this.entries.set(k, { bytes, offset: -1 });
    return k;
  }

  /** Lays the table out; returns its bytes (leading NUL, every name NUL-terminated). */
  finish(): Uint8Array {
    if (this.data) return this.data;
    // Sort by reversed bytes, longest first among equal tails: a name that is a suffix of the one
    // placed just before it reuses that one's tail.
    const list = [...this.entries.values()];
    const rev = (b: Uint8Array, i: number) => b[b.length - 1 - i]!;
    list.sort((a, b) => {
      const n = Math.min(a.bytes.length, b.bytes.length);
      for (let i = 0; i < n; i++) {
        const d = rev(a.bytes, i) - rev(b.bytes, i);
        if (d !== 0) return d;
      }
      return b.bytes.length - a.bytes.length;
    });
    let size = 1;
    let prev: { bytes: Uint8Array; offset: number } | undefined;
    for (const e of list) {
      if (prev && isSuffix(e.bytes, prev.bytes)) {
        e.offset = prev.offset + prev.bytes.length - e.bytes.length;
      } else {
        e.offset = size;
        size += e.bytes.length + 1;
        prev = e;
      }
    }
    const out = new Uint8Array(size);
    for (const e of list) out.set(e.bytes, e.offset);
    this.data = out;
    return out;
  }

  /** Offset of a name registered with `add` (0 for the empty name). */
  offsetOf(k: string): number {
    if (!this.data) throw new Error(`${this.what}: offsetOf() before finish()`);
    if (k === '') return 0;
    const e = this.entries.get(k);
    if (!e) throw new Error(`${this.what}: name was not added`);
    return e.offset;
  }
}

function isSuffix(short: Uint8Array, long: Uint8Array): boolean {
  if (short.length > long.length) return false;
  const d = long.length - short.length;
  for (let i = 0; i < short.length; i++) if (short[i] !== long[d + i]) return false;
  return true;
}
