/**
 * Finds what `xsplice try` boots: the hypervisor image (gunzipped to the plain ELF that QEMU's
 * multiboot loader wants), its xen-syms, a dom0 kernel with the Xen modules of the same version,
 * the dom0 tools (xen-livepatch, xl, xenstored, xen-init-dom0) and a static busybox.
 *
 * Defaults come from Debian's Xen 4.17 packages: unpacked into `.cache/debian/root` of this
 * package by scripts/setup-deps.sh, or installed under `/`. When they are absent and we are root
 * with apt, setup-deps.sh is run to unpack them; otherwise the error says what to install.
 *
 * Why one file: it is the one question "where are the inputs": the per-architecture facts, the
 * search roots and the kernel/module/tool probes that `locateInputs` runs, plus the setup-deps.sh
 * fallback when they are missing.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { EM } from '../elf/constants.js';
import { XspliceError } from '../errors.js';

export const XEN_SERIES = '4.17';

export type TryArch = 'x86_64' | 'arm64';

/** Where each architecture's parts live in Debian's packages and which QEMU runs them. */
export interface ArchFacts {
  /** Debian's architecture name. */
  deb: 'amd64' | 'arm64';
  /** The directory under .cache that scripts/setup-deps.sh unpacks into, and its target name. */
  cacheDir: string;
  setupTarget: 'xen' | 'arm64';
  /** Hypervisor image and symbol file, relative to a root. */
  xenImage: string;
  xenSyms: string;
  qemu: string;
  qemuPackage: string;
  /** Multiarch triplet of the libraries. */
  triplet: string;
  /** ELF e_machine of dom0's binaries. */
  machine: number;
  /** Whether the host can run dom0's binaries (ldd, busybox --list). */
  native: boolean;
}

export const ARCHES: Record<TryArch, ArchFacts> = {
  x86_64: {
    deb: 'amd64',
    cacheDir: 'debian',
    setupTarget: 'xen',
    xenImage: `boot/xen-${XEN_SERIES}-amd64.gz`,
    xenSyms: `usr/lib/debug/boot/xen-syms-${XEN_SERIES}-amd64`,
    qemu: 'qemu-system-x86_64',
    qemuPackage: 'qemu-system-x86',
    triplet: 'x86_64-linux-gnu',
    machine: EM.X86_64,
    native: process.arch === 'x64',
  },
  arm64: {
    deb: 'arm64',
    cacheDir: 'debian-arm64',
    setupTarget: 'arm64',
    xenImage: `boot/xen-${XEN_SERIES}-arm64`,
    xenSyms: `usr/lib/debug/boot/xen-syms-${XEN_SERIES}-arm64`,
    qemu: 'qemu-system-aarch64',
    qemuPackage: 'qemu-system-arm',
    triplet: 'aarch64-linux-gnu',
    machine: EM.AARCH64,
    native: process.arch === 'arm64',
  },
};
/** The five kernel modules dom0 needs, in the order they are loaded. */
export const DOM0_MODULES = ['xen-privcmd', 'xenfs', 'xen-evtchn', 'xen-gntdev', 'xen-gntalloc'] as const;
export const DOM0_TOOLS = ['xen-livepatch', 'xl', 'xenstored', 'xen-init-dom0'] as const;

export interface TryInputs {
  /** The hypervisor image as given or found (may be gzip). */
  xenImage: string;
  /** xen-syms of the same build, if found. */
  xenSyms?: string;
  dom0Kernel: string;
  /** Kernel release read from the kernel image, e.g. "6.1.0-56-amd64". */
  kernelRelease: string;
  arch: TryArch;
  /** Module files by name (.ko or .ko.xz); a module built into the kernel is absent. */
  modules: { name: string; file: string }[];
  /** Tool paths by name. */
  tools: Record<(typeof DOM0_TOOLS)[number], string>;
  /** Directories where the tools' shared libraries are looked up first. */
  libDirs: string[];
  busybox: string;
  qemu: string;
}

export interface LocateOptions {
  /** Default x86_64. */
  arch?: TryArch;
  xenImage?: string;
  xenSyms?: string;
  dom0Kernel?: string;
  /** Run scripts/setup-deps.sh xen when the defaults are missing and we are root with apt
   * (default true). */
  allowSetup?: boolean;
  /** Extra roots searched before the defaults (an unpacked Debian tree). */
  roots?: string[];
  /** Told when a slow phase starts. */
  onProgress?: (message: string) => void;
}

