#!/usr/bin/env node
/**
 * Benchmark: a one-file source fix to a verified payload with a warm base, against the make route
 * on the same tree (Debian's 4.17.5+72 base, cached by build-id; built first if missing).
 *
 *   xsplice:  bin/xsplice patch FIX --xen xen-syms -o OUT      (apply to a scratch copy, recompile the
 *             object from its recorded command, diff, build, verify, write: one whole process)
 *   make:     apply FIX to the tree, `make xen` with Debian's arguments (compiles the object and
 *             relinks xen-syms and xen.efi), the step livepatch-build-tools repeats per patch;
 *             it yields no payload yet. The tree is then restored (revert, make; untimed) and its
 *             build-id checked to be the stock one again.
 *
 *   node bench/patch.mjs [--runs N]
 *
 * Prints the medians and the ratio make / xsplice. Needs `npm run build` and
 * `scripts/setup-deps.sh all patch`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 3;
const xsplice = join(root, 'bin', 'xsplice');
const xenSyms = join(root, '.cache/debian/root/usr/lib/debug/boot/xen-syms-4.17-amd64');
const STOCK_ID = '39a640e6f1412319235087391df9f1c5e13ae920';
const VERSION = '4.17.5+72-g01140da4e8-1';
if (!existsSync(join(root, 'dist', 'src', 'patch', 'index.js')) || !existsSync(xenSyms)) {
  console.error('bench: needs `npm run build` and scripts/setup-deps.sh (Debian xen-syms)');
  process.exit(2);
}
const { ensureDebianBase } = await import(join(root, 'dist/src/patch/index.js'));
const { debianBuildEnv, debianMakeArgs } = await import(join(root, 'dist/src/patch/debian-base.js'));
const { acquireLock } = await import(join(root, 'dist/src/patch/lock.js'));
const { readBuildIdSync } = await import(join(root, 'dist/src/buildid/read.js'));
const { makeProgress } = await import(join(root, 'dist/src/patch/progress.js'));

const FIX = `--- a/xen/common/rangeset.c
+++ b/xen/common/rangeset.c
@@ -296,7 +296,7 @@ int rangeset_report_ranges(
     read_lock(&r->lock);
 
     for ( x = first_range(r); x && (x->s <= e) && !rc; x = next_range(r, x) )
-        if ( x->e >= s )
+        if ( x->e >= s && s <= e )
             rc = cb(max(x->s, s), min(x->e, e), ctxt);
 
     read_unlock(&r->lock);
`;

const base = await ensureDebianBase(VERSION, { progress: makeProgress((l) => process.stderr.write(l)) });
if (base.buildId !== STOCK_ID) throw new Error(`base build-id ${base.buildId}, expected ${STOCK_ID}`);
const dir = mkdtempSync(join(tmpdir(), 'xsplice-bench-patch-'));
const fixFile = join(dir, 'fix.patch');
writeFileSync(fixFile, FIX);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const timed = (cmd, argv, opts) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return ms;
};

// Route 1: xsplice patch, whole process, warm base.
const ours = [];
for (let i = 0; i < runs; i++)
  ours.push(timed(process.execPath, [xsplice, 'patch', fixFile, '--xen', xenSyms, '-o', join(dir, `p${i}.livepatch`), '-q']));
const verify = spawnSync(process.execPath, [xsplice, 'verify', join(dir, 'p0.livepatch'), '--xen', xenSyms], { encoding: 'utf8' });
if (verify.status !== 0) throw new Error(`verify refused the payload:\n${verify.stdout}${verify.stderr}`);

// Route 2: apply, make (compile + relink), on the base tree itself, under the base's lock.
const tree = base.tree;
const env = await debianBuildEnv(tree);
const makeArgv = ['-j2', ...debianMakeArgs(tree), 'xen'];
const lock = await acquireLock(join(tree, '..', '..') + '.lock');
const theirs = [];
try {
  for (let i = 0; i < runs; i++) {
    theirs.push(timed('patch', ['-p1', '-s', '-i', fixFile], { cwd: tree }) + timed('make', makeArgv, { cwd: tree, env }));
    timed('patch', ['-p1', '-s', '-R', '-i', fixFile], { cwd: tree });
    timed('make', makeArgv, { cwd: tree, env });
    const id = readBuildIdSync({ path: join(tree, 'xen', 'xen-syms') }).buildId;
    if (id !== STOCK_ID)
      throw new Error(
        `the base did not come back to ${STOCK_ID} after the revert (got ${id}); remove ${join(tree, '..', '..')} to rebuild it`,
      );
  }
} finally {
  lock.release();
}
rmSync(dir, { recursive: true, force: true });
const a = median(ours);
const b = median(theirs);
console.log(`one-file fix (common/rangeset.c), warm base, ${runs} runs, medians:`);
console.log(`  xsplice patch → verified payload: ${a.toFixed(0)} ms  (runs: ${ours.map((x) => x.toFixed(0)).join(', ')})`);
console.log(
  `  apply + make xen (compile, relink; no payload yet): ${b.toFixed(0)} ms  (runs: ${theirs.map((x) => x.toFixed(0)).join(', ')})`,
);
console.log(`  ratio make / xsplice: ${(b / a).toFixed(1)}x (goal >= 5x)`);
