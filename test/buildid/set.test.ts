/**
 * `buildid set`: the stored id is GNU ld's id of the written file (so --verify passes), readelf
 * shows it, ld -r still links the object, stale notes are replaced, and outputs are written
 * atomically. Also: patchGnuLdBuildId, the payload builder's "last patch", against GNU ld itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync, chmodSync } from 'node:fs';
import { readElf } from '../../src/elf/reader.js';
import { findBuildIdNotes, patchGnuLdBuildId, readBuildId, setBuildId, setBuildIdWithId, toHex } from '../../src/buildid/index.js';
import { missing } from '../helpers/debian.js';
import { SOURCES, Workdir, have } from './toolchain.js';
import { runCli, type CliRun } from '../helpers/cli.js';

const w = new Workdir();
afterAll(() => w.cleanup());

const cli = (...argv: string[]): Promise<CliRun> => runCli(argv);
const readelfId = (p: string): string => /Build ID: ([0-9a-f]+)/.exec(w.run('readelf', '-n', p))?.[1] ?? '';

describe.skipIf(missing('gcc, GNU ld, readelf', have('gcc') && have('ld') && have('readelf')))('buildid set', () => {
  beforeAll(() => {
    w.write('a.c', SOURCES['a.c']);
    w.write('b.c', SOURCES['b.c']);
    w.write('g.cc', SOURCES['g.cc']);
    w.run('gcc', '-O1', '-g', '-ffunction-sections', '-c', 'a.c', 'b.c');
    w.run('g++', '-O1', '-c', 'g.cc');
    w.run('gcc', '-m32', '-O1', '-c', 'b.c', '-o', 'b32.o');
  });

  for (const style of ['sha1', 'md5'] as const) {
    it(`${style}: readelf shows the id, --verify passes, ld -r still links it (64-bit, groups, 32-bit)`, async () => {
      for (const obj of ['a.o', 'g.o', 'b32.o']) {
        const { bytes, id } = setBuildIdWithId(w.read(obj), style, { file: obj });
        const out = w.write(`${style}-${obj}`, bytes);
        expect(readelfId(out)).toBe(toHex(id));
        expect(id.length).toBe(style === 'sha1' ? 20 : 16);
        const r = await readBuildId({ path: out }, { verify: true });
        expect([obj, r.verified, r.algorithm, r.buildId]).toEqual([obj, true, `gnu-ld-${style}`, toHex(id)]);
        const sec = readElf(bytes).sectionByName('.note.gnu.build-id')!;
        expect([sec.type, sec.flags, sec.addralign]).toEqual([7, 2n, 4n]);
        w.run('ld', ...(obj === 'b32.o' ? ['-m', 'elf_i386'] : []), '-r', out, '-o', `${style}-linked-${obj}`);
      }
    });
  }

  it('uuid and 0xHEX store the bytes; uuid differs each time', async () => {
    const u1 = setBuildIdWithId(w.read('a.o'), 'uuid');
    const u2 = setBuildIdWithId(w.read('a.o'), 'uuid');
    expect(u1.id.length).toBe(16);
    expect(toHex(u1.id)).not.toBe(toHex(u2.id));
    const h = setBuildId(w.read('a.o'), { hex: new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x01]) });
    expect(readelfId(w.write('hex.o', h))).toBe('deadbeef01');
    const r = await readBuildId({ path: w.path('hex.o') }, { verify: true });
    expect(r.verified).toBeNull();
  });

  it('replaces an existing note, including the stale input notes ld -r keeps', async () => {
    w.run('ld', '-r', '--build-id=sha1', 'a.o', '-o', 'ida.o');
    w.run('ld', '-r', '--build-id=sha1', 'b.o', '-o', 'idb.o');
    w.run('ld', '-r', '--build-id=sha1', 'ida.o', 'idb.o', '-o', 'stale.o');
    expect(findBuildIdNotes(readElf(w.read('stale.o'))).length).toBe(3);
    const { bytes, id } = setBuildIdWithId(w.read('stale.o'), 'md5');
    const notes = findBuildIdNotes(readElf(bytes));
    expect(notes.map((n) => toHex(n.id))).toEqual([toHex(id)]);
    const out = w.write('restamped.o', bytes);
    expect((await readBuildId({ path: out }, { verify: true })).verified).toBe(true);
    w.run('ld', '-r', out, '-o', 'restamped-linked.o');
  });

  it("patchGnuLdBuildId reproduces GNU ld: blanking the note of an ld -r output and patching gives ld's id", () => {
    for (const algo of ['sha1', 'md5'] as const) {
      w.run('ld', '-r', `--build-id=${algo}`, 'a.o', 'b.o', '-o', `p-${algo}.o`);
      const bytes = w.read(`p-${algo}.o`);
      const stored = toHex(findBuildIdNotes(readElf(bytes))[0]!.id);
      const sec = readElf(bytes).sectionByName('.note.gnu.build-id')!;
      bytes.fill(0, sec.offset, sec.offset + Number(sec.size));
      expect(toHex(patchGnuLdBuildId(bytes, algo))).toBe(stored);
      expect(bytes).toEqual(w.read(`p-${algo}.o`));
    }
  });

  it('patchGnuLdBuildId refuses a missing or wrongly sized section', () => {
    expect(() => patchGnuLdBuildId(w.read('a.o'), 'sha1')).toThrow(expect.objectContaining({ code: 'BUILDID_NO_SECTION' }));
    const md5 = setBuildId(w.read('a.o'), 'md5');
    expect(() => patchGnuLdBuildId(md5, 'sha1')).toThrow(
      expect.objectContaining({ code: 'BUILDID_SECTION_SIZE', message: expect.stringMatching(/expected 36, found 32/) }),
    );
  });

  it('refuses executables (not ET_REL)', () => {
    w.run('gcc', 'a.o', 'b.o', '-o', 'exe');
    expect(() => setBuildId(w.read('exe'), 'sha1')).toThrow(expect.objectContaining({ code: 'BUILDID_SET_NOT_REL', exitCode: 2 }));
  });

  it('CLI: in place (atomic, mode kept) and with -o (input untouched); --style 0xHEX; bad style is a usage error', async () => {
    w.run('cp', 'a.o', 'inplace.o');
    chmodSync(w.path('inplace.o'), 0o640);
    const c = await cli('buildid', 'set', w.path('inplace.o'));
    expect(c.code).toBe(0);
    const id = readelfId(w.path('inplace.o'));
    expect(c.out).toBe(`${id}  ${w.path('inplace.o')}\n`);
    expect(statSync(w.path('inplace.o')).mode & 0o777).toBe(0o640);
    expect(readdirSync(w.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    expect((await cli('buildid', '--verify', w.path('inplace.o'))).code).toBe(0);

    const before = readFileSync(w.path('a.o'));
    const o = await cli('buildid', 'set', w.path('a.o'), '--style', 'md5', '-o', w.path('out-md5.o'), '--json');
    expect(o.code).toBe(0);
    expect(JSON.parse(o.out)).toMatchObject({
      input: w.path('a.o'),
      output: w.path('out-md5.o'),
      style: 'md5',
      algorithm: 'gnu-ld-md5',
      buildId: readelfId(w.path('out-md5.o')),
    });
    expect(readFileSync(w.path('a.o'))).toEqual(before);

    const hx = await cli('buildid', 'set', w.path('a.o'), '--style', '0xdead:beef', '-o', w.path('out-hex.o'));
    expect(hx.code).toBe(0);
    expect(readelfId(w.path('out-hex.o'))).toBe('deadbeef');

    const bad = await cli('buildid', 'set', w.path('a.o'), '--style', 'sha256', '-o', w.path('never.o'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--style must be sha1, md5, uuid or 0xHEX/);
    expect(existsSync(w.path('never.o'))).toBe(false);
    const two = await cli('buildid', 'set');
    expect(two.code).toBe(2);
    const missingFile = await cli('buildid', 'set', w.path('nope.o'));
    expect(missingFile.code).toBe(2);
    expect(missingFile.err).toMatch(/nope\.o: no such file/);
  });
});
