/**
 * Fetching a Debian source package of Xen with `apt-get source`, through a private apt state (its
 * own sources list, lists and cache under the xsplice cache), so the system's apt configuration is
 * never read for sources nor changed. Debian's patches are applied by dpkg-source on extraction.
 *
 * The archive keeps old sources only as long as some suite lists them: a version that apt knows
 * but whose files answer 404 (bookworm-security's superseded versions) is refused with that reason
 * and the hint that `--source DIR` takes a tree the user has.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RefusedError, UsageError, XspliceError } from '../errors.js';
import { lastLines, runProgram } from './exec.js';
import type { Progress } from './progress.js';

/** deb-src lines of the private apt state. Debian 12 (bookworm) is what Xen 4.17 ships in. */
export const DEBIAN_SOURCES = [
  'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main',
  'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-updates main',
  'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main',
];

/** A Debian version string as dpkg allows it ([epoch:]upstream[-revision]). */
export function checkDebianVersion(version: string): void {
  if (!/^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$/.test(version)) {
    throw new UsageError('PATCH_BAD_VERSION', `not a Debian version: ${JSON.stringify(version)}`);
  }
}

/** `-o` options pointing apt at the private state in `stateDir`. */
export function aptOptions(stateDir: string): string[] {
  const o = [
    `Dir::Etc::SourceList=${join(stateDir, 'sources.list')}`,
    `Dir::Etc::SourceParts=${join(stateDir, 'sources.list.d')}`,
    `Dir::State::Lists=${join(stateDir, 'lists')}`,
    `Dir::Cache=${join(stateDir, 'cache')}`,
    'Acquire::Languages=none',
    'APT::Get::List-Cleanup=false',
  ];
  if (process.getuid?.() === 0) o.push('APT::Sandbox::User=root');
  return o.flatMap((x) => ['-o', x]);
}

function prepareState(stateDir: string): void {
  for (const d of ['sources.list.d', 'lists/partial', 'cache/archives/partial']) mkdirSync(join(stateDir, d), { recursive: true });
  writeFileSync(join(stateDir, 'sources.list'), DEBIAN_SOURCES.join('\n') + '\n');
}

function listsFresh(stateDir: string, maxAgeMs = 86_400_000): boolean {
  const lists = join(stateDir, 'lists');
  if (!existsSync(lists)) return false;
  return readdirSync(lists).some((f) => f.includes('Sources') && Date.now() - statSync(join(lists, f)).mtimeMs < maxAgeMs);
}

/** The apt lists of the private state, refreshed when older than a day (or when `force`). */
async function update(stateDir: string, force: boolean): Promise<void> {
  prepareState(stateDir);
  if (!force && listsFresh(stateDir)) return;
  const r = await runProgram('apt-get', [...aptOptions(stateDir), '-qq', 'update'], { timeoutMs: 600_000 });
  if (r.code !== 0) {
    throw new XspliceError(
      'PATCH_APT_UPDATE',
      `apt-get update (private deb-src state ${stateDir}) failed\n${lastLines(r.stderr || r.stdout)}`,
    );
  }
}

/**
 * Downloads and unpacks `xen=VERSION` into `workDir` (emptied first); returns the unpacked tree.
 */
export async function fetchDebianSource(version: string, workDir: string, stateDir: string, progress: Progress): Promise<string> {
  checkDebianVersion(version);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    await progress.step('apt-get update (private deb-src state)', () => update(stateDir, attempt > 0));
    const r = await progress.step(`apt-get source xen=${version}`, () =>
      runProgram('apt-get', [...aptOptions(stateDir), '-q', 'source', `xen=${version}`], { cwd: workDir, timeoutMs: 1_800_000 }),
    );
    if (r.code === 0) break;
    const out = `${r.stdout}\n${r.stderr}`;
    const notFound = /Can not find version|Unable to find a source package|Can't find a source to download/i.test(out);
    if (notFound && attempt === 0) continue; // the lists may be a day old: refresh once
    if (/\b404\b/.test(out)) {
      const url = /(https?:\/\/\S+)\s+404/.exec(out)?.[1] ?? /(https?:\/\/\S+\.(?:dsc|tar\.\w+))/.exec(out)?.[1];
      throw new RefusedError(
        'PATCH_SOURCE_GONE',
        `the Debian archive no longer serves the source of xen ${version} (404 Not Found${url ? ` for ${url}` : ''}), although its binaries may still download; --source DIR takes a Xen tree you have`,
      );
    }
    if (notFound) {
      throw new RefusedError(
        'PATCH_SOURCE_UNKNOWN',
        `no source package xen=${version} in ${DEBIAN_SOURCES.length} deb-src suites (bookworm, -updates, -security); --source DIR takes a Xen tree you have`,
      );
    }
    throw new XspliceError('PATCH_SOURCE_FETCH', `apt-get source xen=${version} failed\n${lastLines(out)}`);
  }
  const dirs = readdirSync(workDir, { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith('xen-'));
  if (dirs.length !== 1)
    throw new XspliceError(
      'PATCH_SOURCE_FETCH',
      `apt-get source xen=${version}: expected one unpacked xen-* directory in ${workDir}, found ${dirs.length}`,
    );
  const tree = join(workDir, dirs[0]!.name);
  if (!existsSync(join(tree, 'debian', 'changelog')) || !existsSync(join(tree, 'xen', 'Makefile'))) {
    throw new XspliceError('PATCH_SOURCE_FETCH', `${tree}: not a Debian Xen source tree (no debian/changelog or xen/Makefile)`);
  }
  return tree;
}
