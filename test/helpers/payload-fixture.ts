/**
 * A small, independent ELF64 little-endian ET_REL emitter for tests of `verify`/`inspect`: it shares
 * no code with the project's ELF writer or `xsplice build`, so a bug there cannot hide here.
 *
 * `new PayloadFixture()` describes a clean, minimal x86-64 payload for Xen 4.17.3+ (104-byte
 * version-2 `livepatch_func`, layout L2c): one replacement function `xsplice_fn` in .text that
 * returns a string, one funcs entry patching `xen_extra_version` (old_addr 0: resolved by name),
 * `.livepatch.depends` and `.livepatch.xen_depends` holding the target build-id, and its own
 * `.note.gnu.build-id`. Every part is a plain mutable object: a test changes exactly one thing
 * (a section flag, a relocation type, a funcs field, a header byte) and calls `build()`.
 *
 * Offsets below are the ELF64 ones from elf.h, typed here on purpose (not imported).
 */

export const SHT = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, RELA: 4, NOTE: 7, NOBITS: 8, REL: 9 } as const;
export const SHF = { WRITE: 1n, ALLOC: 2n, EXECINSTR: 4n, MERGE: 0x10n, STRINGS: 0x20n, INFO_LINK: 0x40n } as const;
export const R = { NONE: 0, R64: 1, PC32: 2, PLT32: 4, R32: 10, R32S: 11 } as const;
/** x86-64 fixture relocation types → AArch64 (R_AARCH64_ABS64 257, R_AARCH64_PREL32 261). */
const ARM64_OF: Record<number, number> = { 1: 257, 2: 261, 4: 261 };
export const STB = { LOCAL: 0, GLOBAL: 1, WEAK: 2 } as const;
export const STT = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4 } as const;

/** The default target build-id (Debian Xen 4.17.5+72's, the pinned test target). */
export const FIXTURE_XEN_ID = '39a640e6f1412319235087391df9f1c5e13ae920';
/** Default own build-id of the payload. */
export const FIXTURE_OWN_ID = 'aa'.repeat(20);

export function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}

/** A GNU build-id note: namesz 4, descsz, type 3, "GNU\0", desc, padding. */
export function gnuNote(desc: Uint8Array, opts: { type?: number; name?: string; namesz?: number; descsz?: number } = {}): Uint8Array {
  const name = Buffer.from(opts.name ?? 'GNU\0', 'latin1');
  const nameAl = (name.length + 3) & ~3;
  const out = new Uint8Array(12 + nameAl + ((desc.length + 3) & ~3));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, opts.namesz ?? name.length, true);
  dv.setUint32(4, opts.descsz ?? desc.length, true);
  dv.setUint32(8, opts.type ?? 3, true);
  out.set(name, 12);
  out.set(desc, 12 + nameAl);
  return out;
}

export interface FxReloc {
  offset: bigint;
  type: number;
  /** Symbol name, or a raw symbol index. */
  symbol: string | number;
  addend: bigint;
}

export interface FxSection {
  name: string;
  type: number;
  flags: bigint;
  addralign: bigint;
  data?: Uint8Array;
  /** NOBITS size. */
  size?: bigint;
  entsize?: bigint;
  addr?: bigint;
  /** Section name or raw index. */
  link?: string | number;
  info?: string | number;
  /** For SHT_RELA/REL sections: the entries (data generated at build). */
  relocs?: FxReloc[];
  /** Raw overrides applied to the section header after layout. */
  raw?: Partial<
    Record<
      'sh_name' | 'sh_type' | 'sh_offset' | 'sh_size' | 'sh_link' | 'sh_info' | 'sh_addralign' | 'sh_entsize' | 'sh_flags' | 'sh_addr',
      bigint | number
    >
  >;
}

export interface FxSymbol {
  name: string;
  bind: number;
  type: number;
  /** Section name, 'UND', 'ABS', 'COM', or a raw st_shndx. */
  section: string | number;
  value: bigint;
  size: bigint;
  /** Raw st_name override. */
  nameOffset?: number;
}

