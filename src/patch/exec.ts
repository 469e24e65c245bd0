/**
 * Child processes for `patch`: the toolchain, make, apt. Output is captured with a bound (the tail
 * is kept for the error message), an optional log file receives everything, and a command that is
 * not installed is reported with the package that provides it.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { RefusedError, XspliceError } from '../errors.js';

/** Debian package providing each external program `patch` runs (named in "not installed" refusals). */
export const PROVIDER: Record<string, string> = {
  'apt-get': 'apt',
  'dpkg-source': 'dpkg-dev',
  'dpkg-parsechangelog': 'dpkg-dev',
  make: 'make',
  flex: 'flex',
  bison: 'bison',
  lsb_release: 'lsb-release',
  'x86_64-linux-gnu-gcc': 'gcc-x86-64-linux-gnu (or gcc on amd64)',
  'x86_64-linux-gnu-ld': 'binutils-x86-64-linux-gnu (or binutils on amd64)',
  gcc: 'gcc',
  objcopy: 'binutils',
  python3: 'python3',
};

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Appends stdout and stderr here. */
  log?: string;
  /** Kill after this many ms (default: none). */
  timeoutMs?: number;
  /** Called with each chunk of output (progress detail). */
  onOutput?: (chunk: string) => void;
  /** stdin contents. */
  input?: string;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const KEEP = 256 * 1024;

function keepTail(prev: string, chunk: string): string {
  const s = prev + chunk;
  return s.length > KEEP ? s.slice(s.length - KEEP) : s;
}

/** Runs a program; resolves with its status and the (bounded) tails of its output. */
export function runProgram(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let log: WriteStream | undefined;
    if (opts.log) log = createWriteStream(opts.log, { flags: 'a' });
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c: string) => {
      stdout = keepTail(stdout, c);
      log?.write(c);
      opts.onOutput?.(c);
    });
    child.stderr.on('data', (c: string) => {
      stderr = keepTail(stderr, c);
      log?.write(c);
      opts.onOutput?.(c);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      log?.end();
      if (e.code === 'ENOENT') {
        const pkg = PROVIDER[cmd] ?? PROVIDER[cmd.replace(/^.*\//, '')];
        reject(new RefusedError('PATCH_TOOL_MISSING', `${cmd} is not installed${pkg ? ` (install the Debian package ${pkg})` : ''}`));
      } else reject(new XspliceError('PATCH_EXEC', `cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const finish = (): void => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      if (log) log.end(finish);
      else finish();
    });
  });
}

/** The last `n` non-empty lines of a command's output, for an error message. */
export function lastLines(text: string, n = 6): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join('\n');
}

/** Runs a program and throws (exit 2, the output's last lines in the message) when it fails. */
export async function mustRun(cmd: string, args: string[], what: string, opts: RunOptions = {}): Promise<RunResult> {
  const r = await runProgram(cmd, args, opts);
  if (r.code !== 0) {
    throw new XspliceError(
      'PATCH_COMMAND_FAILED',
      `${what} failed (${cmd} exit ${r.code})${opts.log ? `; log: ${opts.log}` : ''}\n${lastLines(r.stderr || r.stdout)}`,
    );
  }
  return r;
}
