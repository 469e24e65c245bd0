/**
 * The fallback for objects that have no recorded command (or when asked with `--make`): a copy of
 * the base tree in the scratch directory, the patched files written into it, and Xen's own `make`
 * run there. With the base's make arguments (for a Debian base: its absolute path in the prefix
 * maps, Debian's environment) the copy's recorded commands match, so make recompiles only what
 * the patched files affect, then relinks (which also proves the patched hypervisor still links).
 * The base tree itself is never touched.
 */
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RefusedError } from '../errors.js';
import type { Base } from './debian-base.js';
import { debianBuildEnv, debianMakeArgs } from './debian-base.js';
import { lastLines, runProgram } from './exec.js';
import type { Progress } from './progress.js';

function overlayFiles(overlay: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(overlay, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...overlayFiles(overlay, r));
    else out.push(r);
  }
  return out;
}

/**
 * Builds the patched tree with make in `scratch/make-tree`; returns its hypervisor directory (the
 * objects are at their usual paths there).
 */
export async function makePatchedTree(
  base: Base,
  overlay: string,
  patchedFiles: readonly string[],
  scratch: string,
  jobs: number,
  progress: Progress,
): Promise<string> {
  const tree = join(scratch, 'make-tree');
  await progress.step('copy the base tree for make', async () => {
    cpSync(base.tree, tree, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  });
  for (const f of overlayFiles(overlay)) {
    if (!patchedFiles.includes(f)) continue; // main sources copied for the recorded-command route stay as in the base
    cpSync(join(overlay, f), join(tree, 'xen', f), { preserveTimestamps: false });
  }
  const debian = base.source.startsWith('debian:');
  const env = debian ? await debianBuildEnv(tree) : { ...process.env };
  const args = debian ? debianMakeArgs(base.tree) : [];
  const log = join(scratch, 'make.log');
  const r = await progress.step(`make -j${jobs} -C xen build (patched copy; log ${log})`, () =>
    runProgram('make', [`-j${jobs}`, '-C', 'xen', 'build', ...args], { cwd: tree, env, log }),
  );
  if (r.code !== 0) {
    throw new RefusedError(
      'PATCH_COMPILE',
      `make failed on the patched tree (exit ${r.code}); log: ${log}\n${lastLines(r.stderr || r.stdout, 12)}`,
    );
  }
  const xen = join(tree, 'xen');
  if (!existsSync(join(xen, 'xen-syms'))) throw new RefusedError('PATCH_COMPILE', `make wrote no xen-syms in ${xen}; log: ${log}`);
  return xen;
}