/** Root directory of the xsplice package (where package.json and scripts/ live). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'scripts'))) return dir;
    dir = dirname(dir);
  }
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

export function defaultRoots(extra: string[] = [], arch: TryArch = 'x86_64'): string[] {
  const roots = [...extra];
  const f = ARCHES[arch];
  if (arch === 'x86_64' && process.env.XSPLICE_DEBIAN_ROOT) roots.push(process.env.XSPLICE_DEBIAN_ROOT);
  if (arch === 'arm64' && process.env.XSPLICE_DEBIAN_ARM64_ROOT) roots.push(process.env.XSPLICE_DEBIAN_ARM64_ROOT);
  roots.push(join(packageRoot(), '.cache', f.cacheDir, 'root'));
  if (f.native) roots.push('/');
  return roots;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function firstFile(cands: string[]): string | undefined {
  return cands.find(isFile);
}

/** Checks a user-given file: missing/unreadable is a usage error naming the option. */
async function userFile(p: string, option: string): Promise<string> {
  const abs = resolve(p);
  try {
    await access(abs, constants.R_OK);
  } catch {
    throw new XspliceError('TRY_NO_INPUT', `${option}: no such file or not readable`, { file: p }, 2);
  }
  if (!isFile(abs)) throw new XspliceError('TRY_NO_INPUT', `${option}: not a regular file`, { file: p }, 2);
  return abs;
}

/**
 * Reads the kernel release: from a bzImage's setup header ("HdrS", kernel_version at 0x20e), or
 * from the "Linux version X " banner inside an arm64 Image (plain or gzip).
 */
export async function kernelRelease(kernel: string, arch: TryArch = 'x86_64'): Promise<string> {
  if (arch === 'arm64') return arm64KernelRelease(kernel);
  const fh = await open(kernel, 'r');
  try {
    const head = Buffer.alloc(0x4000);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    if (bytesRead < 0x210 || head.toString('latin1', 0x202, 0x206) !== 'HdrS') {
      throw new XspliceError('TRY_BAD_KERNEL', 'not a Linux bzImage (no HdrS setup header)', { file: kernel }, 2);
    }
    const off = head.readUInt16LE(0x20e) + 0x200;
    const buf = Buffer.alloc(256);
    await fh.read(buf, 0, buf.length, off);
    const s = buf.toString('latin1');
    const rel = s.slice(0, s.indexOf(' ') < 0 ? 64 : s.indexOf(' '));
    if (!/^[0-9][\w.+-]*$/.test(rel)) {
      throw new XspliceError('TRY_BAD_KERNEL', 'cannot read the kernel release from the bzImage header', { file: kernel }, 2);
    }
    return rel;
  } finally {
    await fh.close();
  }
}

/** An arm64 Linux Image carries "ARMd" at 0x38. */
export function isArm64Image(b: Buffer): boolean {
  return b.length >= 64 && b.readUInt32LE(0x38) === 0x644d5241;
}

async function arm64KernelRelease(kernel: string): Promise<string> {
  const st = statSync(kernel);
  if (st.size > 256 << 20) throw new XspliceError('TRY_BAD_KERNEL', 'kernel image larger than 256 MiB', { file: kernel }, 2);
  let b = await readFile(kernel);
  if (b.length > 2 && b[0] === 0x1f && b[1] === 0x8b) {
    try {
      b = gunzipSync(b, { maxOutputLength: 512 << 20 });
    } catch {
      throw new XspliceError('TRY_BAD_KERNEL', 'cannot gunzip the kernel image', { file: kernel }, 2);
    }
  }
  if (!isArm64Image(b)) throw new XspliceError('TRY_BAD_KERNEL', 'not an arm64 Linux Image (no ARMd magic at 0x38)', { file: kernel }, 2);
  const i = b.indexOf('Linux version ');
  const m = i >= 0 ? /^Linux version ([0-9][\w.+-]*) /.exec(b.toString('latin1', i, i + 200)) : null;
  if (!m)
    throw new XspliceError('TRY_BAD_KERNEL', 'cannot find the kernel release ("Linux version ...") in the Image', { file: kernel }, 2);
  return m[1]!;
}

function findModule(dir: string, name: string): string | undefined {
  // Debian ships them either plain or .ko.xz, under kernel/drivers/xen (xenfs in a subdir).
  const base = join(dir, 'kernel', 'drivers', 'xen');
  const stack = [base];
  while (stack.length) {
    const d = stack.pop()!;
    let ents: import('node:fs').Dirent[];
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of ents) {
      if (e.isDirectory()) stack.push(join(d, e.name));
      else if (e.name === `${name}.ko` || e.name === `${name}.ko.xz`) return join(d, e.name);
    }
  }
  return undefined;
}

