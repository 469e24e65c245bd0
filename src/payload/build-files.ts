/**
 * The file side of `xsplice build`: reads the objects, the target, a `--depends` payload and a
 * `--spec` file, picks the ABI row (--abi, else --xen-version, else what XEN reveals), calls
 * buildPayload, and writes the payload atomically (temp file + rename in the same directory,
 * never over an input, nothing left behind on failure).
 *
 * Why one file: its parts (argument and --spec parsing, ABI selection, input checks, the atomic
 * write) are the steps of `buildFiles`, the file boundary of `xsplice build`; buildPayload stays pure.
 */
import { realpath } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { RefusedError, UsageError, XspliceError } from '../errors.js';
import { readElf, isElf, refuseSharedContents } from '../elf/reader.js';
import { ET, SHF, SHN, SHT, STT } from '../elf/constants.js';
import { isHexId, parseBuildIdNote, parseHexId } from '../buildid/note.js';
import { ARCHES, abiByName, archOfMachine, abiForVersion, loadAbiFile, parseXenVersion } from './abi.js';
import type { Arch, PayloadAbi } from './abi-types.js';
import { buildPayload, type BuildResult, type DependsSpec, type HookRequest, type NopRequest, type PatchRequest } from './build.js';
import { loadTarget, type Target } from './target.js';
import { verifyPayloads, type VerifyInput } from './verify.js';
import { PAYLOAD_MAX, checkOutput, readInput, readInputText, writeFileAtomic } from '../fsutil.js';

export interface BuildFilesOptions {
  objects: string[];
  out: string;
  xen: string;
  xenVersion?: string;
  abi?: string;
  abiFile?: string;
  arch?: string;
  patch?: string[];
  nop?: string[];
  hook?: string[];
  depends?: string;
  expect?: boolean;
  spec?: string;
  /** 'address' | 'name' */
  oldAddr?: string;
  stdinText?: string;
  toolVersion?: string;
  /** Called with each warning as it arises (also on the way to a failure). */
  onWarning?: (message: string) => void;
}

export interface BuildFilesResult extends BuildResult {
  file: string;
  target: { buildId: string; version: string | null; source: string };
}

/** Parses `OLD[=NEW]`. */
export function parsePatchArg(s: string): PatchRequest {
  const i = s.indexOf('=');
  const old = i < 0 ? s : s.slice(0, i);
  const nw = i < 0 ? undefined : s.slice(i + 1);
  if (!old || nw === '') throw new UsageError('USAGE', `--patch ${JSON.stringify(s)}: expected OLD or OLD=NEW`);
  return nw === undefined ? { old } : { old, new: nw };
}

/** Parses `OLD[:LEN]` (LEN decimal or 0x hex). `file#name` locals may contain ':' only in the file part, so the last ':' followed by digits is the length. */
export function parseNopArg(s: string): NopRequest {
  const m = /^(.+?):((?:0x[0-9a-fA-F]+)|\d+)$/.exec(s);
  if (m) return { old: m[1]!, len: Number(m[2]) };
  if (!s) throw new UsageError('USAGE', '--nop: expected OLD[:LEN]');
  return { old: s };
}

export function parseHookArg(s: string): HookRequest {
  const i = s.indexOf('=');
  if (i <= 0 || i === s.length - 1)
    throw new UsageError(
      'USAGE',
      `--hook ${JSON.stringify(s)}: expected KIND=SYMBOL (KIND: load, unload, pre-apply, apply, post-apply, pre-revert, revert, post-revert)`,
    );
  return { kind: s.slice(0, i), symbol: s.slice(i + 1) };
}

interface SpecFile {
  patches?: PatchRequest[];
  nops?: NopRequest[];
  hooks?: HookRequest[];
}

