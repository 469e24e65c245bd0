/**
 * The target hypervisor of a build: its build-id, and when `XEN` is a symbol file, its version,
 * architecture, symbol table (with Xen's `file#name` names for locals) and bytes.
 *
 * XEN forms (cli.md): xen-syms (ELF), xen.gz (gzip'd ELF), plain ELF image, xen.efi (PE), a hex
 * build-id, the sysfs `buildid` file (raw bytes), or `-` for `xl info` text on stdin.
 *
 * Version from an ELF image: Xen's `xen_major_version()`/`xen_minor_version()` return immediates
 * and `xen_extra_version()` returns a pointer to a string; the bytes of those functions are decoded
 * (x86-64 `mov $imm32,%eax` / `xor %eax,%eax` / `lea disp32(%rip),%rax`, arm64 `movz w0`/`adrp+add`,
 * arm32 `mov r0,#imm`). Distributions also embed their package version through
 * `xen_compile_system_version()` (Debian: "4.17.7+13-g2445b30a44-0+deb12u1"); when it starts with the
 * decoded major.minor it is used as the full version. Without symbols (xen.gz), the image is
 * scanned for one NUL-terminated string of that shape; zero or several distinct ones give no version.
 *
 * Why one file of ~500 lines: the seven XEN forms, the version decoder and the symbol table share
 * the image readers (bytesAt over the loaded segments); the version decoder (x86-64 / arm64 / arm32
 * instruction patterns) is the part to move out first if it grows.
 */
import { GUNZIP_MAX, readInput } from '../fsutil.js';
import { gunzipSync } from 'node:zlib';
import { FormatError, RefusedError, UsageError } from '../errors.js';
import { readElf, isElf } from '../elf/reader.js';
import { EM, ET, SHF, SHN, SHT, STB, STT } from '../elf/constants.js';
import type { ElfFile, ElfSection, ElfSymbol } from '../elf/types.js';
import { isHexId, NT_GNU_BUILD_ID, parseBuildIdNote, parseHexId, toHex } from '../buildid/note.js';
import type { Arch } from './abi-types.js';
import { archOfMachine } from './abi-rows.js';

export interface TargetSymbol {
  /** The name as Xen's symbol table has it: plain for globals, `file#name` for locals. */
  name: string;
  /** The ELF symbol name. */
  elfName: string;
  /** STT_FILE in force for a local, else undefined. */
  file?: string;
  value: bigint;
  size: bigint;
  type: number;
  bind: number;
  shndx: number;
}

export interface Target {
  buildId: Uint8Array;
  buildIdHex: string;
  /** How the build-id was found: elf, gzip-elf, pe, hex, xl-info, sysfs. */
  source: string;
  /** e.g. "4.17.7+13-g2445b30a44-0+deb12u1", or "4.17.7". */
  version?: string;
  /** Where the version came from (for messages). */
  versionSource?: string;
  arch?: Arch;
  symbols?: SymbolTable;
  /** Bytes of the loaded image at a virtual address (symbol files only). */
  bytesAt?(addr: bigint, len: number): Uint8Array;
  /** The parsed ELF when XEN is an ELF image. */
  elf?: ElfFile;
}

/* ------------------------------------------------------------------------------------------ */
/* Symbol table                                                                                */

export class SymbolTable {
  /** Xen name → symbols (more than one = ambiguous). */
  private readonly byName = new Map<string, TargetSymbol[]>();
  /** ELF name → locals with that name (for "did you mean file#name"). */
  private readonly localsByElfName = new Map<string, TargetSymbol[]>();
  readonly size: number;

  constructor(symbols: Iterable<TargetSymbol>) {
    let n = 0;
    for (const s of symbols) {
      n++;
      push(this.byName, s.name, s);
      if (s.bind === STB.LOCAL) push(this.localsByElfName, s.elfName, s);
    }
    this.size = n;
  }

