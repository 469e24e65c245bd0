/**
 * Encoding and decoding of `.livepatch.funcs` entries and of `livepatch_expectation_t`, driven
 * only by the row's layout table (abi.ts): no offset is typed here.
 *
 * Expectation (payload-format.md §1.3): byte 0 = enabled (bit 0) | len (bits 1–5) | rsv (bits 6–7),
 * bytes 1–31 = data.
 */
import { FormatError, UsageError } from '../errors.js';
import type { FieldLayout, PayloadAbi } from './abi-types.js';

export const EXPECT_SIZE = 32;
export const EXPECT_DATA_SIZE = 31;

export interface Expectation {
  enabled: boolean;
  /** Valid bytes in data (0–31). */
  len: number;
  /** The two reserved bits (must be 0 for Xen to accept). */
  rsv: number;
  /** 31 bytes (shorter input is zero-padded when encoding). */
  data: Uint8Array;
}

export interface FuncEntry {
  /** Value of the `name` pointer as stored (0 in a relocatable payload: set by a relocation). */
  name: bigint;
  newAddr: bigint;
  oldAddr: bigint;
  newSize: number;
  oldSize: number;
  /** Defaults to the row's payload version when encoding. */
  version?: number;
  /** Absent (or disabled) when the layout has no expectation block. */
  expect?: Expectation;
  /** decode only: byte offsets within the entry of non-zero bytes in must-be-zero scratch fields. */
  scratchNonZero?: number[];
}

export function encodeExpectation(e: Expectation): Uint8Array {
  if (!Number.isInteger(e.len) || e.len < 0 || e.len > EXPECT_DATA_SIZE) {
    throw new UsageError('EXPECT_LEN', `expectation length must be 0–${EXPECT_DATA_SIZE}`, { found: e.len });
  }
  if (!Number.isInteger(e.rsv) || e.rsv < 0 || e.rsv > 3)
    throw new UsageError('EXPECT_RSV', 'expectation rsv is a 2-bit field', { found: e.rsv });
  if (e.data.length > EXPECT_DATA_SIZE)
    throw new UsageError('EXPECT_LEN', `expectation data holds at most ${EXPECT_DATA_SIZE} bytes`, { found: e.data.length });
  const out = new Uint8Array(EXPECT_SIZE);
  out[0] = (e.enabled ? 1 : 0) | (e.len << 1) | (e.rsv << 6);
  out.set(e.data, 1);
  return out;
}

export function decodeExpectation(b: Uint8Array): Expectation {
  if (b.length < EXPECT_SIZE) throw new FormatError('EXPECT_SHORT', `expectation block needs ${EXPECT_SIZE} bytes`, { found: b.length });
  const b0 = b[0]!;
  return { enabled: (b0 & 1) === 1, len: (b0 >> 1) & 0x1f, rsv: b0 >> 6, data: b.slice(1, EXPECT_SIZE) };
}

function put(view: DataView, at: number, fl: FieldLayout, value: bigint | number, le: boolean, field: string): void {
  // Numbers into fields of up to 4 bytes (sizes, version, flags): no bigint on the way.
  if (typeof value === 'number' && fl.size <= 4 && Number.isInteger(value) && value >= 0 && value <= 2 ** (fl.size * 8) - 1) {
    const o = at + fl.offset;
    if (fl.size === 1) return view.setUint8(o, value);
    if (fl.size === 2) return view.setUint16(o, value, le);
    if (fl.size === 4) return view.setUint32(o, value, le);
  }
  const v = BigInt(value);
  const max = (1n << BigInt(fl.size * 8)) - 1n;
  if (v < 0n || v > max)
    throw new UsageError('FUNC_FIELD_RANGE', `${field} does not fit in ${fl.size} bytes`, { found: '0x' + v.toString(16) });
  const o = at + fl.offset;
  switch (fl.size) {
    case 1:
      view.setUint8(o, Number(v));
      break;
    case 2:
      view.setUint16(o, Number(v), le);
      break;
    case 4:
      view.setUint32(o, Number(v), le);
      break;
    case 8:
      view.setBigUint64(o, v, le);
      break;
    default: {
      for (let i = 0; i < fl.size; i++) {
        const byte = Number((v >> BigInt(8 * i)) & 0xffn);
        view.setUint8(o + (le ? i : fl.size - 1 - i), byte);
      }
    }
  }
}

