/**
 * Verify, prepare_payload (§2.10(a)): the funcs entries as the loader decodes, resolves and checks
 * them, and the NOP ranges decoded from the target's code (§2.14).
 */
import { ENDBR64, ENDBR64_POISON, SHF } from '../../elf/constants.js';
import type { DiagContext } from '../diagnostics.js';
import { decodeFuncEntries } from '../funcs.js';
import { stringAt, type LoadedElf, type SymbolSpace, type XSection } from '../verify-load.js';
import { decodeX86 } from '../x86-decode.js';
import { sectionOk } from './prepare-checks.js';
import { bytesAtLoaded, type Collector, type VerifiedFunc, type VerifyContext } from './types.js';

/** §2.10(a): funcs entries. */
export function prepareFuncs(
  elf: LoadedElf,
  sec: XSection | undefined,
  c: VerifyContext,
  col: Collector,
  space: SymbolSpace,
  linkOk: boolean,
): VerifiedFunc[] {
  const { abi, rules: r } = c;
  if (!sec || !sec.mem) return [];
  const L = abi.funcEntry;
  if (!sectionOk(sec, L.size, col)) return [];
  const entries = decodeFuncEntries(abi, sec.mem, true);
  const out: VerifiedFunc[] = [];
  const arm = abi.arch !== 'x86_64';
  entries.forEach((e, i) => {
    const off = i * L.size;
    const ctx = { section: sec.name, offset: off };
    const name = stringAt(elf, e.name);
    const f: VerifiedFunc = {
      index: i,
      namePtr: e.name,
      oldAddr: e.oldAddr,
      newAddr: e.newAddr,
      newSize: e.newSize,
      oldSize: e.oldSize,
      version: e.version ?? 0,
      ...(name !== undefined ? { name } : {}),
      ...(e.expect ? { expect: e.expect } : {}),
    };
    out.push(f);
    const label = name ?? `entry ${i}`;
    if (f.version !== L.version) {
      col.add('FUNC_VERSION', { found: f.version, expected: L.version }, { ...ctx, ...(name ? { symbol: name } : {}) });
      return;
    }
    if (!r.features.nopPatching ? f.newAddr === 0n || f.newSize === 0 : f.oldSize === 0) {
      col.add('FUNC_ZERO_FIELDS', {}, { ...ctx, ...(name ? { symbol: name } : {}) });
      return;
    }
    // A NULL name with old_addr set is harmless: Xen prints "<NULL>" and uses name ?: "unknown".
    if (name === undefined && (f.oldAddr === 0n || (linkOk && e.name !== 0n))) {
      // The name is printed in log messages, and resolved when old_addr is 0.
      col.add('UNCHECKED_NAME_POINTER', { entry: i, addr: e.name }, ctx);
      if (f.oldAddr === 0n) return;
    }
    const resolve = (): boolean => {
      if (f.oldAddr !== 0n) {
        f.resolvedFrom = 'given';
        return true;
      }
      const x = space.xen(name!);
      if (x) {
        f.oldAddr = x;
        f.resolvedFrom = 'xen';
        return true;
      }
      const p = space.payloads(name!);
      if (p) {
        f.oldAddr = p.value;
        f.resolvedFrom = p.payload;
        return true;
      }
      if (x === null) {
        f.resolvedFrom = 'unchecked';
        return true;
      }
      col.add('FUNC_UNRESOLVED', { symbol: name }, { ...ctx, symbol: name! });
      return false;
    };
    const verify = (): boolean => {
      if (f.newAddr === 0n) {
        if (f.newSize > abi.nopMaxLen || (arm && f.newSize % (abi.nopGranule ?? 4) !== 0)) {
          col.add('FUNC_NOP_TOO_LONG', { symbol: label, size: f.newSize, arm: arm ? 1 : undefined }, { ...ctx, symbol: label });
          return false;
        }
        if (!arm && f.oldSize < f.newSize) {
          col.add('FUNC_NOP_OLD_SIZE', { symbol: label, oldSize: f.oldSize, newSize: f.newSize }, { ...ctx, symbol: label });
          return false;
        }
      }
      const endbr = !arm && r.features.endbr && startsWithEndbr(c, f.oldAddr, r.features.endbrPoison);
      if (f.newAddr === 0n && endbr && f.newSize > 0 && f.newSize < abi.endbrOffset)
        col.add('UNCHECKED_NOP_ENDBR', { symbol: label, size: f.newSize }, { ...ctx, symbol: label });
      if (arm ? f.oldSize < abi.patchSize : f.newAddr !== 0n) {
        const needed = abi.patchSize + (endbr ? abi.endbrOffset : 0);
        if (f.oldSize < needed) {
          col.add('FUNC_OLD_SIZE', { symbol: label, oldSize: f.oldSize, needed, endbr: endbr ? 1 : undefined }, { ...ctx, symbol: label });
          return false;
        }
      }
      return true;
    };
    if (r.features.resolveBeforeVerify) {
      if (!resolve() || !verify()) return;
    } else if (!verify() || !resolve()) return;
    if (f.newAddr === 0n && !arm && f.resolvedFrom !== 'unchecked') checkNopRange(c, col, f, label, ctx);
    if (r.features.distanceCheck && f.newAddr !== 0n && f.resolvedFrom !== 'unchecked') {
      const reach = r.branchReach;
      const d = BigInt.asIntN(64, f.oldAddr - f.newAddr);
      if (d < -reach || d >= reach) {
        col.add('FUNC_DISTANCE', { symbol: label, oldAddr: f.oldAddr, newAddr: f.newAddr }, { ...ctx, symbol: label });
      }
    }
  });
  // Unchecked: scratch bytes the hypervisor reads (the row's hypervisorState: L2a/L2b applied, L2b patch_offset) and pads.
  const scratch = L.hypervisorState ?? [];
  entries.forEach((e, i) => {
    const nz = e.scratchNonZero ?? [];
    if (!nz.length) return;
    const label = out[i]?.name ?? `entry ${i}`;
    if (nz.some((o) => scratch.includes(o)))
      col.add(
        'UNCHECKED_SCRATCH_NONZERO',
        { entry: i, symbol: label },
        { section: sec.name, offset: i * L.size + nz.find((o) => scratch.includes(o))! },
      );
    else col.add('NOTE_PAD_NONZERO', { entry: i, symbol: label }, { section: sec.name, offset: i * L.size + nz[0]! });
  });
  // Unchecked: one function patched twice in one payload.
  const byOld = new Map<bigint, number[]>();
  out.forEach((f) => {
    if (f.oldAddr) byOld.set(f.oldAddr, [...(byOld.get(f.oldAddr) ?? []), f.index]);
  });
  for (const [, idx] of byOld) {
    if (idx.length > 1)
      col.add(
        'UNCHECKED_DUPLICATE_FUNC',
        { symbol: out[idx[0]!]!.name ?? `entry ${idx[0]}`, entries: idx.join(', ') },
        { section: sec.name, offset: idx[1]! * L.size },
      );
  }
  // Unchecked: the entries are written at apply on this release.
  if (abi.funcsMustBeWritable && !(sec.flags & SHF.WRITE)) col.add('UNCHECKED_FUNCS_READONLY', {}, { section: sec.name });
  return out;
}

