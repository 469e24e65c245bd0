/**
 * The file side of every command: bounded inputs and atomic outputs.
 *
 * Inputs are regular files (readelf's rule: "is not an ordinary file"), checked before anything is
 * read, and read up to a cap: a FIFO, a device (/dev/zero), a directory or an endless stdin ends
 * at once with one error line instead of a hang or unbounded memory.
 *
 * Outputs are written atomically: a temporary file in the destination's directory, fsync'd,
 * renamed over the destination, then the directory fsync'd. A failure leaves no partial file and
 * never touches an existing destination. The temporary's name says what it is
 * (`.NAME.xsplice-tmp.PID.RAND`); one left by a killed process is removed by the next write to the
 * same destination. A destination that is not a regular file (FIFO, device node, socket, or a
 * symlink to one) is never replaced by a file: standard output's names (/dev/stdout, /dev/fd/1,
 * /proc/self/fd/1) are written through, anything else is refused. A symlink to a regular file
 * has its target replaced (the link stays), keeping the target's owner and mode.
 */
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  closeSync,
  fchmodSync,
  readlinkSync,
  constants as C,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { RefusedError, UsageError, XspliceError } from './errors.js';

/** Default cap of an input file (the biggest real input, a debug xen-syms, is tens of MiB). */
export const INPUT_MAX = 512 * 1024 * 1024;
/** Cap of standard input (`xl info` text, a sysfs build-id: a few KiB). */
export const STDIN_MAX = 1024 * 1024;
/** Cap of a gunzipped hypervisor image (Debian's xen.gz inflates to ~3 MiB), checked while inflating. */
export const GUNZIP_MAX = 64 * 1024 * 1024;
/** What Xen accepts as one upload (LIVEPATCH_MAX_SIZE, MB(2), since 4.8; spec §2.1). */
export const PAYLOAD_MAX = 2 * 1024 * 1024;

export interface InputOptions {
  /** Largest accepted size in bytes (default INPUT_MAX). */
  max?: number;
  /** What the file is, for the too-large message ("payload", "object"). */
  what?: string;
  /** Too large is a refusal (exit 1: Xen would refuse it), not malformed input (exit 2). */
  tooLargeIsRefusal?: boolean;
}

/** The kind of a non-regular file, as `ls -l` would say it. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

/** Throws the not-a-regular-file error unless `st` (of `path`) is a regular file. */
export function checkRegular(st: Stats, path: string): void {
  if (!st.isFile()) throw notRegular(path, st);
}

function notRegular(path: string, st: Stats): XspliceError {
  return new UsageError('INPUT_NOT_REGULAR', `not a regular file (${fileKind(st)}); inputs must be regular files`, { file: path });
}

function tooLarge(path: string, size: number | string, o: InputOptions): XspliceError {
  const max = o.max ?? INPUT_MAX;
  const detail = `${o.what ?? 'input'} is larger than the ${max} bytes accepted`;
  const ctx = { file: path, expected: `<= ${max} bytes`, found: `${size} bytes` };
  return o.tooLargeIsRefusal ? new RefusedError('INPUT_TOO_LARGE', detail, ctx) : new UsageError('INPUT_TOO_LARGE', detail, ctx);
}

/** Checks that `path` names a regular file (following symlinks) and returns its stat. */
export function statInput(path: string): Stats {
  const st = statSync(path);
  if (!st.isFile()) throw notRegular(path, st);
  return st;
}

/**
 * Reads a regular file whole, up to `max` bytes. Refuses non-regular files before opening them
 * (opening a FIFO would block) and again on the open descriptor (the name may have changed);
 * refuses a file above the cap from its size, before reading; reads at most max + 1 bytes either
 * way (a /proc or /sys file reports a size that is not its length).
 */