function parseSpec(text: string, file: string): { spec: SpecFile; opts: Partial<BuildFilesOptions> } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError('SPEC_INVALID', `not valid JSON: ${(e as Error).message}`, { file });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UsageError('SPEC_INVALID', 'must be a JSON object', { file });
  const o = raw as Record<string, unknown>;
  const known = new Set(['patches', 'patch', 'nops', 'nop', 'hooks', 'hook', 'depends', 'expect', 'abi', 'xenVersion', 'arch', 'oldAddr']);
  for (const k of Object.keys(o))
    if (!known.has(k)) throw new UsageError('SPEC_INVALID', `unknown key "${k}" (known: ${[...known].join(', ')})`, { file });
  const num = (v: unknown, path: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
    if (typeof v === 'string' && /^(0x[0-9a-f]+|\d+)$/i.test(v)) return Number(v);
    throw new UsageError('SPEC_INVALID', `${path}: expected a 32-bit size, found ${JSON.stringify(v)}`, { file });
  };
  const addr = (v: unknown, path: string): bigint | undefined => {
    if (v === undefined) return undefined;
    if (v === 0) return 0n;
    if (typeof v === 'string' && /^(0x[0-9a-f]{1,16}|\d+)$/i.test(v)) return BigInt(v);
    throw new UsageError('SPEC_INVALID', `${path}: expected an address "0x…" or 0, found ${JSON.stringify(v)}`, { file });
  };
  const list = (k: string, alt: string): unknown[] => {
    const v = o[k] ?? o[alt];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new UsageError('SPEC_INVALID', `${k}: must be an array`, { file });
    return v;
  };
  const str = (v: unknown, path: string): string => {
    if (typeof v !== 'string' || v === '') throw new UsageError('SPEC_INVALID', `${path}: expected a non-empty string`, { file });
    return v;
  };
  const spec: SpecFile = {
    patches: list('patches', 'patch').map((p, i) => {
      if (typeof p === 'string') return parsePatchArg(p);
      if (typeof p !== 'object' || p === null)
        throw new UsageError('SPEC_INVALID', `patches[${i}]: expected an object or "OLD=NEW"`, { file });
      const q = p as Record<string, unknown>;
      const r: PatchRequest = { old: str(q.old, `patches[${i}].old`) };
      if (q.new !== undefined) r.new = str(q.new, `patches[${i}].new`);
      const os = num(q.oldSize, `patches[${i}].oldSize`);
      const ns = num(q.newSize, `patches[${i}].newSize`);
      const oa = addr(q.oldAddr, `patches[${i}].oldAddr`);
      if (os !== undefined) r.oldSize = os;
      if (ns !== undefined) r.newSize = ns;
      if (oa !== undefined) r.oldAddr = oa;
      return r;
    }),
    nops: list('nops', 'nop').map((p, i) => {
      if (typeof p === 'string') return parseNopArg(p);
      if (typeof p !== 'object' || p === null)
        throw new UsageError('SPEC_INVALID', `nops[${i}]: expected an object or "OLD:LEN"`, { file });
      const q = p as Record<string, unknown>;
      const r: NopRequest = { old: str(q.old, `nops[${i}].old`) };
      const len = num(q.len, `nops[${i}].len`);
      const os = num(q.oldSize, `nops[${i}].oldSize`);
      const oa = addr(q.oldAddr, `nops[${i}].oldAddr`);
      if (len !== undefined) r.len = len;
      if (os !== undefined) r.oldSize = os;
      if (oa !== undefined) r.oldAddr = oa;
      return r;
    }),
    hooks: list('hooks', 'hook').map((h, i) => {
      if (typeof h === 'string') return parseHookArg(h);
      if (typeof h !== 'object' || h === null)
        throw new UsageError('SPEC_INVALID', `hooks[${i}]: expected { kind, symbol } or "KIND=SYMBOL"`, { file });
      const q = h as Record<string, unknown>;
      return { kind: str(q.kind, `hooks[${i}].kind`), symbol: str(q.symbol, `hooks[${i}].symbol`) };
    }),
  };
  const opts: Partial<BuildFilesOptions> = {};
  for (const k of ['depends', 'abi', 'xenVersion', 'arch', 'oldAddr'] as const) {
    if (o[k] !== undefined) opts[k] = str(o[k], k);
  }
  if (o.expect !== undefined) {
    if (typeof o.expect !== 'boolean') throw new UsageError('SPEC_INVALID', 'expect: must be true or false', { file });
    opts.expect = o.expect;
  }
  return { spec, opts };
}