/** `len` bytes of code at `addr`: from a loaded payload, else from the target's image. */
function codeAt(c: VerifyContext, addr: bigint, len: number): Uint8Array | undefined {
  const b = bytesAtLoaded(c.loaded, c.target, addr, len);
  return b && b.length === len ? b : undefined;
}

/**
 * x86 NOP patch [issue 10, §2.14]: Xen writes NOPs over [old_addr + patch_offset, old_addr +
 * new_size). Decoded from the target's own bytes: the range must end on an instruction boundary,
 * and a range covering the function's return (ret, or its jmp to __x86_return_thunk) or its final
 * jump lets execution fall through into what follows.
 */
function checkNopRange(c: VerifyContext, col: Collector, f: VerifiedFunc, label: string, ctx: DiagContext): void {
  const { abi, rules: r } = c;
  if (f.newSize === 0 || f.oldSize === 0 || f.oldSize > 1 << 16) return;
  const code = codeAt(c, f.oldAddr, f.oldSize);
  if (!code) return;
  const endbr = r.features.endbr && startsWithEndbr(c, f.oldAddr, r.features.endbrPoison);
  const start = endbr ? abi.endbrOffset : 0;
  const end = f.newSize;
  if (end <= start) return;
  const insns = decodeX86(code, f.oldAddr);
  const split = insns.find((i) => i.offset < end && i.offset + i.length > end);
  if (split) {
    col.add(
      'UNCHECKED_NOP_SPLITS_INSN',
      { symbol: label, end, at: split.offset, len: split.length, insn: split.text },
      { ...ctx, symbol: label },
    );
    return;
  }
  const thunk = c.target.symbols?.find('__x86_return_thunk')[0]?.value;
  const inRange = insns.filter((i) => i.offset >= start && i.offset + i.length <= end);
  const last = insns[insns.length - 1];
  const covered =
    inRange.find((i) => i.kind === 'ret' || (i.kind === 'jmp' && thunk !== undefined && i.target === thunk)) ??
    (last && last.kind === 'jmp' && inRange.includes(last) ? last : undefined);
  if (covered) {
    const what =
      covered.kind === 'ret'
        ? 'return (ret)'
        : covered.target === thunk
          ? 'return (jmp __x86_return_thunk)'
          : `final jump (${covered.text})`;
    col.add('NOTE_NOP_COVERS_RETURN', { symbol: label, what, at: covered.offset }, { ...ctx, symbol: label });
  }
}

/** is_endbr64, and from 4.17.0 the ENDBR "poison" `66 0f 1f 01` too [Errata "ENDBR poison"]. */
function startsWithEndbr(c: VerifyContext, addr: bigint, poison: boolean): boolean {
  const b = bytesAtLoaded(c.loaded, c.target, addr, 4);
  if (!b || b.length < 4) return false;
  const is = (want: readonly number[]): boolean => want.every((x, i) => b[i] === x);
  return is(ENDBR64) || (poison && is(ENDBR64_POISON));
}
