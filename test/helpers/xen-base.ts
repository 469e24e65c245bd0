/**
 * The Debian 4.17.5+72 base for the `patch` tests: built once from the source package (through
 * the library's own ensureDebianBase, cached by build-id under $XSPLICE_CACHE_DIR or
 * ~/.cache/xsplice) and reused by every test file and run. `scripts/setup-deps.sh patch` installs
 * what the build needs first. With CI=true a base that cannot be built fails the run (never a skip).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDebianBase as libEnsureDebianBase, type Base } from '../../src/patch/index.js';
import { debianBuildEnv, debianMakeArgs } from '../../src/patch/debian-base.js';
import { splitWords } from '../../src/patch/cmdfile.js';
import { makeProgress } from '../../src/patch/progress.js';
import { REPO, XEN_VERSION_STRING } from './debian.js';

let pending: Promise<Base> | undefined;

/** The built base (cached across runs); progress goes to stderr so a first build never looks hung. */
export function ensureDebianBase(): Promise<Base> {
  pending ??= (async () => {
    execFileSync('bash', [join(REPO, 'scripts/setup-deps.sh'), 'patch'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 600_000 });
    return libEnsureDebianBase(XEN_VERSION_STRING, { progress: makeProgress((l) => process.stderr.write(l), 20_000) });
  })();
  return pending;
}

/**
 * A copy of the base tree in which one object was compiled with an extra compiler flag and
 * xen-syms relinked by make (only the link runs: the copy keeps the base's recorded commands and
 * is built with the same arguments). Its `.o.cmd` then records the flag, as a tree really built
 * that way would. Returns the copy's root; the caller removes it.
 */
export async function flagVariant(base: Base, object: string, flag: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'xsplice-variant-'));
  const tree = join(dir, 'xen-tree');
  cpSync(base.tree, tree, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
  const xen = join(tree, 'xen');
  const cmdFile = join(xen, object.replace(/([^/]+)$/, '.$1.cmd'));
  const text = readFileSync(cmdFile, 'utf8');
  const cmd = /^cmd_\S+ := (.*)$/m.exec(text)![1]!;
  const argv = [...splitWords(cmd), flag];
  const env = await debianBuildEnv(tree);
  execFileSync(argv[0]!, argv.slice(1), { cwd: xen, env });
  const src = /^source_\S+ := (.*)$/m.exec(text)![1]!.trim();
  const tmp = join(xen, object.replace(/([^/]+)$/, '.$1.tmp'));
  execFileSync('objcopy', ['--redefine-sym', `${src.replace(/^.*\//, '')}=${src}`, tmp, join(xen, object)], { cwd: xen });
  rmSync(tmp, { force: true });
  // Same arguments as the base (its absolute path in the prefix maps): make sees no changed
  // command, only a newer object, and relinks.
  execFileSync('make', ['-C', 'xen', 'build', ...debianMakeArgs(base.tree)], {
    cwd: tree,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 600_000,
  });
  writeFileSync(cmdFile, text.replace(cmd, `${cmd} ${flag}`));
  return tree;
}
