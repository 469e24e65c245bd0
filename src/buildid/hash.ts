/**
 * Incremental hashers behind one small interface, and the chunked "tree" hashes of gold and lld.
 *
 * node:crypto for sha1/md5 (OpenSSL, ~9x faster than pure JS); @noble/hashes only for BLAKE3,
 * which Node lacks (lld >= 15 computes md5/sha1 build-ids with truncated BLAKE3); XXH64 is ours.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Xxh64 } from './xxh64.js';

type Blake3 = typeof import('@noble/hashes/blake3.js').blake3;
let blake3Fn: Blake3 | undefined;
/** BLAKE3 is loaded on first use (only lld >= 15 ids need it): keeps the CLI's start-up lean. */
function blake3(): Blake3 {
  if (!blake3Fn) blake3Fn = (createRequire(import.meta.url)('@noble/hashes/blake3.js') as typeof import('@noble/hashes/blake3.js')).blake3;
  return blake3Fn;
}

export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

export type LeafHash = 'sha1' | 'md5' | 'xxh64' | 'blake3-16' | 'blake3-20';

export function createHasher(kind: LeafHash): Hasher {
  switch (kind) {
    case 'sha1':
    case 'md5': {
      const h = createHash(kind);
      return {
        update: (d) => void h.update(d),
        digest: () => new Uint8Array(h.digest()),
      };
    }
    case 'xxh64': {
      const h = new Xxh64(0n);
      return { update: (d) => void h.update(d), digest: () => h.digest() };
    }
    case 'blake3-16':
    case 'blake3-20': {
      const h = blake3().create({ dkLen: kind === 'blake3-16' ? 16 : 20 });
      return { update: (d) => void h.update(d), digest: () => h.digest() };
    }
  }
}

/** One-shot digest. */
export function digest(kind: LeafHash, ...parts: Uint8Array[]): Uint8Array {
  const h = createHasher(kind);
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * A tree hash over a byte stream: the stream is cut into `chunkSize` pieces, each hashed with
 * `leaf`, and the id is `root(leaf(c0) || leaf(c1) || …)`. lld: chunk 1 MiB, root = leaf.
 * gold --build-id=tree: chunk 2 MiB, leaf md5, root sha1. An empty stream has one empty chunk
 * for lld (never happens: an ELF file is never empty).
 */
export class TreeHasher implements Hasher {
  private cur: Hasher;
  private inChunk = 0;
  private readonly leaves: Uint8Array[] = [];

  constructor(
    private readonly leaf: LeafHash,
    private readonly root: LeafHash,
    private readonly chunkSize: number,
  ) {
    this.cur = createHasher(leaf);
  }

  update(data: Uint8Array): void {
    let p = 0;
    while (p < data.length) {
      const take = Math.min(this.chunkSize - this.inChunk, data.length - p);
      this.cur.update(p === 0 && take === data.length ? data : data.subarray(p, p + take));
      this.inChunk += take;
      p += take;
      if (this.inChunk === this.chunkSize) {
        this.leaves.push(this.cur.digest());
        this.cur = createHasher(this.leaf);
        this.inChunk = 0;
      }
    }
  }

  digest(): Uint8Array {
    if (this.inChunk > 0 || this.leaves.length === 0) this.leaves.push(this.cur.digest());
    const r = createHasher(this.root);
    for (const l of this.leaves) r.update(l);
    return r.digest();
  }
}
