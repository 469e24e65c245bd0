/**
 * Paths of Debian's Xen 4.17 binaries and friends, unpacked by scripts/setup-deps.sh into
 * .cache/debian/root (never committed). `haveDebianXen()` tells whether they are there; tests
 * that need them use `describe.skipIf(!haveDebianXen())`, except under CI=true where a missing
 * fixture is a failure (see requireOrSkip).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEBIAN_ROOT = join(REPO, '.cache', 'debian', 'root');
export const XEN_BUILD_ID = '39a640e6f1412319235087391df9f1c5e13ae920';
export const XEN_VERSION_STRING = '4.17.5+72-g01140da4e8-1';

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
  const k = readdirSync(boot)
    .filter((f) => f.startsWith('vmlinuz-'))
    .sort();
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

/** Facts of the pinned Debian build (XEN_VERSION_STRING) that tests compare against (checked by nm/readelf in the tests that use them). */
export const XEN_EXTRA = '.5';
export const XEN_EXTRA_VERSION_ADDR = '0xffff82d040234940';
/** xen_extra_version's 12 bytes in that build (lea …(%rip),%rax; jmp __x86_return_thunk), as objdump -d shows them. */
export const XEN_EXTRA_VERSION_BYTES = '488d0530871800e9d4e7fcff';

/**
 * The versions of Debian's Xen 4.17 hypervisor package the configured archives serve now
 * (`apt-cache madison`), newest first. For tests that need "whatever Debian ships now" rather than
 * the pin, so that they survive Debian's updates. Empty when apt knows none (no lists).
 */
export function debianXenVersionsNow(pkg = 'xen-hypervisor-4.17-amd64'): string[] {
  let text = '';
  try {
    text = execFileSync('apt-cache', ['madison', pkg], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('|').map((s) => s.trim());
    if (f.length >= 3 && f[0] === pkg && !out.includes(f[1]!)) out.push(f[1]!);
  }
  return out;
}
