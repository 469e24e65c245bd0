/**
 * Shared plumbing for the thin CLI: every command action runs through `run`, which maps library
 * errors to one stderr line `xsplice: <file>: <what>` and to the exit status of the contract
 * (0 ok, 1 refused, 2 usage/malformed/I/O), and with --json prints exactly one JSON document.
 */
import { XspliceError } from '../src/errors.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

// Once a reader closes standard output (`xsplice inspect P | head -1`), further output is dropped
// instead of ending in an unhandled EPIPE and a stack trace; the command still finishes and exits
// with its own status (its files are written atomically either way).
let stdoutClosed = false;
let guarded = false;
function guardStdout(): void {
  guarded = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') stdoutClosed = true;
    else throw e;
  });
}

export const stdio: Io = {
  out: (s) => {
    if (!guarded) guardStdout();
    if (!stdoutClosed) process.stdout.write(s);
  },
  err: (s) => process.stderr.write(s),
};

/** Current I/O sinks; tests swap them to run the CLI in-process. */
export let io: Io = stdio;
export function setIo(next: Io): void {
  io = next;
}

/** JSON.stringify that renders bigint as "0x…" strings (addresses) per the CLI contract. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => (typeof v === 'bigint' ? (v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16)) : v),
    2,
  );
}

/** All of standard input, as bytes (for `-` inputs: `xl info` text or sysfs build-id bytes). */
export async function readStdinBytes(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const b = Buffer.concat(chunks);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** All of standard input as UTF-8 text. */
export async function readStdinText(): Promise<string> {
  return Buffer.from(await readStdinBytes()).toString('utf8');
}

/** Thrown inside an action to end it with a given exit status after output was already written. */
export class ExitRequest extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

export function errorMessage(e: unknown, file?: string): { code: string; message: string; exitCode: number } {
  if (e instanceof XspliceError) {
    if (file) e.withFile(file);
    return { code: e.code, message: e.message, exitCode: e.exitCode };
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && typeof err.code === 'string' && typeof err.syscall === 'string') {
    const path = err.path ?? file ?? '';
    const what = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied'
      : err.code === 'EISDIR' ? 'is a directory' : `${err.syscall} failed (${err.code})`;
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
  } catch (e) {
    if (e instanceof ExitRequest) return e.exitCode;
    if (opts.inputs) e = await blameInput(e, opts.inputs);
    const { code, message, exitCode } = errorMessage(e, opts.file);
    if (opts.json) io.out(toJson({ ok: false, error: { code, message } }) + '\n');
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