/** Picks the row: --abi, else --xen-version, else what XEN reveals; never a guess. */
export function selectAbi(
  o: { abi?: string; xenVersion?: string; arch?: Arch; extra: PayloadAbi[]; target: Target; objectMachine?: number },
  warn: (message: string) => void,
): PayloadAbi {
  const arch: Arch | undefined = o.arch ?? o.target.arch ?? (o.objectMachine !== undefined ? archOfMachine(o.objectMachine) : undefined);
  if (!arch) throw new UsageError('ARCH_UNKNOWN', 'cannot tell the architecture: pass --arch x86_64|arm64|arm32');
  if (o.arch && o.target.arch && o.arch !== o.target.arch) warn(`--arch ${o.arch} disagrees with XEN (${o.target.arch}); using ${o.arch}`);
  let revealed: PayloadAbi | undefined;
  if (o.target.version) {
    try {
      revealed = abiForVersion(o.target.version, arch);
    } catch (e) {
      if (!o.abi && !o.xenVersion && o.extra.length === 0) throw e;
    }
  }
  if (o.abi) {
    const row = abiByName(o.abi, arch, o.extra);
    if (revealed && revealed.name !== row.name) {
      warn(`--abi ${o.abi} wins over what XEN reveals (Xen ${o.target.version} uses ${revealed.name})`);
    }
    return row;
  }
  if (o.xenVersion) {
    const row = abiForVersion(o.xenVersion, arch);
    if (o.target.version) {
      const a = parseXenVersion(o.target.version);
      const b = parseXenVersion(o.xenVersion);
      if (a.major !== b.major || a.minor !== b.minor || (a.patch !== null && b.patch !== null && a.patch !== b.patch)) {
        warn(`--xen-version ${o.xenVersion} wins over what XEN reveals (${o.target.version})`);
      }
    }
    return row;
  }
  if (o.extra.length) {
    const rows = o.extra.filter((r) => r.arch === arch);
    if (rows.length === 1) return rows[0]!;
    if (rows.length > 1)
      throw new UsageError(
        'ABI_AMBIGUOUS',
        `--abi-file holds ${rows.length} rows for ${arch}: pick one with --abi (${rows.map((r) => r.name).join(', ')})`,
      );
  }
  if (revealed) return revealed;
  throw new UsageError(
    'TARGET_VERSION_UNKNOWN',
    `cannot tell which Xen release ${o.target.source === 'hex' ? 'the build-id' : 'XEN'} is: pass --xen-version X.Y.Z or --abi NAME (see --abi help)`,
  );
}

