/**
 * Round trip: read → ObjectBuilder.fromElf → write, for every corpus object (both classes, both
 * byte orders, groups, 70k sections). readelf -W must describe the rewritten file as it describes
 * the original (sections by name/type/flags/size/alignment/entsize and link/info by name, contents,
 * symbols, relocations, groups, notes, header), the linker for the object's target must accept it
 * (`ld -r`) and give the same symbol table as for the original, and the writer must be
 * deterministic and a fixed point (rewriting its own output gives the same bytes).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { RECIPES, buildCorpus, tool, toolStatus, type Corpus, type CorpusObject, removeTempDirs } from '../helpers/corpus.js';
import { debianXen, haveDebianXen, missing } from '../helpers/debian.js';
import { buildXenRecipePayload } from '../helpers/xen-recipe.js';
import { parseGroups, parseRelocs, parseSections, parseSymbols, readelf, type RSection } from './readelf.js';

afterAll(removeTempDirs);

function rewrite(bytes: Uint8Array): Uint8Array {
  return ObjectBuilder.fromElf(readElf(bytes)).builder.write();
}

/** Sections keyed by content, with link/info by name (indices may move), as a sorted list. */
async function canonicalSections(path: string): Promise<{ rows: string[]; table: RSection[] }> {
  const table = parseSections(await readelf(['-S'], path));
  // Symbols only to name group signatures.
  const syms = table.some((s) => s.nameType.endsWith(' GROUP')) ? parseSymbols(await readelf(['-s'], path)) : [];
  const nameOf = (i: number) => (i === 0 ? '' : table[i]!.nameType);
  const rows = table.map((s) => {
    const type = s.nameType.split(' ').pop()!;
    let info: string;
    if (type === 'REL' || type === 'RELA' || s.flg.includes('I')) info = `section ${nameOf(s.inf)}`;
    else if (type === 'GROUP') info = `symbol ${syms[s.inf]!.name}`;
    else info = String(s.inf);
    return JSON.stringify([
      s.nameType,
      s.addr.toString(16),
      s.size.toString(16),
      s.es.toString(16),
      s.flg,
      s.al.toString(),
      nameOf(s.lk),
      info,
    ]);
  });
  return { rows: rows.sort(), table };
}

/** `readelf -x` blocks by section name (with an occurrence count for repeated names). */
function hexDumps(out: string): Map<string, string> {
  const m = new Map<string, string>();
  const seen = new Map<string, number>();
  let key = '';
  for (const line of out.split('\n')) {
    const h = /^Hex dump of section '([^']*)':/.exec(line);
    if (h) {
      const n = (seen.get(h[1]!) ?? 0) + 1;
      seen.set(h[1]!, n);
      key = `${h[1]}#${n}`;
      m.set(key, '');
      continue;
    }
    if (key) m.set(key, m.get(key)! + line + '\n');
  }
  return m;
}

const SYNTHESISED = new Set(['SYMTAB', 'STRTAB', 'SYMTAB SECTION INDICES', 'GROUP', 'NULL', 'NOBITS']);

/** Sections whose contents are compared: not the null section, symbol/string/index tables, groups, NOBITS or empty ones. */
const withContents = (t: RSection[]) => t.filter((s) => !SYNTHESISED.has(s.nameType.split(' ').slice(1).join(' ')) && s.size > 0n);

async function compareContents(orig: string, out: string, origTable: RSection[], outTable: RSection[], big: boolean): Promise<number> {
  const pa = withContents(origTable);
  const pb = withContents(outTable);
  expect(pb.length).toBe(pa.length);
  if (pa.length === 0) return 0;
  if (big) {
    // 70k `-x` arguments are too many for one readelf call: compare the bytes with our reader.
    const a = readElf(new Uint8Array(await readFile(orig)));
    const b = readElf(new Uint8Array(await readFile(out)));
    const byName = new Map(b.sections.map((s) => [s.name, s]));
    const differ = pa
      .map((r) => a.sections[r.index]!)
      .filter((s) => !Buffer.from(byName.get(s.name)!.data()).equals(Buffer.from(s.data())));
    expect(differ.map((s) => s.name)).toEqual([]);
    return pa.length;
  }
  const x = (t: RSection[]) => t.flatMap((s) => ['-x', String(s.index)]);
  const [a, b] = await Promise.all([tool('readelf', ['-W', ...x(pa), orig]), tool('readelf', ['-W', ...x(pb), out])]);
  const da = hexDumps(a);
  const db = hexDumps(b);
  expect([...db.keys()].sort()).toEqual([...da.keys()].sort());
  for (const [k, v] of da) expect(db.get(k), k).toBe(v);
  return da.size;
}

