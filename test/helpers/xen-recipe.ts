/**
 * Builds x86-64 live-patch payloads the way Xen's own test Makefile does (payload-format.md §3.4):
 * gcc compiles a replacement function and a C file declaring one `struct livepatch_func` (the
 * 104-byte version-2 layout, section writable as in the 4.17 tests), objcopy turns the raw
 * `.note.gnu.build-id` of xen-syms (or of an earlier payload) into `.livepatch.depends` /
 * `.livepatch.xen_depends` objects, and `ld -r --build-id=sha1` links the payload.
 *
 * Parameters produce the payloads the end-to-end and verify tests need: a good one, a wrong
 * xen_depends, a wrong depends, version-1 entries, `-mcmodel=kernel -fno-pic` code (R_X86_64_32S
 * relocations) and stacked payloads (depends = another payload's build-id).
 *
 * Everything happens in a fresh temp directory (or `outDir`); only Debian's gcc/binutils are used.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ARM64_CC } from './arm64.js';
import { tempDir } from './tmp.js';

const exec = promisify(execFile);

/** Compiler flags modelled on Xen 4.17's own build (xen-e2e.md, "Compiler flags that worked"). */
export const XEN_CFLAGS = [
  '-O2',
  '-m64',
  '-std=gnu99',
  '-nostdinc',
  '-ffreestanding',
  '-fno-builtin',
  '-fno-common',
  '-fno-stack-protector',
  '-fno-exceptions',
  '-fno-asynchronous-unwind-tables',
  '-fpic',
  '-fvisibility=hidden',
  '-msoft-float',
  '-mno-red-zone',
  '-mno-mmx',
  '-mno-sse',
  '-mskip-rax-setup',
  '-mpreferred-stack-boundary=3',
  '-mindirect-branch=thunk-extern',
  '-mindirect-branch-register',
  '-fno-jump-tables',
  '-mfunction-return=thunk-extern',
  '-fcf-protection=branch',
  '-mmanual-endbr',
  '-ffunction-sections',
  '-fdata-sections',
];

const OBJCOPY_MAGIC = ['-I', 'binary', '-O', 'elf64-x86-64', '-B', 'i386:x86-64'];

/**
 * arm64: the flags Xen 4.17 compiles itself with on arm64 (from the `.o.cmd` records of Debian's
 * source built by scripts/setup-deps.sh arm64-livepatch), plus one section per function.
 */
export const XEN_ARM64_CFLAGS = [
  '-O2',
  '-fomit-frame-pointer',
  '-std=gnu99',
  '-nostdinc',
  '-fno-builtin',
  '-fno-common',
  '-fno-strict-aliasing',
  '-mcpu=generic',
  '-mgeneral-regs-only',
  '-mno-outline-atomics',
  '-fno-pie',
  '-fno-stack-protector',
  '-fno-exceptions',
  '-fno-asynchronous-unwind-tables',
  '-ffunction-sections',
  '-fdata-sections',
];

interface Toolset {
  cc: string;
  nm: string;
  objcopy: string;
  ld: string;
  ldEmulation: string;
  magic: string[];
  cflags: string[];
}
const TOOLS: Record<'x86_64' | 'arm64', Toolset> = {
  x86_64: { cc: 'gcc', nm: 'nm', objcopy: 'objcopy', ld: 'ld', ldEmulation: 'elf_x86_64', magic: OBJCOPY_MAGIC, cflags: [] },
  arm64: {
    cc: ARM64_CC,
    nm: 'aarch64-linux-gnu-nm',
    objcopy: 'aarch64-linux-gnu-objcopy',
    ld: 'aarch64-linux-gnu-ld',
    ldEmulation: 'aarch64linux',
    magic: ['-I', 'binary', '-O', 'elf64-littleaarch64', '-B', 'aarch64'],
    cflags: [],
  },
};

/** Where a `.livepatch.depends` / `.livepatch.xen_depends` note comes from. */
export type NoteSource =
  /** The build-id note of xen-syms (what a correct payload carries). */
  | 'xen'
  /** xen-syms' note with the last build-id byte inverted: well-formed but wrong. */
  | 'wrong'
  /** The `.note.gnu.build-id` of an already built payload file (stacking, §3.4 step 5). */
  | { payload: string };

