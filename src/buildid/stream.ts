/**
 * A build-id algorithm is described as a *plan*: the exact byte stream the linker hashed, as a list
 * of segments (a range of the file, literal bytes, or a run of zeros). One executor feeds a plan to
 * a hasher, either from bytes in memory (views, no copies) or from an open file (a reused window
 * buffer, so a 64 MiB file costs one read pass and one hash pass, without a 64 MiB allocation).
 *
 * Small segments (section headers: 40 or 64 bytes each, 70 000 of them in a big object) are
 * coalesced into a staging buffer so the hasher sees few, large updates.
 */
import { read, readSync } from 'node:fs';
import { FormatError } from '../errors.js';
import type { Hasher } from './hash.js';

export type Segment = { kind: 'file'; off: number; len: number } | { kind: 'data'; data: Uint8Array } | { kind: 'zero'; len: number };

export interface Range {
  offset: number;
  size: number;
}

/** Where the bytes of a plan's file ranges come from. */
export interface ByteSource {
  readonly size: number;
  /** Calls `sink` with consecutive views covering [off, off+len). Views are valid only during the call. */
  each(off: number, len: number, sink: (view: Uint8Array) => void): void;
}

export class MemorySource implements ByteSource {
  constructor(readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  each(off: number, len: number, sink: (view: Uint8Array) => void): void {
    sink(this.bytes.subarray(off, off + len));
  }
}

/** Reads an open file through a reused window (default 1 MiB). */
export class FileSource implements ByteSource {
  private readonly win: Uint8Array;
  private wStart = 0;
  private wLen = 0;
  constructor(
    readonly fd: number,
    readonly size: number,
    windowSize = 1 << 20,
    readonly file?: string,
  ) {
    this.win = new Uint8Array(windowSize);
  }

  private fill(off: number): void {
    const want = Math.min(this.win.length, this.size - off);
    let got = 0;
    while (got < want) {
      const n = readSync(this.fd, this.win, got, want - got, off + got);
      if (n === 0) throw new FormatError('IO_SHORT_READ', 'file shrank while being read', { file: this.file, offset: off + got });
      got += n;
    }
    this.wStart = off;
    this.wLen = got;
  }

  each(off: number, len: number, sink: (view: Uint8Array) => void): void {
    let p = off;
    const end = off + len;
    while (p < end) {
      if (!(p >= this.wStart && p < this.wStart + this.wLen)) this.fill(p);
      const take = Math.min(end, this.wStart + this.wLen) - p;
      sink(this.win.subarray(p - this.wStart, p - this.wStart + take));
      p += take;
    }
  }

  private ahead?: [Uint8Array, Uint8Array];

  private readAt(buf: Uint8Array, off: number, len: number): Promise<number> {
    return new Promise((resolve, reject) => {
      read(this.fd, buf, 0, len, off, (err, n) => {
        if (err) reject(err);
        else if (n === 0 && len > 0)
          reject(new FormatError('IO_SHORT_READ', 'file shrank while being read', { file: this.file, offset: off }));
        else resolve(n);
      });
    });
  }

  /** Streams [off, off+len) to `sink` with one read always in flight ahead of the hashing. */
  async streamAsync(off: number, len: number, sink: (view: Uint8Array) => void): Promise<void> {
    const bufs = (this.ahead ??= [new Uint8Array(this.win.length), new Uint8Array(this.win.length)]);
    const end = off + len;
    let k = 0;
    let pos = off;
    let pending = this.readAt(bufs[0], pos, Math.min(this.win.length, end - pos));
    while (pos < end) {
      const n = await pending;
      const cur = bufs[k]!;
      pos += n;
      k ^= 1;
      if (pos < end) pending = this.readAt(bufs[k]!, pos, Math.min(this.win.length, end - pos));
      sink(cur.subarray(0, n));
    }
  }

  /** Reads [off, off+len) into `into` at `at` (for headers). */
  readInto(off: number, len: number, into: Uint8Array, at = off): void {
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd, into, at + got, len - got, off + got);
      if (n === 0) throw new FormatError('IO_SHORT_READ', 'file shrank while being read', { file: this.file, offset: off + got });
      got += n;
    }
  }
}

const STAGE = 64 * 1024;
const DIRECT = 16 * 1024;
const ZEROS = new Uint8Array(STAGE);

