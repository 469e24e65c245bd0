/**
 * Runs the CLI bundle bin/xsplice loads (dist/xsplice-cli.cjs, as bin/xsplice does) in a child process and
 * reports what it cost: wall time and peak resident memory (process.resourceUsage().maxRSS, read
 * by the child itself when it exits). Hostile inputs must end within seconds and ~200 MB.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/debian.js';

export { REPO };
const ENTRY = join(REPO, 'dist', 'xsplice-cli.cjs');

let wrapperDir: string | undefined;
function wrapper(): string {
  if (!wrapperDir) {
    wrapperDir = mkdtempSync(join(tmpdir(), 'xs-hostile-wrap-'));
    writeFileSync(
      join(wrapperDir, 'run.cjs'),
      [
        "const fs = require('node:fs');",
        "process.on('exit', () => { try { fs.writeFileSync(process.env.XS_RUSAGE, JSON.stringify(process.resourceUsage())); } catch {} });",
        `require(${JSON.stringify(ENTRY)}).main(process.argv.slice(2)).then((code) => { process.exitCode = code; });`,
      ].join('\n'),
    );
  }
  return join(wrapperDir, 'run.cjs');
}

export function cleanupWrapper(): void {
  if (wrapperDir) rmSync(wrapperDir, { recursive: true, force: true });
  wrapperDir = undefined;
}

export interface ChildResult {
  code: number | null;
  signal: string | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
  /** Peak resident set, MiB. */
  rssMiB: number;
}

export interface ChildOptions {
  /** Bytes for stdin, or 'endless' (written until the child stops reading), or a file descriptor. */
  stdin?: Uint8Array | 'endless' | number;
  cwd?: string;
  /** Kill after this many ms (a hang is a failure, not a stuck suite). */
  timeoutMs?: number;
  /** Run through `bash -c` with this script instead ("$XS" is the xsplice command). */
  shell?: string;
}

export function runChild(args: string[], o: ChildOptions = {}): Promise<ChildResult> {
  const rusage = join(mkdtempSync(join(tmpdir(), 'xs-rusage-')), 'r.json');
  const xs = `${process.execPath} ${wrapper()}`;
  const [cmd, argv] = o.shell ? ['bash', ['-c', o.shell]] : [process.execPath, [wrapper(), ...args]];
  const stdio: ('pipe' | number)[] = [typeof o.stdin === 'number' ? o.stdin : 'pipe', 'pipe', 'pipe'];
  const t0 = performance.now();
  const child = spawn(cmd as string, argv as string[], { cwd: o.cwd ?? REPO, stdio, env: { ...process.env, XS_RUSAGE: rusage, XS: xs } });
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  if (child.stdin) {
    child.stdin.on('error', () => undefined); // EPIPE once the child stops reading
    if (o.stdin === 'endless') {
      const block = Buffer.alloc(64 * 1024, 'build_id : not the end of it\n');
      const pump = (): void => {
        while (child.stdin!.writable && child.stdin!.write(block));
        if (child.stdin!.writable) child.stdin!.once('drain', pump);
      };
      pump();
    } else {
      if (o.stdin instanceof Uint8Array) child.stdin.write(o.stdin);
      child.stdin.end();
    }
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let rssMiB = NaN;
      try {
        rssMiB = JSON.parse(readFileSync(rusage, 'utf8')).maxRSS / 1024;
      } catch {
        /* killed before it could say */
      }
      rmSync(join(rusage, '..'), { recursive: true, force: true });
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, ms: performance.now() - t0, rssMiB });
    });
  });
}