function symbolsByName(out: string, table: RSection[]): string[] {
  return parseSymbols(out).map((y) => {
    const ndx = /^\d+$/.test(y.ndx) ? table[Number(y.ndx)]!.nameType : y.ndx;
    return JSON.stringify([y.num, y.value.toString(16), y.size.toString(), y.type, y.bind, y.vis, ndx, y.name]);
  });
}

const headerLines = (out: string) => out.split('\n').filter((l) => !/Start of section headers|Section header string table index/.test(l));

async function roundTrip(o: CorpusObject): Promise<void> {
  const bytes = new Uint8Array(await readFile(o.path));
  const out1 = rewrite(bytes);
  // Deterministic, and a fixed point of read → model → write (for the 70k object, the fixed point only).
  if (!o.big) expect(Buffer.from(rewrite(bytes)).equals(Buffer.from(out1))).toBe(true);
  expect(Buffer.from(rewrite(out1)).equals(Buffer.from(out1))).toBe(true);
  // Same base name in another directory: ld records input names in STT_FILE symbols.
  await mkdir(join(dirname(o.path), 'rt'), { recursive: true });
  const outPath = join(dirname(o.path), 'rt', basename(o.path));
  await writeFile(outPath, out1);

  expect(headerLines(await readelf(['-h'], outPath))).toEqual(headerLines(await readelf(['-h'], o.path)));
  const A = await canonicalSections(o.path);
  const B = await canonicalSections(outPath);
  expect(B.rows).toEqual(A.rows);
  const n = await compareContents(o.path, outPath, A.table, B.table, !!o.big);
  // Every section with contents was compared (the object made from an empty .s has none).
  expect(n).toBe(withContents(A.table).length);
  if (o.name !== 'empty-s') expect(n).toBeGreaterThan(0);

  expect(symbolsByName(await readelf(['-s'], outPath), B.table)).toEqual(symbolsByName(await readelf(['-s'], o.path), A.table));
  const rel = async (p: string) =>
    parseRelocs(await readelf(['-r'], p), o.class === 64).map((s) => ({ ...s, entries: s.entries.map(({ info: _i, ...e }) => e) }));
  expect(await rel(outPath)).toEqual(await rel(o.path));
  expect(parseGroups(await readelf(['-g'], outPath))).toEqual(parseGroups(await readelf(['-g'], o.path)));
  expect(await readelf(['-n'], outPath)).toBe(await readelf(['-n'], o.path));

  // The linker for the target accepts it, and links it to what it links the original to.
  const ld = async (input: string, output: string) => {
    const r = await toolStatus(o.ldr[0]!, [...o.ldr.slice(1), '-o', output, input]);
    expect(r.code, `${o.ldr.join(' ')} ${input}: ${r.stderr}`).toBe(0);
    return output;
  };
  const [la, lb] = await Promise.all([ld(o.path, o.path + '.ld.o'), ld(outPath, outPath + '.ld.o')]);
  if (!o.big) expect(await tool('nm', ['-a', lb])).toBe(await tool('nm', ['-a', la]));
}

describe('round trip read → model → write against readelf and ld -r', () => {
  let corpus: Corpus;
  beforeAll(async () => {
    corpus = await buildCorpus();
  });
  for (const r of RECIPES) {
    if (r.noRoundTrip) {
      it(`${r.name}: refused with ELF_UNSUPPORTED (${r.noRoundTrip})`, async () => {
        const o = corpus.get(r.name);
        const elf = readElf(new Uint8Array(await readFile(o.path)), { file: o.path });
        expect(() => ObjectBuilder.fromElf(elf)).toThrow(
          expect.objectContaining({
            code: 'ELF_UNSUPPORTED',
            message: expect.stringMatching(/symbol big_common: symbol's section index 65282 is reserved/),
          }),
        );
      });
      continue;
    }
    it(`${r.name} (ELF${r.class} ${r.littleEndian ? 'LE' : 'BE'})`, async () => {
      await roundTrip(corpus.get(r.name));
    });
  }
});

describe.skipIf(missing('Debian xen-syms', haveDebianXen()))('round trip of a real Xen 4.17 livepatch payload', () => {
  it("a payload made the way Xen's tests make it (ld -r --build-id) survives read → model → write", async () => {
    const p = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, tag: 'rt' });
    await roundTrip({ name: 'payload', path: p.file, class: 64, littleEndian: true, command: [], ldr: ['ld', '-r'] });
    const names = readElf(new Uint8Array(await readFile(p.file))).sections.map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(['.livepatch.funcs', '.livepatch.depends', '.livepatch.xen_depends', '.note.gnu.build-id']),
    );
  });
});
