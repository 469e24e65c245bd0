/**
 * verify's file side in the library (src/payload/verify/files.ts, moved from the CLI): the target
 * read from XEN, the version-mismatch warning, payload files (one larger than Xen accepts is not
 * read whole), usage errors, the `rule` every diagnostic carries, and the refusal lines.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyFiles } from '../../src/payload/verify/files.js';
import { debianXen, haveDebianXen, missing, XEN_VERSION_STRING } from '../helpers/debian.js';
import { FIXTURE_XEN_ID, PayloadFixture } from '../helpers/payload-fixture.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

describe('verifyFiles (a hex build-id target)', () => {
  it("reads the payload files and names each diagnostic's rule; refusal lines for a refused payload", async () => {
    const dir = await tempDir('verify-files');
    const good = join(dir, 'good.livepatch');
    const bad = join(dir, 'bad.livepatch');
    await writeFile(good, new PayloadFixture().build().bytes);
    const fx = new PayloadFixture();
    fx.funcs[0]!.version = 1;
    await writeFile(bad, fx.build().bytes);
    const o = await verifyFiles({ payloads: [good, bad], xen: FIXTURE_XEN_ID, xenVersion: '4.17.5' });
    expect(o.result.payloads.map((p) => p.ok)).toEqual([true, false]);
    const d = o.result.payloads[1]!.diagnostics.find((x) => x.first)!;
    expect(d).toMatchObject({ code: 'FUNC_VERSION', errno: 'EOPNOTSUPP', rule: 'docs/rules.md#func_version' });
    expect(o.refusals).toEqual([expect.stringMatching(/^.*bad\.livepatch: refused at upload \(EOPNOTSUPP\): FUNC_VERSION: /)]);
    expect(o.warnings).toEqual([]);
  });

  it('a file larger than Xen accepts is not read whole: the upload check reports its size', async () => {
    const dir = await tempDir('verify-files');
    const big = join(dir, 'big.livepatch');
    await writeFile(big, new Uint8Array(2 * 1024 * 1024 + 1));
    const o = await verifyFiles({ payloads: [big], xen: FIXTURE_XEN_ID, xenVersion: '4.17.5' });
    expect(o.result.payloads[0]!.diagnostics[0]).toMatchObject({ code: 'UPLOAD_SIZE', errno: 'EINVAL' });
  });

  it('usage errors: more names than payloads, an unknown arch, --loaded-dir without --loaded', async () => {
    await expect(verifyFiles({ payloads: [], names: ['a'], xen: FIXTURE_XEN_ID })).rejects.toMatchObject({
      code: 'USAGE',
      exitCode: 2,
      message: 'more --name options than payloads',
    });
    await expect(verifyFiles({ payloads: ['x'], arch: 'mips', xen: FIXTURE_XEN_ID, xenVersion: '4.17.5' })).rejects.toMatchObject({
      code: 'USAGE',
      exitCode: 2,
      message: '--arch must be x86_64, arm64 or arm32 (got mips)',
    });
    await expect(verifyFiles({ payloads: ['x'], loadedDir: '/tmp', xen: FIXTURE_XEN_ID })).rejects.toMatchObject({
      code: 'USAGE',
      exitCode: 2,
    });
  });
});

describe.skipIf(missing('Debian Xen 4.17 (scripts/setup-deps.sh)', haveDebianXen()))('verifyFiles (Debian xen-syms)', () => {
  it('warns when --xen-version contradicts the version XEN reveals, and uses --xen-version', async () => {
    const dir = await tempDir('verify-files');
    const file = join(dir, 'good.livepatch');
    await writeFile(file, new PayloadFixture().build().bytes);
    const seen: string[] = [];
    const o = await verifyFiles({ payloads: [file], xen: debianXen.xenSyms, xenVersion: '4.18.0', onWarning: (w) => seen.push(w) });
    expect(o.warnings).toEqual([
      `${debianXen.xenSyms} looks like Xen ${XEN_VERSION_STRING} (${o.target.versionSource ?? 'image'}); using --xen-version 4.18.0`,
    ]);
    expect(seen).toEqual(o.warnings);
    expect(o.result.target.version).toBe('4.18.0');
  });
});
