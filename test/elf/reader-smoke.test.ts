import { describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { FormatError } from '../../src/errors.js';

describe('reader: first bytes', () => {
  it('refuses a non-ELF file with ELF_BAD_MAGIC and the offset', () => {
    const bytes = new Uint8Array(64);
    bytes.set([0x4d, 0x5a]);
    try {
      readElf(bytes, { file: 'x.o' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(FormatError);
      expect((e as FormatError).code).toBe('ELF_BAD_MAGIC');
      expect((e as FormatError).message).toMatch(/^x\.o: offset 0x0: not an ELF file \(expected 7f 45 4c 46, found 4d 5a 00 00\)$/);
    }
  });
});
