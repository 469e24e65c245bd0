/**
 * `xsplice inspect`: what a payload is, read from the file alone: the payload ABI it was built for
 * (recognised from its section names, funcs entry size and version byte), its build-id, depends and
 * xen_depends, each funcs entry with the symbols its pointers are relocated against, the hooks,
 * the special sections with entry counts, and the undefined symbols the loader will resolve.
 */
import { readElf } from '../elf/reader.js';
import { SHN, SHT, flagLetters, shtName } from '../elf/constants.js';
import type { ElfFile, ElfRelocation, ElfSection, ElfSymbol } from '../elf/types.js';
import { parseBuildIdNote, toHex } from '../buildid/note.js';
import { FormatError } from '../errors.js';
import type { Arch, PayloadAbi } from './abi-types.js';
import { archOfMachine, listAbis } from './abi.js';
import { decodeFuncEntries } from './funcs.js';

export interface InspectFunc {
  index: number;
  /** The function being patched (the string `name` points at). */
  name: string | null;
  /** Symbol `new_addr` is relocated against (with +addend), or null (NOP patch / absolute). */
  newSymbol: string | null;
  /** "0x…" as stored, or the symbol it is relocated against. */
  oldAddr: string;
  newSize: number;
  oldSize: number;
  version: number;
  expect?: { enabled: boolean; len: number; data: string };
}

export interface InspectSection {
  index: number;
  name: string;
  /** "SHT_PROGBITS"… */
  type: string;
  flags: string;
  size: number;
  /** For sections with fixed-size entries (funcs, hooks, bug frames, alternatives, …). */
  entrySize?: number;
  entries?: number;
}

export interface InspectResult {
  file: string;
  abi: { name: string; version: number | null; arch: Arch | null; compatible: string[]; releases: string };
  buildId: string | null;
  depends: string | null;
  xenDepends: string | null;
  funcs: InspectFunc[];
  hooks: Record<string, string[]>;
  sections: InspectSection[];
  undefinedSymbols: string[];
  modinfo?: string[];
}

function sym(s: ElfSymbol | undefined, addend: bigint): string {
  if (!s) return '?';
  const n = s.name || `[${s.index}]`;
  return addend === 0n ? n : `${n}${addend < 0n ? '-' : '+'}0x${(addend < 0n ? -addend : addend).toString(16)}`;
}

/**
 * The ABI rows a payload fits, vendor rows (`extra`, from --abi-file) first: by each row's own
 * section names, the funcs version byte and entry size. A payload without funcs (hooks only) fits
 * a row whose depends section it has (version 2 rows also need their xen_depends section).
 */
export function recognizeAbi(elf: ElfFile, arch: Arch | null, extra: PayloadAbi[] = []): { rows: PayloadAbi[]; version: number | null } {
  const rows = [...extra, ...listAbis()].filter((a) => arch === null || a.arch === arch);
  // The version byte as found, even when no row fits (for the damaged-funcs report).
  let version: number | null = null;
  for (const a of rows) {
    const funcs = elf.sectionByName(a.sections.funcs);
    if (!funcs || funcs.type === SHT.NOBITS || funcs.size === 0n) continue;
    const d = funcs.data();
    const vOff = a.funcEntry.fields.version.offset;
    if (d.length > vOff) version = d[vOff]!;
    break;
  }
  const fits = rows.filter((a) => {
    const funcs = elf.sectionByName(a.sections.funcs);
    if (funcs) {
      if (funcs.type === SHT.NOBITS || funcs.size === 0n) return !!elf.sectionByName(a.sections.depends);
      if (Number(funcs.size) % a.funcEntry.size !== 0) return false;
      const d = funcs.data();
      const vOff = a.funcEntry.fields.version.offset;
      const ver = d.length > vOff ? d[vOff]! : null;
      return ver === a.funcEntry.version;
    }
    // Hooks only: the row's depends section, and xen_depends exactly when the row has one.
    if (!elf.sectionByName(a.sections.depends)) return false;
    return !!(a.sections.xenDepends && elf.sectionByName(a.sections.xenDepends)) === (a.sections.xenDepends !== null);
  });
  return { rows: fits, version };
}

function note(elf: ElfFile, name: string): string | null {
  const s = elf.sectionByName(name);
  if (!s || s.type === SHT.NOBITS) return null;
  const p = parseBuildIdNote(s.data(), elf.header.littleEndian);
  return p.ok ? toHex(p.id) : null;
}

export interface InspectOptions {
  /** Vendor rows (--abi-file): a payload built for one of them is recognised as such. */
  abis?: PayloadAbi[];
}

