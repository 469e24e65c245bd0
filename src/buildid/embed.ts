/**
 * `xsplice buildid set`: adds or replaces the `.note.gnu.build-id` of a relocatable object.
 *
 * The object goes through the ELF model (read → ObjectBuilder → write); the note section is an
 * SHT_NOTE, SHF_ALLOC, 4-aligned section holding exactly one note (stale notes that `ld -r` kept
 * are dropped). For sha1/md5 the id is computed last, on the finished buffer, with GNU ld's
 * algorithm and the note reading as zero, so GNU ld's algorithm over the written file gives the
 * stored id (`xsplice buildid --verify` passes). uuid: 16 random bytes; { hex }: the bytes given.
 */
import { randomBytes } from 'node:crypto';
import { FormatError } from '../errors.js';
import { ObjectBuilder } from '../elf/builder.js';
import { ET, SHF, SHT } from '../elf/constants.js';
import { readElf, refuseSharedContents } from '../elf/reader.js';
import type { SectionId } from '../elf/types.js';
import { patchGnuLdBuildId } from './gnu-ld.js';
import { buildIdNoteSize, encodeBuildIdNote } from './note.js';

export type BuildIdStyle = 'sha1' | 'md5' | 'uuid' | { hex: Uint8Array };

export interface SetBuildIdOptions {
  /** For error messages. */
  file?: string;
  /** Section name (default .note.gnu.build-id). */
  sectionName?: string;
}

export const BUILD_ID_SECTION = '.note.gnu.build-id';

export function setBuildId(objBytes: Uint8Array, style: BuildIdStyle, opts: SetBuildIdOptions = {}): Uint8Array {
  return setBuildIdWithId(objBytes, style, opts).bytes;
}

/** setBuildId, also returning the id that was stored. */
export function setBuildIdWithId(
  objBytes: Uint8Array,
  style: BuildIdStyle,
  opts: SetBuildIdOptions = {},
): { bytes: Uint8Array; id: Uint8Array } {
  const name = opts.sectionName ?? BUILD_ID_SECTION;
  const elf = readElf(objBytes, { file: opts.file });
  if (elf.header.type !== ET.REL) {
    throw new FormatError(
      'BUILDID_SET_NOT_REL',
      'buildid set rewrites relocatable objects (ET_REL) only; relink executables with --build-id',
      {
        file: opts.file,
        expected: 'ET_REL',
        found: elf.header.type,
      },
    );
  }
  // The object is rewritten section by section: sections sharing bytes would each be written whole.
  refuseSharedContents(elf, opts.file);
  let placeholder: Uint8Array;
  let fixedId: Uint8Array | null = null;
  if (style === 'sha1' || style === 'md5') {
    placeholder = new Uint8Array(buildIdNoteSize(style === 'sha1' ? 20 : 16));
  } else {
    fixedId = style === 'uuid' ? new Uint8Array(randomBytes(16)) : style.hex;
    if (fixedId.length === 0) throw new FormatError('BUILDID_EMPTY', 'a build-id cannot be empty', { file: opts.file });
    placeholder = encodeBuildIdNote(fixedId, elf.header.littleEndian);
  }

  const { builder } = ObjectBuilder.fromElf(elf);
  const existing: SectionId[] = builder.sectionIds().filter((id) => nameOf(builder.section(id).name) === name);
  const spec = { name, type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: placeholder };
  if (existing.length > 0) {
    const s = builder.section(existing[0]!);
    s.type = SHT.NOTE;
    s.flags = SHF.ALLOC | (s.flags & SHF.GROUP);
    s.addralign = 4n;
    s.entsize = 0n;
    s.data = placeholder;
    delete s.size;
    for (const id of existing.slice(1)) builder.removeSection(id);
  } else {
    const ids = builder.sectionIds();
    builder.addSection(spec, ids.length > 0 ? ids[0] : undefined);
  }
  const out = builder.write();
  if (fixedId) return { bytes: out, id: fixedId };
  const id = patchGnuLdBuildId(out, style as 'sha1' | 'md5', name);
  return { bytes: out, id };
}

function nameOf(n: string | Uint8Array): string {
  return typeof n === 'string' ? n : new TextDecoder().decode(n);
}
