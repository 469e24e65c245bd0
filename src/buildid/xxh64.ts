/**
 * XXH64 (xxHash, 64-bit), written from the published algorithm description
 * (github.com/Cyan4973/xxHash doc/xxhash_spec.md). Used by lld's `--build-id=fast`.
 *
 * Arithmetic is on pairs of 32-bit halves (hi, lo) held in plain numbers: BigInt would be simpler
 * but is an order of magnitude slower, and lld hashes the whole output file.
 * Streaming: `new Xxh64(seed).update(a).update(b).digest()` equals `xxh64(concat(a, b))`.
 */

// The five primes, as [hi, lo].
const P1H = 0x9e3779b1,
  P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d,
  P2L = 0x27d4eb4f;
const P3H = 0x165667b1,
  P3L = 0x9e3779f9;
const P4H = 0x85ebca77,
  P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f,
  P5L = 0x165667c5;

// Scratch results of the 64-bit helpers (avoid allocating pairs).
let rh = 0,
  rl = 0;

/** (ah:al) * (bh:bl) mod 2^64 into rh:rl. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  // low 32x32 -> 64 via 16-bit limbs
  const a0 = al & 0xffff,
    a1 = al >>> 16,
    b0 = bl & 0xffff,
    b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  rl = ((mid & 0xffff) << 16) | (p00 & 0xffff);
  rl >>>= 0;
  const carry = (mid >>> 16) + (p01 >>> 16) + (p10 >>> 16) + p11;
  rh = (carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

/** (ah:al) + (bh:bl) mod 2^64 into rh:rl. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const l = al + bl;
  rl = l >>> 0;
  rh = (ah + bh + (l > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotl(ah:al, n) into rh:rl, 0 < n < 64. */
function rotl(ah: number, al: number, n: number): void {
  if (n === 32) {
    rh = al;
    rl = ah;
    return;
  }
  if (n > 32) {
    const t = ah;
    ah = al;
    al = t;
    n -= 32;
  }
  rh = ((ah << n) | (al >>> (32 - n))) >>> 0;
  rl = ((al << n) | (ah >>> (32 - n))) >>> 0;
}

/** acc = rotl(acc + input * P2, 31) * P1, into rh:rl. */
function round(acch: number, accl: number, ih: number, il: number): void {
  mul(ih, il, P2H, P2L);
  add(acch, accl, rh, rl);
  rotl(rh, rl, 31);
  mul(rh, rl, P1H, P1L);
}

/** acc = (acc ^ round(0, val)) * P1 + P4, into rh:rl. */
function mergeRound(acch: number, accl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  const xh = (acch ^ rh) >>> 0,
    xl = (accl ^ rl) >>> 0;
  mul(xh, xl, P1H, P1L);
  add(rh, rl, P4H, P4L);
}

export class Xxh64 {
  private v1h: number;
  private v1l: number;
  private v2h: number;
  private v2l: number;
  private v3h: number;
  private v3l: number;
  private v4h: number;
  private v4l: number;
  private readonly seedH: number;
  private readonly seedL: number;
  private total = 0;
  private readonly buf = new Uint8Array(32);
  private readonly bufView = new DataView(this.buf.buffer);
  private bufLen = 0;

  constructor(seed: bigint = 0n) {
    const s = BigInt.asUintN(64, seed);
    this.seedH = Number(s >> 32n);
    this.seedL = Number(s & 0xffffffffn);
    add(this.seedH, this.seedL, P1H, P1L);
    add(rh, rl, P2H, P2L);
    this.v1h = rh;
    this.v1l = rl;
    add(this.seedH, this.seedL, P2H, P2L);
    this.v2h = rh;
    this.v2l = rl;
    this.v3h = this.seedH;
    this.v3l = this.seedL;
    // seed - P1 = seed + (2^64 - P1)
    add(this.seedH, this.seedL, ~P1H >>> 0, (0x100000000 - P1L) >>> 0); // P1L != 0: no carry
    this.v4h = rh;
    this.v4l = rl;
  }

