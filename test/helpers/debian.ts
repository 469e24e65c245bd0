/**
 * Paths of Debian's Xen 4.17 binaries and friends, unpacked by scripts/setup-deps.sh into
 * .cache/debian/root (never committed). `haveDebianXen()` tells whether they are there; tests
 * that need them use `describe.skipIf(!haveDebianXen())`, except under CI=true where a missing
 * fixture is a failure (see requireOrSkip).
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEBIAN_ROOT = join(REPO, '.cache', 'debian', 'root');
export const XEN_BUILD_ID = '151b373fd64b321593bf987fd923cd10dabadac4';
export const XEN_VERSION_STRING = '4.17.7+13-g2445b30a44-0+deb12u1';

export const debianXen = {
  xenSyms: join(DEBIAN_ROOT, 'usr/lib/debug/boot/xen-syms-4.17-amd64'),
  xenGz: join(DEBIAN_ROOT, 'boot/xen-4.17-amd64.gz'),
  xenEfi: join(DEBIAN_ROOT, 'boot/xen-4.17-amd64.efi'),
  xenConfig: join(DEBIAN_ROOT, 'boot/xen-4.17-amd64.config'),
  xenLivepatch: join(DEBIAN_ROOT, 'usr/lib/xen-4.17/bin/xen-livepatch'),
};

export function dom0Kernel(): string | undefined {
  const boot = join(DEBIAN_ROOT, 'boot');
  if (!existsSync(boot)) return undefined;
  const k = readdirSync(boot).filter((f) => f.startsWith('vmlinuz-')).sort();
  return k.length ? join(boot, k[k.length - 1]!) : undefined;
}

export function haveDebianXen(): boolean {
  return existsSync(debianXen.xenSyms) && existsSync(debianXen.xenGz) && existsSync(debianXen.xenEfi);
}

/**
 * For describe.skipIf: returns true (skip) when a requirement is missing, printing why, but under
 * CI=true throws instead so a missing fixture can never pass as a skip.
 */
export function missing(what: string, ok: boolean): boolean {
  if (ok) return false;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${what} is not available`);
  process.stderr.write(`skip: ${what} is not available\n`);
  return true;
}