/** Coalesces small updates into a staging buffer; large views go to the hasher directly. */
class Feeder {
  private readonly stage = new Uint8Array(STAGE);
  private used = 0;
  constructor(private readonly hasher: Hasher) {}
  flush(): void {
    if (this.used > 0) {
      this.hasher.update(this.stage.subarray(0, this.used));
      this.used = 0;
    }
  }
  /** b[off, off+len): small runs are copied into the stage without making a view. */
  putRange(b: Uint8Array, off: number, len: number): void {
    if (len > 16) {
      this.put(b.subarray(off, off + len));
      return;
    }
    if (this.used + len > STAGE) this.flush();
    const st = this.stage;
    const u = this.used;
    for (let k = 0; k < len; k++) st[u + k] = b[off + k]!;
    this.used = u + len;
  }
  readonly put = (v: Uint8Array): void => {
    if (v.length >= DIRECT) {
      this.flush();
      this.hasher.update(v);
      return;
    }
    if (this.used + v.length > STAGE) this.flush();
    this.stage.set(v, this.used);
    this.used += v.length;
  };
  zeros(n: number): void {
    while (n > 0) {
      const take = Math.min(n, STAGE);
      this.put(ZEROS.subarray(0, take));
      n -= take;
    }
  }
}

function checkRange(s: { off: number; len: number }, src: ByteSource, file?: string): void {
  if (s.off < 0 || s.len < 0 || s.off + s.len > src.size) {
    throw new FormatError(
      'BUILDID_RANGE',
      `hashed range [0x${s.off.toString(16)}, +0x${s.len.toString(16)}) lies outside the ${src.size}-byte file`,
      { file, offset: s.off },
    );
  }
}

/**
 * runPlan's executor fed one segment at a time, for producers that would otherwise build a plan
 * array of tens of thousands of small segments. `finish()` after the last segment.
 */
export class PlanRunner {
  private readonly f: Feeder;
  constructor(
    private readonly src: ByteSource,
    hasher: Hasher,
    private readonly name?: string,
  ) {
    this.f = new Feeder(hasher);
  }
  data(d: Uint8Array): void {
    this.f.put(d);
  }
  /** Literal bytes d[off, off+len) (no view made for small runs). */
  dataRange(d: Uint8Array, off: number, len: number): void {
    this.f.putRange(d, off, len);
  }
  /** A range of the source; checked against its size like runPlan's file segments. */
  file(off: number, len: number): void {
    checkRange({ off, len }, this.src, this.name);
    if (len === 0) return;
    if (this.src instanceof MemorySource) this.f.putRange(this.src.bytes, off, len);
    else this.src.each(off, len, this.f.put);
  }
  zero(len: number): void {
    this.f.zeros(len);
  }
  finish(): void {
    this.f.flush();
  }
}

/** Feeds `plan` to `hasher`. Checks every file range against the source size. */
export function runPlan(plan: readonly Segment[], src: ByteSource, hasher: Hasher, file?: string): void {
  const r = new PlanRunner(src, hasher, file);
  for (const s of plan) {
    if (s.kind === 'data') r.data(s.data);
    else if (s.kind === 'zero') r.zero(s.len);
    else r.file(s.off, s.len);
  }
  r.finish();
}

/** Ranges at least this long are read ahead asynchronously by runPlanAsync. */
const ASYNC_MIN = 4 << 20;

/**
 * runPlan for a FileSource, with big file ranges read ahead on the libuv thread pool (two
 * buffers: the next chunk is read while the current one is hashed). Same bytes, same result.
 */
export async function runPlanAsync(plan: readonly Segment[], src: ByteSource, hasher: Hasher, file?: string): Promise<void> {
  if (!(src instanceof FileSource)) return runPlan(plan, src, hasher, file);
  const f = new Feeder(hasher);
  for (const s of plan) {
    if (s.kind === 'data') f.put(s.data);
    else if (s.kind === 'zero') f.zeros(s.len);
    else {
      checkRange(s, src, file);
      if (s.len >= ASYNC_MIN) {
        f.flush();
        await src.streamAsync(s.off, s.len, f.put);
      } else if (s.len > 0) src.each(s.off, s.len, f.put);
    }
  }
  f.flush();
}

/** Segments for the file range [off, off+len) with the given ranges reading as zero. */
export function rangeMinus(off: number, len: number, zeros: readonly Range[]): Segment[] {
  const end = off + len;
  const cuts = zeros.filter((z) => z.size > 0 && z.offset < end && z.offset + z.size > off).sort((a, b) => a.offset - b.offset);
  if (cuts.length === 0) return [{ kind: 'file', off, len }];
  const out: Segment[] = [];
  let p = off;
  for (const z of cuts) {
    const zs = Math.max(z.offset, p);
    const ze = Math.min(z.offset + z.size, end);
    if (ze <= p) continue;
    if (zs > p) out.push({ kind: 'file', off: p, len: zs - p });
    out.push({ kind: 'zero', len: ze - zs });
    p = ze;
  }
  if (p < end) out.push({ kind: 'file', off: p, len: end - p });
  return out;
}
