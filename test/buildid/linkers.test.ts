/**
 * The real linkers are the oracle: every case below is linked here with GNU ld, gold, lld 14 or
 * lld 16, and the id the linker stored must be recomputed by the algorithm its family uses. A
 * one-byte change in a hashed region must then make verification fail. No digest is hard-coded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { readElf } from '../../src/elf/reader.js';
import { computeElfAlgorithm, findBuildIdNotes, readBuildId, toHex, type BuildIdResult } from '../../src/buildid/index.js';
import { readElfMetadata } from '../../src/buildid/sparse.js';
import { FileSource } from '../../src/buildid/stream.js';
import { closeSync, openSync, statSync } from 'node:fs';
import { missing } from '../helpers/debian.js';
import { SOURCES, Workdir, blobAsm, have, manySectionsAsm, PPC_ASM, S390X_ASM } from './toolchain.js';
import { runCli, type CliRun } from '../helpers/cli.js';

const w = new Workdir();
afterAll(() => w.cleanup());

function readelfId(path: string): string {
  const m = /Build ID: ([0-9a-f]+)/.exec(w.run('readelf', '-n', path));
  return m ? m[1]! : '';
}

async function verify(path: string): Promise<BuildIdResult> {
  return readBuildId({ path }, { verify: true });
}

/** Flips one byte of the named section's contents (a region every algorithm hashes). */
function mutate(path: string, section: string, out: string, at = 0): string {
  const bytes = w.read(path.slice(w.dir.length + 1));
  const elf = readElf(bytes);
  const s = elf.sectionByName(section);
  if (!s || s.size === 0n) throw new Error(`${path} has no ${section}`);
  const copy = bytes.slice();
  copy[s.offset + at]! ^= 0x01;
  writeFileSync(out, copy);
  return out;
}

const cli = (...argv: string[]): Promise<CliRun> => runCli(argv);

/** The metadata-only read (CLI fast path) sees the same sections, notes and id as the full read. */
function expectMetadataReadAgrees(path: string): void {
  const full = readElf(w.read(path.slice(w.dir.length + 1)));
  const fd = openSync(path, 'r');
  try {
    const src = new FileSource(fd, statSync(path).size);
    const meta = readElfMetadata(src, path);
    expect(meta.header.shnum).toBe(full.header.shnum);
    expect(meta.header.phoff).toBe(full.header.phoff);
    expect(meta.sections.map((s) => [s.index, s.name, s.type, s.offset, s.size])).toEqual(
      full.sections.map((s) => [s.index, s.name, s.type, s.offset, s.size]),
    );
    expect(findBuildIdNotes(meta)).toEqual(findBuildIdNotes(full));
    const note = findBuildIdNotes(full)[0]!;
    const algo = note.id.length === 20 ? 'gnu-ld-sha1' : 'gnu-ld-md5';
    expect(toHex(computeElfAlgorithm(meta, algo, note, src))).toBe(toHex(computeElfAlgorithm(full, algo, note)));
  } finally {
    closeSync(fd);
  }
}

/** Asserts the stored id recomputes with `algo`, and that a changed hashed byte breaks it. */
async function expectRecomputes(path: string, algo: string, mutateSection = '.text'): Promise<BuildIdResult> {
  const r = await verify(path);
  expect({ verified: r.verified, algorithm: r.algorithm, reason: r.reason }).toEqual({
    verified: true,
    algorithm: algo,
    reason: undefined,
  });
  expect(r.buildId).toBe(readelfId(path));
  const bad = mutate(path, mutateSection, path + '.mut');
  const rb = await verify(bad);
  expect(rb.verified).toBe(false);
  expect(rb.buildId).toBe(r.buildId);
  return r;
}

for (const tool of Object.keys(SOURCES) as (keyof typeof SOURCES)[]) w.write(tool, SOURCES[tool]);

