/**
 * The minimal dom0 initramfs, written as "newc" cpio archives in Node: a static part (busybox and
 * its applet links, the Xen tools and every shared library they need, ld-linux, the five Xen
 * kernel modules decompressed, /init) and a small per-run part (the payload files and the step
 * script /steps.sh). The kernel unpacks concatenated cpio archives in order, so the run's
 * initramfs is simply static + per-run.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
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
        if (m[2] === 'not')
          throw new XspliceError('TRY_LDD', `shared library ${m[1]} not found (needed by ${basename(b)})`, { file: b }, 2);
        libs.set(basename(m[1]!), m[2]!);
        continue;
      }
      if (/^\s*(\S+)\s+=>\s+not found/.test(line)) {
        throw new XspliceError(
          'TRY_LDD',
          `shared library ${line.trim().split(/\s+/)[0]} not found (needed by ${basename(b)})`,
          { file: b },
          2,
        );
      }
      const m2 = /^\s*(\/\S*ld-linux[^\s]*)\s+\(/.exec(line);
      if (m2) libs.set('ld-linux-x86-64.so.2', m2[1]!);
    }
  }
  if (!libs.has('ld-linux-x86-64.so.2')) libs.set('ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2');
  return libs;
}

/** PT_INTERP and DT_NEEDED of a 64-bit little-endian ELF (the dynamic loader's view, without running ldd). */
export function elfDynamicNeeds(b: Buffer): { interp?: string; needed: string[] } {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2 || b[5] !== 1) return { needed: [] };
  const phoff = Number(b.readBigUInt64LE(0x20));
  const phentsize = b.readUInt16LE(0x36);
  const phnum = b.readUInt16LE(0x38);
  const loads: { vaddr: bigint; off: bigint; filesz: bigint }[] = [];
  let interp: string | undefined;
  let dyn: { off: number; size: number } | undefined;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    if (o + 56 > b.length) break;
    const type = b.readUInt32LE(o);
    const off = b.readBigUInt64LE(o + 8);
    const vaddr = b.readBigUInt64LE(o + 16);
    const filesz = b.readBigUInt64LE(o + 32);
    if (type === 1) loads.push({ vaddr, off, filesz });
    if (type === 3 && off + filesz <= BigInt(b.length))
      interp = b.toString('latin1', Number(off), Number(off + filesz)).replace(/\0.*$/s, '');
    if (type === 2 && off + filesz <= BigInt(b.length)) dyn = { off: Number(off), size: Number(filesz) };
  }
  if (!dyn) return { ...(interp ? { interp } : {}), needed: [] };
  const neededOffs: bigint[] = [];
  let strtab: bigint | undefined;
  for (let p = dyn.off; p + 16 <= dyn.off + dyn.size; p += 16) {
    const tag = b.readBigInt64LE(p);
    const val = b.readBigUInt64LE(p + 8);
    if (tag === 0n) break;
    if (tag === 1n) neededOffs.push(val);
    if (tag === 5n) strtab = val;
  }
  const seg = strtab !== undefined ? loads.find((l) => strtab! >= l.vaddr && strtab! < l.vaddr + l.filesz) : undefined;
  if (!seg) return { ...(interp ? { interp } : {}), needed: [] };
  const base = Number(seg.off + (strtab! - seg.vaddr));
  const needed = neededOffs.map((o) => {
    const start = base + Number(o);
    const end = b.indexOf(0, start);
    return b.toString('latin1', start, end < 0 ? Math.min(b.length, start + 256) : end);
  });
  return { ...(interp ? { interp } : {}), needed };
}

/**
 * The shared libraries of binaries of another architecture: DT_NEEDED, transitively, looked up in
 * `libDirs`; the program interpreter by its path under the same root. Keyed like resolveLibs.
 */
async function resolveForeignLibs(bins: string[], libDirs: string[]): Promise<{ libs: Map<string, string>; interp?: string }> {
  const libs = new Map<string, string>();
  let interp: string | undefined;
  const queue = [...bins];
  const seen = new Set<string>();
  while (queue.length) {
    const f = queue.shift()!;
    if (seen.has(f)) continue;
    seen.add(f);
    const d = elfDynamicNeeds(await readFile(f));
    if (d.interp && !interp) interp = d.interp;
    for (const n of d.needed) {
      if (libs.has(n)) continue;
      const hit = libDirs.map((dir) => join(dir, n)).find((c) => existsSync(c));
      if (!hit)
        throw new XspliceError(
          'TRY_LDD',
          `shared library ${n} not found in ${libDirs.join(', ')} (needed by ${basename(f)})`,
          { file: f },
          2,
        );
      libs.set(n, hit);
      queue.push(await realpath(hit));
    }
  }
  return { libs, ...(interp ? { interp } : {}) };
}