export function inspectPayload(bytes: Uint8Array, file: string, opts: InspectOptions = {}): InspectResult {
  const elf = readElf(bytes, { file });
  if (elf.header.type !== 1) throw new FormatError('NOT_RELOCATABLE', 'not a live-patch payload: ELF type is not ET_REL', { file });
  const arch = archOfMachine(elf.header.machine) ?? null;
  const extra = opts.abis ?? [];
  const { rows, version } = recognizeAbi(elf, arch, extra);
  // A vendor row that fits wins; else the newest built-in row.
  const abi = rows.find((r) => extra.includes(r)) ?? rows[rows.length - 1];
  // Not a payload, or one whose funcs section no payload ABI reads: an error, never a guessed ABI.
  const known = [...extra, ...listAbis()].filter((a) => arch === null || a.arch === arch);
  const funcsNames = [...new Set(known.map((a) => a.sections.funcs))];
  const dependsNames = [...new Set(known.map((a) => a.sections.depends))];
  const funcsName = funcsNames.find((n) => elf.sectionByName(n));
  if (!funcsName && !dependsNames.some((n) => elf.sectionByName(n))) {
    // Sections named like a payload's but unknown to every row: perhaps a vendor row's payload.
    const vendorLike = !extra.length && elf.sections.some((sec) => /\.(funcs|depends)$/.test(sec.name));
    const hint = vendorLike ? ' (a payload built for a vendor ABI row: pass its --abi-file)' : '';
    const names = [...funcsNames, ...dependsNames].sort(
      (a, b) => Number(b.startsWith('.livepatch.')) - Number(a.startsWith('.livepatch.')) || a.localeCompare(b),
    );
    throw new FormatError(
      'NOT_A_PAYLOAD',
      `not a live-patch payload: no ${names.slice(0, -1).join(', ')} or ${names[names.length - 1]} section${hint}`,
      { file },
    );
  }
  if (funcsName && (!abi || elf.sectionByName(funcsName)!.type === SHT.NOBITS)) {
    const sec = elf.sectionByName(funcsName)!;
    const candidates = known.filter((a) => a.sections.funcs === funcsName);
    const sizes = [...new Set(candidates.map((a) => `${a.funcEntry.size} (version ${a.funcEntry.version})`))].join(', ');
    throw new FormatError('FUNCS_DAMAGED', 'damaged funcs section: no payload ABI reads it', {
      file,
      section: funcsName,
      expected: `a multiple of an entry size: ${sizes}`,
      found: `${sec.type === SHT.NOBITS ? 'SHT_NOBITS, ' : ''}size ${sec.size}${version !== null ? `, version byte ${version}` : ''}`,
    });
  }
  const symbols = elf.symbols();
  const relocsFor = (target: ElfSection): Map<bigint, ElfRelocation> => {
    const m = new Map<bigint, ElfRelocation>();
    for (const rs of elf.relocations()) if (rs.target === target.index) for (const e of rs.entries) m.set(e.offset, e);
    return m;
  };
  // The string a relocated pointer designates: symbol value + addend inside its section.
  const stringOf = (r: ElfRelocation | undefined): string | null => {
    if (!r) return null;
    const s = symbols[r.symbol];
    if (!s || s.shndx === SHN.UNDEF || s.shndx >= elf.sections.length) return null;
    const sec = elf.sections[s.shndx]!;
    if (sec.type === SHT.NOBITS) return null;
    const off = Number(s.value + (r.addend ?? 0n));
    const d = sec.data();
    if (off < 0 || off >= d.length) return null;
    const end = d.indexOf(0, off);
    return Buffer.from(d.subarray(off, end < 0 ? d.length : end)).toString('latin1');
  };
  const funcs: InspectFunc[] = [];
  const funcsSec = abi ? elf.sectionByName(abi.sections.funcs) : undefined;
  if (abi && funcsSec && funcsSec.type !== SHT.NOBITS && Number(funcsSec.size) % abi.funcEntry.size === 0) {
    const rel = relocsFor(funcsSec);
    const F = abi.funcEntry.fields;
    decodeFuncEntries(abi, funcsSec.data(), elf.header.littleEndian).forEach((e, i) => {
      const base = BigInt(i * abi.funcEntry.size);
      const rName = rel.get(base + BigInt(F.name.offset));
      const rNew = rel.get(base + BigInt(F.newAddr.offset));
      const rOld = rel.get(base + BigInt(F.oldAddr.offset));
      const f: InspectFunc = {
        index: i,
        name: stringOf(rName),
        newSymbol: rNew ? sym(symbols[rNew.symbol], rNew.addend ?? 0n) : e.newAddr ? `0x${e.newAddr.toString(16)}` : null,
        oldAddr: rOld ? sym(symbols[rOld.symbol], rOld.addend ?? 0n) : `0x${e.oldAddr.toString(16)}`,
        newSize: e.newSize,
        oldSize: e.oldSize,
        version: e.version ?? 0,
      };
      if (e.expect && e.expect.enabled)
        f.expect = { enabled: true, len: e.expect.len, data: toHex(e.expect.data.subarray(0, e.expect.len)) };
      funcs.push(f);
    });
  }
  const hooks: Record<string, string[]> = {};
  for (const h of abi?.hooks ?? []) {
    const s = elf.sectionByName(h.section);
    if (!s) continue;
    const rel = relocsFor(s);
    const list: string[] = [];
    for (let o = 0n; o + BigInt(abi!.pointerSize) <= s.size; o += BigInt(abi!.pointerSize)) {
      const r = rel.get(o);
      list.push(r ? sym(symbols[r.symbol], r.addend ?? 0n) : '0x0');
    }
    hooks[h.kind] = list;
  }
  const entrySizes = new Map<string, number>();
  if (abi) {
    entrySizes.set(abi.sections.funcs, abi.funcEntry.size);
    for (const s of abi.special) entrySizes.set(s.section, s.entrySize);
  }
  const sections: InspectSection[] = elf.sections
    .filter((s) => s.index > 0)
    .map((s) => {
      const out: InspectSection = {
        index: s.index,
        name: s.name,
        type: shtName(s.type, elf.header.machine),
        flags: flagLetters(s.flags, elf.header.machine, elf.header.osabi),
        size: Number(s.size),
      };
      const es = entrySizes.get(s.name);
      if (es) {
        out.entrySize = es;
        out.entries = Math.floor(Number(s.size) / es);
      }
      return out;
    });
  const undefinedSymbols = [...new Set(symbols.filter((s) => s.index > 0 && s.shndx === SHN.UNDEF && s.name !== '').map((s) => s.name))];
  const result: InspectResult = {
    file,
    abi: {
      name: abi ? abi.name : 'unknown',
      version,
      arch,
      compatible: rows.map((r) => r.id),
      releases: rows.map((r) => r.releases).join('; '),
    },
    buildId: note(elf, abi?.sections.buildId ?? '.note.gnu.build-id'),
    depends: note(elf, abi?.sections.depends ?? '.livepatch.depends'),
    xenDepends: abi && abi.sections.xenDepends === null ? null : note(elf, abi?.sections.xenDepends ?? '.livepatch.xen_depends'),
    funcs,
    hooks,
    sections,
    undefinedSymbols,
  };
  const mi = elf.sectionByName(abi?.sections.modinfo ?? '.modinfo');
  if (mi && mi.type !== SHT.NOBITS && mi.size > 0n) {
    result.modinfo = Buffer.from(mi.data())
      .toString('latin1')
      .split('\0')
      .filter((x) => x !== '');
  }
  return result;
}

