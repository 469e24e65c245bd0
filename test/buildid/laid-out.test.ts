/**
 * patchGnuLdBuildIdLaidOut (build's last step: GNU ld's id hashed along the writer's plan, without
 * reading the object back) against patchGnuLdBuildId (which reads it back) on every corpus object
 * the writer can rewrite: both classes, both byte orders, groups, 70k sections (extended numbering,
 * .symtab_shndx), with a --package-metadata note (zeroed by GNU ld) added. Same id, same bytes; and
 * the reading path is itself checked against GNU ld in set.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { readElf } from '../../src/elf/reader.js';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { SHF, SHT } from '../../src/elf/constants.js';
import { gnuLdLayoutOfPlan, patchGnuLdBuildId, patchGnuLdBuildIdLaidOut, toHex } from '../../src/buildid/index.js';
import { RECIPES, buildCorpus, removeTempDirs, type Corpus } from '../helpers/corpus.js';

afterAll(removeTempDirs);

/** An FDO packaging-metadata note as `ld --package-metadata` writes it (owner "FDO", type 0xcafe1a7e). */
function fdoNote(le: boolean): Uint8Array {
  const json = new TextEncoder().encode('{"type":"deb","name":"x"}\0');
  const desc = Math.ceil(json.length / 4) * 4;
  const b = new Uint8Array(12 + 4 + desc);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 4, le);
  dv.setUint32(4, json.length, le);
  dv.setUint32(8, 0xcafe1a7e, le);
  b.set([0x46, 0x44, 0x4f, 0], 12);
  b.set(json, 16);
  return b;
}

describe('GNU ld build-id along the writer plan', () => {
  let corpus: Corpus;
  beforeAll(async () => {
    corpus = await buildCorpus();
  }, 300_000);

  for (const r of RECIPES.filter((x) => !x.noRoundTrip)) {
    it(`${r.name}: same id and bytes as reading the object back`, async () => {
      const o = corpus.get(r.name);
      const elf = readElf(new Uint8Array(await readFile(o.path)));
      const { builder } = ObjectBuilder.fromElf(elf);
      const le = elf.header.littleEndian;
      builder.addSection({ name: '.note.package', type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: fdoNote(le) });
      // Its own name: some corpus objects already carry a .note.gnu.build-id (hashed like any note).
      const note = builder.addSection({ name: '.note.test-id', type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(36) });
      const { bytes, plan } = builder.writeWithPlan();
      const viaRead = Uint8Array.from(bytes);
      const idRead = patchGnuLdBuildId(viaRead, 'sha1', '.note.test-id');
      const idPlan = patchGnuLdBuildIdLaidOut(gnuLdLayoutOfPlan(bytes, plan, elf.header.class), plan.sectionIndex.get(note)!, 'sha1', le);
      expect(toHex(idPlan)).toBe(toHex(idRead));
      expect(Buffer.compare(Buffer.from(bytes), Buffer.from(viaRead))).toBe(0);
      // The package note is outside the hash: changing it keeps the id.
      const other = Uint8Array.from(viaRead);
      const pkg = readElf(other).sectionByName('.note.package')!;
      other[pkg.offset + 20]! ^= 0xff;
      const at = readElf(other).sectionByName('.note.test-id')!.offset;
      other.fill(0, at, at + 36);
      expect(toHex(patchGnuLdBuildId(other, 'sha1', '.note.test-id'))).toBe(toHex(idRead));
      // While a hashed byte (e_flags) is not.
      other[elf.header.class === 64 ? 48 : 36]! ^= 0xff;
      other.fill(0, at, at + 36);
      expect(toHex(patchGnuLdBuildId(other, 'sha1', '.note.test-id'))).not.toBe(toHex(idRead));
    });
  }

  it('refuses a build-id section of the wrong size', () => {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: 62 });
    const note = b.addSection({ name: '.note.gnu.build-id', type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(32) });
    const { bytes, plan } = b.writeWithPlan();
    expect(() => patchGnuLdBuildIdLaidOut(gnuLdLayoutOfPlan(bytes, plan, 64), plan.sectionIndex.get(note)!, 'sha1', true)).toThrow(
      expect.objectContaining({ code: 'BUILDID_SECTION_SIZE' }),
    );
  });
});