export interface FxFunc {
  /** Symbol for the name pointer (R_X86_64_64) or null for a 0 pointer. */
  nameSymbol: string | null;
  nameAddend: bigint;
  /** Symbol for new_addr (R_X86_64_64) or null for 0 (NOP patch). */
  newSymbol: string | null;
  /** old_addr stored in the entry (0 = resolve by name). */
  oldAddr: bigint;
  /** Symbol old_addr is relocated against (instead of oldAddr). */
  oldSymbol?: string;
  newSize: number;
  oldSize: number;
  version: number;
  /** Raw bytes written at byte offsets within the entry after the fields (pad, expect, …). */
  bytes?: Record<number, number>;
}

export class PayloadFixture {
  /** e_ident / header overrides by ELF64 byte offset → value (1, 2, 4 or 8 bytes as given in `width`). */
  header: { offset: number; width: 1 | 2 | 4 | 8; value: bigint | number }[] = [];
  sections: FxSection[] = [];
  symbols: FxSymbol[] = [];
  funcs: FxFunc[] = [];
  /** Bytes appended after the section headers (or truncation with a negative number). */
  truncate?: number;
  /** sizeof(struct livepatch_func): 104 (version 2, default) or 64 (version 1, L1). */
  entrySize: number;

  /** e_machine: 62 (x86-64, default) or 183 (arm64: relocation types are mapped to their AArch64 equivalents). */
  machine: number;

  constructor(
    opts: {
      xenId?: string;
      ownId?: string;
      dependsId?: string;
      oldName?: string;
      newString?: string;
      entrySize?: 64 | 104;
      arch?: 'x86_64' | 'arm64';
    } = {},
  ) {
    this.entrySize = opts.entrySize ?? 104;
    this.machine = opts.arch === 'arm64' ? 183 : 62;
    const xenId = hexBytes(opts.xenId ?? FIXTURE_XEN_ID);
    const own = hexBytes(opts.ownId ?? FIXTURE_OWN_ID);
    const dep = opts.dependsId ? hexBytes(opts.dependsId) : xenId;
    const oldName = opts.oldName ?? 'xen_extra_version';
    const str = Buffer.from(`${opts.newString ?? 'xsplice-hello'}\0`, 'latin1');
    const nameStr = Buffer.from(`${oldName}\0`, 'latin1');
    // lea xsplice_str(%rip),%rax ; ret ; int3 padding to 16
    const text = Uint8Array.from([0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]);
    const rodata = new Uint8Array(str.length + nameStr.length);
    rodata.set(str, 0);
    rodata.set(nameStr, str.length);
    this.sections = [
      { name: '.text', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, addralign: 16n, data: text },
      { name: '.rodata', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: rodata },
      { name: '.livepatch.funcs', type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n },
      { name: '.livepatch.depends', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: gnuNote(dep) },
      { name: '.livepatch.xen_depends', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: gnuNote(xenId) },
      { name: '.note.gnu.build-id', type: SHT.NOTE, flags: SHF.ALLOC, addralign: 4n, data: gnuNote(own) },
      {
        name: '.rela.text',
        type: SHT.RELA,
        flags: SHF.INFO_LINK,
        addralign: 8n,
        entsize: 24n,
        link: '.symtab',
        info: '.text',
        relocs: [{ offset: 3n, type: R.PC32, symbol: 'xsplice_str', addend: -4n }],
      },
      {
        name: '.rela.livepatch.funcs',
        type: SHT.RELA,
        flags: SHF.INFO_LINK,
        addralign: 8n,
        entsize: 24n,
        link: '.symtab',
        info: '.livepatch.funcs',
        relocs: [],
      },
      { name: '.symtab', type: SHT.SYMTAB, flags: 0n, addralign: 8n, entsize: 24n, link: '.strtab' },
      { name: '.strtab', type: SHT.STRTAB, flags: 0n, addralign: 1n },
      { name: '.shstrtab', type: SHT.STRTAB, flags: 0n, addralign: 1n },
    ];
    this.symbols = [
      { name: 'xsplice_str', bind: STB.LOCAL, type: STT.OBJECT, section: '.rodata', value: 0n, size: BigInt(str.length) },
      {
        name: 'xsplice_name',
        bind: STB.LOCAL,
        type: STT.OBJECT,
        section: '.rodata',
        value: BigInt(str.length),
        size: BigInt(nameStr.length),
      },
      { name: 'xsplice_fn', bind: STB.GLOBAL, type: STT.FUNC, section: '.text', value: 0n, size: 8n },
    ];
    this.funcs = [
      {
        nameSymbol: 'xsplice_name',
        nameAddend: 0n,
        newSymbol: 'xsplice_fn',
        oldAddr: 0n,
        newSize: 8,
        oldSize: 12,
        version: this.entrySize === 64 ? 1 : 2,
      },
    ];
  }

