/**
 * The minimal dom0 initramfs, written as "newc" cpio archives in Node: a static part (busybox and
 * its applet links, the Xen tools and every shared library they need, ld-linux, the five Xen
 * kernel modules decompressed, /init) and a small per-run part (the payload files and the step
 * script /steps.sh). The kernel unpacks concatenated cpio archives in order, so the run's
 * initramfs is simply static + per-run.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, realpath } from 'node:fs/promises';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import { XspliceError } from '../errors.js';
import type { TryInputs } from './locate.js';

const exec = promisify(execFile);

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

/** Serialises entries as a newc archive (with the TRAILER!!! entry). */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => (4 - (n % 4)) % 4;
  const push = (name: string, mode: number, data: Buffer, rdev: [number, number] = [0, 0], nlink = 1) => {
    const nameBuf = Buffer.from(name + '\0', 'utf8');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0];
    const hdr = '070701' + fields.map((v) => (v >>> 0).toString(16).padStart(8, '0')).join('');
    parts.push(Buffer.from(hdr, 'latin1'), nameBuf, Buffer.alloc(pad4(110 + nameBuf.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '') || '.';
    switch (e.type) {
      case 'dir':
        push(name, 0o040000 | (e.mode ?? 0o755), Buffer.alloc(0), [0, 0], 2);
        break;
      case 'file':
        push(name, 0o100000 | (e.mode ?? 0o644), e.data);
        break;
      case 'symlink':
        push(name, 0o120000 | 0o777, Buffer.from(e.target, 'utf8'));
        break;
      case 'chardev':
        push(name, 0o020000 | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]);
        break;
    }
  }
  push('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Marker that starts every line the dom0 prints for the host to parse. */
export const MARK = '@@XSPLICE@@';

function initScript(modules: string[]): string {
  return `#!/bin/sh
# xsplice try: minimal dom0. Prints ${MARK} markers, runs /steps.sh, powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run /var/run /var/lib/xenstored /proc/xen
exec </dev/console >/dev/console 2>&1
echo "${MARK} INIT"
for m in ${modules.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "${MARK} WARN insmod $m failed"
done
mount -t xenfs xenfs /proc/xen || echo "${MARK} WARN mount xenfs failed"
i=0
while [ ! -e /dev/xen/privcmd ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /dev/xen/privcmd ] || echo "${MARK} WARN no /dev/xen/privcmd"
xs_finish() {
  echo "${MARK} DONE"
  sync
  poweroff -f
  echo o > /proc/sysrq-trigger
  sleep 3600
}
echo "${MARK} READY"
. /steps.sh
xs_finish
`;
}

async function resolveLibs(bins: string[], libDirs: string[]): Promise<Map<string, string>> {
  const libs = new Map<string, string>(); // soname -> real file
  const env = { ...process.env, LD_LIBRARY_PATH: [...libDirs, process.env.LD_LIBRARY_PATH ?? ''].filter(Boolean).join(':') };
  for (const b of bins) {
    let out: string;
    try {
      ({ stdout: out } = await exec('ldd', [b], { env, timeout: 30_000 }));
    } catch (e) {
      throw new XspliceError('TRY_LDD', `ldd failed: ${(e as Error).message.split('\n')[0]}`, { file: b }, 2);
    }
    for (const line of out.split('\n')) {
      const m = /^\s*(\S+)\s+=>\s+(\S+)\s+\(/.exec(line);
      if (m) {
        if (m[2] === 'not') throw new XspliceError('TRY_LDD', `shared library ${m[1]} not found (needed by ${basename(b)})`, { file: b }, 2);
        libs.set(basename(m[1]!), m[2]!);
        continue;
      }
      if (/^\s*(\S+)\s+=>\s+not found/.test(line)) {
        throw new XspliceError('TRY_LDD', `shared library ${line.trim().split(/\s+/)[0]} not found (needed by ${basename(b)})`, { file: b }, 2);
      }
      const m2 = /^\s*(\/\S*ld-linux[^\s]*)\s+\(/.exec(line);
      if (m2) libs.set('ld-linux-x86-64.so.2', m2[1]!);
    }
  }
  if (!libs.has('ld-linux-x86-64.so.2')) libs.set('ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2');
  return libs;
}

async function moduleBytes(file: string): Promise<Buffer> {
  if (!file.endsWith('.xz')) return readFile(file);
  try {
    const { stdout } = await exec('xz', ['-dc', file], { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 });
    return stdout as unknown as Buffer;
  } catch (e) {
    throw new XspliceError('TRY_MODULE', `cannot decompress (xz -dc; apt-get install xz-utils): ${(e as Error).message.split('\n')[0]}`, { file }, 2);
  }
}

export interface StaticInitramfs {
  cpio: Buffer;
  /** sha256 over the inputs' contents (for caching or reporting). */
  digest: string;
}

/** Builds the static part of the dom0 initramfs from the located inputs. */
export async function buildStaticInitramfs(inp: TryInputs): Promise<StaticInitramfs> {
  const hash = createHash('sha256');
  const entries: CpioEntry[] = [];
  for (const d of ['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'lib', 'lib/modules', 'lib64', 'proc', 'sys', 'dev', 'tmp', 'run',
    'etc', 'etc/xen', 'var', 'var/run', 'var/lib', 'var/lib/xenstored', 'payloads', 'root']) {
    entries.push({ type: 'dir', path: d });
  }
  entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });

  const bb = await readFile(inp.busybox);
  hash.update(bb);
  entries.push({ type: 'file', path: 'bin/busybox', data: bb, mode: 0o755 });
  let applets: string[] = [];
  try {
    const { stdout } = await exec(inp.busybox, ['--list'], { timeout: 10_000 });
    applets = stdout.split('\n').map((s) => s.trim()).filter((s) => /^[\w.[-]+$/.test(s) && s !== 'busybox');
  } catch {
    applets = [];
  }
  for (const a of new Set(['sh', 'mount', 'insmod', 'echo', 'cat', 'sleep', 'poweroff', 'sync', 'timeout', 'od', 'tr', 'mkdir', ...applets])) {
    entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  }

  for (const t of Object.keys(inp.tools) as (keyof TryInputs['tools'])[]) {
    const data = await readFile(inp.tools[t]);
    hash.update(data);
    entries.push({ type: 'file', path: `usr/sbin/${t}`, data, mode: 0o755 });
  }
  const libs = await resolveLibs(Object.values(inp.tools), inp.libDirs);
  for (const [soname, file] of [...libs].sort()) {
    const data = await readFile(await realpath(file));
    hash.update(soname).update(data);
    if (soname === 'ld-linux-x86-64.so.2') entries.push({ type: 'file', path: 'lib64/ld-linux-x86-64.so.2', data, mode: 0o755 });
    entries.push({ type: 'file', path: `lib/${soname}`, data, mode: 0o755 });
  }
  entries.push({ type: 'file', path: 'etc/xen/xl.conf', data: Buffer.alloc(0) });

  for (const m of inp.modules) {
    const data = await moduleBytes(m.file);
    hash.update(m.name).update(data);
    entries.push({ type: 'file', path: `lib/modules/${m.name}.ko`, data });
  }
  const init = initScript(inp.modules.map((m) => m.name));
  hash.update(init);
  entries.push({ type: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 });
  return { cpio: writeCpio(entries), digest: hash.digest('hex') };
}
