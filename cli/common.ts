/**
 * Shared plumbing for the thin CLI: every command action runs through `run`, which maps library
 * errors to one stderr line `xsplice: <file>: <what>` and to the exit status of the contract
 * (0 ok, 1 refused, 2 usage/malformed/I/O), and with --json prints exactly one JSON document.
 */
import { readFileSync } from 'node:fs';
import { XspliceError } from '../src/errors.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

// A write to standard output or error that fails (the reader closed the pipe: EPIPE; a full
// disk or /dev/full: ENOSPC) is recorded instead of ending in an uncaught exception; further
// output to that stream is dropped, and `main` ends with one line naming the stream and exit 2.
const failed: { stdout?: string; stderr?: string } = {};
let guarded = false;
function guardStdio(): void {
  guarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    failed.stdout ??= e.code ?? e.message;
  });
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    failed.stderr ??= e.code ?? e.message;
  });
}

function safeWrite(stream: NodeJS.WriteStream, which: 'stdout' | 'stderr', s: string): void {
  if (!guarded) guardStdio();
  if (failed[which]) return;
  try {
    stream.write(s);
  } catch (e) {
    failed[which] ??= (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
}

export const stdio: Io = {
  out: (s) => safeWrite(process.stdout, 'stdout', s),
  err: (s) => safeWrite(process.stderr, 'stderr', s),
};

const WHY: Record<string, string> = { EPIPE: 'the reader closed it', ENOSPC: 'no space left on the device', EBADF: 'it is closed' };

/**
 * After a command: waits for standard output's pending writes, and turns a failed write into one
 * line naming the stream and exit status 2 (a command's own status otherwise).
 */
export async function settleStdio(code: number): Promise<number> {
  if (!guarded) return code;
  await new Promise<void>((r) => setImmediate(r));
  if (!process.stdout.writableEnded && !failed.stdout) {
    await new Promise<void>((r) => {
      process.stdout.write('', () => r());
    });
    await new Promise<void>((r) => setImmediate(r));
  }
  if (failed.stdout) {
    safeWrite(
      process.stderr,
      'stderr',
      `xsplice: stdout: write failed (${failed.stdout}${WHY[failed.stdout] ? `: ${WHY[failed.stdout]}` : ''})\n`,
    );
    return 2;
  }
  if (failed.stderr) return 2;
  return code;
}

/**
 * Node turns a command-line argument that is not valid UTF-8 into U+FFFD, so a file name would
 * silently name another file. The raw arguments (/proc/self/cmdline) are checked; the first bad
 * one is returned escaped (\xNN for each byte that is not part of valid UTF-8), or null.
 */
export function nonUtf8Argument(raw?: Uint8Array): string | null {
  let bytes = raw;
  if (!bytes) {
    try {
      bytes = readFileSync('/proc/self/cmdline');
    } catch {
      return null;
    }
  }
  const dec = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0) continue;
    const arg = bytes.subarray(start, i);
    start = i + 1;
    try {
      dec.decode(arg);
    } catch {
      return escapeBytes(arg);
    }
  }
  return null;
}

/** Shows bytes as text: printable ASCII as is, valid UTF-8 sequences as is, every other byte \xNN. */
export function escapeBytes(b: Uint8Array): string {
  const dec = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  for (let i = 0; i < b.length;) {
    const c = b[i]!;
    if (c >= 0x20 && c < 0x7f && c !== 0x5c) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    const len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (len && i + len <= b.length && c < 0xf5) {
      try {
        out += dec.decode(b.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        /* not a valid sequence: escape the byte */
      }
    }
    out += c === 0x5c ? '\\\\' : '\\x' + c.toString(16).padStart(2, '0');
    i++;
  }
  return out;
}

/** Current I/O sinks; tests swap them to run the CLI in-process. */
export let io: Io = stdio;
export function setIo(next: Io): void {
  io = next;
}

/** JSON.stringify that renders bigint as "0x…" strings (addresses) per the CLI contract. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? (v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16)) : v), 2);
}

/** Standard input, as bytes, up to STDIN_MAX (for `-` inputs: `xl info` text or sysfs build-id bytes). */
export async function readStdinBytes(): Promise<Uint8Array> {
  const { readStreamCapped } = await import('../src/fsutil.js');
  return readStreamCapped(process.stdin);
}

/** Standard input as UTF-8 text, bounded like readStdinBytes. */
export async function readStdinText(): Promise<string> {
  return Buffer.from(await readStdinBytes()).toString('utf8');
}

/** Thrown inside an action to end it with a given exit status after output was already written. */
export class ExitRequest extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export function errorMessage(e: unknown, file?: string): { code: string; alias?: string; message: string; exitCode: number } {
  if (e instanceof XspliceError) {
    if (file) e.withFile(file);
    const alias = (e as { alias?: string }).alias;
    return { code: e.code, ...(alias !== undefined ? { alias } : {}), message: e.message, exitCode: e.exitCode };
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string' && typeof err.syscall === 'string') {
    const path = err.path ?? file ?? '';
    const what =
      err.code === 'ENOENT'
        ? 'no such file'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EISDIR'
            ? 'is a directory'
            : `${err.syscall} failed (${err.code})`;
    return { code: `IO_${err.code}`, message: path ? `${path}: ${what}` : what, exitCode: 2 };
  }
  const msg = err instanceof Error ? err.message : String(e);
  return { code: 'INTERNAL', message: `internal error: ${msg}`, exitCode: 2 };
}

/**
 * Runs a command body. The body returns the exit status (0 or 1) after printing its output.
 * Any thrown error becomes one stderr line (and, with json, a JSON document `{ error }`).
 */
export async function run(
  opts: { json?: boolean; file?: string; inputs?: readonly (string | undefined)[] },
  body: () => Promise<number> | number,
): Promise<number> {
  try {
    return await body();
  } catch (caught) {
    if (caught instanceof ExitRequest) return caught.exitCode;
    const e = opts.inputs ? await blameInput(caught, opts.inputs) : caught;
    const { code, alias, message, exitCode } = errorMessage(e, opts.file);
    if (opts.json) io.out(toJson({ ok: false, error: { code, ...(alias !== undefined ? { alias } : {}), message } }) + '\n');
    io.err(`xsplice: ${message}\n`);
    if (code === 'INTERNAL' && process.env.XSPLICE_DEBUG) io.err(String((e as Error).stack) + '\n');
    return exitCode;
  }
}

/* ------------------------------------------------------------------------------------------ */
/* The contract's general parts, for every command (cli.md "Conventions")                      */

/** Whether the command line asks for JSON (`--json` before any `--`). */
export function wantsJson(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--json') return true;
  }
  return false;
}