function get(view: DataView, at: number, fl: FieldLayout, le: boolean): bigint {
  const o = at + fl.offset;
  switch (fl.size) {
    case 1:
      return BigInt(view.getUint8(o));
    case 2:
      return BigInt(view.getUint16(o, le));
    case 4:
      return BigInt(view.getUint32(o, le));
    case 8:
      return view.getBigUint64(o, le);
    default: {
      let v = 0n;
      for (let i = 0; i < fl.size; i++) v |= BigInt(view.getUint8(o + (le ? i : fl.size - 1 - i))) << BigInt(8 * i);
      return v;
    }
  }
}

/** Writes one entry into `out` at `at` (out must hold abi.funcEntry.size bytes there). Scratch bytes are zeroed. */
export function encodeFuncEntryInto(abi: PayloadAbi, entry: FuncEntry, littleEndian: boolean, out: Uint8Array, at: number): void {
  const L = abi.funcEntry;
  if (at < 0 || at + L.size > out.length) throw new RangeError(`funcs entry at ${at} does not fit in ${out.length} bytes`);
  out.fill(0, at, at + L.size);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const F = L.fields;
  put(view, at, F.name, entry.name, littleEndian, 'name');
  put(view, at, F.newAddr, entry.newAddr, littleEndian, 'new_addr');
  put(view, at, F.oldAddr, entry.oldAddr, littleEndian, 'old_addr');
  put(view, at, F.newSize, entry.newSize, littleEndian, 'new_size');
  put(view, at, F.oldSize, entry.oldSize, littleEndian, 'old_size');
  put(view, at, F.version, entry.version ?? L.version, littleEndian, 'version');
  if (entry.expect && entry.expect.enabled) {
    if (!F.expect) throw new UsageError('EXPECT_UNSUPPORTED', `payload ABI ${abi.id} has no expectation block (Xen 4.14+)`);
    out.set(encodeExpectation(entry.expect), at + F.expect.offset);
  } else if (entry.expect && F.expect) {
    out.set(encodeExpectation(entry.expect), at + F.expect.offset);
  }
}

/** One entry as bytes (abi.funcEntry.size long). */
export function encodeFuncEntry(abi: PayloadAbi, entry: FuncEntry, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(abi.funcEntry.size);
  encodeFuncEntryInto(abi, entry, littleEndian, out, 0);
  return out;
}

/** Decodes a whole section's worth of entries. The size must be a whole multiple of the entry size. */
export function decodeFuncEntries(abi: PayloadAbi, bytes: Uint8Array, littleEndian: boolean): FuncEntry[] {
  const L = abi.funcEntry;
  if (bytes.length % L.size !== 0) {
    throw new FormatError('FUNCS_SIZE', `${abi.sections.funcs} size is not a multiple of the ${L.size}-byte entry of ${abi.id}`, {
      section: abi.sections.funcs,
      expected: `a multiple of ${L.size}`,
      found: bytes.length,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: FuncEntry[] = [];
  const F = L.fields;
  for (let at = 0; at < bytes.length; at += L.size) {
    const e: FuncEntry = {
      name: get(view, at, F.name, littleEndian),
      newAddr: get(view, at, F.newAddr, littleEndian),
      oldAddr: get(view, at, F.oldAddr, littleEndian),
      newSize: Number(get(view, at, F.newSize, littleEndian)),
      oldSize: Number(get(view, at, F.oldSize, littleEndian)),
      version: Number(get(view, at, F.version, littleEndian)),
    };
    if (F.expect) e.expect = decodeExpectation(bytes.subarray(at + F.expect.offset, at + F.expect.offset + F.expect.size));
    const nz: number[] = [];
    for (const z of F.zeroed) for (let i = z.offset; i < z.offset + z.size; i++) if (bytes[at + i] !== 0) nz.push(i);
    e.scratchNonZero = nz;
    out.push(e);
  }
  return out;
}
