/**
 * Build stage: checks on the written payload: the hypervisor's size and section-count limits, what
 * verify would refuse or flag in the bytes (bug-frame instruction, NOP ranges decoded from the
 * target, return / indirect thunks), and a build-id equal to the one it depends on.
 */
import { parseBuildIdNote, toHex } from '../../buildid/note.js';
import { isHypervisorRefusal } from '../refusal-codes.js';
import { sharedBuildChecks } from '../verify.js';
import { refuseAs, type EntryPlan } from './model.js';
import type { BuildOptions } from './types.js';

export function checkWritten(
  opts: BuildOptions,
  bytes: Uint8Array,
  id: Uint8Array,
  entries: readonly EntryPlan[],
  le: boolean,
  warn: (w: string) => void,
): void {
  const { abi, target } = opts;
  const nops = opts.nops ?? [];
  if (bytes.length > abi.limits.maxPayloadSize) {
    refuseAs('UPLOAD_SIZE', `the payload is ${bytes.length} bytes; the hypervisor takes at most ${abi.limits.maxPayloadSize}`, {
      expected: `≤ ${abi.limits.maxPayloadSize}`,
      found: bytes.length,
    });
  }
  const shnum = sectionCount(bytes, abi.elfClass, le);
  if (shnum >= abi.limits.maxSections) {
    refuseAs('HDR_TOO_MANY_SECTIONS', `the payload has ${shnum} sections; the hypervisor takes fewer than ${abi.limits.maxSections}`);
  }
  for (const d of sharedBuildChecks(bytes, target, abi)) {
    const coversReturn = d.code === 'NOTE_NOP_COVERS_RETURN';
    const explicit =
      coversReturn &&
      nops.some(
        (n) =>
          n.len !== undefined &&
          (n.old === d.symbol || entries.some((e) => e.name === d.symbol && e.newSym === null && e.newSize === n.len)),
      );
    if ((d.severity === 'error' || (coversReturn && !explicit)) && isHypervisorRefusal(d.code)) {
      refuseAs(
        d.code,
        `${d.message}${coversReturn ? ' (or give the length explicitly: --nop F:LEN)' : ''}`,
        d.symbol ? { symbol: d.symbol } : {},
      );
    }
    warn(d.message);
  }
  if (opts.depends?.payload) {
    const own = opts.depends.payload.sectionByName(abi.sections.buildId);
    if (own) {
      const p = parseBuildIdNote(own.data(), opts.depends.payload.header.littleEndian);
      if (p.ok && toHex(p.id) === toHex(id)) refuseAs('DUPLICATE_BUILD_ID', 'the payload has the same build-id as the one it depends on');
    }
  }
}

/** e_shnum of a written object (section 0's sh_size under extended numbering). */
function sectionCount(bytes: Uint8Array, cls: 32 | 64, le: boolean): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint16(cls === 64 ? 0x3c : 0x30, le);
  if (n !== 0) return n;
  const shoff = cls === 64 ? Number(dv.getBigUint64(0x28, le)) : dv.getUint32(0x20, le);
  return cls === 64 ? Number(dv.getBigUint64(shoff + 0x20, le)) : dv.getUint32(shoff + 0x14, le);
}