  section(name: string): FxSection {
    const s = this.sections.find((x) => x.name === name);
    if (!s) throw new Error(`fixture has no section ${name}`);
    return s;
  }

  removeSection(name: string): void {
    this.sections = this.sections.filter((s) => s.name !== name && s.info !== name);
  }

  symbol(name: string): FxSymbol {
    const s = this.symbols.find((x) => x.name === name);
    if (!s) throw new Error(`fixture has no symbol ${name}`);
    return s;
  }

  /** Adds a section before .rela.text (so relocation/symbol tables stay last). */
  addSection(s: FxSection): FxSection {
    const at = this.sections.findIndex((x) => x.name === '.rela.text');
    this.sections.splice(at < 0 ? this.sections.length : at, 0, s);
    return s;
  }

  /** Adds a relocation to the RELA section for `target` (creating `.rela<target>` when needed). */
  addReloc(target: string, r: FxReloc): void {
    let rs = this.sections.find((s) => s.type === SHT.RELA && s.info === target);
    if (!rs) {
      rs = {
        name: `.rela${target}`,
        type: SHT.RELA,
        flags: SHF.INFO_LINK,
        addralign: 8n,
        entsize: 24n,
        link: '.symtab',
        info: target,
        relocs: [],
      };
      const at = this.sections.findIndex((x) => x.name === '.symtab');
      this.sections.splice(at, 0, rs);
    }
    rs.relocs!.push(r);
  }