  private stripe(dv: DataView, o: number): void {
    round(this.v1h, this.v1l, dv.getUint32(o + 4, true), dv.getUint32(o, true));
    this.v1h = rh;
    this.v1l = rl;
    round(this.v2h, this.v2l, dv.getUint32(o + 12, true), dv.getUint32(o + 8, true));
    this.v2h = rh;
    this.v2l = rl;
    round(this.v3h, this.v3l, dv.getUint32(o + 20, true), dv.getUint32(o + 16, true));
    this.v3h = rh;
    this.v3l = rl;
    round(this.v4h, this.v4l, dv.getUint32(o + 28, true), dv.getUint32(o + 24, true));
    this.v4h = rh;
    this.v4l = rl;
  }

  update(data: Uint8Array): this {
    let p = 0;
    const n = data.length;
    this.total += n;
    if (this.bufLen > 0) {
      const take = Math.min(32 - this.bufLen, n);
      this.buf.set(data.subarray(0, take), this.bufLen);
      this.bufLen += take;
      p = take;
      if (this.bufLen < 32) return this;
      this.stripe(this.bufView, 0);
      this.bufLen = 0;
    }
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (; p + 32 <= n; p += 32) this.stripe(dv, p);
    if (p < n) {
      this.buf.set(data.subarray(p), 0);
      this.bufLen = n - p;
    }
    return this;
  }

  /** The 64-bit hash. */
  digestBigInt(): bigint {
    let hh: number, hl: number;
    if (this.total >= 32) {
      rotl(this.v1h, this.v1l, 1);
      let ah = rh,
        al = rl;
      rotl(this.v2h, this.v2l, 7);
      add(ah, al, rh, rl);
      ah = rh;
      al = rl;
      rotl(this.v3h, this.v3l, 12);
      add(ah, al, rh, rl);
      ah = rh;
      al = rl;
      rotl(this.v4h, this.v4l, 18);
      add(ah, al, rh, rl);
      ah = rh;
      al = rl;
      mergeRound(ah, al, this.v1h, this.v1l);
      ah = rh;
      al = rl;
      mergeRound(ah, al, this.v2h, this.v2l);
      ah = rh;
      al = rl;
      mergeRound(ah, al, this.v3h, this.v3l);
      ah = rh;
      al = rl;
      mergeRound(ah, al, this.v4h, this.v4l);
      hh = rh;
      hl = rl;
    } else {
      add(this.seedH, this.seedL, P5H, P5L);
      hh = rh;
      hl = rl;
    }
    // h += total length (mod 2^64)
    add(hh, hl, Math.floor(this.total / 0x100000000) >>> 0, this.total >>> 0);
    hh = rh;
    hl = rl;
    const b = this.buf,
      dv = this.bufView;
    let p = 0;
    const end = this.bufLen;
    for (; p + 8 <= end; p += 8) {
      round(0, 0, dv.getUint32(p + 4, true), dv.getUint32(p, true));
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      rotl(hh, hl, 27);
      mul(rh, rl, P1H, P1L);
      add(rh, rl, P4H, P4L);
      hh = rh;
      hl = rl;
    }
    if (p + 4 <= end) {
      mul(0, dv.getUint32(p, true), P1H, P1L);
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      rotl(hh, hl, 23);
      mul(rh, rl, P2H, P2L);
      add(rh, rl, P3H, P3L);
      hh = rh;
      hl = rl;
      p += 4;
    }
    for (; p < end; p++) {
      mul(0, b[p]!, P5H, P5L);
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      rotl(hh, hl, 11);
      mul(rh, rl, P1H, P1L);
      hh = rh;
      hl = rl;
    }
    // avalanche
    hl = (hl ^ (hh >>> 1)) >>> 0; // h ^= h >> 33
    mul(hh, hl, P2H, P2L);
    hh = rh;
    hl = rl;
    hl = (hl ^ (((hh << 3) | (hl >>> 29)) >>> 0)) >>> 0;
    hh = (hh ^ (hh >>> 29)) >>> 0; // h ^= h >> 29
    mul(hh, hl, P3H, P3L);
    hh = rh;
    hl = rl;
    hl = (hl ^ hh) >>> 0; // h ^= h >> 32
    return (BigInt(hh) << 32n) | BigInt(hl);
  }

  /** The hash as 8 little-endian bytes (how lld stores `--build-id=fast`). */
  digest(): Uint8Array {
    const v = this.digestBigInt();
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v, true);
    return out;
  }
}

export function xxh64(data: Uint8Array, seed: bigint = 0n): bigint {
  return new Xxh64(seed).update(data).digestBigInt();
}