export interface XenRecipeOptions {
  /** xen-syms of the target hypervisor (sizes, build-id). */
  xenSyms: string;
  /** Identifier used for the payload file name and as a prefix of every payload symbol, so
   * several payloads can be loaded at once without "duplicate new symbol". [a-z0-9_] only. */
  tag?: string;
  /** The string the replacement function returns. Default "xsplice-hello". */
  newString?: string;
  /** The hypervisor function to replace; it must have the signature `const char *f(void)`.
   * Default `xen_extra_version` (what /sys/hypervisor/version/extra shows). */
  target?: string;
  /** `.old_addr`: 'symbol' = relocated against the Xen symbol (the 4.17 tests), 'zero' = 0, resolved
   * by name at upload (xen_replace_world). Default 'symbol'. */
  oldAddr?: 'symbol' | 'zero';
  /** `.version` of the entry; the hypervisor wants 2 (4.14+). */
  version?: number;
  /** 'pic' (default, what Xen builds) or 'kernel' (`-mcmodel=kernel -fno-pic`: R_X86_64_32S). */
  codeModel?: 'pic' | 'kernel';
  /** Content of `.livepatch.depends`. Default 'xen'. */
  depends?: NoteSource;
  /** Content of `.livepatch.xen_depends`. Default 'xen'; null leaves the section out. */
  xenDepends?: NoteSource | null;
  /** Directory for the intermediate and final files; default a new temp directory. */
  outDir?: string;
  /** Target architecture (default x86_64); arm64 uses the aarch64-linux-gnu- toolchain and XEN_ARM64_CFLAGS. */
  arch?: 'x86_64' | 'arm64';
  /** `.old_size` instead of the size of the target in xen-syms (e.g. below the patch size). */
  oldSize?: number;
  /** arm64: 'got' makes the replacement take the address of the target through the GOT (-fpic):
   * R_AARCH64_ADR_GOT_PAGE / R_AARCH64_LD64_GOT_LO12_NC, which the hypervisor's loader does not handle. */
  arm64Code?: 'plain' | 'got';
}

