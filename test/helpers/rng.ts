/** mulberry32: the tests' one small deterministic PRNG (fuzz, property and mutation tests; values in [0, 1)). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The same generator as 32-bit unsigned integers. */
export function rngU32(seed: number): () => number {
  const next = rng(seed);
  return () => Math.floor(next() * 4294967296) >>> 0;
}
