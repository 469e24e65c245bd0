/**
 * Building the base of a Debian Xen: the source package of one version, configured and built with
 * the settings debian/rules records (debian-xen-source.md), so that its xen-syms equals the
 * package's bit for bit. The tree is built where it stays (the cache), under a lock, and is taken
 * as complete only once its marker (base.json, written last) exists: an interrupted build is
 * resumed by make on the next run, and rebuilt from scratch if the resumed result does not hold
 * together.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readBuildIdSync } from '../buildid/read.js';
import { XspliceError } from '../errors.js';
import { cacheRoot, readRecord, recordBuildId, writeJsonAtomic, type BaseRecord } from './cache.js';
import { fetchDebianSource } from './debian-source.js';
import { lastLines, mustRun, runProgram } from './exec.js';
import { acquireLock } from './lock.js';
import type { Progress } from './progress.js';
import { DEBIAN_BASE_TOOLS, requireTools } from './tools.js';

export interface DebianBaseOptions {
  progress: Progress;
  /** Cache root (default cacheRoot()). */
  root?: string;
  /** make -j (default: the number of CPUs). */
  jobs?: number;
  /** The build-id the base should have (XEN's): a resumed build that misses it is rebuilt from scratch once. */
  expectBuildId?: string;
}

export interface Base extends BaseRecord {
  /** true when the base came from the cache without building. */
  cached: boolean;
}