export interface XenRecipePayload {
  /** The payload file (`<tag>.livepatch`). */
  file: string;
  /** Hex of the payload's own `.note.gnu.build-id` descriptor. */
  buildId: string;
  tag: string;
  newString: string;
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { cwd, maxBuffer: 64 << 20, timeout: 60_000 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr || err.message).trim()}`);
  }
}

/** Size of a defined symbol per `nm --defined -S` (the Makefile's config.h step). */
async function symbolSize(file: string, symbol: string, cwd: string, nm = 'nm'): Promise<number> {
  const out = await run(nm, ['--defined', '-S', file], cwd);
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 4 && f[3] === symbol) return parseInt(f[1]!, 16);
  }
  throw new Error(`${file}: no sized symbol ${symbol}`);
}

/** Raw bytes of the `.note.gnu.build-id` section of an ELF file (header, "GNU\0", desc). */
async function noteBytes(elf: string, dir: string, out: string, objcopy = 'objcopy'): Promise<Buffer> {
  await run(objcopy, ['-O', 'binary', '--only-section=.note.gnu.build-id', elf, out], dir);
  const b = await readFile(out);
  if (b.length < 16) throw new Error(`${elf}: no .note.gnu.build-id`);
  return b;
}

/** Hex of the descriptor of a raw GNU build-id note. */
export function noteBuildId(note: Buffer): string {
  const namesz = note.readUInt32LE(0);
  const descsz = note.readUInt32LE(4);
  const off = 12 + ((namesz + 3) & ~3);
  return note.subarray(off, off + descsz).toString('hex');
}

/** Reads the build-id (hex) of any ELF file with a `.note.gnu.build-id` section. */
export async function readBuildId(elf: string): Promise<string> {
  const dir = await tempDir('bid');
  return noteBuildId(await noteBytes(elf, dir, join(dir, 'note.bin')));
}

async function noteObject(
  src: NoteSource,
  section: string,
  xenSyms: string,
  dir: string,
  base: string,
  t: Toolset = TOOLS.x86_64,
): Promise<string> {
  const bin = join(dir, `${base}.bin`);
  let note: Buffer;
  if (src === 'xen' || src === 'wrong') {
    note = await noteBytes(xenSyms, dir, bin, t.objcopy);
    if (src === 'wrong') {
      note = Buffer.from(note);
      note[note.length - 1]! ^= 0xff;
      await writeFile(bin, note);
    }
  } else {
    note = await noteBytes(src.payload, dir, bin, t.objcopy);
  }
  const obj = join(dir, `${base}.o`);
  await run(t.objcopy, [...t.magic, `--rename-section=.data=${section},alloc,load,readonly,data,contents`, '-S', bin, obj], dir);
  return obj;
}

function cString(s: string): string {
  return (
    '"' +
    Buffer.from(s, 'utf8')
      .toString('latin1')
      .replace(/[\\"]/g, (c) => '\\' + c)
      .replace(/[^\x20-\x7e]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0')) +
    '"'
  );
}

/** Builds one payload; see XenRecipeOptions for the knobs. */
export async function buildXenRecipePayload(opts: XenRecipeOptions): Promise<XenRecipePayload> {
  const tag = opts.tag ?? 'xsplice_hello';
  if (!/^[a-z][a-z0-9_]*$/.test(tag)) throw new Error(`bad tag ${tag}`);
  const newString = opts.newString ?? 'xsplice-hello';
  const target = opts.target ?? 'xen_extra_version';
  const version = opts.version ?? 2;
  const dir = opts.outDir ?? (await tempDir('recipe'));
  const arch = opts.arch ?? 'x86_64';
  const t = TOOLS[arch];
  const cflags =
    arch === 'arm64'
      ? opts.arm64Code === 'got'
        ? XEN_ARM64_CFLAGS.filter((f) => f !== '-fno-pie').concat(['-fpic'])
        : XEN_ARM64_CFLAGS
      : opts.codeModel === 'kernel'
        ? XEN_CFLAGS.filter((f) => f !== '-fpic').concat(['-mcmodel=kernel', '-fno-pic'])
        : XEN_CFLAGS;
  const fn = `${tag}_fn`;

  // 1. The replacement function (xen_hello_world_func.c in Xen's tests).
  const funcC = join(dir, `${tag}_func.c`);
  await writeFile(
    funcC,
    (arch === 'arm64' && opts.arm64Code === 'got'
      ? [
          // The target's address through the GOT (a hypervisor symbol, default visibility, -fpic).
          `extern const char *${target}(void);`,
          `static const char ${tag}_str[] = ${cString(newString)};`,
          `const char *${fn}(void);`,
          `const char *${fn}(void) { const char *p; __asm__("adrp %0, :got:${target}\\n\\tldr %0, [%0, :got_lo12:${target}]" : "=r"(p)); return p ? ${tag}_str : p; }`,
          '',
        ]
      : [
          `static const char ${tag}_str[] = ${cString(newString)};`,
          `const char *${fn}(void);`,
          `const char *${fn}(void) { return ${tag}_str; }`,
          '',
        ]
    ).join('\n'),
  );
  const funcO = join(dir, `${tag}_func.o`);
  await run(t.cc, [...cflags, '-c', funcC, '-o', funcO], dir);

  // 2. config.h: NEW_CODE_SZ from the object, OLD_CODE_SZ from xen-syms.
  const newSize = await symbolSize(funcO, fn, dir, t.nm);
  const oldSize = opts.oldSize ?? (await symbolSize(opts.xenSyms, target, dir, t.nm));

  // 3. The descriptor (xen_hello_world.c): 104-byte version-2 layout, writable section.
  const descC = join(dir, `${tag}.c`);
  await writeFile(
    descC,
    [
      'typedef unsigned char u8;',
      'typedef unsigned int u32;',
      'struct livepatch_func {',
      '  const char *name;   /* 0 */',
      '  void *new_addr;     /* 8 */',
      '  void *old_addr;     /* 16 */',
      '  u32 new_size;       /* 24 */',
      '  u32 old_size;       /* 28 */',
      '  u8 version;         /* 32 */',
      '  u8 pad[39];         /* 33: opaque/applied/patch_offset in L2a/L2b, padding in L2c */',
      '  u8 expect[32];      /* 72: livepatch_expectation_t, disabled */',
      '};',
      '_Static_assert(sizeof(struct livepatch_func) == 104, "livepatch_func must be 104 bytes");',
      `extern const char *${target}(void);`,
      `extern const char *${fn}(void);`,
      `static const char ${tag}_name[] = ${cString(target)};`,
      `struct livepatch_func __attribute__((used, section(".livepatch.funcs"))) ${tag}_patch = {`,
      `  .version = ${version},`,
      `  .name = ${tag}_name,`,
      `  .new_addr = ${fn},`,
      `  .old_addr = ${opts.oldAddr === 'zero' ? '0' : target},`,
      `  .new_size = ${newSize},`,
      `  .old_size = ${oldSize},`,
      '};',
      '',
    ].join('\n'),
  );
  const descO = join(dir, `${tag}.o`);
  await run(t.cc, [...(arch === 'arm64' ? XEN_ARM64_CFLAGS : cflags), '-c', descC, '-o', descO], dir);

  // 4. Build-id dependencies.
  const objs = [descO, funcO];
  objs.push(await noteObject(opts.depends ?? 'xen', '.livepatch.depends', opts.xenSyms, dir, `${tag}_note`, t));
  if (opts.xenDepends !== null) {
    objs.push(await noteObject(opts.xenDepends ?? 'xen', '.livepatch.xen_depends', opts.xenSyms, dir, `${tag}_xen_note`, t));
  }

  // 5. Relocatable link with a fresh build-id over the combined objects.
  const file = join(dir, `${tag}.livepatch`);
  await run(t.ld, ['-m', t.ldEmulation, '--build-id=sha1', '-r', '-o', file, ...objs], dir);
  const buildId = noteBuildId(await noteBytes(file, dir, join(dir, `${tag}_own_note.bin`), t.objcopy));
  return { file, buildId, tag, newString };
}
