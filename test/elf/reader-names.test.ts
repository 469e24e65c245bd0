/**
 * Names as the reader decodes them: ASCII takes a latin1 fast path, anything else goes through
 * UTF-8 (invalid sequences become U+FFFD, as TextDecoder does), and `nameBytes` always holds the
 * stored bytes, also when the text could not represent them.
 */
import { describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { EM, SHF, SHT, STB, STT } from '../../src/elf/constants.js';

const NAMES: Uint8Array[] = [
  new TextEncoder().encode('plain_ascii.name'),
  new TextEncoder().encode('café_€_名前'),
  new Uint8Array([0x61, 0xff, 0xfe, 0x62]), // not UTF-8
  new Uint8Array([0x80, 0x9f, 0xc3]), // C1 controls and a cut sequence
  new Uint8Array([0x7f, 0x01]),
];

describe('reader: name decoding', () => {
  for (const [cls, le] of [
    [64, true],
    [32, false],
  ] as const) {
    it(`ELF${cls} ${le ? 'LE' : 'BE'}: section and symbol names decode as UTF-8 and keep their bytes`, () => {
      const b = new ObjectBuilder({ class: cls, littleEndian: le, machine: cls === 64 ? EM.X86_64 : EM.ARM });
      for (const n of NAMES) {
        const sec = b.addSection({ name: n, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(4) });
        b.addSymbol({ name: n, bind: STB.GLOBAL, type: STT.OBJECT, section: sec, value: 0n, size: 4n });
      }
      const elf = readElf(b.write());
      const dec = new TextDecoder();
      for (const n of NAMES) {
        const want = dec.decode(n);
        const s = elf.sections.find((x) => x.name === want);
        expect(s, want).toBeDefined();
        expect(Array.from(s!.nameBytes)).toEqual(Array.from(n));
        expect(elf.sectionByName(want)).toBe(s);
        const y = elf.symbols().find((x) => x.name === want);
        expect(y, want).toBeDefined();
        expect(Array.from(y!.nameBytes)).toEqual(Array.from(n));
        expect(y!.nameBytes).toBe(y!.nameBytes); // made once
      }
      expect(elf.symbols()[0]!.name).toBe('');
      expect(elf.symbols()[0]!.nameBytes.length).toBe(0);
      expect(elf.sections[0]!.nameBytes.length).toBe(0);
    });
  }
});