describe.skipIf(missing('gcc and GNU ld', have('gcc') && have('ld') && have('readelf')))('GNU ld (BFD) ELF: sha1 and md5', () => {
  beforeAll(() => {
    w.run('gcc', '-O1', '-c', 'a.c', 'b.c', 'fs.c');
    w.run('g++', '-O1', '-c', 'g.cc', 'h.cc');
    w.run('g++', '-O1', '-g', '-c', 'g.cc', '-o', 'gg.o');
    w.run('g++', '-O1', '-g', '-c', 'h.cc', '-o', 'hg.o');
    w.run('gcc', '-m32', '-O1', '-c', 'fs.c', '-o', 'fs32.o');
  });

  for (const algo of ['sha1', 'md5'] as const) {
    const A = `gnu-ld-${algo}`;
    const bid = `--build-id=${algo}`;
    it(`ld -r: plain (${algo})`, async () => {
      w.run('ld', '-r', bid, 'a.o', 'b.o', '-o', `r-${algo}.o`);
      await expectRecomputes(w.path(`r-${algo}.o`), A);
    });
    it(`ld -r: COMDAT groups, with and without -g (${algo})`, async () => {
      w.run('ld', '-r', bid, 'g.o', 'h.o', '-o', `rg-${algo}.o`);
      w.run('ld', '-r', bid, 'gg.o', 'hg.o', '-o', `rgg-${algo}.o`);
      expect(readElf(w.read(`rg-${algo}.o`)).groups().length).toBeGreaterThan(0);
      await expectRecomputes(w.path(`rg-${algo}.o`), A);
      await expectRecomputes(w.path(`rgg-${algo}.o`), A);
    });
    it(`PIE executable with -g (${algo})`, async () => {
      w.run('gcc', '-g', `-Wl,${bid}`, 'a.c', 'b.c', '-o', `pie-${algo}`);
      await expectRecomputes(w.path(`pie-${algo}`), A);
    });
    it(`shared object (${algo})`, async () => {
      w.run('g++', '-shared', '-fPIC', `-Wl,${bid}`, 'g.cc', '-o', `libg-${algo}.so`);
      await expectRecomputes(w.path(`libg-${algo}.so`), A);
    });
    it(`static executable, 64- and 32-bit (${algo})`, async () => {
      w.run('gcc', '-static', `-Wl,${bid}`, 'a.c', 'b.c', '-o', `static-${algo}`);
      await expectRecomputes(w.path(`static-${algo}`), A);
      w.run('gcc', '-m32', '-static', `-Wl,${bid}`, 'a.c', 'b.c', '-o', `static32-${algo}`);
      await expectRecomputes(w.path(`static32-${algo}`), A);
      expectMetadataReadAgrees(w.path(`static32-${algo}`));
    });
    it(`-m32 executable, and as/ld -m elf_i386 (${algo})`, async () => {
      w.run('gcc', '-m32', `-Wl,${bid}`, 'a.c', 'b.c', '-o', `m32-${algo}`);
      await expectRecomputes(w.path(`m32-${algo}`), A);
      w.run('ld', '-m', 'elf_i386', bid, 'fs32.o', '-o', `fs32-${algo}`);
      const r = await expectRecomputes(w.path(`fs32-${algo}`), A);
      expect(r.elf!.header.class).toBe(32);
    });
    it(`--compress-debug-sections=zlib at link (${algo})`, async () => {
      w.run('gcc', '-g', `-Wl,${bid},--compress-debug-sections=zlib`, 'a.c', 'b.c', '-o', `z-${algo}`);
      const elf = readElf(w.read(`z-${algo}`));
      expect(elf.sections.some((s) => s.name.startsWith('.debug_') && (s.flags & 0x800n) !== 0n)).toBe(true);
      await expectRecomputes(w.path(`z-${algo}`), A, '.debug_info');
    });
    it(`--package-metadata: the FDO note reads as zero too (${algo})`, async () => {
      w.run('gcc', `-Wl,${bid}`, '-Wl,--package-metadata={"type":"deb"}', 'a.c', 'b.c', '-o', `pm-${algo}`);
      expect(
        readElf(w.read(`pm-${algo}`))
          .notes()
          .some((n) => n.name === 'FDO'),
      ).toBe(true);
      await expectRecomputes(w.path(`pm-${algo}`), A);
      expectMetadataReadAgrees(w.path(`pm-${algo}`));
    });
  }

  it('big-endian: s390x ELF64 executable and ld -r (sha1, md5)', async (ctx) => {
    if (missing('s390x-linux-gnu-as/ld', have('s390x-linux-gnu-as') && have('s390x-linux-gnu-ld'))) return ctx.skip();
    w.write('s390.s', S390X_ASM);
    w.run('s390x-linux-gnu-as', 's390.s', '-o', 's390.o');
    for (const algo of ['sha1', 'md5'] as const) {
      w.run('s390x-linux-gnu-ld', `--build-id=${algo}`, 's390.o', '-o', `s390-${algo}`);
      const r = await expectRecomputes(w.path(`s390-${algo}`), `gnu-ld-${algo}`);
      expect(r.elf!.header.littleEndian).toBe(false);
      expectMetadataReadAgrees(w.path(`s390-${algo}`));
      w.run('s390x-linux-gnu-ld', '-r', `--build-id=${algo}`, 's390.o', '-o', `s390r-${algo}.o`);
      await expectRecomputes(w.path(`s390r-${algo}.o`), `gnu-ld-${algo}`);
    }
  });

  it('big-endian ELF32: powerpc executable (sha1, md5)', async (ctx) => {
    if (missing('powerpc-linux-gnu-as/ld', have('powerpc-linux-gnu-as') && have('powerpc-linux-gnu-ld'))) return ctx.skip();
    w.write('ppc.s', PPC_ASM);
    w.run('powerpc-linux-gnu-as', 'ppc.s', '-o', 'ppc.o');
    for (const algo of ['sha1', 'md5'] as const) {
      w.run('powerpc-linux-gnu-ld', `--build-id=${algo}`, 'ppc.o', '-o', `ppc-${algo}`);
      const r = await expectRecomputes(w.path(`ppc-${algo}`), `gnu-ld-${algo}`);
      expect(r.elf!.header.class).toBe(32);
      expectMetadataReadAgrees(w.path(`ppc-${algo}`));
      expect(r.elf!.header.littleEndian).toBe(false);
    }
  });

  it('70 009 sections (extended numbering, .symtab_shndx excluded)', async () => {
    w.write('many.s', manySectionsAsm(70_000));
    w.run('as', 'many.s', '-o', 'many.o');
    w.run('ld', '-r', '--build-id=sha1', 'many.o', '-o', 'many-r.o');
    const elf = readElf(w.read('many-r.o'));
    expect(elf.header.rawShnum).toBe(0);
    expect(elf.sections.length).toBeGreaterThan(0xff00);
    expect(elf.sections.some((s) => s.name === '.symtab_shndx')).toBe(true);
    await expectRecomputes(w.path('many-r.o'), 'gnu-ld-sha1');
    expectMetadataReadAgrees(w.path('many-r.o'));
  }, 300_000);

  it('bytes GNU ld does not hash: .symtab, .strtab and .shstrtab contents, padding; the note itself', async () => {
    w.run('gcc', '-g', '-Wl,--build-id=sha1', 'a.c', 'b.c', '-o', 'cov');
    for (const sec of ['.symtab', '.strtab', '.shstrtab']) {
      const r = await verify(mutate(w.path('cov'), sec, w.path(`cov${sec}`), 1));
      expect([sec, r.verified]).toEqual([sec, true]);
    }
    for (const sec of ['.dynsym', '.dynstr', '.eh_frame', '.comment', '.debug_info', '.rela.dyn']) {
      const r = await verify(mutate(w.path('cov'), sec, w.path(`cov${sec}`), 1));
      expect([sec, r.verified]).toEqual([sec, false]);
    }
  });

  it('ld -r of inputs that carry ids: finds the note ld made (not #0, the stale one readelf shows)', async () => {
    w.run('ld', '-r', '--build-id=sha1', 'a.o', '-o', 'ida.o');
    w.run('ld', '-r', '--build-id=sha1', 'b.o', '-o', 'idb.o');
    w.run('ld', '-r', '--build-id=sha1', 'ida.o', 'idb.o', '-o', 'stale.o');
    const notes = findBuildIdNotes(readElf(w.read('stale.o')));
    expect(notes.length).toBe(3);
    const r = await verify(w.path('stale.o'));
    expect(r.verified).toBe(true);
    expect(r.algorithm).toBe('gnu-ld-sha1');
    expect(r.buildId).toBe(toHex(notes[1]!.id));
    expect(readelfId(w.path('stale.o'))).toBe(toHex(notes[0]!.id));
    expect(toHex(notes[0]!.id)).toBe(readelfId(w.path('ida.o')));
    expect(r.notes.join('\n')).toMatch(/note #1 .*stale/);
  });

  it('bare --build-id is sha1; 0xHEX and uuid are not hashes', async () => {
    w.run('ld', '-r', '--build-id', 'a.o', '-o', 'bare.o');
    await expectRecomputes(w.path('bare.o'), 'gnu-ld-sha1');
    w.run('ld', '-r', '--build-id=0xdeadbeef-cafe:ba', 'a.o', '-o', 'hex.o');
    const h = await verify(w.path('hex.o'));
    expect(h.buildId).toBe('deadbeefcafeba');
    expect(h.verified).toBeNull();
    expect(h.reason).toMatch(/0xHEX/);
    w.run('ld', '-r', '--build-id=uuid', 'a.o', '-o', 'uuid.o');
    const u = await verify(w.path('uuid.o'));
    expect(u.bytes.length).toBe(16);
    expect(u.verified).toBe(false);
  });

  it('CLI: --verify exits 0 on the linker output and 1 after a one-byte change; --json names the algorithm', async () => {
    w.run('ld', '-r', '--build-id=md5', 'a.o', 'b.o', '-o', 'cli.o');
    const ok = await cli('buildid', '--verify', '--json', w.path('cli.o'));
    expect(ok.code).toBe(0);
    const doc = JSON.parse(ok.out) as { buildId: string; algorithm: string; verified: boolean; source: string }[];
    expect(doc[0]).toMatchObject({ buildId: readelfId(w.path('cli.o')), algorithm: 'gnu-ld-md5', verified: true, source: 'elf' });
    const bad = await cli('buildid', '--verify', mutate(w.path('cli.o'), '.text', w.path('cli-bad.o')));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/does not verify/);
    const plain = await cli('buildid', w.path('cli.o'));
    expect(plain.out).toBe(`${readelfId(w.path('cli.o'))}  ${w.path('cli.o')}\n`);
  });
});