function builtinModules(dir: string): Set<string> {
  try {
    const txt = readFileSync(join(dir, 'modules.builtin'), 'utf8');
    return new Set(
      txt
        .split('\n')
        .filter(Boolean)
        .map((l) => basename(l).replace(/\.ko$/, '')),
    );
  } catch {
    return new Set();
  }
}

function which(prog: string): string | undefined {
  for (const d of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
    if (d && isFile(join(d, prog))) return join(d, prog);
  }
  return undefined;
}

async function isStaticElf(p: string, machine: number): Promise<boolean> {
  const b = await readFile(p);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b.readUInt16LE(0x12) !== machine) return false;
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 4 > b.length) return false;
    if (b.readUInt32LE(o) === 3) return false; // PT_INTERP
  }
  return true;
}

function canSetup(): boolean {
  return (
    typeof process.getuid === 'function' &&
    process.getuid() === 0 &&
    !!which('apt-get') &&
    isFile(join(packageRoot(), 'scripts', 'setup-deps.sh'))
  );
}

/** Runs scripts/setup-deps.sh with `args`; its last stderr line on failure. */
export async function runSetupScript(args: string[], progress?: (m: string) => void): Promise<string> {
  const script = join(packageRoot(), 'scripts', 'setup-deps.sh');
  progress?.(`running scripts/setup-deps.sh ${args.join(' ')}`);
  return new Promise<string>((res, rej) => {
    execFile('bash', [script, ...args], { timeout: 900_000, maxBuffer: 16 << 20 }, (err, out, stderr) => {
      if (err) {
        const last = String(stderr).trim().split('\n').filter(Boolean).pop() ?? err.message;
        rej(new XspliceError('TRY_SETUP_FAILED', `scripts/setup-deps.sh ${args.join(' ')} failed: ${last}`, {}, 2));
      } else res(String(out));
    });
  });
}

function installHint(arch: TryArch): string {
  const f = ARCHES[arch];
  return arch === 'x86_64'
    ? `install Debian's xen-hypervisor-${XEN_SERIES}-amd64, xen-hypervisor-${XEN_SERIES}-amd64-dbg, ` +
        `xen-utils-${XEN_SERIES} and linux-image-amd64 (or run scripts/setup-deps.sh xen as root)`
    : `run scripts/setup-deps.sh arm64 as root (it fetches Debian's ${f.deb} xen-hypervisor-${XEN_SERIES}-${f.deb}, xen-utils-${XEN_SERIES}, ` +
        `linux-image-${f.deb} and busybox-static into .cache/${f.cacheDir} with a private apt state)`;
}

function defaultsPresent(roots: string[], arch: TryArch): boolean {
  return roots.some((r) => isFile(join(r, ARCHES[arch].xenImage)) && isFile(join(r, `usr/lib/xen-${XEN_SERIES}/bin/xen-livepatch`)));
}