/** Human-readable rendering. */
export function formatInspect(r: InspectResult): string {
  const L: string[] = [];
  L.push(`${r.file}`);
  L.push(
    `  abi:          ${r.abi.name} (payload version ${r.abi.version ?? '?'}, ${r.abi.arch ?? 'unknown arch'})${r.abi.compatible.length > 1 ? ` — fits ${r.abi.compatible.join(', ')}` : ''}`,
  );
  if (r.abi.releases) L.push(`  releases:     ${r.abi.releases}`);
  L.push(`  build-id:     ${r.buildId ?? '(none)'}`);
  L.push(`  depends:      ${r.depends ?? '(none)'}`);
  L.push(`  xen_depends:  ${r.xenDepends ?? '(none)'}`);
  if (r.modinfo) L.push(`  modinfo:      ${r.modinfo.join('; ')}`);
  L.push(`  funcs:        ${r.funcs.length}`);
  for (const f of r.funcs) {
    const what = f.newSymbol === null ? `NOP ${f.newSize} bytes` : `-> ${f.newSymbol} (${f.newSize} bytes)`;
    L.push(
      `    [${f.index}] ${f.name ?? '?'} @ ${f.oldAddr} (${f.oldSize} bytes) ${what}, version ${f.version}${f.expect ? `, expects ${f.expect.data}` : ''}`,
    );
  }
  const hk = Object.entries(r.hooks);
  if (hk.length) {
    L.push('  hooks:');
    for (const [k, v] of hk) L.push(`    ${k.padEnd(12)} ${v.join(', ')}`);
  }
  L.push('  sections:');
  for (const s of r.sections) {
    const n = s.entries !== undefined ? `  ${s.entries} × ${s.entrySize}` : '';
    L.push(`    [${String(s.index).padStart(2)}] ${s.name.padEnd(28)} ${s.flags.padEnd(3)} ${String(s.size).padStart(7)}${n}`);
  }
  L.push(`  undefined symbols (${r.undefinedSymbols.length}): ${r.undefinedSymbols.join(', ') || '(none)'}`);
  return L.join('\n') + '\n';
}
