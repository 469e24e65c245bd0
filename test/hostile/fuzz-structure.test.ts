/**
 * A structure-aware fuzzer (fast-check): ELF files whose tables overlap, alias one another and
 * point at themselves (section headers naming the same bytes, links and infos at any index,
 * sizes past the file, entry sizes of 0/1/odd/huge, one header repeated up to 2,000 times), fed
 * to every command's library entry. The invariant, per input:
 *  - every command returns or throws the project's own error (XspliceError), nothing else;
 *  - the work is bounded by the input: what a command writes (the elf view, `buildid set`'s
 *    object, a built payload) is at most a small multiple of the input size, and all commands
 *    together finish well within a time proportional to it;
 *  - a payload `build` writes is accepted by `verify` against the same target.
 * The suite runs a short campaign (XSPLICE_FUZZ_RUNS, default 120 inputs, a few seconds);
 * `XSPLICE_FUZZ_RUNS=5000 npx vitest run test/hostile/fuzz-structure.test.ts` runs a long one, and
 * XSPLICE_FUZZ_REPORT=FILE writes its figures. Every finding is a named test in findings.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAllCommands, type CommandFigures } from './run-all.js';
import { anyInput } from './generators.js';

const RUNS = Number(process.env.XSPLICE_FUZZ_RUNS ?? 120);
const dir = mkdtempSync(join(tmpdir(), 'xs-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('structure-aware fuzzing of every command', () => {
  it(`${RUNS} crafted ELF files: only the project's errors, work bounded by the input, build agrees with verify`, async () => {
    const totals = { runs: 0, commands: 0, ok: 0, refused: 0, built: 0, maxRatio: 0, maxMs: 0, bytes: 0 };
    await fc.assert(
      fc.asyncProperty(anyInput, async ({ bytes }) => {
        const figs: CommandFigures = await runAllCommands(bytes, dir);
        totals.runs++;
        totals.bytes += bytes.length;
        totals.commands += figs.commands;
        totals.ok += figs.ok;
        totals.refused += figs.refused;
        totals.built += figs.built;
        totals.maxRatio = Math.max(totals.maxRatio, figs.outputBytes / (bytes.length + 65536));
        totals.maxMs = Math.max(totals.maxMs, figs.ms);
        // Bounded work: outputs within 16x the input (+64 KiB of headers), time within 8 s + 8 ms per KB
        // (generous for a loaded machine; a quadratic path on the 2,000-header shapes takes far longer).
        expect(figs.outputBytes).toBeLessThanOrEqual(16 * bytes.length + 65536);
        expect(figs.ms).toBeLessThan(8000 + bytes.length / 128);
      }),
      { numRuns: RUNS, seed: Number(process.env.XSPLICE_FUZZ_SEED ?? 14), endOnFailure: true },
    );
    const rss = process.resourceUsage().maxRSS / 1024;
    if (process.env.XSPLICE_FUZZ_REPORT)
      writeFileSync(process.env.XSPLICE_FUZZ_REPORT, JSON.stringify({ ...totals, peakRssMiB: Math.round(rss) }, null, 2));
    expect(totals.runs).toBe(RUNS);
    expect(totals.commands).toBeGreaterThan(RUNS * 6);
    // Some inputs do build: the build/verify agreement was exercised, not only refusals.
    if (RUNS >= 50) expect(totals.built).toBeGreaterThan(0);
  }, 600_000);
});