/** Resolves every input; throws a one-line XspliceError (exit 2) naming what is missing. */
export async function locateInputs(opts: LocateOptions = {}): Promise<TryInputs> {
  const arch = opts.arch ?? 'x86_64';
  const facts = ARCHES[arch];
  const INSTALL_HINT = installHint(arch);
  let roots = defaultRoots(opts.roots, arch);
  if (!defaultsPresent(roots, arch) && (opts.allowSetup ?? true) && canSetup()) {
    await runSetupScript([facts.setupTarget], opts.onProgress);
    roots = defaultRoots(opts.roots, arch);
  }

  const xenImage = opts.xenImage ? await userFile(opts.xenImage, '--xen-image') : firstFile(roots.map((r) => join(r, facts.xenImage)));
  if (!xenImage)
    throw new XspliceError('TRY_NO_XEN', `no Xen ${XEN_SERIES} ${facts.deb} image found; ${INSTALL_HINT}, or pass --xen-image`, {}, 2);

  const xenSyms = opts.xenSyms
    ? await userFile(opts.xenSyms, '--xen-syms')
    : opts.xenImage
      ? undefined
      : firstFile(roots.map((r) => join(r, facts.xenSyms)));

  // dom0 kernel: the newest vmlinuz of a root that also holds its Xen modules.
  let dom0Kernel: string | undefined;
  let release = '';
  const moduleRoots: string[] = [];
  if (opts.dom0Kernel) {
    dom0Kernel = await userFile(opts.dom0Kernel, '--dom0-kernel');
    release = await kernelRelease(dom0Kernel, arch);
    moduleRoots.push(join(dirname(dom0Kernel), '..', 'lib', 'modules', release));
    for (const r of roots) moduleRoots.push(join(r, 'lib', 'modules', release));
  } else {
    for (const r of roots) {
      const boot = join(r, 'boot');
      let ks: string[] = [];
      try {
        ks = readdirSync(boot)
          .filter((f) => f.startsWith('vmlinuz-'))
          .sort()
          .reverse();
      } catch {
        continue;
      }
      for (const k of ks) {
        const rel = k.slice('vmlinuz-'.length);
        if (existsSync(join(r, 'lib', 'modules', rel, 'kernel', 'drivers', 'xen'))) {
          dom0Kernel = join(boot, k);
          moduleRoots.push(join(r, 'lib', 'modules', rel));
          break;
        }
      }
      if (dom0Kernel) break;
    }
    if (!dom0Kernel)
      throw new XspliceError('TRY_NO_KERNEL', `no dom0 kernel with Xen modules found; ${INSTALL_HINT}, or pass --dom0-kernel`, {}, 2);
    release = await kernelRelease(dom0Kernel, arch);
  }
  const modDir = moduleRoots.find((d) => existsSync(d));
  if (!modDir) {
    throw new XspliceError(
      'TRY_NO_MODULES',
      `no kernel modules for ${release} (looked for lib/modules/${release} beside the kernel and in ${roots.join(', ')})`,
      { file: dom0Kernel },
      2,
    );
  }
  const builtin = builtinModules(modDir);
  const modules: { name: string; file: string }[] = [];
  for (const m of DOM0_MODULES) {
    const f = findModule(modDir, m);
    if (f) modules.push({ name: m, file: f });
    else if (!builtin.has(m)) {
      throw new XspliceError('TRY_NO_MODULES', `kernel module ${m} not found under ${modDir}`, {}, 2);
    }
  }

  // The dom0 tools: xen-utils-4.17 preferred, else any other xen-utils-X.Y in the same root.
  let toolRoot: string | undefined;
  let toolDir = '';
  for (const r of roots) {
    let series: string[] = [];
    try {
      series = readdirSync(join(r, 'usr/lib'))
        .filter((d) => /^xen-\d+\.\d+$/.test(d))
        .sort((a, b) => (a === `xen-${XEN_SERIES}` ? -1 : b === `xen-${XEN_SERIES}` ? 1 : b.localeCompare(a, 'en', { numeric: true })));
    } catch {
      continue;
    }
    const d = series.find((x) => isFile(join(r, 'usr/lib', x, 'bin/xen-livepatch')));
    if (d) {
      toolRoot = r;
      toolDir = join('usr/lib', d);
      break;
    }
  }
  if (!toolRoot) throw new XspliceError('TRY_NO_TOOLS', `xen-livepatch (xen-utils-${XEN_SERIES}) not found; ${INSTALL_HINT}`, {}, 2);
  const tools = {} as TryInputs['tools'];
  for (const t of DOM0_TOOLS) {
    const p = join(toolRoot, toolDir, 'bin', t);
    if (!isFile(p)) throw new XspliceError('TRY_NO_TOOLS', `${t} not found in ${dirname(p)}; ${INSTALL_HINT}`, {}, 2);
    tools[t] = p;
  }
  const libDirs =
    toolRoot === '/' && facts.native
      ? []
      : [`usr/lib/${facts.triplet}`, `lib/${facts.triplet}`, join(toolDir, 'lib'), 'usr/lib', 'lib'].map((d) => join(toolRoot!, d));

  const bbCands = [...(facts.native ? ['/bin/busybox', '/usr/bin/busybox'] : []), ...roots.map((r) => join(r, 'bin/busybox'))];
  let busybox: string | undefined;
  for (const c of bbCands) {
    if (isFile(c) && (await isStaticElf(c, facts.machine))) {
      busybox = c;
      break;
    }
  }
  if (!busybox) {
    throw new XspliceError(
      'TRY_NO_BUSYBOX',
      `a static ${facts.deb} busybox is needed for the dom0 initramfs; ${facts.native ? 'apt-get install busybox-static' : INSTALL_HINT}`,
      {},
      2,
    );
  }
  const qemu = which(facts.qemu);
  if (!qemu) throw new XspliceError('TRY_NO_QEMU', `${facts.qemu} not found; apt-get install ${facts.qemuPackage}`, {}, 2);
  return { xenImage, xenSyms, dom0Kernel, kernelRelease: release, arch, modules, tools, libDirs, busybox, qemu };
}
