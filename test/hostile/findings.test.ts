/**
 * Every finding of the hostile work, as a named regression test (the must-show set in
 * must-show.test.ts covers the issue's own reports: shared relocation and note blocks, /dev/zero,
 * endless stdin, the gzip bomb, FIFO/device outputs, non-UTF-8 names, /dev/full).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/xsplice.js';
import { XspliceError } from '../../src/errors.js';
import { readElf } from '../../src/elf/reader.js';
import { readBuildIdSync } from '../../src/buildid/read.js';
import { buildFixture, note, symbols, type RawSection } from '../helpers/malformed.js';
import { FUZZ_XEN_ID, runAllCommands } from './run-all.js';
import { sharedNotes } from './inputs.js';
import { mutatedValid } from './generators.js';

const dir = mkdtempSync(join(tmpdir(), 'xs-findings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** xen_extra_version in .text plus `extra` sections. */
function withText(extra: RawSection[]): Uint8Array {
  return buildFixture({
    class: 64,
    littleEndian: true,
    sections: [
      { name: '.text', type: 1, flags: 6n, addralign: 16n, data: new Uint8Array([0x90, 0x90, 0x90, 0x90, 0x90, 0xc3]) },
      {
        name: '.symtab',
        type: 2,
        link: 3,
        info: 2,
        entsize: 24n,
        addralign: 8n,
        data: symbols(64, true, [
          [0, 0n, 0n, 0, 0, 0],
          [0, 0n, 0n, 3, 0, 1],
          [1, 0n, 6n, 0x12, 0, 1],
        ]),
      },
      { name: '.strtab', type: 3, addralign: 1n, data: new Uint8Array([0, ...new TextEncoder().encode('xen_extra_version'), 0]) },
      ...extra,
    ],
  }).bytes;
}

describe('findings', () => {
  it('F1: 2,000 build-id note sections in one object: build says it once, not 2,000 times (stderr was unbounded)', async () => {
    const notes: RawSection[] = Array.from({ length: 2000 }, (_, i) => ({
      name: '.note.gnu.build-id',
      type: 7,
      flags: 2n,
      addralign: 4n,
      data: note(
        true,
        'GNU',
        3,
        Array.from({ length: 20 }, (_, k) => (i + k) & 0xff),
      ),
    }));
    const o = join(dir, 'many-notes.o');
    writeFileSync(o, withText(notes));
    const spec = join(dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ patches: [{ old: 'xen_extra_version', oldAddr: '0xffff82d040200000', oldSize: 16 }] }));
    const r = await cli([
      'build',
      o,
      '-o',
      join(dir, 'many-notes.livepatch'),
      '--xen',
      FUZZ_XEN_ID,
      '--xen-version',
      '4.17.5',
      '--spec',
      spec,
    ]);
    const lines = r.err.trimEnd().split('\n').filter(Boolean);
    expect(lines.filter((l) => l.includes('.note.gnu.build-id is replaced'))).toHaveLength(1);
    expect(lines.length).toBeLessThanOrEqual(52);
    expect([0, 1]).toContain(r.code);
  });

  it('F3: buildid --verify over 4,000 notes tried each note with each algorithm (quadratic) and listed them all in its error', () => {
    const bytes = sharedNotes(1, 4000);
    const t0 = performance.now();
    const r = readBuildIdSync({ bytes, name: 'n.o' }, { verify: true });
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/on the first 4 of 4000 build-id notes only/);
    expect(r.reason!.length).toBeLessThan(1200);
    expect(r.notes.join('\n').length).toBeLessThan(4000);
  });

  it('F4: 4,000 note headers on one block were each parsed by the reader: refused as overlapping (ELF_OVERLAP)', () => {
    const elf = readElf(sharedNotes(4000, 50), { file: 'n.o' });
    let err: unknown;
    try {
      elf.notes();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(XspliceError);
    expect(err).toMatchObject({ code: 'ELF_OVERLAP', exitCode: 2 });
    expect((err as Error).message).toMatch(
      /^n\.o: section \[5\] \.note\.gnu\.build-id, offset 0x[0-9a-f]+: note section shares file bytes with note section \[4\] \.note\.gnu\.build-id/,
    );
  });

  it('F6 (the fuzzer, on the code before this work, after 33 inputs): a symbol value of 2^62 built into a payload verify refuses (RELOC_OVERFLOW, FUNC_DISTANCE)', async () => {
    const bytes = mutatedValid([{ k: 'st_value', i: 2, v: 1n << 62n }]);
    const figs = await runAllCommands(bytes, dir); // throws a Finding if build wrote what verify refuses
    expect(figs.built).toBe(0);
    const o = join(dir, 'f6.o');
    writeFileSync(o, bytes);
    const spec = join(dir, 'f6.json');
    writeFileSync(spec, JSON.stringify({ patches: [{ old: 'do_domctl', new: 'f', oldAddr: '0xffff82d040200000', oldSize: 64 }] }));
    const r = await cli(['build', o, '-o', join(dir, 'f6.livepatch'), '--xen', FUZZ_XEN_ID, '--xen-version', '4.17.5', '--spec', spec]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /f6\.o: symbol f: symbol lies past the end of its section \.text \(expected value \+ size <= 0x10, found 0x4000000000000000 \+ 0x10\)/,
    );
  });

  it('F7 (the fuzzer, on the code before this work, after 25 inputs): 500 headers sharing a 50-entry .rela.text made a 5.7 MB view of a 40 KB object', async () => {
    const bytes = mutatedValid([], { rows: 50, repeat: { i: 2, times: 500 } });
    expect(bytes.length).toBeLessThan(48_000);
    const figs = await runAllCommands(bytes, dir);
    expect(figs.outputBytes).toBeLessThan(4 * bytes.length);
    const elf = readElf(bytes, { file: 'f7.o' });
    expect(() => elf.relocations()).toThrow(
      /f7\.o: section \[7\] \.rela\.text, offset 0x[0-9a-f]+: relocation section shares file bytes with relocation section \[2\] \.rela\.text/,
    );
  });

  it('F5: every command on a file with every section aliased to itself ends with the project error', async () => {
    const bytes = sharedNotes(300, 10);
    const figs = await runAllCommands(bytes, dir);
    expect(figs.commands).toBe(7);
    expect(figs.outputBytes).toBeLessThan(16 * bytes.length + 65536);
  });
});
