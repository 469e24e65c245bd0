/**
 * Build stage 1: read the input objects and refuse what cannot go into a payload for this row
 * (not ET_REL, another class, machine, byte order or EABI version).
 */
import { UsageError, XspliceError } from '../../errors.js';
import { readElf } from '../../elf/reader.js';
import { ET } from '../../elf/constants.js';
import type { ElfFile } from '../../elf/types.js';
import type { PayloadAbi } from '../abi-types.js';
import { refuse, refuseAs } from './model.js';
import type { BuildInput } from './types.js';

export interface ReadObjects {
  elves: ElfFile[];
  /** The objects' byte order (little-endian when there are none). */
  littleEndian: boolean;
}

export function readObjects(objects: readonly BuildInput[], abi: PayloadAbi): ReadObjects {
  const elves = objects.map((o) => readObject(o, abi));
  const le = elves[0]?.header.littleEndian ?? true;
  for (const [i, e] of elves.entries()) {
    if (e.header.littleEndian !== le) refuse('BUILD_WRONG_ENDIAN', 'objects of both byte orders', { file: objects[i]!.name });
  }
  return { elves, littleEndian: le };
}

function readObject(o: BuildInput, abi: PayloadAbi): ElfFile {
  let e: ElfFile;
  try {
    e = readElf(o.bytes, { file: o.name });
  } catch (err) {
    if (err instanceof XspliceError) err.withFile(o.name);
    throw err;
  }
  const h = e.header;
  if (h.type !== ET.REL) throw new UsageError('BUILD_NOT_REL', 'not a relocatable object (ET_REL)', { file: o.name });
  if (h.class !== abi.elfClass || h.machine !== abi.machine) {
    refuseAs(
      'HDR_MACHINE',
      `object is ELFCLASS${h.class} machine ${h.machine}; payload ABI ${abi.id} wants ELFCLASS${abi.elfClass} machine ${abi.machine}`,
      { file: o.name },
    );
  }
  if (abi.arch === 'x86_64' && !h.littleEndian) refuse('BUILD_WRONG_ENDIAN', 'x86-64 objects must be little-endian', { file: o.name });
  if (abi.eFlags !== undefined && (h.flags & 0xff000000) !== (abi.eFlags & 0xff000000)) {
    refuseAs('HDR_EABI', `e_flags EABI version 0x${(h.flags >>> 0).toString(16)} (the hypervisor wants 0x${abi.eFlags.toString(16)})`, {
      file: o.name,
    });
  }
  return e;
}