/**
 * The one JSON document of a command, with `ok` first. An array (buildid's) keeps its shape and
 * each element gets its own `ok` (`okOf` decides it, default true).
 */
export function jsonResult(doc: unknown, ok: boolean, okOf: (item: Record<string, unknown>) => boolean = () => true): string {
  if (Array.isArray(doc)) {
    return toJson(doc.map((item: Record<string, unknown>) => ('ok' in item ? item : { ok: okOf(item), ...item })));
  }
  const o = doc as Record<string, unknown>;
  return toJson('ok' in o ? o : { ok, ...o });
}

/**
 * Where an output goes, checked before any work: `-o DIR/` (or an existing directory) means
 * `DIR/<defaultName>`, as livepatch-build's `-o DIR` does; the directory must exist, and a missing
 * one is named as such. Returns the output file's path.
 */
export async function resolveOutput(out: string, defaultName: string): Promise<string> {
  const { stat } = await import('node:fs/promises');
  const { basename, dirname, join } = await import('node:path');
  const { UsageError } = await import('../src/errors.js');
  const isDir = async (p: string): Promise<boolean | undefined> => {
    try {
      return (await stat(p)).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw e;
    }
  };
  if (out.endsWith('/') || (await isDir(out)) === true) {
    const dir = out.endsWith('/') && out.length > 1 ? out.slice(0, -1) : out;
    const d = await isDir(dir);
    if (d === undefined) throw new UsageError('OUTPUT_DIR', 'output directory does not exist', { file: dir });
    if (!d) throw new UsageError('OUTPUT_DIR', 'output directory is not a directory', { file: dir });
    return join(out, basename(defaultName));
  }
  const dir = dirname(out);
  const d = await isDir(dir);
  if (d === undefined) throw new UsageError('OUTPUT_DIR', `the directory of the output ${out} does not exist`, { file: dir });
  if (!d) throw new UsageError('OUTPUT_DIR', `the directory of the output ${out} is not a directory`, { file: dir });
  return out;
}

/** The payload name livepatch-build gives: the first input's base name without its extension. */
export function payloadName(input: string | undefined, ext = '.livepatch'): string {
  const b = (input ?? 'payload').split('/').pop() || 'payload';
  const dot = b.lastIndexOf('.');
  return (dot > 0 ? b.slice(0, dot) : b) + ext;
}

/**
 * An I/O error that names no path (reading a directory gives EISDIR without one) is blamed on
 * the input that causes it, never on the output: the first of `inputs` that is a directory or
 * missing.
 */
export async function blameInput(e: unknown, inputs: readonly (string | undefined)[]): Promise<unknown> {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string' || typeof err.syscall !== 'string' || err.path) return e;
  const { stat } = await import('node:fs/promises');
  for (const p of inputs) {
    if (!p || p === '-') continue;
    try {
      const st = await stat(p);
      if (st.isDirectory() && err.code === 'EISDIR') {
        err.path = p;
        return e;
      }
    } catch {
      if (err.code === 'ENOENT') {
        err.path = p;
        return e;
      }
    }
  }
  return e;
}
