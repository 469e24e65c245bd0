/**
 * Build stage: the funcs entries (one per --patch / --nop: old function from the target, replacement
 * from the objects, sizes, the ENDBR-aware patch size, the expectation block) and the hook arrays.
 */
import { RefusedError, UsageError } from '../../errors.js';
import { STB, STT } from '../../elf/constants.js';
import type { PayloadAbi } from '../abi-types.js';
import { hookRule } from '../abi.js';
import type { Expectation } from '../funcs.js';
import type { Target, TargetSymbol } from '../target.js';
import { dependsFunction } from './checks.js';
import { refuse, refuseAs, type EntryPlan, type HookArray, type Merged, type MSymbol } from './model.js';
import type { BuildOptions, HookRequest } from './types.js';

interface OldFunction {
  name: string;
  addr: bigint;
  size: number;
  sym?: TargetSymbol;
}

/** Finds a replacement (or hook) symbol among the merged objects by name, plain or `file#name`. */
export type FindNew = (name: string) => number;

export function newSymbolFinder(merged: Merged, objects: BuildOptions['objects']): FindNew {
  const symIndex = new Map<string, number[]>();
  merged.syms.forEach((s, i) => {
    if (s.name === '') return;
    const l = symIndex.get(s.name);
    if (l) l.push(i);
    else symIndex.set(s.name, [i]);
  });
  return (name) => findObjectSymbol(merged, symIndex, name, objects);
}

/** The funcs entries, in request order: patches, then NOPs. */
export function funcEntries(opts: BuildOptions, merged: Merged, findNew: FindNew, warn: (w: string) => void): EntryPlan[] {
  const { abi } = opts;
  const entries: EntryPlan[] = [];
  const seenOld = new Map<string, string>();
  const checkDup = (name: string, what: string): void => {
    const prev = seenOld.get(name);
    if (prev) refuse('BUILD_DUPLICATE_OLD', `${name} is patched twice (${prev} and ${what})`, { symbol: name });
    seenOld.set(name, what);
  };
  for (const p of opts.patches ?? []) {
    const o = oldFromTarget(opts, p.old, p);
    const newName = p.new ?? (p.old.includes('#') ? p.old.slice(p.old.lastIndexOf('#') + 1) : p.old);
    if (/^0x/i.test(newName)) throw new UsageError('BUILD_PATCH_NEW', `--patch ${p.old}: give the replacement symbol as OLD=NEW`);
    const ni = findNew(newName);
    const ns = merged.syms[ni]!;
    const newSize = p.newSize ?? Number(ns.spec.size);
    checkDup(o.name, `--patch ${p.old}`);
    if (newSize === 0 && !abi.nopAllowed)
      refuseAs(
        'FUNC_ZERO_FIELDS',
        `${newName} has size 0 (no .size directive?); ${abi.id} refuses new_size 0 ("Address or size fields are zero") — give newSize in --spec`,
        { symbol: newName },
        'BUILD_NEW_SIZE',
      );
    if (newSize === 0) warn(`${newName} has st_size 0 (no .size directive?): new_size 0`);
    if (o.size === 0) refuseAs('FUNC_ZERO_FIELDS', `old_size of ${o.name} is 0 ("Address or size fields are zero")`, { symbol: o.name });
    const addrForBytes = o.sym?.value ?? o.addr;
    const endbr = targetStartsWithEndbr(abi, opts.target, addrForBytes);
    const need = abi.patchSize + (endbr ? abi.endbrOffset : 0);
    if (o.size < need) {
      refuseAs(
        'FUNC_OLD_SIZE',
        `${o.name} is ${o.size} bytes, smaller than the ${need}-byte patch${endbr ? ' (jump after ENDBR64)' : ''}; the hypervisor would refuse it (-EINVAL)`,
        { symbol: o.name, expected: `old_size ≥ ${need}`, found: o.size },
      );
    }
    if (ns.spec.type !== STT.FUNC && ns.spec.type !== STT.NOTYPE) warn(`replacement ${newName} is not a function symbol`);
    entries.push(
      withExpect({ name: o.name, newSym: ni, oldAddr: o.addr, newSize, oldSize: o.size }, expectFor(opts, addrForBytes, o.size, p.old)),
    );
  }
  for (const n of opts.nops ?? []) {
    if (!abi.nopAllowed) refuse('BUILD_NOP_UNSUPPORTED', `payload ABI ${abi.id} has no NOP patching (Xen 4.8+)`, { symbol: n.old });
    const o = oldFromTarget(opts, n.old, n);
    const len = n.len ?? o.size;
    checkDup(o.name, `--nop ${n.old}`);
    const addrForBytes = o.sym?.value ?? o.addr;
    const endbr = targetStartsWithEndbr(abi, opts.target, addrForBytes);
    if (len > abi.nopMaxLen)
      refuseAs(
        'FUNC_NOP_TOO_LONG',
        `NOP length ${len} for ${o.name} exceeds ${abi.nopMaxLen} bytes${n.len === undefined ? ' (give :LEN)' : ''}`,
        { symbol: o.name, expected: `≤ ${abi.nopMaxLen}`, found: len },
      );
    const gran = abi.nopGranule ?? 1;
    if (len % gran)
      refuseAs('FUNC_NOP_TOO_LONG', `NOP length ${len} for ${o.name} is not a multiple of ${gran} (whole instructions)`, {
        symbol: o.name,
      });
    if (o.size === 0) refuseAs('FUNC_ZERO_FIELDS', `old_size of ${o.name} is 0`, { symbol: o.name });
    if (o.size < len) refuseAs('FUNC_NOP_OLD_SIZE', `NOP length ${len} exceeds ${o.name}'s ${o.size} bytes`, { symbol: o.name });
    if (abi.arch !== 'x86_64' && o.size < abi.patchSize)
      refuseAs('FUNC_OLD_SIZE', `${o.name} is smaller than one instruction`, { symbol: o.name });
    if (endbr && len <= abi.endbrOffset)
      refuseAs(
        'UNCHECKED_NOP_ENDBR',
        `${o.name} starts with ENDBR64: a NOP length of ${len} would underflow (needs > ${abi.endbrOffset})`,
        { symbol: o.name },
      );
    entries.push(
      withExpect(
        { name: o.name, newSym: null, oldAddr: o.addr, newSize: len, oldSize: o.size },
        expectFor(opts, addrForBytes, o.size, n.old),
      ),
    );
  }
  for (const e of entries) {
    if (e.name.length > abi.limits.maxSymbolLen)
      refuse('BUILD_NAME_LONG', `${e.name} is longer than the hypervisor's ${abi.limits.maxSymbolLen}-character symbol names`, {
        symbol: e.name,
      });
  }
  return entries;
}

