/**
 * The hostile set: crafted inputs a few hundred KB long whose headers make the same bytes count
 * many times, and the other ways a file argument can be something else than a file. Made with
 * the tests' own malformed-input builder (test/helpers/malformed.ts), never by the writer under test.
 */
import { gzipSync } from 'node:zlib';
import { RELA_SIZE, SYM_SIZE, buildFixture, note, relas, symbols, type RawSection } from '../helpers/malformed.js';

const enc = new TextEncoder();
const LE = true;
const SHT = { PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOTE: 7, CREL: 0x40000014 } as const;

/** .text holding function `f` (64 bytes of NOP then RET), its symbol table, and `extra` sections after them. */
function object(extra: RawSection[], type = 1): ReturnType<typeof buildFixture> {
  const strtab = new Uint8Array([0, ...enc.encode('f'), 0]);
  const text = new Uint8Array(64).fill(0x90);
  text[63] = 0xc3;
  const fx = buildFixture({
    class: 64,
    littleEndian: LE,
    sections: [
      { name: '.text', type: SHT.PROGBITS, flags: 0x6n, addralign: 16n, data: text },
      {
        name: '.symtab',
        type: SHT.SYMTAB,
        link: 3,
        info: 2,
        entsize: BigInt(SYM_SIZE[64]),
        addralign: 8n,
        data: symbols(64, LE, [
          [0, 0n, 0n, 0, 0, 0],
          [0, 0n, 0n, 3, 0, 1],
          [1, 0n, 64n, 0x12, 0, 1],
        ]),
      },
      { name: '.strtab', type: SHT.STRTAB, addralign: 1n, data: strtab },
      ...extra,
    ],
  });
  fx.setEhdr('e_type', type);
  return fx;
}

/** `headers` SHT_RELA headers for .text that all name one block of `entries` relocations. */
export function sharedRelocations(headers = 4000, entries = 20000): Uint8Array {
  const rows: [bigint, number, number, bigint][] = [];
  for (let i = 0; i < entries; i++) rows.push([BigInt(i % 60), 2, 2 /* R_X86_64_PC32 */, -4n]);
  const block = relas(64, LE, rows);
  const rela = (data?: Uint8Array): RawSection => ({
    name: '.rela.text',
    type: SHT.RELA,
    flags: 0x40n,
    link: 2,
    info: 1,
    entsize: BigInt(RELA_SIZE[64]),
    addralign: 8n,
    ...(data ? { data } : { size: BigInt(block.length) }),
  });
  const fx = object([rela(block), ...Array.from({ length: headers - 1 }, () => rela())]);
  const first = fx.index('.rela.text');
  const off = fx.offsets[first]!;
  for (let i = first + 1; i < first + headers; i++) fx.setShdr(i, 'sh_offset', off);
  return fx.bytes;
}

/** `sections` SHT_NOTE sections that all name one block of `notes` GNU build-id notes (20-byte ids). */
export function sharedNotes(sections = 2000, notes = 4000, type = 1): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < notes; i++)
    parts.push(
      note(
        LE,
        'GNU',
        3,
        Array.from({ length: 20 }, (_, k) => (i * 7 + k) & 0xff),
      ),
    );
  const block = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    block.set(p, at);
    at += p.length;
  }
  const sec = (data?: Uint8Array): RawSection => ({
    name: '.note.gnu.build-id',
    type: SHT.NOTE,
    flags: 2n,
    addralign: 4n,
    ...(data ? { data } : { size: BigInt(block.length) }),
  });
  const fx = object([sec(block), ...Array.from({ length: sections - 1 }, () => sec())], type);
  const first = fx.index('.note.gnu.build-id');
  const off = fx.offsets[first]!;
  for (let i = first + 1; i < first + sections; i++) fx.setShdr(i, 'sh_offset', off);
  return fx.bytes;
}

/** An object whose relocations of .text are in an SHT_CREL section (what `as --crel` emits; binutils 2.40 here has no --crel). */
export function crelObject(): Uint8Array {
  // The CREL encoding is not decoded by anyone here; a count of 0 and one delta are enough for a valid-looking section.
  return object([
    { name: '.crel.text', type: SHT.CREL, flags: 0x40n, link: 2, info: 1, addralign: 1n, data: new Uint8Array([0x08, 0x00, 0x04]) },
  ]).bytes;
}

/**
 * A gzip stream of `members` concatenated members, each `chunkMiB` MiB of zeros: about 10 MB of
 * file that inflates to 10 GiB with the defaults.
 */
export function gzipBomb(members = 1024, chunkMiB = 10): Uint8Array {
  const one = gzipSync(Buffer.alloc(chunkMiB << 20), { level: 9 });
  const out = new Uint8Array(one.length * members);
  for (let i = 0; i < members; i++) out.set(one, i * one.length);
  return out;
}