/** The environment debian/rules gives the hypervisor build (dates from the changelog, no CFLAGS). */
export async function debianBuildEnv(tree: string): Promise<NodeJS.ProcessEnv> {
  const parse = async (field: string): Promise<string> =>
    (await mustRun('dpkg-parsechangelog', [`-S${field}`], `dpkg-parsechangelog -S${field}`, { cwd: tree })).stdout.trim();
  const epoch = await parse('Timestamp');
  const version = await parse('Version');
  const control = readFileSync(join(tree, 'debian', 'control'), 'utf8');
  const maintainer = /^Maintainer: (.*)$/m.exec(control)?.[1] ?? '';
  const date = (fmt?: string): Promise<string> =>
    mustRun('date', ['-u', '-d', `@${epoch}`, ...(fmt ? [fmt] : [])], 'date', { env: { ...process.env, LC_ALL: 'C' } }).then((r) =>
      r.stdout.trim(),
    );
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of [
    'CFLAGS',
    'CXXFLAGS',
    'CPPFLAGS',
    'LDFLAGS',
    'FFLAGS',
    'MAKEFLAGS',
    'MFLAGS',
    'MAKELEVEL',
    'CC',
    'LD',
    'CROSS_COMPILE',
    'XEN_TARGET_ARCH',
    'XEN_COMPILE_ARCH',
  ])
    delete env[k];
  Object.assign(env, {
    SOURCE_DATE_EPOCH: epoch,
    DEB_VERSION: version,
    DEB_MAINTAINER: maintainer,
    XEN_BUILD_DATE: await date(),
    XEN_BUILD_TIME: await date('+%T'),
    WGET: '/bin/false',
    GIT: '/bin/false',
    // Debian's python3 and compilers first (the build embeds the compiler banner).
    PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}`,
  });
  return env;
}

/** make arguments of debian/rules' make_args_xen for an amd64 hypervisor. */
export function debianMakeArgs(tree: string): string[] {
  return [
    'CC=x86_64-linux-gnu-gcc',
    'LD=x86_64-linux-gnu-ld',
    'XEN_COMPILE_ARCH=x86_64',
    'V=1',
    'XEN_TARGET_ARCH=x86_64',
    `EXTRA_CFLAGS_XEN_CORE=-ffile-prefix-map=${tree}=. -fdebug-prefix-map=${tree}=.`,
  ];
}

function countObjects(dir: string): number {
  let n = 0;
  const walk = (d: string): void => {
    let ents;
    try {
      ents = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.o')) n++;
    }
  };
  walk(dir);
  return n;
}

function buildIdOf(file: string): string {
  return readBuildIdSync({ path: file }).buildId;
}

/** The built Debian base of `version`, from the cache or built now. */
export async function ensureDebianBase(version: string, opts: DebianBaseOptions): Promise<Base> {
  const root = opts.root ?? cacheRoot();
  const work = join(root, 'debian', version);
  const marker = join(work, 'base.json');
  const done = readRecord(marker);
  if (done) return { ...done, cached: true };
  mkdirSync(join(root, 'debian'), { recursive: true });
  const lock = await acquireLock(`${work}.lock`, 3_600_000, (pid) =>
    opts.progress.say(`waiting for process ${pid}, which is building the base in ${work}`),
  );
  try {
    const again = readRecord(marker);
    if (again) return { ...again, cached: true };
    requireTools(DEBIAN_BASE_TOOLS);
    const t0 = Date.now();
    let rec: BaseRecord | undefined;
    for (let attempt = 0; attempt < 2 && !rec; attempt++) {
      rec = await buildOnce(version, work, attempt > 0, opts);
    }
    if (!rec) throw new XspliceError('PATCH_BASE_BUILD', `${work}: the base build did not produce a consistent xen-syms twice`);
    rec.buildSeconds = Math.round((Date.now() - t0) / 100) / 10;
    writeJsonAtomic(marker, rec);
    recordBuildId(rec, root);
    return { ...rec, cached: false };
  } finally {
    lock.release();
  }
}

/**
 * One attempt: fetch (unless a fetched tree is there and `fresh` is false), configure, make.
 * Returns undefined when a resumed build's result is inconsistent (the caller rebuilds from scratch).
 */
async function buildOnce(version: string, work: string, fresh: boolean, opts: DebianBaseOptions): Promise<BaseRecord | undefined> {
  const { progress } = opts;
  const srcDir = join(work, 'src');
  const fetched = join(work, 'fetched');
  const log = join(work, 'build.log');
  let resumed = false;
  let tree: string;
  if (!fresh && existsSync(fetched)) {
    tree = readFileSync(fetched, 'utf8').trim();
    resumed = existsSync(join(tree, 'xen', '.config'));
    progress.say(`resuming the interrupted base build in ${tree}`);
  } else {
    rmSync(fetched, { force: true });
    rmSync(join(work, 'configured'), { force: true });
    rmSync(log, { force: true });
    tree = await fetchDebianSource(version, srcDir, join(work, '..', '..', 'apt'), progress);
    writeFileSync(fetched, tree + '\n');
  }
  const xen = join(tree, 'xen');
  const env = await debianBuildEnv(tree);
  const args = debianMakeArgs(tree);
  if (!existsSync(join(xen, '.config')) || !existsSync(join(work, 'configured'))) {
    await progress.step('configure (debian/xen-kconfig, make olddefconfig)', async () => {
      copyFileSync(join(tree, 'debian', 'xen-kconfig'), join(xen, '.config'));
      await mustRun('make', ['-C', 'xen', 'olddefconfig', ...args], 'make -C xen olddefconfig', { cwd: tree, env, log });
    });
    writeFileSync(join(work, 'configured'), '');
  }
  const jobs = opts.jobs ?? availableParallelism();
  const r = await progress.step(
    `build the base hypervisor (make -j${jobs} xen; log ${log})`,
    () => runProgram('make', [`-j${jobs}`, ...args, 'xen'], { cwd: tree, env, log }),
    () => `${countObjects(xen)} objects`,
  );
  if (r.code !== 0) {
    throw new XspliceError(
      'PATCH_BASE_BUILD',
      `building the base failed (make exit ${r.code}); log: ${log}\n${lastLines(r.stderr || r.stdout)}`,
    );
  }
  const syms = join(xen, 'xen-syms');
  if (!existsSync(syms) || statSync(syms).size === 0) {
    if (resumed) return undefined;
    throw new XspliceError('PATCH_BASE_BUILD', `${syms}: make succeeded but wrote no xen-syms; log: ${log}`);
  }
  let buildId: string;
  try {
    buildId = buildIdOf(syms);
  } catch (e) {
    if (resumed) return undefined;
    throw e;
  }
  if (resumed && opts.expectBuildId && buildId !== opts.expectBuildId) {
    progress.say(`the resumed build gave build-id ${buildId}, not ${opts.expectBuildId}: rebuilding from scratch`);
    return undefined;
  }
  progress.say(`base built: xen-syms build-id ${buildId}`);
  return { buildId, source: `debian:${version}`, tree, completed: new Date().toISOString() };
}