describe.skipIf(missing('ld.gold', have('ld.gold') && have('gcc')))('gold: whole-file sha1/md5 and tree', () => {
  beforeAll(() => {
    w.run('gcc', '-O1', '-c', 'fs.c', '-o', 'gfs.o');
    writeFileSync(w.path('blob35.bin'), randomBytes(3_500_000));
    w.write('gblob.s', blobAsm(w.path('blob35.bin')));
    w.run('as', 'gblob.s', '-o', 'gblob.o');
  });
  for (const algo of ['sha1', 'md5'] as const) {
    it(`executable, -r and gcc -fuse-ld=gold PIE (${algo})`, async () => {
      w.run('ld.gold', `--build-id=${algo}`, 'gfs.o', '-o', `gold-${algo}`);
      await expectRecomputes(w.path(`gold-${algo}`), `gold-${algo}`);
      w.run('ld.gold', '-r', `--build-id=${algo}`, 'gfs.o', '-o', `goldr-${algo}.o`);
      await expectRecomputes(w.path(`goldr-${algo}.o`), `gold-${algo}`);
      w.run('gcc', '-fuse-ld=gold', `-Wl,--build-id=${algo}`, 'a.c', 'b.c', '-o', `goldpie-${algo}`);
      await expectRecomputes(w.path(`goldpie-${algo}`), `gold-${algo}`);
    });
  }
  it('--build-id=tree: plain sha1 below the 40 MiB threshold; the md5-chunk tree above it', async () => {
    w.run('ld.gold', '--build-id=tree', 'gblob.o', '-o', 'gtree-small');
    await expectRecomputes(w.path('gtree-small'), 'gold-sha1', '.data');
    w.run(
      'ld.gold',
      '--build-id=tree',
      '--build-id-min-file-size-for-treehash=0',
      '--build-id-chunk-size-for-treehash=1048576',
      'gblob.o',
      '-o',
      'gtree',
    );
    const elf = readElf(w.read('gtree'));
    const note = findBuildIdNotes(elf)[0]!;
    expect(toHex(computeElfAlgorithm(elf, 'gold-tree', note, undefined, { minFileSize: 0, chunkSize: 1 << 20 }))).toBe(toHex(note.id));
    expect(toHex(computeElfAlgorithm(elf, 'gold-sha1', note))).not.toBe(toHex(note.id));
    // With the default options the file is below 40 MiB, so --verify cannot know the tree was forced.
    expect((await verify(w.path('gtree'))).verified).toBe(false);
  });
  it('--build-id=tree with the default options on a 41 MiB output: gold-tree', async () => {
    writeFileSync(w.path('blob41.bin'), randomBytes(41 * 1024 * 1024));
    w.write('gblob41.s', blobAsm(w.path('blob41.bin')));
    w.run('as', 'gblob41.s', '-o', 'gblob41.o');
    w.run('ld.gold', '--build-id=tree', 'gblob41.o', '-o', 'gtree41');
    await expectRecomputes(w.path('gtree41'), 'gold-tree', '.data');
    // The CLI's streaming path (metadata in memory, contents read ahead from disk) agrees.
    const s = await readBuildId({ path: w.path('gtree41') }, { verify: true, stream: true });
    expect([s.verified, s.algorithm, s.elf]).toEqual([true, 'gold-tree', undefined]);
    const c = await cli('buildid', '--verify', w.path('gtree41.mut'));
    expect(c.code).toBe(1);
  }, 120_000);
});