/** The hook arrays by section, each with its functions in request order. */
export function hookArrays(abi: PayloadAbi, hooks: readonly HookRequest[], target: Target, findNew: FindNew): Map<string, HookArray> {
  const arrays = new Map<string, HookArray>();
  for (const r of hooks) {
    const rule = hookRule(abi, r.kind);
    let entry = arrays.get(rule.section);
    if (!entry) arrays.set(rule.section, (entry = { rule, syms: [] }));
    if (!rule.array && entry.syms.length >= 1)
      refuse('BUILD_HOOK_SINGLE', `hook kind ${r.kind} takes exactly one function (${rule.section} must hold one pointer)`, {
        symbol: r.symbol,
      });
    let si: number | string;
    try {
      si = findNew(r.symbol);
    } catch (e) {
      if (!(e instanceof RefusedError) || e.code !== 'BUILD_NEW_UNKNOWN' || !target.symbols?.has(r.symbol)) throw e;
      si = r.symbol; // a hypervisor function
    }
    entry.syms.push({ sym: si, name: r.symbol });
  }
  return arrays;
}

function withExpect(e: EntryPlan, expect: Expectation | undefined): EntryPlan {
  return expect ? { ...e, expect } : e;
}

function oldFromTarget(opts: BuildOptions, old: string, req: { oldSize?: number; oldAddr?: bigint }): OldFunction {
  const { target } = opts;
  const oldMode = opts.oldAddr ?? 'address';
  if (/^0x[0-9a-f]+$/i.test(old)) {
    const addr = BigInt(old);
    if (!target.symbols) refuse('BUILD_OLD_ADDR', `OLD given as address ${old}, but XEN has no symbol table to name it`, { symbol: old });
    const at = [...target.symbols.all()].filter((s) => s.value === addr && s.type === STT.FUNC);
    if (at.length === 0) refuse('BUILD_OLD_ADDR', `no function of the target starts at ${old}`, { symbol: old });
    if (at.length > 1)
      refuse('SYMBOL_AMBIGUOUS', `several functions start at ${old}: ${at.map((s) => s.name).join(', ')}; name one instead`, {
        symbol: old,
      });
    const s = at[0]!;
    return { name: s.name, addr: req.oldAddr ?? (oldMode === 'name' ? 0n : s.value), size: req.oldSize ?? Number(s.size), sym: s };
  }
  // A function the payload below in the stack introduced: Xen resolves old_addr 0 by name among
  // the loaded payloads (livepatch_symbols_lookup_by_name), as verify models.
  const lower = opts.depends?.payload && !target.symbols?.has(old) ? dependsFunction(opts.depends.payload, old) : undefined;
  if (lower) return { name: old, addr: req.oldAddr ?? 0n, size: req.oldSize ?? lower.size };
  if (target.symbols) {
    const s = target.symbols.lookup(old);
    if (s.type !== STT.FUNC) refuse('BUILD_OLD_NOT_FUNC', `the target's ${old} is not a function (STT ${s.type})`, { symbol: old });
    return { name: s.name, addr: req.oldAddr ?? (oldMode === 'name' ? 0n : s.value), size: req.oldSize ?? Number(s.size), sym: s };
  }
  if (req.oldSize === undefined) {
    throw new UsageError('BUILD_NEED_SIZE', `XEN is only a build-id: give oldSize for ${old} in --spec`, { symbol: old });
  }
  return { name: old, addr: req.oldAddr ?? 0n, size: req.oldSize };
}

