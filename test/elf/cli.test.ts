/**
 * `xsplice elf` in-process: the JSON document of cli.md (exact keys), the readelf-like text, and
 * the error contract (one stderr line naming the file, exit 2, a JSON error document).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { elfView } from '../../src/elf/dump.js';
import { buildCorpus, type Corpus, tempDir, removeTempDirs } from '../helpers/corpus.js';
import { standardFixture } from '../helpers/malformed.js';
import { runCli as cli } from '../helpers/cli.js';

afterAll(removeTempDirs);

describe('xsplice elf (in-process)', () => {
  let corpus: Corpus;
  let dir: string;
  beforeAll(async () => {
    corpus = await buildCorpus(['c-O2', 'ppc-be', 'c-m32']);
    dir = await tempDir('cli');
  });

  it('--json prints exactly the cli.md document', async () => {
    const p = corpus.get('c-O2').path;
    const r = await cli(['elf', p, '--json']);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const doc = JSON.parse(r.out);
    expect(Object.keys(doc).sort()).toEqual([
      'class',
      'endian',
      'file',
      'machine',
      'notes',
      'ok',
      'relocations',
      'sections',
      'symbols',
      'type',
    ]);
    expect(doc).toMatchObject({ file: p, class: 64, endian: 'little', type: 'ET_REL', machine: 'EM_X86_64' });
    expect(Object.keys(doc.sections[0]).sort()).toEqual(
      ['addr', 'addralign', 'entsize', 'flags', 'index', 'info', 'link', 'name', 'offset', 'size', 'type'].sort(),
    );
    expect(doc.sections[0]).toMatchObject({ index: 0, type: 'SHT_NULL', addr: '0x0' });
    expect(Object.keys(doc.symbols[0]).sort()).toEqual(['bind', 'index', 'name', 'shndx', 'size', 'type', 'value', 'visibility']);
    expect(doc.symbols[0]).toMatchObject({
      index: 0,
      shndx: 'UND',
      bind: 'STB_LOCAL',
      type: 'STT_NOTYPE',
      visibility: 'STV_DEFAULT',
      value: '0x0',
    });
    const text = doc.sections.find((s: { name: string }) => s.name === '.text');
    expect(text).toMatchObject({ type: 'SHT_PROGBITS', flags: 'AX' });
    const rel = doc.relocations.find((x: { section: string }) => x.section === '.rela.text');
    expect(rel.target).toBe('.text');
    expect(rel.entries.some((e: { addend: string }) => e.addend.startsWith('-0x'))).toBe(true);
    expect(rel.entries[0].type).toMatch(/^R_X86_64_/);
    expect(doc).toEqual(JSON.parse(JSON.stringify({ ok: true, file: p, ...elfView(readElf(new Uint8Array(await readFile(p)))) })));
  });

  it('REL relocations have addend null; big-endian objects say so', async () => {
    const m32 = JSON.parse((await cli(['elf', '--json', corpus.get('c-m32').path])).out);
    expect(m32).toMatchObject({ class: 32, endian: 'little', machine: 'EM_386' });
    const rel = m32.relocations.find((x: { section: string }) => x.section === '.rel.text');
    expect(rel.entries.length).toBeGreaterThan(3);
    for (const e of rel.entries) expect(e.addend).toBeNull();
    const p = corpus.get('ppc-be').path;
    const doc = JSON.parse((await cli(['elf', '--json', p])).out);
    expect(doc).toMatchObject({ class: 32, endian: 'big', machine: 'EM_PPC' });
    expect(doc.notes).toEqual([{ section: '.note.test', owner: 'xsp', type: 1, desc: '0102030405060708' }]);
  });

  it('text output is readelf-like tables', async () => {
    const r = await cli(['elf', corpus.get('c-O2').path]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ELF64 little-endian ET_REL EM_X86_64\n/);
    expect(r.out).toMatch(/\[ 1\] \.text\s+PROGBITS\s+0{16} 00000040/);
    expect(r.out).toMatch(/Symbol table \.symtab \(\d+ entries\):/);
    expect(r.out).toMatch(/R_X86_64_PLT32\s+ext_fn - 0x4/);
  });

  it('malformed input: exit 2, one stderr line naming the file, and a JSON error', async () => {
    const f = standardFixture(64, true);
    f.setEhdr('e_shentsize', 10);
    const p = join(dir, 'bad.o');
    await writeFile(p, f.bytes);
    const r = await cli(['elf', p]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(`xsplice: ${p}: offset 0x3a: e_shentsize is too small for a section header (expected >= 64, found 10)\n`);
    const j = await cli(['elf', p, '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.out)).toEqual({
      ok: false,
      error: {
        code: 'ELF_SHENTSIZE',
        message: `${p}: offset 0x3a: e_shentsize is too small for a section header (expected >= 64, found 10)`,
      },
    });
    const missing = await cli(['elf', join(dir, 'nope.o')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toBe(`xsplice: ${join(dir, 'nope.o')}: no such file\n`);
  });
});