const LLDS = [
  { bin: 'ld.lld', name: 'lld 14', v15: false },
  { bin: 'ld.lld-16', name: 'lld 16', v15: true },
] as const;

for (const lld of LLDS) {
  describe.skipIf(missing(lld.bin, have(lld.bin) && have('gcc')))(`${lld.name}: 1 MiB chunk tree`, () => {
    const pre = lld.bin.replace(/\W/g, '_');
    beforeAll(() => {
      w.run('gcc', '-O1', '-c', 'fs.c', '-o', `${pre}fs.o`);
      writeFileSync(w.path(`${pre}blob.bin`), randomBytes(3_600_000));
      w.write(`${pre}blob.s`, blobAsm(w.path(`${pre}blob.bin`)));
      w.run('as', `${pre}blob.s`, '-o', `${pre}blob.o`);
    });
    const expectAlgo = (a: 'sha1' | 'md5' | 'fast' | 'tree'): string =>
      a === 'fast' ? 'lld-fast' : `${lld.v15 ? 'lld15' : 'lld14'}-${a === 'tree' ? 'sha1' : a}`;
    for (const algo of ['sha1', 'md5', 'fast', 'tree'] as const) {
      it(`--build-id=${algo}: one chunk, four chunks, and -r`, async () => {
        w.run(lld.bin, `--build-id=${algo}`, `${pre}fs.o`, '-o', `${pre}-${algo}`);
        const r = await expectRecomputes(w.path(`${pre}-${algo}`), expectAlgo(algo));
        expect(r.linker).toBe(lld.v15 ? 'lld 16' : 'lld 14');
        w.run(lld.bin, `--build-id=${algo}`, `${pre}blob.o`, '-o', `${pre}-big-${algo}`);
        expect(w.read(`${pre}-big-${algo}`).length).toBeGreaterThan(3 << 20);
        await expectRecomputes(w.path(`${pre}-big-${algo}`), expectAlgo(algo), '.data');
        w.run(lld.bin, '-r', `--build-id=${algo}`, `${pre}fs.o`, '-o', `${pre}-r-${algo}.o`);
        await expectRecomputes(w.path(`${pre}-r-${algo}.o`), expectAlgo(algo));
      });
    }
    // gcc drives ld.lld (14) with -fuse-ld=lld; lld 16 is only reachable directly.
    if (!lld.v15)
      it('gcc -fuse-ld=lld PIE', async () => {
        w.run('gcc', '-fuse-ld=lld', '-Wl,--build-id=sha1', 'a.c', 'b.c', '-o', `${pre}-pie`);
        await expectRecomputes(w.path(`${pre}-pie`), 'lld14-sha1');
      });
  });
}

