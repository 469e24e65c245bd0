/** Compiles ORIG/PATCHED C sources with the hypervisor's flags (examples/xen-cflags) for the diff tests. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/debian.js';

export const CFLAGS = readFileSync(join(REPO, 'examples', 'xen-cflags'), 'utf8')
  .split(/\s+/)
  .filter(Boolean);
export const CORPUS = join(REPO, 'test', 'diff', 'corpus');

/** Compiles `src` as `dir/name.c` → `dir/name.o`, then renames its FILE symbol as Xen's build does. */
export function compile(dir: string, name: string, src: string, opts: { g?: boolean; file?: string } = {}): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.c`), src);
  const out = join(dir, `${name}.o`);
  execFileSync('gcc', [...CFLAGS, ...(opts.g ? ['-g'] : []), '-I', CORPUS, '-c', `${name}.c`, '-o', `${name}.o`], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  if (opts.file) execFileSync('objcopy', [`--redefine-sym`, `${name}.c=${opts.file}`, out]);
  return out;
}

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `xsplice-diff-${prefix}-`));
}

/** ORIG and PATCHED objects of one source pair, in dir/o and dir/p. */
export function pair(
  name: string,
  orig: string,
  patched: string,
  opts: { g?: boolean; file?: string } = {},
): { orig: string; patched: string; dir: string } {
  const dir = tmp(name);
  return { orig: compile(join(dir, 'o'), name, orig, opts), patched: compile(join(dir, 'p'), name, patched, opts), dir };
}