export function readInputSync(path: string, o: InputOptions = {}): Uint8Array {
  const max = o.max ?? INPUT_MAX;
  statInput(path);
  const fd = openSync(path, C.O_RDONLY | C.O_NONBLOCK | C.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw notRegular(path, st);
    if (st.size > max) throw tooLarge(path, st.size, o);
    let buf = Buffer.allocUnsafe(Math.min(max + 1, Math.max(st.size + 1, 4096)));
    let len = 0;
    for (;;) {
      if (len === buf.length) {
        if (len > max) throw tooLarge(path, `more than ${max}`, o);
        const bigger = Buffer.allocUnsafe(Math.min(max + 1, buf.length * 2));
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
    }
    if (len > max) throw tooLarge(path, `more than ${max}`, o);
    return new Uint8Array(buf.buffer, buf.byteOffset, len);
  } finally {
    closeSync(fd);
  }
}

/** readInputSync for async callers (inputs are local files; one read loop either way). */
export async function readInput(path: string, o: InputOptions = {}): Promise<Uint8Array> {
  return readInputSync(path, o);
}

/** A regular file's text (UTF-8), bounded like readInputSync. */
export async function readInputText(path: string, o: InputOptions = {}): Promise<string> {
  return Buffer.from(readInputSync(path, o)).toString('utf8');
}

/**
 * Reads a stream (standard input) up to `max` bytes; one byte more ends the read with an error
 * naming `-`, and the stream is let go (an endless writer gets EPIPE, not an endless reader).
 */
export async function readStreamCapped(stream: NodeJS.ReadableStream & { destroy?: () => void }, max = STDIN_MAX): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let len = 0;
  for await (const c of stream) {
    const b = typeof c === 'string' ? Buffer.from(c) : (c as Buffer);
    len += b.length;
    if (len > max) {
      stream.destroy?.();
      throw new UsageError(
        'INPUT_TOO_LARGE',
        `standard input is larger than the ${max} bytes accepted (\`xl info\` text or a sysfs build-id is a few KiB)`,
        {
          file: '-',
          expected: `<= ${max} bytes`,
          found: `more than ${max} bytes`,
        },
      );
    }
    chunks.push(b);
  }
  const b = Buffer.concat(chunks);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/* ------------------------------------------------------------------------------------------ */
/* Outputs                                                                                     */

export interface AtomicOptions {
  /** File mode of a new file (default 0o644; an existing destination keeps its own). */
  mode?: number;
  /** Told how the output was written when it was not a plain replace (standard output written through). */
  onNote?: (message: string) => void;
}

/** How an output was written. */
export type WriteMode = 'replaced' | 'created' | 'through';

const TMP_TAG = '.xsplice-tmp.';

/** The names standard output goes by: written through, never replaced by a file. */
const STDOUT_NAMES = new Set(['/dev/stdout', '/dev/fd/1', '/proc/self/fd/1', `/proc/${process.pid}/fd/1`]);

function tempPath(dest: string): string {
  return join(dirname(dest), `.${basename(dest)}${TMP_TAG}${process.pid}.${randomBytes(6).toString('hex')}`);
}

/** Whether process `pid` still runs (EPERM: it runs under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temporaries a killed xsplice left beside `dest` (their process is gone). */
export function cleanStaleTemps(dest: string): string[] {
  const dir = dirname(dest);
  const prefix = `.${basename(dest)}${TMP_TAG}`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]{12}$/.exec(n.slice(prefix.length));
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      unlinkSync(join(dir, n));
      removed.push(n);
    } catch {
      /* someone else removed it */
    }
  }
  return removed;
}

interface Destination {
  /** Where to write: the path itself, or a symlink's regular-file target. */
  path: string;
  existing?: Stats;
  through: boolean;
}

/** Decides where an output goes, refusing nodes that are not regular files. */
function destination(dest: string): Destination {
  const abs = resolve(dest);
  let lst: Stats | undefined;
  try {
    lst = lstatSync(abs);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path: abs, through: false };
    throw e;
  }
  let st = lst;
  let path = abs;
  if (lst.isSymbolicLink()) {
    try {
      st = statSync(abs);
      path = realpathSync(abs);
    } catch (e) {
      // A dangling link: the file it names is created (as `cp` and the shell's `>` do).
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return { path: resolve(dirname(abs), readlinkSync(abs, 'utf8')), through: false };
    }
  }
  if (STDOUT_NAMES.has(abs) && !st.isDirectory()) return { path: abs, existing: st, through: true };
  if (st.isFile()) return { path, existing: st, through: false };
  if (st.isDirectory())
    throw new UsageError('OUT_NOT_REGULAR', 'is a directory (use DIR/ to write DIR/<name>.livepatch where supported)', { file: dest });
  throw new UsageError(
    'OUT_NOT_REGULAR',
    `is a ${fileKind(st)}${lst.isSymbolicLink() ? ' (through a symlink)' : ''}: refusing to replace it with a file; outputs are regular files (or /dev/stdout, written through)`,
    { file: dest },
  );
}

/**
 * Checks, before any work, that `dest` can be written (a regular file, a new name, or standard
 * output): a FIFO, device node or directory is refused at once rather than after a long build.
 */
export function checkOutput(dest: string): void {
  destination(dest);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(fd, bytes, off, bytes.length - off);
    } catch (e) {
      // Standard output may be a non-blocking pipe that is full: wait for the reader.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    /* a file system that cannot fsync a directory: the rename itself has happened */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes `bytes` to `dest` atomically (see the file comment). Returns how it was written.
 */
export function writeFileAtomicSync(dest: string, bytes: Uint8Array, opts: AtomicOptions = {}): WriteMode {
  const d = destination(dest);
  if (d.through) {
    // Through descriptor 1 itself: a socket (a pipe from Node's spawn) cannot be opened by name.
    writeAll(1, bytes);
    opts.onNote?.(`${dest} is standard output: written through (not atomically)`);
    return 'through';
  }
  cleanStaleTemps(d.path);
  const tmp = tempPath(d.path);
  const mode = d.existing ? d.existing.mode & 0o7777 : (opts.mode ?? 0o644);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, mode);
    writeAll(fd, bytes);
    if (d.existing) {
      // Keep the replaced file's owner (possible as root or as its owner) and mode (umask-free).
      try {
        chownSync(tmp, d.existing.uid, d.existing.gid);
      } catch {
        /* not permitted: the new file is ours */
      }
      try {
        fchmodSync(fd, mode);
      } catch {
        /* keep the creation mode */
      }
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, d.path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already renamed */
    }
    throw e;
  }
  fsyncDir(dirname(d.path));
  return d.existing ? 'replaced' : 'created';
}

export async function writeFileAtomic(dest: string, bytes: Uint8Array, opts: AtomicOptions = {}): Promise<WriteMode> {
  return writeFileAtomicSync(dest, bytes, opts);
}

/** Copies `src` (a regular file) to `dest` atomically. */
export async function copyFileAtomic(src: string, dest: string): Promise<WriteMode> {
  return writeFileAtomicSync(dest, readInputSync(src));
}

/** True when two paths name the same file (symlinks resolved; a missing file by its absolute name). */
export async function samePath(a: string, b: string): Promise<boolean> {
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}