  /**
   * Builds the table of a linked hypervisor the way Xen's tools/symbols names it: a local symbol
   * is `<file>#<sym>` where file is the most recent STT_FILE symbol before it; globals and weak
   * symbols keep their name. Section, file and unnamed symbols are left out, and so is what
   * tools/symbols drops from the table the running hypervisor searches: absolute symbols (but
   * `__gp`) and names containing `_compiled.`. A payload cannot resolve those ("Unknown symbol").
   */
  static fromElf(elf: ElfFile): SymbolTable {
    const out: TargetSymbol[] = [];
    let file: string | undefined;
    for (const s of elf.symbols()) {
      if (s.index === 0) continue;
      if (s.type === STT.FILE) {
        file = s.name;
        continue;
      }
      if (s.name === '' || s.type === STT.SECTION) continue;
      if (s.shndx === SHN.UNDEF) continue;
      if ((s.rawShndx === SHN.ABS && s.name !== '__gp') || s.name.includes('_compiled.')) continue;
      const local = s.bind === STB.LOCAL;
      out.push(toTargetSymbol(s, local ? file : undefined));
    }
    return new SymbolTable(out);
  }

  /** Every symbol with this Xen name (plain or `file#name`). */
  find(name: string): TargetSymbol[] {
    return this.byName.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * The one symbol a user means by `name`: a global by its name, or a local as `file#name`.
   * Unknown or ambiguous names: RefusedError (exit 1) with the candidates.
   */
  lookup(name: string): TargetSymbol {
    const hits = this.find(name);
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) {
      const where = hits.map((h) => `0x${h.value.toString(16)} size ${h.size}`).join(', ');
      throw new RefusedError(
        'SYMBOL_AMBIGUOUS',
        `"${name}" names ${hits.length} symbols in the target (${where}); the hypervisor would pick one at random`,
        { symbol: name },
      );
    }
    const locals = this.localsByElfName.get(name.includes('#') ? name.slice(name.lastIndexOf('#') + 1) : name) ?? [];
    if (locals.length > 0) {
      const cands = locals
        .map((l) => l.name)
        .slice(0, 8)
        .join(', ');
      const more = locals.length > 8 ? `, … (${locals.length} in all)` : '';
      throw new RefusedError(
        'SYMBOL_LOCAL',
        name.includes('#')
          ? `the target has no "${name}"; locals of that name: ${cands}${more}`
          : `"${name}" is a local (static) symbol in the target: name it as file#name (${cands}${more})`,
        { symbol: name },
      );
    }
    throw new RefusedError('SYMBOL_UNKNOWN', `the target defines no symbol "${name}"`, { symbol: name });
  }