function targetStartsWithEndbr(abi: PayloadAbi, target: Target, addr: bigint): boolean {
  if (!target.bytesAt || addr === 0n || abi.endbrOffset === 0) return false;
  try {
    const b = target.bytesAt(addr, 4);
    // The ENDBR "poison" counts from 4.17.0 only (the row's endbrPoison; unknown release: assume it does).
    const poison = abi.loader?.features?.endbrPoison ?? true;
    return (
      (b[0] === 0xf3 && b[1] === 0x0f && b[2] === 0x1e && b[3] === 0xfa) ||
      (poison && b[0] === 0x66 && b[1] === 0x0f && b[2] === 0x1f && b[3] === 0x01)
    );
  } catch {
    return false;
  }
}

function expectFor(opts: BuildOptions, addrOfBytes: bigint, oldSize: number, old: string): Expectation | undefined {
  if (!opts.expect) return undefined;
  const { abi, target } = opts;
  if (!abi.funcEntry.fields.expect)
    throw new UsageError('EXPECT_UNSUPPORTED', `--expect: payload ABI ${abi.id} has no expectation block (Xen 4.14+)`);
  if (!target.bytesAt || addrOfBytes === 0n)
    throw new UsageError('EXPECT_NO_BYTES', `--expect needs the target's code: XEN must be a symbol file or image (for ${old})`, {
      symbol: old,
    });
  const len = Math.min(31, oldSize);
  const data = target.bytesAt(addrOfBytes, len).slice();
  return { enabled: true, len, rsv: 0, data };
}

/** A defined symbol of the merged objects by name (plain, or `file#name` for a local). */
function findObjectSymbol(merged: Merged, index: Map<string, number[]>, name: string, objects: BuildOptions['objects']): number {
  const { syms, resolve } = merged;
  // A global whose name is itself `file#name` (what diff emits for a replaced static function).
  const exact = (index.get(name) ?? []).filter(
    (i) => resolve(i) === i && typeof syms[i]!.sec === 'number' && syms[i]!.spec.bind !== STB.LOCAL,
  );
  if (name.includes('#') && exact.length === 1) return exact[0]!;
  const hash = name.lastIndexOf('#');
  const file = hash > 0 ? name.slice(0, hash) : undefined;
  const plain = hash > 0 ? name.slice(hash + 1) : name;
  const defined = (s: MSymbol): boolean => typeof s.sec === 'number' || s.sec === 'ABS';
  const globals: number[] = [];
  const locals: number[] = [];
  const candidates = index.get(plain) ?? [];
  candidates.forEach((i) => {
    const s = syms[i]!;
    if (resolve(i) !== i || !defined(s) || s.spec.type === STT.SECTION || s.spec.type === STT.FILE) return;
    if (s.spec.bind === STB.LOCAL) {
      if (file === undefined || s.file === file || (s.file && s.file.endsWith('/' + file))) locals.push(i);
    } else if (file === undefined) globals.push(i);
  });
  if (globals.length === 1) return globals[0]!;
  if (globals.length === 0 && locals.length === 1) return locals[0]!;
  if (globals.length + locals.length === 0) {
    const und = candidates.some((i) => syms[i]!.sec === 'UND');
    refuse('BUILD_NEW_UNKNOWN', `the objects define no symbol ${name}${und ? ' (it is only referenced)' : ''}`, { symbol: name });
  }
  const where = [...globals, ...locals].map((i) => `${syms[i]!.file ? syms[i]!.file + '#' : ''}${plain} in ${objects[syms[i]!.obj]!.name}`);
  refuse('SYMBOL_AMBIGUOUS', `${name} names several symbols of the objects: ${where.join(', ')}; name it as file#name`, { symbol: name });
}
