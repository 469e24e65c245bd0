/** Damaged PATCHED objects: every outcome is a result or an XspliceError (never a TypeError, a hang or a crash). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diffObjects } from '../../src/diff/index.js';
import { isXspliceError } from '../../src/errors.js';
import { pair } from './compile.js';

describe('diff on damaged objects', () => {
  it('survives 300 seeded byte mutations of PATCHED', async () => {
    const H = '#include "xen-mini.h"\n';
    const src = (k: number) =>
      H +
      `static int t[3] = {1,2,3};\nint f(int x) { BUG_ON(x == 2); return t[x % 3] + ${k}; }\nint g(const int *p) { int v; if (read_guarded(p, &v)) return -1; alternative("clac", "", 0x26b); return v; }\n`;
    const p = pair('hostile', src(1), src(2));
    const orig = new Uint8Array(readFileSync(p.orig));
    const good = new Uint8Array(readFileSync(p.patched));
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const outcomes = { ok: 0, refused: 0, malformed: 0 };
    for (let i = 0; i < 300; i++) {
      const b = good.slice();
      const n = 1 + rnd(8);
      for (let k = 0; k < n; k++) b[rnd(b.length)] = rnd(256);
      try {
        const r = await diffObjects({ orig: [{ path: 'h.o', bytes: orig }], patched: [{ path: 'h.o', bytes: b }] });
        if (r.ok) outcomes.ok++;
        else outcomes.refused++;
      } catch (e) {
        if (!isXspliceError(e)) throw new Error(`mutation ${i}: ${(e as Error).stack}`);
        expect(e.message).toMatch(/^h\.o: /);
        outcomes.malformed++;
      }
    }
    expect(outcomes.ok + outcomes.refused + outcomes.malformed).toBe(300);
    expect(outcomes.malformed).toBeGreaterThan(0);
  }, 120_000);
});