  /** All symbols (for iteration). */
  *all(): IterableIterator<TargetSymbol> {
    for (const list of this.byName.values()) yield* list;
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

function toTargetSymbol(s: ElfSymbol, file: string | undefined): TargetSymbol {
  // Two literals rather than a spread: same keys in the same order, without a copy per symbol.
  return file !== undefined
    ? { name: `${file}#${s.name}`, elfName: s.name, file, value: s.value, size: s.size, type: s.type, bind: s.bind, shndx: s.shndx }
    : { name: s.name, elfName: s.name, value: s.value, size: s.size, type: s.type, bind: s.bind, shndx: s.shndx };
}

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

export interface LoadTargetOptions {
  /** Overrides (with a caller-side warning when it disagrees) the version read from XEN. */
  xenVersion?: string;
  /** `xl info` text when XEN is "-". */
  stdinText?: string;
}

/** Reads XEN in any of its forms. Errors: UsageError/FormatError (exit 2) naming the input. */
export async function loadTarget(xen: string, opts: LoadTargetOptions = {}): Promise<Target> {
  let t: Target;
  if (xen === '-') {
    if (opts.stdinText === undefined)
      throw new UsageError('TARGET_STDIN', 'XEN is "-" but no `xl info` text was given on stdin', { file: '-' });
    t = fromXlInfo(opts.stdinText);
  } else {
    let bytes: Uint8Array;
    try {
      bytes = await readInput(xen, { what: 'hypervisor' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code === 'ENOENT' || code === 'ENAMETOOLONG') && isHexId(xen)) {
        const id = parseHexId(xen);
        return {
          buildId: id,
          buildIdHex: toHex(id),
          source: 'hex',
          ...(opts.xenVersion ? { version: opts.xenVersion, versionSource: '--xen-version' } : {}),
        };
      }
      throw e;
    }
    try {
      t = await fromBytes(bytes, xen);
    } catch (e) {
      if (e instanceof FormatError || e instanceof UsageError) e.withFile(xen);
      throw e;
    }
  }
  if (opts.xenVersion !== undefined) {
    // The caller decides how to warn; the explicit version wins.
    t.version = opts.xenVersion;
    t.versionSource = '--xen-version';
  }
  return t;
}

async function fromBytes(bytes: Uint8Array, file: string): Promise<Target> {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let raw: Buffer;
    try {
      // The cap is checked while inflating: a gzip bomb stops at GUNZIP_MAX.
      raw = gunzipSync(bytes, { maxOutputLength: GUNZIP_MAX });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new FormatError(
          'GZIP_TOO_LARGE',
          `gzip data inflates to more than ${GUNZIP_MAX} bytes (a hypervisor image inflates to a few MiB); stopped there`,
          { file },
        );
      }
      throw new FormatError('GZIP_BAD', `gzip data is corrupt: ${(e as Error).message}`, { file });
    }
    const u = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
    if (!isElf(u)) throw new FormatError('TARGET_FORMAT', 'gzip file does not hold an ELF image', { file });
    return fromElf(readElf(u, { file }), 'gzip-elf', file);
  }
  if (isElf(bytes)) return fromElf(readElf(bytes, { file }), 'elf', file);
  if (bytes.length >= 2 && bytes[0] === 0x4d && bytes[1] === 0x5a) return fromPe(bytes, file);
  // Text: a hex build-id, or xl info output saved to a file.
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (/^\s*build_id\s*:/m.test(text)) return fromXlInfo(text);
  if (isHexId(text)) {
    const id = parseHexId(text);
    return { buildId: id, buildIdHex: toHex(id), source: 'hex' };
  }
  // The sysfs file holds the raw id (at most 64 bytes in practice).
  if (bytes.length > 0 && bytes.length <= 64) {
    const id = bytes.slice();
    return { buildId: id, buildIdHex: toHex(id), source: 'sysfs' };
  }
  throw new FormatError('TARGET_FORMAT', 'not a Xen image, symbol file, build-id or `xl info` output', { file });
}

async function fromPe(bytes: Uint8Array, file: string): Promise<Target> {
  // PE parsing lives in src/buildid; loaded only for this form.
  const { readBuildId } = await import('../buildid/read.js');
  const r = await readBuildId({ bytes, path: file, name: file });
  const t: Target = { buildId: r.bytes, buildIdHex: toHex(r.bytes), source: r.source || 'pe', arch: 'x86_64' };
  const found = new Set<string>();
  scanVersions(bytes, found);
  const full = [...found].filter((v) => /^\d+\.\d+\.\d+[+~-]/.test(v));
  if (full.length === 1) {
    t.version = full[0]!;
    t.versionSource = 'version string in the image';
  }
  return t;
}

function fromXlInfo(text: string): Target {
  const field = (k: string): string | undefined => {
    const m = new RegExp(`^\\s*${k}\\s*:\\s*(.*?)\\s*$`, 'm').exec(text);
    return m ? m[1] : undefined;
  };
  const hex = field('build_id');
  if (hex === undefined || hex === '')
    throw new FormatError('XL_INFO_NO_BUILDID', '`xl info` text has no build_id line (or it is empty: no build-id or no permission)', {
      file: '-',
    });
  const id = parseHexId(hex);
  const t: Target = { buildId: id, buildIdHex: toHex(id), source: 'xl-info' };
  const major = field('xen_major');
  const minor = field('xen_minor');
  const extra = field('xen_extra');
  if (major !== undefined && minor !== undefined) {
    t.version = `${major}.${minor}${extra ?? ''}`;
    t.versionSource = 'xl info';
  } else {
    const v = field('xen_version');
    if (v) {
      t.version = v;
      t.versionSource = 'xl info';
    }
  }
  const caps = field('xen_caps');
  if (caps?.includes('x86_64')) t.arch = 'x86_64';
  else if (caps?.includes('aarch64')) t.arch = 'arm64';
  else if (caps?.includes('armv7')) t.arch = 'arm32';
  return t;
}