  build(): BuiltFixture {
    // funcs data + relocations
    const funcsSec = this.sections.find((s) => s.name === '.livepatch.funcs' || s.name === '.xsplice.funcs');
    if (funcsSec && !funcsSec.data) {
      const FUNC_SIZE = this.entrySize;
      const data = new Uint8Array(this.funcs.length * FUNC_SIZE);
      const dv = new DataView(data.buffer);
      const rels: FxReloc[] = [];
      this.funcs.forEach((f, i) => {
        const o = i * FUNC_SIZE;
        if (f.nameSymbol) rels.push({ offset: BigInt(o), type: R.R64, symbol: f.nameSymbol, addend: f.nameAddend });
        if (f.newSymbol) rels.push({ offset: BigInt(o + 8), type: R.R64, symbol: f.newSymbol, addend: 0n });
        if (f.oldSymbol) rels.push({ offset: BigInt(o + 16), type: R.R64, symbol: f.oldSymbol, addend: 0n });
        else dv.setBigUint64(o + 16, f.oldAddr, true);
        dv.setUint32(o + 24, f.newSize, true);
        dv.setUint32(o + 28, f.oldSize, true);
        data[o + 32] = f.version;
        for (const [k, v] of Object.entries(f.bytes ?? {})) data[o + Number(k)] = v;
      });
      const rs = this.sections.find((s) => s.type === SHT.RELA && s.info === funcsSec.name);
      if (rs) rs.relocs = [...rels, ...(rs.relocs ?? []).filter((r) => !(r as FxReloc & { auto?: boolean }).auto)];
      funcsSec.data = data;
    }
    const index = (n: string | number | undefined): number => {
      if (n === undefined) return 0;
      if (typeof n === 'number') return n;
      const i = this.sections.findIndex((s) => s.name === n);
      if (i < 0) throw new Error(`fixture: no section ${n}`);
      return i + 1;
    };
    // shstrtab
    const shstr = new StrTab();
    const shNames = this.sections.map((s) => shstr.add(s.name));
    // symbols: null + locals + globals as given (the test controls order)
    const strtab = new StrTab();
    const symIndex = new Map<string, number>();
    const symData = new Uint8Array(24 * (this.symbols.length + 1));
    const sdv = new DataView(symData.buffer);
    let firstGlobal = this.symbols.length + 1;
    this.symbols.forEach((s, i) => {
      const o = 24 * (i + 1);
      symIndex.set(s.name, i + 1);
      if (s.bind !== STB.LOCAL && firstGlobal > i + 1) firstGlobal = i + 1;
      sdv.setUint32(o, s.nameOffset ?? strtab.add(s.name), true);
      symData[o + 4] = (s.bind << 4) | (s.type & 0xf);
      const shndx =
        typeof s.section === 'number'
          ? s.section
          : s.section === 'UND'
            ? 0
            : s.section === 'ABS'
              ? 0xfff1
              : s.section === 'COM'
                ? 0xfff2
                : index(s.section);
      sdv.setUint16(o + 6, shndx, true);
      sdv.setBigUint64(o + 8, s.value, true);
      sdv.setBigUint64(o + 16, s.size, true);
    });
    const datas = this.sections.map((s) => {
      if (s.name === '.symtab' && s.type === SHT.SYMTAB && !s.data) return symData;
      if (s.name === '.strtab' && !s.data) return strtab.bytes();
      if (s.name === '.shstrtab' && !s.data) return shstr.bytes();
      if (s.relocs) {
        const d = new Uint8Array(24 * s.relocs.length);
        const dv = new DataView(d.buffer);
        s.relocs.forEach((r, i) => {
          const sym = typeof r.symbol === 'number' ? r.symbol : symIndex.get(r.symbol);
          if (sym === undefined) throw new Error(`fixture: no symbol ${r.symbol}`);
          dv.setBigUint64(24 * i, r.offset, true);
          const type = this.machine === 183 ? (ARM64_OF[r.type] ?? r.type) : r.type;
          dv.setBigUint64(24 * i + 8, (BigInt(sym) << 32n) | BigInt(type), true);
          dv.setBigInt64(24 * i + 16, r.addend, true);
        });
        return d;
      }
      return s.data ?? new Uint8Array(0);
    });
    // layout: header 64, then data, then section headers
    let off = 64;
    const offsets: number[] = [];
    this.sections.forEach((s, i) => {
      const a = Math.max(1, Number(s.addralign));
      off = Math.ceil(off / a) * a;
      offsets.push(off);
      if (s.type !== SHT.NOBITS) off += datas[i]!.length;
    });
    off = Math.ceil(off / 8) * 8;
    const shoff = off;
    const shnum = this.sections.length + 1;
    const total = shoff + 64 * shnum;
    const out = new Uint8Array(total);
    const dv = new DataView(out.buffer);
    out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0], 0);
    dv.setUint16(16, 1, true); // ET_REL
    dv.setUint16(18, this.machine, true); // EM_X86_64 or EM_AARCH64
    dv.setUint32(20, 1, true);
    dv.setBigUint64(40, BigInt(shoff), true);
    dv.setUint16(52, 64, true);
    dv.setUint16(58, 64, true);
    dv.setUint16(60, shnum, true);
    dv.setUint16(62, index('.shstrtab'), true);
    this.sections.forEach((s, i) => {
      if (s.type !== SHT.NOBITS) out.set(datas[i]!, offsets[i]!);
      const h = shoff + 64 * (i + 1);
      const size = s.type === SHT.NOBITS ? (s.size ?? 0n) : BigInt(datas[i]!.length);
      const info = s.name === '.symtab' && s.info === undefined ? firstGlobal : index(s.info);
      const vals: Record<string, bigint | number> = {
        sh_name: shNames[i]!,
        sh_type: s.type,
        sh_flags: s.flags,
        sh_addr: s.addr ?? 0n,
        sh_offset: offsets[i]!,
        sh_size: size,
        sh_link: index(s.link),
        sh_info: info,
        sh_addralign: s.addralign,
        sh_entsize: s.entsize ?? 0n,
        ...(s.raw ?? {}),
      };
      writeShdr(dv, h, vals);
    });
    for (const o of this.header) {
      if (o.width === 1) dv.setUint8(o.offset, Number(o.value));
      else if (o.width === 2) dv.setUint16(o.offset, Number(o.value), true);
      else if (o.width === 4) dv.setUint32(o.offset, Number(o.value), true);
      else dv.setBigUint64(o.offset, BigInt(o.value), true);
    }
    const bytes = this.truncate !== undefined ? out.slice(0, this.truncate < 0 ? out.length + this.truncate : this.truncate) : out;
    return {
      bytes,
      shoff,
      sectionIndex: (n) => index(n),
      shdrOffset: (n) => shoff + 64 * index(n),
      dataOffset: (n) => offsets[index(n) - 1]!,
      symbolIndex: (n) => symIndex.get(n)!,
    };
  }
}