export async function readDepends(arg: string, abiBuildIdSection: string): Promise<DependsSpec> {
  let u: Uint8Array;
  try {
    u = await readInput(arg, { max: PAYLOAD_MAX, what: 'payload (--depends)', tooLargeIsRefusal: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOENT' || code === 'ENAMETOOLONG') && isHexId(arg)) return { buildId: parseHexId(arg), source: 'hex' };
    throw e;
  }
  if (!isElf(u)) {
    const t = new TextDecoder().decode(u);
    if (isHexId(t)) return { buildId: parseHexId(t), source: 'hex' };
    throw new UsageError('DEPENDS_FORMAT', 'not a payload (ELF) nor a hex build-id', { file: arg });
  }
  const elf = readElf(u, { file: arg });
  const sec = elf.sectionByName(abiBuildIdSection) ?? elf.sectionByName('.note.gnu.build-id');
  if (!sec) throw new UsageError('DEPENDS_NO_BUILDID', `has no ${abiBuildIdSection}`, { file: arg });
  const p = parseBuildIdNote(sec.data(), elf.header.littleEndian);
  if (!p.ok) throw new UsageError('DEPENDS_NO_BUILDID', `its ${sec.name} is not a valid build-id note: ${p.reason}`, { file: arg });
  return { buildId: p.id, payload: elf, source: 'payload' };
}

/** Writes `bytes` to `path` atomically (temp file in the same directory, then rename). */
export { writeFileAtomic };

async function samePath(a: string, b: string): Promise<boolean> {
  const ra = await realpath(a).catch(() => resolvePath(a));
  const rb = await realpath(b).catch(() => resolvePath(b));
  return ra === rb;
}

/** Section types that carry relocations xsplice does not decode (and Xen does not apply). */
const UNDECODED_RELOCS: Record<number, string> = {
  [SHT.CREL]: 'SHT_CREL (as --crel, clang -Wa,--crel)',
  [SHT.RELR]: 'SHT_RELR',
  0x60000001: 'SHT_ANDROID_REL',
  0x60000002: 'SHT_ANDROID_RELA',
  0x6fffff00: 'SHT_ANDROID_RELR',
};

/**
 * What an input object must be for its payload to load as built: refused here with the object's
 * own words (section, symbol, offset) rather than later by verify. A relocatable object from gcc
 * or clang passes all of these.
 */
export function checkObject(bytes: Uint8Array, file: string): void {
  if (!isElf(bytes)) return; // buildPayload reports a non-ELF input
  const elf = readElf(bytes, { file });
  refuseSharedContents(elf, file);
  const refuse = (code: string, detail: string, ctx: Record<string, unknown>): never => {
    throw new RefusedError(code, detail, { file, ...ctx });
  };
  for (const s of elf.sections) {
    if (s.index === 0) continue;
    const undecoded = UNDECODED_RELOCS[s.type];
    if (undecoded !== undefined || (s.type !== SHT.REL && s.type !== SHT.RELA && /^\.crel\./.test(s.name))) {
      refuse(
        'BUILD_RELOC_UNDECODED',
        `holds relocations in ${undecoded ?? `section type 0x${s.type.toString(16)}`}, which xsplice does not decode and Xen does not apply: assemble without --crel`,
        {
          sectionIndex: s.index,
          section: s.name,
          offset: s.headerOffset,
        },
      );
    }
    if ((s.type === SHT.REL || s.type === SHT.RELA) && s.flags & (SHF.WRITE | SHF.ALLOC | SHF.EXECINSTR)) {
      refuse('BUILD_RELOC_FLAGS', 'relocation section is flagged writable, allocated or executable (W/A/X): the loader would map it', {
        sectionIndex: s.index,
        section: s.name,
        offset: s.headerOffset,
        expected: 'no W, A or X flag',
      });
    }
    if (s.flags & SHF.EXECINSTR && !(s.flags & SHF.ALLOC) && s.size > 0n) {
      refuse('BUILD_SECTION_NOT_ALLOC', 'code section (SHF_EXECINSTR) is not SHF_ALLOC: the loader would never map it', {
        sectionIndex: s.index,
        section: s.name,
        offset: s.headerOffset,
        expected: 'flags AX',
      });
    }
    if (elf.header.type === ET.REL && s.addr !== 0n && s.flags & SHF.ALLOC) {
      refuse('BUILD_SECTION_ADDR', 'has a non-zero sh_addr in a relocatable object', {
        sectionIndex: s.index,
        section: s.name,
        offset: s.headerOffset,
        expected: 'sh_addr 0',
        found: '0x' + s.addr.toString(16),
      });
    }
  }
  const symtab = elf.symtabSection();
  if (!symtab) return;
  for (const sym of elf.symbols(symtab)) {
    if (sym.index === 0) continue;
    if (sym.shndx === SHN.UNDEF && sym.rawShndx === SHN.UNDEF) {
      if (sym.name === '')
        refuse('BUILD_SYMBOL_UNNAMED', 'an undefined symbol has no name: nothing can resolve it', {
          symbol: `#${sym.index}`,
          offset: symtab.offset,
        });
      continue;
    }
    if (sym.rawShndx >= SHN.LORESERVE && sym.rawShndx !== SHN.XINDEX) continue;
    const sec = elf.sections[sym.shndx];
    if (!sec || sym.type === STT.TLS || sym.type === STT.SECTION) continue;
    if (sym.type === STT.FUNC && !(sec.flags & SHF.ALLOC)) {
      refuse('BUILD_SECTION_NOT_ALLOC', `function lies in section ${sec.name}, which is not SHF_ALLOC: the loader would never map it`, {
        symbol: sym.name || `#${sym.index}`,
        sectionIndex: sec.index,
        section: sec.name,
        expected: 'an SHF_ALLOC section',
      });
    }
    if (sym.value + sym.size > sec.size) {
      refuse('BUILD_SYMBOL_RANGE', `symbol lies past the end of its section ${sec.name}`, {
        symbol: sym.name || `#${sym.index}`,
        expected: `value + size <= 0x${sec.size.toString(16)}`,
        found: `0x${sym.value.toString(16)} + 0x${sym.size.toString(16)}`,
      });
    }
  }
}

/** A release the row describes on its arch (for a target that does not say its own), or undefined. */
function releaseOfRow(abi: PayloadAbi): string | undefined {
  for (const m of abi.releases.matchAll(/\d+\.\d+(?:\.\d+)?/g)) {
    try {
      if (abiForVersion(m[0], abi.arch).name === abi.name) return m[0];
    } catch {
      /* not a release of this arch */
    }
  }
  return undefined;
}

/**
 * Runs verify (upload and apply checks) on a finished payload, after the `--depends` payload when
 * one was given, and refuses (exit 1) with verify's first reason. A hex `--depends` names a
 * payload verify cannot load, so its apply-time dependency check is left to the hypervisor.
 */
export function verifyBeforeWrite(
  bytes: Uint8Array,
  out: string,
  target: Target,
  abi: PayloadAbi,
  xenVersion: string | undefined,
  depends: DependsSpec | undefined,
  warn: (m: string) => void,
  dependsFile = 'depends',
): void {
  const version = xenVersion ?? target.version ?? (abi.name === 'xsplice' ? 'xsplice' : releaseOfRow(abi));
  if (!version) {
    warn(`not verified: the target does not reveal its Xen version and ${abi.name} names none; run xsplice verify with --xen-version`);
    return;
  }
  const inputs: VerifyInput[] = [];
  if (depends?.payload) inputs.push({ file: dependsFile, bytes: depends.payload.bytes });
  inputs.push({ file: out, bytes });
  const result = verifyPayloads(inputs, target, { abi, arch: abi.arch, xenVersion: version });
  const mine = result.payloads[result.payloads.length - 1]!;
  const errors = mine.diagnostics.filter((d) => d.severity === 'error' && !(d.code === 'DEPENDS_MISMATCH' && !depends?.payload && depends));
  if (errors.length === 0) return;
  const first = errors[0]!;
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more: run xsplice verify for all)` : '';
  throw new RefusedError(
    'BUILD_VERIFY_REFUSED',
    `verify refuses the payload, nothing written: ${first.code}${first.errno ? ` (${first.errno})` : ''}: ${first.message}${more}`,
    { file: out },
  );
}

const MAX_WARNINGS = 50;

export async function buildFiles(o: BuildFilesOptions): Promise<BuildFilesResult> {
  const warnings: string[] = [];
  const onWarning = o.onWarning;
  // Each distinct warning once: a hostile object can raise the same one for thousands of sections.
  const seen = new Set<string>();
  const sink = (w: string): void => {
    if (seen.has(w) || seen.size > MAX_WARNINGS) return;
    seen.add(w);
    const line = seen.size > MAX_WARNINGS ? `further warnings left out (more than ${MAX_WARNINGS})` : w;
    warnings.push(line);
    onWarning?.(line);
  };
  if (!o.out) throw new UsageError('USAGE', 'missing -o OUT');
  if (!o.xen) throw new UsageError('USAGE', 'missing --xen XEN');
  checkOutput(o.out);
  let spec: SpecFile = {};
  if (o.spec) {
    const r = parseSpec(await readInputText(o.spec, { max: 16 << 20, what: 'spec file' }), o.spec);
    spec = r.spec;
    // Command-line options win over the spec file.
    o = { ...r.opts, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) } as BuildFilesOptions;
  }
  if (o.objects.length === 0 && (o.patch?.length || o.hook?.length || spec.patches?.length || spec.hooks?.length))
    throw new UsageError('USAGE', 'no input objects (OBJ...); only --nop needs none');
  if (o.arch !== undefined && !(ARCHES as readonly string[]).includes(o.arch))
    throw new UsageError('USAGE', `--arch must be one of ${ARCHES.join(', ')}`);
  if (o.oldAddr !== undefined && o.oldAddr !== 'address' && o.oldAddr !== 'name')
    throw new UsageError('USAGE', '--old-addr must be "address" or "name"');
  for (const inp of [...o.objects, o.xen, o.depends, o.spec, o.abiFile]) {
    if (inp && inp !== '-' && (await samePath(inp, o.out)))
      throw new UsageError('OUT_IS_INPUT', 'the output would overwrite an input', { file: o.out });
  }
  const extra = o.abiFile ? await loadAbiFile(o.abiFile) : [];
  const target = await loadTarget(o.xen, { ...(o.stdinText !== undefined ? { stdinText: o.stdinText } : {}) });
  const objects = await Promise.all(
    o.objects.map(async (p) => {
      return { name: p, bytes: await readInput(p, { what: 'object' }) };
    }),
  );
  for (const obj of objects) checkObject(obj.bytes, obj.name);
  let objectMachine: number | undefined;
  const first = objects[0]?.bytes;
  if (first && isElf(first) && first.length >= 20) objectMachine = first[18]! | (first[19]! << 8);
  const abi = selectAbi({ abi: o.abi, xenVersion: o.xenVersion, arch: o.arch as Arch | undefined, extra, target, objectMachine }, sink);
  const depends = o.depends ? await readDepends(o.depends, abi.sections.buildId) : undefined;
  const res = await buildPayload({
    objects,
    target,
    abi,
    patches: [...(spec.patches ?? []), ...(o.patch ?? []).map(parsePatchArg)],
    nops: [...(spec.nops ?? []), ...(o.nop ?? []).map(parseNopArg)],
    hooks: [...(spec.hooks ?? []), ...(o.hook ?? []).map(parseHookArg)],
    ...(depends ? { depends } : {}),
    expect: o.expect ?? false,
    oldAddr: (o.oldAddr as 'address' | 'name' | undefined) ?? (target.symbols ? 'address' : 'name'),
    toolVersion: o.toolVersion ?? 'unknown',
    onWarning: sink,
  }).catch((e: unknown) => {
    // A name the target's symbol table does not resolve is about XEN, not about the output.
    if (e instanceof XspliceError && e.code.startsWith('SYMBOL_')) throw e.withFile(o.xen);
    throw e;
  });
  // The hypervisor's own checks (verify) run on the result before it gets its name: a build never
  // leaves behind a payload `xsplice verify` against the same target would refuse.
  verifyBeforeWrite(res.bytes, o.out, target, abi, o.xenVersion, depends, sink, o.depends);
  try {
    await writeFileAtomic(o.out, res.bytes, { onNote: sink });
  } catch (e) {
    if (e instanceof XspliceError) throw e.withFile(o.out);
    throw e;
  }
  return {
    ...res,
    warnings: [...new Set([...warnings, ...res.warnings])],
    file: o.out,
    target: { buildId: target.buildIdHex, version: o.xenVersion ?? target.version ?? null, source: target.source },
  };
}