/** Section names only a live-patch payload has (every ABI row: xSplice and livepatch). */
const PAYLOAD_SECTIONS = ['.livepatch.funcs', '.xsplice.funcs', '.livepatch.depends', '.xsplice.depends', '.livepatch.xen_depends'];

function fromElf(elf: ElfFile, source: string, file: string): Target {
  // The hypervisor argument is a hypervisor: an object or a payload would give a payload that never loads.
  if (elf.header.type !== ET.EXEC && elf.header.type !== ET.DYN) {
    const payload = PAYLOAD_SECTIONS.find((n) => elf.sectionByName(n));
    throw new UsageError(
      'TARGET_NOT_XEN',
      payload
        ? `is a live-patch payload (it has ${payload}), not a hypervisor: give xen-syms, xen.gz, xen.efi or a build-id (a payload to stack on goes to --depends)`
        : 'is a relocatable object, not a hypervisor: give xen-syms, xen.gz, xen.efi or a build-id',
      {
        file,
        expected: 'ET_EXEC (xen-syms, xen.gz)',
        found: elf.header.type === ET.REL ? 'ET_REL' : `e_type ${elf.header.type}`,
      },
    );
  }
  const sec = elf.sectionByName('.note.gnu.build-id');
  let id: Uint8Array | undefined;
  if (sec && sec.type !== SHT.NOBITS) {
    const p = parseBuildIdNote(sec.data(), elf.header.littleEndian);
    if (p.ok) id = p.id;
  }
  if (!id) {
    for (const n of elf.notes()) {
      if (n.name === 'GNU' && n.type === NT_GNU_BUILD_ID && n.desc.length > 0) {
        id = n.desc.slice();
        break;
      }
    }
  }
  if (!id)
    throw new FormatError('TARGET_NO_BUILDID', 'the image has no GNU build-id note (Xen with live patching always has one)', { file });
  // An x86 xen.gz is an ELF32 multiboot wrapper around 64-bit code: the machine says i386.
  const arch = archOfMachine(elf.header.machine) ?? (elf.header.machine === EM['386'] ? 'x86_64' : undefined);
  const t: Target = { buildId: id, buildIdHex: toHex(id), source, elf, ...(arch ? { arch } : {}) };
  const symtab = elf.symtabSection();
  if (symtab && symtab.size > 0n) {
    t.symbols = SymbolTable.fromElf(elf);
  }
  const image = loadedSections(elf);
  const hint: { last?: LoadedSection } = {};
  t.bytesAt = (addr: bigint, len: number) => bytesIn(image, addr, len, hint);
  const v = versionFromElf(elf, t.symbols, arch);
  if (v) {
    t.version = v.version;
    t.versionSource = v.source;
  }
  return t;
}

/** Bytes of an allocated, non-NOBITS section at a virtual address; RefusedError when not backed by the file. */
export function imageBytes(elf: ElfFile, addr: bigint, len: number): Uint8Array {
  return bytesIn(loadedSections(elf), addr, len, {});
}

interface LoadedSection {
  sec: ElfSection;
  start: bigint;
  end: bigint;
  /** sec.data(), once asked for. */
  data?: Uint8Array;
}

/** The sections imageBytes looks in (allocated, with contents), in index order, with their end addresses. */
function loadedSections(elf: ElfFile): LoadedSection[] {
  const out: LoadedSection[] = [];
  const elfSections = elf.sections;
  for (let k = 0; k < elfSections.length; k++) {
    const s = elfSections[k]!;
    if (s.index === 0 || (s.flags & SHF.ALLOC) === 0n || s.type === SHT.NOBITS) continue;
    out.push({ sec: s, start: s.addr, end: s.addr + s.size });
  }
  return out;
}

