/**
 * Where scripts/setup-deps.sh arm64 / arm64-livepatch put the arm64 parts (never committed):
 * Debian 12's arm64 packages unpacked with a private apt state, the aarch64 cross gcc unpacked (its
 * package conflicts with gcc-multilib, so it is never installed), and Debian's Xen source
 * cross-built with CONFIG_LIVEPATCH=y (Debian's own arm64 binary is built without live patching).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './debian.js';

export const ARM64_CACHE = join(REPO, '.cache', 'debian-arm64');
export const ARM64_ROOT = join(ARM64_CACHE, 'root');

/** Debian's own arm64 hypervisor (no CONFIG_LIVEPATCH). */
export const debianArm64 = {
  image: join(ARM64_ROOT, 'boot/xen-4.17-arm64'),
  config: join(ARM64_ROOT, 'boot/xen-4.17-arm64.config'),
  xenSyms: join(ARM64_ROOT, 'usr/lib/debug/boot/xen-syms-4.17-arm64'),
  xenLivepatch: join(ARM64_ROOT, 'usr/lib/xen-4.17/bin/xen-livepatch'),
};

/** The same source, built here with CONFIG_LIVEPATCH=y. */
export const arm64Livepatch = {
  image: join(ARM64_CACHE, 'livepatch', 'xen'),
  xenSyms: join(ARM64_CACHE, 'livepatch', 'xen-syms'),
  config: join(ARM64_CACHE, 'livepatch', 'xen.config'),
};

/** The unpacked aarch64 cross gcc, else one on PATH. */
export const ARM64_CC = existsSync(join(ARM64_CACHE, 'cross/root/usr/bin/aarch64-linux-gnu-gcc'))
  ? join(ARM64_CACHE, 'cross/root/usr/bin/aarch64-linux-gnu-gcc')
  : 'aarch64-linux-gnu-gcc';

export function haveArm64(): boolean {
  return (
    [debianArm64.image, debianArm64.xenSyms, debianArm64.xenLivepatch, arm64Livepatch.image, arm64Livepatch.xenSyms].every((f) =>
      existsSync(f),
    ) && existsSync(ARM64_CC)
  );
}