async function moduleBytes(file: string): Promise<Buffer> {
  if (!file.endsWith('.xz')) return readFile(file);
  try {
    const { stdout } = await exec('xz', ['-dc', file], { encoding: 'buffer', maxBuffer: 64 << 20, timeout: 60_000 });
    return stdout as unknown as Buffer;
  } catch (e) {
    throw new XspliceError(
      'TRY_MODULE',
      `cannot decompress (xz -dc; apt-get install xz-utils): ${(e as Error).message.split('\n')[0]}`,
      { file },
      2,
    );
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
  for (const d of [
    'bin',
    'sbin',
    'usr',
    'usr/bin',
    'usr/sbin',
    'lib',
    'lib/modules',
    'lib64',
    'proc',
    'sys',
    'dev',
    'tmp',
    'run',
    'etc',
    'etc/xen',
    'var',
    'var/run',
    'var/lib',
    'var/lib/xenstored',
    'payloads',
    'root',
  ]) {
    entries.push({ type: 'dir', path: d });
  }
  entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ type: 'chardev', path: 'dev/null', major: 1, minor: 3, mode: 0o666 });

  const bb = await readFile(inp.busybox);
  hash.update(bb);
  entries.push({ type: 'file', path: 'bin/busybox', data: bb, mode: 0o755 });
  let applets: string[] = [];
  if (inp.arch === 'x86_64') {
    try {
      const { stdout } = await exec(inp.busybox, ['--list'], { timeout: 10_000 });
      applets = stdout
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => /^[\w.[-]+$/.test(s) && s !== 'busybox');
    } catch {
      applets = [];
    }
  }
  // A busybox of another architecture cannot list itself here: the applets /init and the steps use.
  for (const a of new Set([
    'sh',
    'mount',
    'insmod',
    'echo',
    'cat',
    'sleep',
    'poweroff',
    'sync',
    'timeout',
    'od',
    'tr',
    'mkdir',
    'ls',
    'dmesg',
    'grep',
    'head',
    'tail',
    'uname',
    ...applets,
  ])) {
    entries.push({ type: 'symlink', path: `bin/${a}`, target: 'busybox' });
  }

  for (const t of Object.keys(inp.tools) as (keyof TryInputs['tools'])[]) {
    const data = await readFile(inp.tools[t]);
    hash.update(data);
    entries.push({ type: 'file', path: `usr/sbin/${t}`, data, mode: 0o755 });
  }
  if (inp.arch === 'x86_64') {
    const libs = await resolveLibs(Object.values(inp.tools), inp.libDirs);
    for (const [soname, file] of [...libs].sort()) {
      const data = await readFile(await realpath(file));
      hash.update(soname).update(data);
      if (soname === 'ld-linux-x86-64.so.2') entries.push({ type: 'file', path: 'lib64/ld-linux-x86-64.so.2', data, mode: 0o755 });
      entries.push({ type: 'file', path: `lib/${soname}`, data, mode: 0o755 });
    }
  } else {
    const { libs, interp } = await resolveForeignLibs(Object.values(inp.tools), inp.libDirs);
    for (const [soname, file] of [...libs].sort()) {
      const data = await readFile(await realpath(file));
      hash.update(soname).update(data);
      entries.push({ type: 'file', path: `lib/${soname}`, data, mode: 0o755 });
    }
    if (interp) {
      // The interpreter at the path the binaries name (e.g. /lib/ld-linux-aarch64.so.1), taken from
      // the same unpacked root as the libraries.
      const src = inp.libDirs.map((d) => join(d, basename(interp))).find((c) => existsSync(c));
      if (!src) throw new XspliceError('TRY_LDD', `program interpreter ${interp} not found in ${inp.libDirs.join(', ')}`, {}, 2);
      const data = await readFile(await realpath(src));
      hash.update(interp).update(data);
      const rel = interp.replace(/^\/+/, '');
      if (rel !== `lib/${basename(interp)}` || !libs.has(basename(interp))) {
        if (!rel.startsWith('lib/') || rel.split('/').length !== 2) entries.push({ type: 'dir', path: dirname(rel) });
        entries.push({ type: 'file', path: rel, data, mode: 0o755 });
      }
    }
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