/**
 * The bytes at addr. `hint` remembers the section of the last look-up, tried first: a build asks
 * for the bytes of one function after another, nearly always in the same section (.text).
 */
function bytesIn(image: readonly LoadedSection[], addr: bigint, len: number, hint: { last?: LoadedSection }): Uint8Array {
  const end = addr + BigInt(len);
  const last = hint.last;
  if (last !== undefined && addr >= last.start && end <= last.end) {
    const off = Number(addr - last.start);
    return (last.data ??= last.sec.data()).subarray(off, off + len);
  }
  for (const l of image) {
    if (addr >= l.start && end <= l.end) {
      hint.last = l;
      const off = Number(addr - l.start);
      return (l.data ??= l.sec.data()).subarray(off, off + len);
    }
  }
  throw new RefusedError('TARGET_NO_BYTES', `no section of the target holds ${len} bytes at 0x${addr.toString(16)}`);
}

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                     */

const VERSION_RE = /^\d{1,2}\.\d{1,3}(\.\d{1,4})?([+~._-][\x21-\x7e]{0,80})?$/;

function cString(elf: ElfFile, addr: bigint): string | undefined {
  const sec = elf.sections.find(
    (s) => s.index > 0 && (s.flags & SHF.ALLOC) !== 0n && s.type !== SHT.NOBITS && addr >= s.addr && addr < s.addr + s.size,
  );
  if (!sec) return undefined;
  let data: Uint8Array;
  try {
    data = sec.data();
  } catch {
    return undefined;
  }
  const start = Number(addr - sec.addr);
  let end = start;
  while (end < data.length && data[end] !== 0 && end - start < 256) end++;
  if (end >= data.length || data[end] !== 0) return undefined;
  const s = new TextDecoder('latin1').decode(data.subarray(start, end));
  return /^[\x20-\x7e]*$/.test(s) ? s : undefined;
}

/** What a `unsigned int f(void) { return IMM; }` / `const char *f(void) { return "…"; }` returns. */
function decodeReturn(elf: ElfFile, sym: TargetSymbol | undefined, arch: Arch | undefined, want: 'imm' | 'ptr'): bigint | undefined {
  if (!sym) return undefined;
  let code: Uint8Array | undefined;
  for (const n of [16, 12, 8, 4]) {
    try {
      code = imageBytes(elf, sym.value, n);
      break;
    } catch {
      // a short function at the end of its section: try fewer bytes
    }
  }
  if (!code) return undefined;
  const at = (i: number): number | undefined => (i + 4 <= code!.length ? i : undefined);
  const le = elf.header.littleEndian;
  const dv = new DataView(code.buffer, code.byteOffset, code.byteLength);
  if (arch === 'x86_64') {
    let i = 0;
    // endbr64 (f3 0f 1e fa) may lead.
    if (code[0] === 0xf3 && code[1] === 0x0f && code[2] === 0x1e && code[3] === 0xfa) i = 4;
    if (want === 'imm') {
      if (code[i] === 0xb8 && at(i + 1) !== undefined) return BigInt(dv.getUint32(i + 1, true)); // mov $imm32,%eax
      if (code[i] === 0x31 && code[i + 1] === 0xc0) return 0n; // xor %eax,%eax
      return undefined;
    }
    // lea disp32(%rip),%rax: 48 8d 05 disp32
    if (code[i] === 0x48 && code[i + 1] === 0x8d && code[i + 2] === 0x05 && at(i + 3) !== undefined) {
      return BigInt.asUintN(64, sym.value + BigInt(i + 7) + BigInt(dv.getInt32(i + 3, true)));
    }
    return undefined;
  }
  if (arch === 'arm64') {
    const w0 = dv.getUint32(0, le);
    if (want === 'imm') {
      if ((w0 & 0xffe0001f) >>> 0 === 0x52800000) return BigInt((w0 >>> 5) & 0xffff); // movz w0,#imm
      return undefined;
    }
    if (at(4) === undefined) return undefined;
    const w1 = dv.getUint32(4, le);
    // adrp x0, page; add x0, x0, #lo12
    if ((w0 & 0x9f00001f) >>> 0 === 0x90000000 && (w1 & 0xffc003ff) >>> 0 === 0x91000000) {
      const immlo = BigInt((w0 >>> 29) & 3);
      const immhi = BigInt((w0 >>> 5) & 0x7ffff);
      const imm = BigInt.asIntN(21, (immhi << 2n) | immlo) << 12n;
      const page = (sym.value & ~0xfffn) + imm;
      return BigInt.asUintN(64, page + BigInt((w1 >>> 10) & 0xfff));
    }
    return undefined;
  }
  if (arch === 'arm32' && want === 'imm') {
    const w0 = dv.getUint32(0, le);
    if ((w0 & 0xfffff000) >>> 0 === 0xe3a00000) {
      const rot = ((w0 >>> 8) & 0xf) * 2;
      const v = w0 & 0xff;
      return BigInt(((v >>> rot) | (v << (32 - rot))) >>> 0);
    }
  }
  return undefined;
}

