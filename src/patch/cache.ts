/**
 * Where built bases live: `$XSPLICE_CACHE_DIR`, else `${XDG_CACHE_HOME:-~/.cache}/xsplice`; never
 * inside a repository. Layout:
 *
 *   apt/                         private apt state (deb-src lists and downloads)
 *   debian/<version>/src/xen-*   the unpacked and built Debian source tree (built where it lives:
 *                                Xen's compile lines embed the tree's absolute path)
 *   debian/<version>/build.log   the base build's output
 *   debian/<version>/base.json   the completion marker, written last (atomically) once the
 *                                build-id is known; without it the tree is never taken as built
 *   debian/<version>.lock/       held while fetching or building
 *   by-build-id/<id>.json        build-id → base record (written after base.json)
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.XSPLICE_CACHE_DIR) return env.XSPLICE_CACHE_DIR;
  const xdg = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache');
  return join(xdg, 'xsplice');
}

/** What a completed base records (base.json and by-build-id/<id>.json). */
export interface BaseRecord {
  /** Lowercase hex build-id of the base's xen-syms. */
  buildId: string;
  /** "debian:<version>" or "dir:<path>". */
  source: string;
  /** The source tree's root (holding xen/). */
  tree: string;
  /** ISO time the record was written. */
  completed: string;
  /** Seconds the base build took. */
  buildSeconds?: number;
}

export function writeJsonAtomic(file: string, value: unknown): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, file);
}

export function readRecord(file: string): BaseRecord | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as BaseRecord;
    if (typeof r.buildId === 'string' && typeof r.tree === 'string' && existsSync(join(r.tree, 'xen', 'xen-syms'))) return r;
  } catch {
    /* a damaged record is no record */
  }
  return undefined;
}

/** The cached base whose xen-syms has this build-id, if any. */
export function lookupBuildId(buildId: string, root = cacheRoot()): BaseRecord | undefined {
  return readRecord(join(root, 'by-build-id', `${buildId}.json`));
}

export function recordBuildId(rec: BaseRecord, root = cacheRoot()): void {
  mkdirSync(join(root, 'by-build-id'), { recursive: true });
  writeJsonAtomic(join(root, 'by-build-id', `${rec.buildId}.json`), rec);
}