function writeShdr(dv: DataView, h: number, v: Record<string, bigint | number>): void {
  dv.setUint32(h, Number(v.sh_name), true);
  dv.setUint32(h + 4, Number(v.sh_type), true);
  dv.setBigUint64(h + 8, BigInt(v.sh_flags!), true);
  dv.setBigUint64(h + 16, BigInt(v.sh_addr!), true);
  dv.setBigUint64(h + 24, BigInt(v.sh_offset!), true);
  dv.setBigUint64(h + 32, BigInt(v.sh_size!), true);
  dv.setUint32(h + 40, Number(v.sh_link), true);
  dv.setUint32(h + 44, Number(v.sh_info), true);
  dv.setBigUint64(h + 48, BigInt(v.sh_addralign!), true);
  dv.setBigUint64(h + 56, BigInt(v.sh_entsize!), true);
}

export interface BuiltFixture {
  bytes: Uint8Array;
  shoff: number;
  sectionIndex(name: string): number;
  /** File offset of the section's header. */
  shdrOffset(name: string): number;
  /** File offset of the section's data. */
  dataOffset(name: string): number;
  symbolIndex(name: string): number;
}

class StrTab {
  private parts: Buffer[] = [Buffer.from([0])];
  private size = 1;
  private seen = new Map<string, number>();
  add(s: string): number {
    if (s === '') return 0;
    const hit = this.seen.get(s);
    if (hit !== undefined) return hit;
    const b = Buffer.from(s + '\0', 'latin1');
    const at = this.size;
    this.parts.push(b);
    this.size += b.length;
    this.seen.set(s, at);
    return at;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(Buffer.concat(this.parts));
  }
}

/* ------------------------------------------------------------------------------------------ */
/* A fake target for unit tests                                                                */

export interface FakeTargetOptions {
  buildId?: string;
  version?: string;
  /** Extra symbols (name → address). */
  symbols?: Record<string, bigint>;
  /** Bytes at xen_extra_version (default 12 bytes without ENDBR64). */
  code?: Uint8Array;
  noSymbols?: boolean;
}

export const FAKE_XEN = {
  xen_extra_version: 0xffff82d040213a40n,
  printk: 0xffff82d040230000n,
  __2M_rwdata_end: 0xffff82d040600000n,
  'common/kernel.c#do_thing': 0xffff82d040214000n,
};

export function fakeTarget(o: FakeTargetOptions = {}): {
  buildId: Uint8Array;
  version: string;
  arch: 'x86_64';
  symbols?: { find(n: string): { value: bigint }[] };
  bytesAt(addr: bigint, len: number): Uint8Array;
} {
  const syms: Record<string, bigint> = { ...FAKE_XEN, ...(o.symbols ?? {}) };
  const code = o.code ?? Uint8Array.from([0x48, 0x8d, 0x05, 0x11, 0x22, 0x33, 0x00, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc]);
  return {
    buildId: hexBytes(o.buildId ?? FIXTURE_XEN_ID),
    version: o.version ?? '4.17.7',
    arch: 'x86_64',
    ...(o.noSymbols ? {} : { symbols: { find: (n: string) => (syms[n] !== undefined ? [{ value: syms[n]! }] : []) } }),
    bytesAt(addr: bigint, len: number): Uint8Array {
      const off = Number(addr - FAKE_XEN.xen_extra_version);
      if (off < 0 || off + len > 64) throw new Error('no bytes');
      const b = new Uint8Array(64).fill(0xcc);
      b.set(code, 0);
      return b.subarray(off, off + len);
    },
  };
}

/** A fixture payload with its own id, depending on `dep`, its symbols renamed by `tag` (so several can be loaded together). */
export function taggedPayload(tag: string, own: string, dep: string): Uint8Array {
  const fx = new PayloadFixture({ ownId: own, dependsId: dep });
  for (const n of ['xsplice_str', 'xsplice_name', 'xsplice_fn']) fx.symbol(n).name = `${n}_${tag}`;
  fx.funcs[0]!.nameSymbol = `xsplice_name_${tag}`;
  fx.funcs[0]!.newSymbol = `xsplice_fn_${tag}`;
  fx.section('.rela.text').relocs![0]!.symbol = `xsplice_str_${tag}`;
  return fx.build().bytes;
}
