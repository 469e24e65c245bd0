/**
 * x86-64 instruction boundaries and control flow, decoded by iced-x86 (a maintained decoder; MIT,
 * WebAssembly). The module is loaded on first use only, so commands that never decode x86 code do
 * not pay for it.
 */
import { createRequire } from 'node:module';

export type InsnKind = 'ret' | 'jmp' | 'jmp-indirect' | 'call' | 'call-indirect' | 'other' | 'invalid';

export interface Insn {
  /** Offset in the decoded bytes. */
  offset: number;
  length: number;
  kind: InsnKind;
  /** Target of a direct near jmp/call/jcc (absolute, from the `ip` given). */
  target?: bigint;
  /** iced-x86's text, e.g. "jmp near ptr 0FFFF82D04020A3E0h". */
  text: string;
}

type Iced = typeof import('iced-x86');
let iced: Iced | undefined;

function load(): Iced {
  iced ??= createRequire(import.meta.url)('iced-x86') as Iced;
  return iced;
}

/** Decodes `bytes` as 64-bit code at address `ip`, to the end of the bytes. */
export function decodeX86(bytes: Uint8Array, ip: bigint): Insn[] {
  const x = load();
  const d = new x.Decoder(64, bytes, x.DecoderOptions.None);
  const ins = new x.Instruction();
  const out: Insn[] = [];
  try {
    d.ip = ip;
    while (d.canDecode) {
      const offset = d.position;
      d.decodeOut(ins);
      let kind: InsnKind = 'other';
      if (ins.isInvalid) kind = 'invalid';
      else {
        switch (ins.flowControl) {
          case x.FlowControl.Return:
            kind = 'ret';
            break;
          case x.FlowControl.UnconditionalBranch:
            kind = 'jmp';
            break;
          case x.FlowControl.IndirectBranch:
            kind = 'jmp-indirect';
            break;
          case x.FlowControl.Call:
            kind = 'call';
            break;
          case x.FlowControl.IndirectCall:
            kind = 'call-indirect';
            break;
          default:
            kind = 'other';
        }
      }
      const i: Insn = { offset, length: ins.length, kind, text: ins.toString() };
      if (kind === 'jmp' || kind === 'call' || ins.flowControl === x.FlowControl.ConditionalBranch) i.target = ins.nearBranchTarget;
      out.push(i);
    }
  } finally {
    ins.free();
    d.free();
  }
  return out;
}
