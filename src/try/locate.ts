/**
 * Finds what `xsplice try` boots: the hypervisor image (gunzipped to the plain ELF that QEMU's
 * multiboot loader wants), its xen-syms, a dom0 kernel with the Xen modules of the same version,
 * the dom0 tools (xen-livepatch, xl, xenstored, xen-init-dom0) and a static busybox.
 *
 * Defaults come from Debian's Xen 4.17 packages: unpacked into `.cache/debian/root` of this
 * package by scripts/setup-deps.sh, or installed under `/`. When they are absent and we are root
 * with apt, setup-deps.sh is run to unpack them; otherwise the error says what to install.
 */
import { execFile } from 'node:child_process';
import { constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { access, open, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XspliceError } from '../errors.js';

export const XEN_SERIES = '4.17';
/** The five kernel modules dom0 needs, in the order they are loaded. */
export const DOM0_MODULES = ['xen-privcmd', 'xenfs', 'xen-evtchn', 'xen-gntdev', 'xen-gntalloc'] as const;
export const DOM0_TOOLS = ['xen-livepatch', 'xl', 'xenstored', 'xen-init-dom0'] as const;

export interface TryInputs {
  /** The hypervisor image as given or found (may be gzip). */
  xenImage: string;
  /** xen-syms of the same build, if found. */
  xenSyms?: string;
  dom0Kernel: string;
  /** Kernel release read from the bzImage header, e.g. "6.1.0-56-amd64". */
  kernelRelease: string;
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

export function defaultRoots(extra: string[] = []): string[] {
  const roots = [...extra];
  if (process.env.XSPLICE_DEBIAN_ROOT) roots.push(process.env.XSPLICE_DEBIAN_ROOT);
  roots.push(join(packageRoot(), '.cache', 'debian', 'root'), '/');
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

/** Reads the kernel release from a bzImage's setup header ("HdrS", kernel_version at 0x20e). */
export async function kernelRelease(kernel: string): Promise<string> {
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
    return new Set(txt.split('\n').filter(Boolean).map((l) => basename(l).replace(/\.ko$/, '')));
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

async function isStaticElf(p: string): Promise<boolean> {
  const b = await readFile(p);
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false;
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
  return typeof process.getuid === 'function' && process.getuid() === 0 && !!which('apt-get')
    && isFile(join(packageRoot(), 'scripts', 'setup-deps.sh'));
}

async function runSetup(progress?: (m: string) => void): Promise<void> {
  const script = join(packageRoot(), 'scripts', 'setup-deps.sh');
  progress?.(`unpacking Debian's Xen ${XEN_SERIES} packages (scripts/setup-deps.sh xen)`);
  await new Promise<void>((res, rej) => {
    execFile('bash', [script, 'xen'], { timeout: 900_000, maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      if (err) {
        const last = String(stderr).trim().split('\n').filter(Boolean).pop() ?? err.message;
        rej(new XspliceError('TRY_SETUP_FAILED', `scripts/setup-deps.sh xen failed: ${last}`, {}, 2));
      } else res();
    });
  });
}

const INSTALL_HINT = `install Debian's xen-hypervisor-${XEN_SERIES}-amd64, xen-hypervisor-${XEN_SERIES}-amd64-dbg, `
  + `xen-utils-${XEN_SERIES} and linux-image-amd64 (or run scripts/setup-deps.sh xen as root)`;

function defaultsPresent(roots: string[]): boolean {
  return roots.some((r) => isFile(join(r, `boot/xen-${XEN_SERIES}-amd64.gz`)) && isFile(join(r, `usr/lib/xen-${XEN_SERIES}/bin/xen-livepatch`)));
}

/** Resolves every input; throws a one-line XspliceError (exit 2) naming what is missing. */
export async function locateInputs(opts: LocateOptions = {}): Promise<TryInputs> {
  let roots = defaultRoots(opts.roots);
  if (!defaultsPresent(roots) && (opts.allowSetup ?? true) && canSetup()) {
    await runSetup(opts.onProgress);
    roots = defaultRoots(opts.roots);
  }

  const xenImage = opts.xenImage
    ? await userFile(opts.xenImage, '--xen-image')
    : firstFile(roots.map((r) => join(r, `boot/xen-${XEN_SERIES}-amd64.gz`)));
  if (!xenImage) throw new XspliceError('TRY_NO_XEN', `no Xen ${XEN_SERIES} image found; ${INSTALL_HINT}, or pass --xen-image`, {}, 2);

  const xenSyms = opts.xenSyms
    ? await userFile(opts.xenSyms, '--xen-syms')
    : firstFile(roots.map((r) => join(r, `usr/lib/debug/boot/xen-syms-${XEN_SERIES}-amd64`)));

  // dom0 kernel: the newest vmlinuz of a root that also holds its Xen modules.
  let dom0Kernel: string | undefined;
  let release = '';
  const moduleRoots: string[] = [];
  if (opts.dom0Kernel) {
    dom0Kernel = await userFile(opts.dom0Kernel, '--dom0-kernel');
    release = await kernelRelease(dom0Kernel);
    moduleRoots.push(join(dirname(dom0Kernel), '..', 'lib', 'modules', release));
    for (const r of roots) moduleRoots.push(join(r, 'lib', 'modules', release));
  } else {
    for (const r of roots) {
      const boot = join(r, 'boot');
      let ks: string[] = [];
      try {
        ks = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-')).sort().reverse();
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
    if (!dom0Kernel) throw new XspliceError('TRY_NO_KERNEL', `no dom0 kernel with Xen modules found; ${INSTALL_HINT}, or pass --dom0-kernel`, {}, 2);
    release = await kernelRelease(dom0Kernel);
  }
  const modDir = moduleRoots.find((d) => existsSync(d));
  if (!modDir) {
    throw new XspliceError('TRY_NO_MODULES', `no kernel modules for ${release} (looked for lib/modules/${release} beside the kernel and in ${roots.join(', ')})`, { file: dom0Kernel }, 2);
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
      series = readdirSync(join(r, 'usr/lib')).filter((d) => /^xen-\d+\.\d+$/.test(d))
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
  const libDirs = toolRoot === '/'
    ? []
    : ['usr/lib/x86_64-linux-gnu', 'lib/x86_64-linux-gnu', join(toolDir, 'lib'), 'usr/lib', 'lib'].map((d) => join(toolRoot!, d));

  const busybox = firstFile(['/bin/busybox', '/usr/bin/busybox', ...roots.map((r) => join(r, 'bin/busybox'))]);
  if (!busybox || !(await isStaticElf(busybox))) {
    throw new XspliceError('TRY_NO_BUSYBOX', 'a static busybox is needed for the dom0 initramfs; apt-get install busybox-static', {}, 2);
  }
  const qemu = which('qemu-system-x86_64');
  if (!qemu) throw new XspliceError('TRY_NO_QEMU', 'qemu-system-x86_64 not found; apt-get install qemu-system-x86', {}, 2);
  return { xenImage, xenSyms, dom0Kernel, kernelRelease: release, modules, tools, libDirs, busybox, qemu };
}
