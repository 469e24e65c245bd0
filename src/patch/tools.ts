/**
 * The external programs a Debian base build needs, checked up front so a missing one is refused by
 * name with the package to install (instead of failing deep in a build log).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RefusedError } from '../errors.js';
import { PROVIDER } from './exec.js';

export function onPath(program: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, program);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Throws PATCH_TOOL_MISSING naming every missing program and the packages that provide them. */
export function requireTools(programs: readonly string[], path?: string): void {
  const missing = programs.filter((p) => !onPath(p, path));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((p) => PROVIDER[p] ?? p))];
  throw new RefusedError(
    'PATCH_TOOL_MISSING',
    `${missing.join(', ')} not installed: install the Debian package${pkgs.length > 1 ? 's' : ''} ${pkgs.join(', ')} (scripts/setup-deps.sh patch does)`,
  );
}

/** What fetching and building a Debian Xen source package needs. */
export const DEBIAN_BASE_TOOLS = [
  'apt-get',
  'dpkg-source',
  'dpkg-parsechangelog',
  'make',
  'flex',
  'bison',
  'lsb_release',
  'python3',
  'x86_64-linux-gnu-gcc',
  'x86_64-linux-gnu-ld',
  'objcopy',
] as const;
