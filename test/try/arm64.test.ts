/**
 * The arm64 parts of `try` that need no boot, each against an independent reader as the oracle:
 * the build-id found in a raw arm64 Image (no section headers) equals the one readelf reads from
 * the same build's xen-syms; dom0 libraries from DT_NEEDED/PT_INTERP equal what readelf -d/-l
 * list; the kernel release read from the arm64 Image matches Debian's file name; the payload facts
 * `try` uses to pick the hypervisor.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debianXen, missing, XEN_BUILD_ID, XEN_VERSION_STRING } from '../helpers/debian.js';
import { ARM64_ROOT, arm64Livepatch, debianArm64, haveArm64 } from '../helpers/arm64.js';
import {
  elfDynamicNeeds,
  findStockBuild,
  imageBuildId,
  kernelRelease,
  locateInputs,
  payloadFacts,
  unpackedBuilds,
  KNOWN_DEBIAN_BUILDS,
} from '../../src/try/index.js';

const readelf = (args: string[]): string => {
  const r = spawnSync('aarch64-linux-gnu-readelf', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
};

describe.skipIf(
  missing(
    'arm64 parts (scripts/setup-deps.sh arm64-livepatch) and aarch64 readelf',
    haveArm64() && spawnSync('sh', ['-c', 'command -v aarch64-linux-gnu-readelf']).status === 0,
  ),
)('try: arm64 without booting', () => {
  it('reads the build-id of a raw arm64 Image as readelf reads it from the matching xen-syms', async () => {
    for (const [img, syms] of [
      [debianArm64.image, debianArm64.xenSyms],
      [arm64Livepatch.image, arm64Livepatch.xenSyms],
    ] as const) {
      const want = /Build ID: ([0-9a-f]{40})/.exec(readelf(['-n', syms]))![1];
      expect(await imageBuildId(img)).toBe(want);
    }
    expect(await imageBuildId(debianArm64.image)).not.toBe(await imageBuildId(arm64Livepatch.image));
  });

  it("lists the dom0 tools' libraries and interpreter as readelf -d / -l do", () => {
    const tool = debianArm64.xenLivepatch;
    const d = elfDynamicNeeds(readFileSync(tool));
    const needed = [...readelf(['-d', tool]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(d.needed).toEqual(needed);
    expect(d.interp).toBe(/Requesting program interpreter: ([^\]]+)\]/.exec(readelf(['-l', tool]))![1]);
    expect(d.interp).toBe('/lib/ld-linux-aarch64.so.1');
  });

  it('reads the kernel release from the arm64 Image, as Debian names the file', async () => {
    const k = readdirSync(join(ARM64_ROOT, 'boot')).find((f) => f.startsWith('vmlinuz-'))!;
    expect(await kernelRelease(join(ARM64_ROOT, 'boot', k), 'arm64')).toBe(k.slice('vmlinuz-'.length));
    await expect(kernelRelease(debianArm64.config, 'arm64')).rejects.toThrow(/not an arm64 Linux Image/);
  });

  it('finds every arm64 part: kernel, the five modules, tools, a static arm64 busybox, qemu-system-aarch64', async () => {
    const inp = await locateInputs({ arch: 'arm64', allowSetup: false });
    expect(inp.arch).toBe('arm64');
    expect(inp.xenImage).toBe(debianArm64.image);
    expect(inp.modules.map((m) => m.name)).toEqual(['xen-privcmd', 'xenfs', 'xen-evtchn', 'xen-gntdev', 'xen-gntalloc']);
    expect(inp.busybox).toBe(join(ARM64_ROOT, 'bin/busybox'));
    expect(inp.qemu).toMatch(/qemu-system-aarch64$/);
  });

  it('knows both arm64 builds by build-id, and which one has live patching', async () => {
    const b = await unpackedBuilds('arm64');
    const stock = b.find((x) => !x.rebuilt)!;
    const lp = b.find((x) => x.rebuilt)!;
    expect(stock).toMatchObject({ xenImage: debianArm64.image, label: "Debian's Xen 4.17.5+72-g01140da4e8-1 (arm64)" });
    expect(lp).toMatchObject({ xenImage: arm64Livepatch.image, xenSyms: arm64Livepatch.xenSyms });
    expect(readFileSync(arm64Livepatch.config, 'utf8')).toMatch(/^CONFIG_LIVEPATCH=y$/m);
    expect(payloadFacts(readFileSync(debianArm64.xenLivepatch))).toEqual({ arch: 'arm64', xenDepends: null });
  });
});

describe.skipIf(missing("Debian's Xen 4.17 (scripts/setup-deps.sh)", existsSync(debianXen.xenGz)))(
  'try: the stock build a payload depends on',
  () => {
    it('finds the pinned x86 build by its build-id, and nothing for an unknown id without fetching', async () => {
      const c = await findStockBuild(XEN_BUILD_ID, 'x86_64', undefined, false);
      expect(c).toMatchObject({
        how: 'unpacked',
        build: { version: XEN_VERSION_STRING, xenImage: debianXen.xenGz, xenSyms: debianXen.xenSyms },
      });
      expect(await findStockBuild('00'.repeat(20), 'x86_64', undefined, false)).toBeUndefined();
      expect(KNOWN_DEBIAN_BUILDS.find((k) => k.arch === 'x86_64' && k.version === XEN_VERSION_STRING)!.buildId).toBe(XEN_BUILD_ID);
    });
  },
);
