/**
 * scripts/setup-deps.sh: the pin stays downloadable, and `xen-min` (what `npm run example` and
 * `.ci/run`'s package check use) fetches only the hypervisor and its -dbg package.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianXenVersionsNow, missing, REPO, XEN_VERSION_STRING } from './helpers/debian.js';
import { removeTempDirs, tempDirSync } from './helpers/tmp.js';

afterAll(removeTempDirs);

const pin = /^XEN_VERSION=(\S+)$/m.exec(readFileSync(join(REPO, 'scripts/setup-deps.sh'), 'utf8'))![1]!;
const now = debianXenVersionsNow();

describe.skipIf(missing("apt's package lists (apt-get update)", now.length > 0))('scripts/setup-deps.sh', () => {
  it('the pinned version is one Debian serves now (from main, which keeps it), and the tests name the same pin', () => {
    expect(XEN_VERSION_STRING).toBe(pin);
    expect(now).toContain(pin);
    const madison = execFileSync('apt-cache', ['madison', 'xen-hypervisor-4.17-amd64']).toString();
    const line = madison.split('\n').find((l) => l.includes(`| ${pin} |`))!;
    expect(line).toMatch(/ bookworm\/main /);
  });

  it('xen-min fetches only the hypervisor and its -dbg package, and a second run fetches nothing', () => {
    const d = tempDirSync('setup-deps');
    try {
      mkdirSync(join(d, 'scripts'));
      copyFileSync(join(REPO, 'scripts/setup-deps.sh'), join(d, 'scripts/setup-deps.sh'));
      execFileSync('bash', [join(d, 'scripts/setup-deps.sh'), 'xen-min'], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
      const debs = readdirSync(join(d, '.cache/debian/debs')).sort();
      expect(debs).toEqual([
        expect.stringMatching(/^xen-hypervisor-4\.17-amd64-dbg_.*_amd64\.deb$/),
        expect.stringMatching(/^xen-hypervisor-4\.17-amd64_.*_amd64\.deb$/),
      ]);
      const root = join(d, '.cache/debian/root');
      for (const f of ['usr/lib/debug/boot/xen-syms-4.17-amd64', 'boot/xen-4.17-amd64.gz', 'boot/xen-4.17-amd64.efi'])
        expect(existsSync(join(root, f)), f).toBe(true);
      expect(existsSync(join(root, 'usr/lib/xen-4.17/bin/xen-livepatch'))).toBe(false);
      expect(readdirSync(join(root, 'boot')).filter((f) => f.startsWith('vmlinuz'))).toEqual([]);
      expect(existsSync(join(root, `.complete-min-${pin}`))).toBe(true);
      const t0 = Date.now();
      execFileSync('bash', [join(d, 'scripts/setup-deps.sh'), 'xen-min']);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }, 300_000);
});
