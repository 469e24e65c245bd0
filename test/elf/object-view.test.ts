/**
 * objectView (src/elf/object-view.ts), the one converter from a read object to the model, and the
 * two policies its consumers apply: ObjectBuilder.fromElf refuses a reference the model cannot
 * carry, the payload build leaves it out. The inputs are written by the project's writer and then
 * patched (a small byte edit, not the writer under test, makes the references the writer would
 * never make).
 */
import { describe, expect, it } from 'vitest';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { EM, SHF, SHT, STB, STT } from '../../src/elf/constants.js';
import { objectView } from '../../src/elf/object-view.js';
import { readElf } from '../../src/elf/reader.js';

const SHDR64 = 64;
const SH_LINK = 40;

function sample(): ObjectBuilder {
  const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
  const text = b.addSection({
    name: '.text',
    type: SHT.PROGBITS,
    flags: SHF.ALLOC | SHF.EXECINSTR,
    addralign: 16n,
    data: new Uint8Array([0xe8, 0, 0, 0, 0, 0xc3]),
  });
  const data = b.addSection({ name: '.data', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n, data: new Uint8Array(8) });
  b.addSection({ name: '.note.x', type: SHT.PROGBITS, flags: 0n, addralign: 1n, data: new Uint8Array(4) });
  const f = b.addSymbol({ name: 'f', bind: STB.GLOBAL, type: STT.FUNC, section: text, value: 0n, size: 6n });
  const ext = b.addSymbol({ name: 'ext', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
  b.setRelocations(text, { rela: true, entries: [{ offset: 1n, type: 4, symbol: ext, addend: -4n }] });
  b.setRelocations(data, { rela: true, entries: [{ offset: 0n, type: 1, symbol: f, addend: 0n }], name: '.rela.custom' });
  return b;
}

describe('objectView', () => {
  it("IDs are ELF indices; the writer's own sections are not carried; relocation names only when not the default", () => {
    const elf = readElf(sample().write());
    const view = objectView(elf);
    expect(view.sectionIds().map((id) => elf.sections[id]!.name)).toEqual(['.text', '.data', '.note.x']);
    const text = elf.sections.find((s) => s.name === '.text')!.index;
    const data = elf.sections.find((s) => s.name === '.data')!.index;
    expect(view.relocationsOf(text)).toMatchObject({ rela: true, entries: [{ offset: 1n, type: 4, addend: -4n }] });
    expect(view.relocationsOf(text)!.name).toBeUndefined();
    expect(view.relocationsOf(data)!.name).toBe('.rela.custom');
    expect(view.symbolIds().map((id) => view.symbol(id).name)).toEqual(['f', 'ext']);
    expect(view.symbol(view.symbolIds()[0]!).section).toBe(text);
    expect(view.lostReferences).toEqual([]);
  });

  it('an sh_link to a section the writer rebuilds: listed by the view, refused by fromElf, dropped from the spec', () => {
    const bytes = sample().write();
    const elf0 = readElf(bytes);
    const note = elf0.sections.find((s) => s.name === '.note.x')!;
    const symtab = elf0.symtabSection()!;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    dv.setUint32(note.headerOffset + SH_LINK, symtab.index, true); // as SHT_LLVM_ADDRSIG does
    expect(note.headerOffset).toBe(Number(dv.getBigUint64(0x28, true)) + note.index * SHDR64);
    const elf = readElf(bytes, { file: 'link.o' });
    const view = objectView(elf);
    expect(view.lostReferences.map((r) => [r.from.name, r.field, r.to])).toEqual([['.note.x', 'sh_link', symtab.index]]);
    expect(view.section(note.index).link).toBeUndefined();
    expect(() => ObjectBuilder.fromElf(elf)).toThrow(
      expect.objectContaining({
        code: 'ELF_UNSUPPORTED',
        message: `link.o: section [${note.index}] .note.x: sh_link ${symtab.index} refers to a section the writer rebuilds`,
      }),
    );
  });

  it('an SHF_INFO_LINK sh_info becomes a reference (no raw info), and fromElf writes it back to the same section', () => {
    const b = sample();
    const text = b.findSection('.text')!;
    const side = b.addSection({ name: '.side', type: SHT.PROGBITS, flags: SHF.INFO_LINK, addralign: 1n, data: new Uint8Array(1) });
    b.setInfoLink(side, text);
    const elf = readElf(b.write());
    const view = objectView(elf);
    const sideIndex = elf.sections.find((s) => s.name === '.side')!.index;
    const textIndex = elf.sections.find((s) => s.name === '.text')!.index;
    expect(view.infoLinkOf(sideIndex)).toBe(textIndex);
    expect(view.section(sideIndex).info).toBeUndefined();
    const again = readElf(ObjectBuilder.fromElf(elf).builder.write());
    const side2 = again.sections.find((s) => s.name === '.side')!;
    expect(again.sections[side2.info]!.name).toBe('.text');
  });
});