describe.skipIf(missing('GNU ld PE emulations (i386pep, i386pe) and objcopy', have('ld') && have('objcopy') && have('objdump')))(
  'GNU ld PE/COFF: CodeView GUID',
  () => {
    // GNU ld makes the .buildid section only when a COFF input is present (buildid.md part 1b):
    // the ELF object is converted to COFF with objcopy first.
    beforeAll(() => {
      w.write('pe.c', 'int data_word = 5;\nvoid _start(void) { for (;;) data_word++; }\n');
      w.run('gcc', '-O1', '-fno-asynchronous-unwind-tables', '-c', 'pe.c', '-o', 'pe64.o');
      w.run('objcopy', '-O', 'pe-x86-64', 'pe64.o', 'pe64.obj');
      w.run('gcc', '-m32', '-O1', '-fno-asynchronous-unwind-tables', '-c', 'pe.c', '-o', 'pe32.o');
      w.run('objcopy', '-O', 'pe-i386', 'pe32.o', 'pe32.obj');
    });
    for (const [emu, obj, magic] of [
      ['i386pep', 'pe64.obj', 'PE32+'],
      ['i386pe', 'pe32.obj', 'PE32'],
    ] as const) {
      for (const algo of ['sha1', 'md5'] as const) {
        it(`ld -m ${emu} --build-id=${algo} (${magic}): raw GUID reported, objdump's order named, recomputed`, async () => {
          const out = `${emu}-${algo}.exe`;
          w.run('ld', '-m', emu, `--build-id=${algo}`, '-e', emu === 'i386pe' ? '__start' : '_start', obj, '-o', out);
          const dump = w.run('objdump', '-p', out);
          expect(dump).toContain(`(${magic})`);
          const sig = /RSDS signature ([0-9a-f]{32})/.exec(dump)![1]!;
          const r = await verify(w.path(out));
          expect(r).toMatchObject({ source: 'pe', guidOrder: sig, verified: true, algorithm: `pe-gnu-ld-${algo}` });
          expect(r.buildId).not.toBe(sig);
          const bytes = w.read(out);
          const bad = bytes.slice();
          bad[bytes.length - 1]! ^= 0x80; // the COFF string table: hashed (only the headers and the record are not)
          writeFileSync(w.path(out + '.mut'), bad);
          expect((await verify(w.path(out + '.mut'))).verified).toBe(false);
        });
      }
    }
  },
);
