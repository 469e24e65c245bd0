/**
 * The one walk over a note section's contents, shared by the reader (which refuses a malformed
 * note) and the build-id code (which stops at one and keeps what came before).
 */

/** One note's place in the contents (offsets from the start of the contents). */
export interface NoteRecord {
  at: number;
  namesz: number;
  descsz: number;
  type: number;
  /** Where the descriptor starts: align(at + 12 + namesz). */
  descAt: number;
}

/** Why a walk ended before the end: a cut-off header (non-zero bytes), or a name or descriptor past the end. */
export type NoteWalkStop =
  { kind: 'truncated'; at: number; left: number } | { kind: 'overrun'; at: number; room: number; namesz: number; descsz: number };

/**
 * Walks the notes of a note section's contents. `align` is 4 or 8 (8 for sections aligned to 8,
 * as readelf does): the descriptor starts at align(12 + namesz) and the next note at
 * align(descoff + descsz), both relative to the note's start. Trailing zero bytes shorter than a
 * note header end the walk quietly.
 */
export function walkNoteRecords(data: Uint8Array, align: 4 | 8, le: boolean): { notes: NoteRecord[]; stop?: NoteWalkStop } {
  const notes: NoteRecord[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const up = (n: number): number => (n + align - 1) & ~(align - 1);
  let pos = 0;
  while (pos < data.length) {
    const room = data.length - pos;
    if (room < 12) {
      if (data.subarray(pos).every((b) => b === 0)) break;
      return { notes, stop: { kind: 'truncated', at: pos, left: room } };
    }
    const namesz = dv.getUint32(pos, le);
    const descsz = dv.getUint32(pos + 4, le);
    const type = dv.getUint32(pos + 8, le);
    // namesz is bounded first: align() works on 32-bit integers.
    if (namesz > room - 12) return { notes, stop: { kind: 'overrun', at: pos, room, namesz, descsz } };
    const descOff = up(12 + namesz);
    if (descOff > room || descsz > room - descOff) return { notes, stop: { kind: 'overrun', at: pos, room, namesz, descsz } };
    notes.push({ at: pos, namesz, descsz, type, descAt: pos + descOff });
    pos += Math.max(up(descOff + descsz), 12);
  }
  return { notes };
}