function versionFromElf(
  elf: ElfFile,
  syms: SymbolTable | undefined,
  arch: Arch | undefined,
): { version: string; source: string } | undefined {
  if (syms) {
    const one = (n: string): TargetSymbol | undefined => {
      const l = syms.find(n);
      return l.length === 1 ? l[0] : undefined;
    };
    const major = decodeReturn(elf, one('xen_major_version'), arch, 'imm');
    const minor = decodeReturn(elf, one('xen_minor_version'), arch, 'imm');
    if (major !== undefined && minor !== undefined) {
      const extraPtr = decodeReturn(elf, one('xen_extra_version'), arch, 'ptr');
      const extra = extraPtr !== undefined ? cString(elf, extraPtr) : undefined;
      const base = `${major}.${minor}${extra ?? ''}`;
      const distPtr = decodeReturn(elf, one('xen_compile_system_version'), arch, 'ptr');
      const dist = distPtr !== undefined ? cString(elf, distPtr) : undefined;
      if (
        dist &&
        VERSION_RE.test(dist) &&
        (dist === base || dist.startsWith(base + '+') || dist.startsWith(base + '-') || dist.startsWith(base + '~'))
      ) {
        return { version: dist, source: 'xen_compile_system_version()' };
      }
      return { version: base, source: 'xen_{major,minor,extra}_version()' };
    }
  }
  // No symbols: one distinct version-shaped string in the read-only data.
  const found = new Set<string>();
  const elfSections = elf.sections;
  for (let k = 0; k < elfSections.length; k++) {
    const s = elfSections[k]!;
    if (s.index === 0 || (s.flags & SHF.ALLOC) === 0n || s.type !== SHT.PROGBITS || (s.flags & SHF.EXECINSTR) !== 0n) continue;
    let data: Uint8Array;
    try {
      data = s.data();
    } catch {
      continue;
    }
    scanVersions(data, found);
    if (found.size > 4) break;
  }
  if (found.size === 0 && elf.header.class === 32) {
    // The x86 xen.gz wrapper keeps everything in one loadable blob: scan it whole.
    scanVersions(elf.bytes, found);
  }
  const full = [...found].filter((v) => /^\d+\.\d+\.\d+[+~-]/.test(v));
  if (full.length === 1) return { version: full[0]!, source: 'version string in the image' };
  return undefined;
}

function scanVersions(data: Uint8Array, found: Set<string>): void {
  // A NUL-preceded string "D.D.D…" of printable characters, NUL-terminated.
  for (let i = 1; i < data.length - 4; i++) {
    const c = data[i]!;
    if (c < 0x30 || c > 0x39 || data[i - 1] !== 0) continue;
    let j = i;
    while (j < data.length && data[j]! >= 0x21 && data[j]! <= 0x7e && j - i < 96) j++;
    if (j >= data.length || data[j] !== 0 || j - i < 5) continue;
    const s = String.fromCharCode(...data.subarray(i, j));
    if (/^[1-9]\d?\.\d{1,2}\.\d{1,3}[+~-][0-9A-Za-z.+~-]*$/.test(s)) found.add(s);
    i = j;
  }
}
