/**
 * x86-64 instruction boundaries and text, from iced-x86 (loaded lazily: only `diff` paths that look
 * at code need it). Used for the true target of PC-relative relocations (the field is not always
 * the last 4 bytes of the instruction: `movb $1, x(%rip)` ends one byte later), for `__LINE__`-only
 * detection (§3.2) and for the first differing instruction in explanations.
 */
import { createRequire } from 'node:module';

export interface Insn {
  /** Offset of the instruction in the decoded buffer. */
  off: number;
  len: number;
  /** Intel-free GNU-style text, e.g. "mov $0x385,%edx". */
  text?: string;
}

type Iced = typeof import('iced-x86');
let iced: Iced | undefined;

function lib(): Iced {
  if (!iced) iced = createRequire(import.meta.url)('iced-x86') as Iced;
  return iced;
}

/** Instruction starts and lengths over `bytes` (invalid bytes decode as 1-byte instructions). */
export function decode(bytes: Uint8Array, withText = false): Insn[] {
  const I = lib();
  const dec = new I.Decoder(64, bytes, I.DecoderOptions.None);
  const fmt = withText ? new I.Formatter(I.FormatterSyntax.Gas) : undefined;
  if (fmt) fmt.ripRelativeAddresses = true;
  const out: Insn[] = [];
  const insn = new I.Instruction();
  try {
    while (dec.canDecode) {
      const off = dec.position;
      dec.decodeOut(insn);
      const len = insn.length;
      out.push(fmt ? { off, len, text: fmt.format(insn) } : { off, len });
    }
  } finally {
    insn.free();
    fmt?.free();
    dec.free();
  }
  return out;
}

/** Index of the instruction containing byte `off` (binary search), or -1. */
export function insnAt(insns: readonly Insn[], off: number): number {
  let lo = 0;
  let hi = insns.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const x = insns[mid]!;
    if (off < x.off) hi = mid - 1;
    else if (off >= x.off + x.len) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Text of one instruction at `off` in `bytes`. */
export function insnText(bytes: Uint8Array, off: number): string {
  const list = decode(bytes.subarray(off, Math.min(bytes.length, off + 15)), true);
  return list[0]?.text ?? '(none)';
}
