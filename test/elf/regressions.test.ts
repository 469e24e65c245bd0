/**
 * Named regression tests: each bug the differential, malformed and fuzz tests found, reduced to
 * the smallest input that showed it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir, removeTempDirs } from '../helpers/corpus.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { readElf } from '../../src/elf/reader.js';
import { elfView } from '../../src/elf/dump.js';
import { EM, SHF, SHN, SHT, STB, STT } from '../../src/elf/constants.js';
import { FormatError } from '../../src/errors.js';
import { parseSymbols, readelf } from './readelf.js';
import { RELA_SIZE, standardFixture } from '../helpers/malformed.js';

afterAll(removeTempDirs);

describe('regressions', () => {
  // Found by the 70k-section differential test: symbols in sections 0xfff1/0xfff2 (reached through
  // SHN_XINDEX) were shown as ABS/COM, and fromElf would have made them absolute.
  it('xindex-fff1-is-not-abs: a symbol in real section 0xfff1 keeps its section through view and rewrite', async () => {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
    const ids = [];
    for (let i = 0; i < SHN.COMMON; i++)
      ids.push(b.addSection({ name: `.s${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(1) }));
    b.addSymbol({ name: 'in_fff1', bind: STB.GLOBAL, type: STT.OBJECT, section: ids[SHN.ABS - 1]!, value: 0n, size: 1n });
    b.addSymbol({ name: 'in_fff2', bind: STB.GLOBAL, type: STT.OBJECT, section: ids[SHN.COMMON - 1]!, value: 0n, size: 1n });
    b.addSymbol({ name: 'really_abs', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'ABS', value: 5n, size: 0n });
    const bytes = b.write();
    const view = elfView(readElf(bytes));
    const shndx = (n: string) => view.symbols.find((s) => s.name === n)!.shndx;
    expect([shndx('in_fff1'), shndx('in_fff2'), shndx('really_abs')]).toEqual([0xfff1, 0xfff2, 'ABS']);
    const again = ObjectBuilder.fromElf(readElf(bytes)).builder.write();
    const dir = await tempDir('reg');
    await writeFile(join(dir, 'x.o'), again);
    const rows = parseSymbols(await readelf(['-s'], join(dir, 'x.o')));
    expect(rows.filter((r) => r.name.startsWith('in_') || r.name === 'really_abs').map((r) => [r.name, r.ndx])).toEqual([
      ['in_fff1', String(0xfff1)],
      ['in_fff2', String(0xfff2)],
      ['really_abs', 'ABS'],
    ]);
  });

  // Found while writing the malformed tests: an r_info symbol index past the end of the symbol
  // table was accepted, and the view showed an empty symbol name.
  it('reloc-symbol-past-table: ELF_RELOC_SYMBOL names the relocation section and entry offset', () => {
    const f = standardFixture(64, true);
    const rl = f.index('.rela.text');
    f.dv.setUint32(f.offsets[rl]! + RELA_SIZE[64] + 12, 4, true); // second entry, symbol 4 of 4
    const e = (() => {
      try {
        readElf(f.bytes, { file: 'r.o' }).relocations();
      } catch (x) {
        return x;
      }
    })() as FormatError;
    expect(e).toBeInstanceOf(FormatError);
    expect(e.code).toBe('ELF_RELOC_SYMBOL');
    expect(e.message).toBe(
      `r.o: section [${rl}] .rela.text, offset 0x${(f.offsets[rl]! + RELA_SIZE[64]).toString(16)}: relocation 1 refers to a symbol past the end of its symbol table (expected < 4, found 4)`,
    );
  });

  // Found by the malformed tests: ELF_FIELD_RANGE (an offset above 2^53) did not name the file.
  it('field-range-names-file: an e_shoff above 2^53 is reported with the file name', () => {
    const f = standardFixture(64, false).setEhdr('e_shoff', 1n << 60n);
    expect(() => readElf(f.bytes, { file: 'big.o' })).toThrow(
      /^big\.o: offset 0x28: e_shoff is out of range \(expected < 2\^53, found 0x1000000000000000\)$/,
    );
  });

  // Found by the writer tests: a relocation section keeping its input name went stale when its
  // target was renamed.
  it('rela-name-follows-target: renaming a section read from a file renames its relocation section', () => {
    const f = standardFixture(64, true);
    const { builder } = ObjectBuilder.fromElf(readElf(f.bytes));
    builder.section(builder.findSection('.text')!).name = '.text.new';
    const names = readElf(builder.write()).sections.map((s) => s.name);
    expect(names).toContain('.rela.text.new');
    expect(names).not.toContain('.rela.text');
  });
});
