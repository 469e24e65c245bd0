/**
 * Payloads made the way Xen's own tests make them (gcc + objcopy + `ld -r --build-id`, see
 * test/helpers/xen-recipe.ts) against Debian's real Xen 4.17 target: they verify clean against its
 * xen-syms (and xen.gz, and its build-id in hex with --xen-version), and fail against another
 * build-id. Also the CLI contract of `verify` and `inspect`: exit status, JSON shape, one stderr line.
 */
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing, XEN_BUILD_ID, XEN_VERSION_STRING } from '../helpers/debian.js';
import { buildXenRecipePayload, type XenRecipePayload } from '../helpers/xen-recipe.js';
import { loadTarget } from '../../src/payload/target.js';
import { verifyPayloads } from '../../src/payload/verify.js';
import { inspectPayload } from '../../src/payload/inspect.js';
import { PayloadFixture } from '../helpers/payload-fixture.js';
import { have } from '../helpers/tools.js';
import { runCli as cli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const ok = haveDebianXen() && have('gcc') && have('ld') && have('objcopy') && have('nm');

describe.skipIf(missing('Debian Xen 4.17 + gcc/binutils (scripts/setup-deps.sh)', ok))(
  'verify: Xen-recipe payloads against Debian Xen 4.17',
  () => {
    let dir: string;
    let good: XenRecipePayload;
    let byName: XenRecipePayload;
    let stacked: XenRecipePayload;
    beforeAll(async () => {
      dir = await tempDir('verify');
      good = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, tag: 'vgood', outDir: dir });
      byName = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, tag: 'vbyname', oldAddr: 'zero', outDir: dir });
      stacked = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, tag: 'vstack', depends: { payload: good.file }, outDir: dir });
    }, 120_000);

    it('verifies clean against xen-syms (old_addr by address and by name, a stack of two)', async () => {
      const t = await loadTarget(debianXen.xenSyms);
      expect(t.version).toBe(XEN_VERSION_STRING);
      const r = verifyPayloads(
        [good, stacked].map((p) => ({ file: p.file, bytes: readFileSync(p.file) })),
        t,
      );
      expect(r.ok).toBe(true);
      expect(r.target).toMatchObject({ buildId: XEN_BUILD_ID, abi: 'L2c-x86_64' });
      expect(r.payloads.map((p) => p.diagnostics.filter((d) => d.severity === 'error'))).toEqual([[], []]);
      expect(r.payloads[1]!.depends).toBe(good.buildId);
      const one = verifyPayloads([{ file: byName.file, bytes: readFileSync(byName.file) }], t);
      expect(one.payloads[0]!.diagnostics).toEqual([]);
    });

    it('verifies clean against xen.gz and against the build-id in hex with --xen-version', async () => {
      expect((await cli(['verify', good.file, '--xen', debianXen.xenGz, '--xen-version', '4.17.7'])).code).toBe(0);
      const r = await cli(['verify', good.file, '--xen', XEN_BUILD_ID, '--xen-version', '4.17.7', '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ ok: true, target: { buildId: XEN_BUILD_ID, version: '4.17.7' } });
    });

    it('fails against another build-id: exit 1 and the hypervisor message', async () => {
      const other = 'ee'.repeat(20);
      const r = await cli(['verify', good.file, '--xen', other, '--xen-version', '4.17.7', '--json']);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.out);
      expect(j.ok).toBe(false);
      expect(j.payloads[0]).toMatchObject({ file: good.file, buildId: good.buildId, ok: false, errno: 'EINVAL', refusedAt: 'upload' });
      expect(j.payloads[0].diagnostics.find((d: { first?: boolean }) => d.first)).toMatchObject({
        severity: 'error',
        code: 'XEN_DEPENDS_MISMATCH',
        errno: 'EINVAL',
        first: true,
        message: 'livepatch: vgood: check against hypervisor build-id failed',
        section: '.livepatch.xen_depends',
      });
      const h = await cli(['verify', good.file, '--xen', other, '--xen-version', '4.17.7']);
      expect(h.code).toBe(1);
      expect(h.out).toMatch(/REFUSED at upload \(EINVAL\)/);
      expect(h.out).toMatch(/livepatch: vgood: check against hypervisor build-id failed/);
    });

    it('--name changes the upload name in messages', async () => {
      const r = await cli(['verify', good.file, '--xen', 'ee'.repeat(20), '--xen-version', '4.17.7', '--name', 'custom', '--json']);
      expect(JSON.parse(r.out).payloads[0].diagnostics.find((d: { first?: boolean }) => d.first).message).toBe(
        'livepatch: custom: check against hypervisor build-id failed',
      );
    });

    it('stack out of order: the top payload is refused at apply', async () => {
      const r = await cli(['verify', stacked.file, good.file, '--xen', debianXen.xenSyms, '--json']);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.out);
      expect(j.payloads[0]).toMatchObject({ ok: false, errno: 'EINVAL', refusedAt: 'apply' });
      expect(j.payloads[0].diagnostics[0]).toMatchObject({
        code: 'DEPENDS_MISMATCH',
        message: 'livepatch: vstack: check against hypervisor build-id failed',
      });
      expect(j.payloads[1]).toMatchObject({ ok: true, errno: null });
    });

    it('symbol resolution against the real symbol table: globals, file#name locals, no absolute symbols', async () => {
      const t = await loadTarget(debianXen.xenSyms);
      const run = (names: string[]) => {
        const fx = new PayloadFixture();
        for (const n of names) fx.symbols.push({ name: n, bind: 1, type: 0, section: 'UND', value: 0n, size: 0n });
        return verifyPayloads([{ file: 'fx.livepatch', bytes: fx.build().bytes }], t).payloads[0]!;
      };
      // The fixture's replacement ends in a plain ret; Debian's Xen is built with return thunks.
      const thunkNote = expect.objectContaining({
        code: 'NOTE_RETURN_THUNK',
        severity: 'warning',
        message: expect.stringMatching(/^xsplice_fn\+0x7: plain `ret`, .*-mfunction-return=thunk-extern/),
      });
      expect(run(['printk', '__x86_return_thunk']).diagnostics).toEqual([thunkNote]);
      const local = [...t.symbols!.all()].find((s) => s.file !== undefined && s.type === 2)!;
      expect(run([local.name]).diagnostics).toEqual([thunkNote]);
      const v = run([local.elfName === local.name ? 'no_such_symbol' : local.elfName]);
      expect(v.diagnostics[0]).toMatchObject({ code: 'SYM_UNKNOWN', errno: 'ENOENT' });
      // start_pa is SHN_ABS in xen-syms: xen/tools/symbols leaves it out of the hypervisor's table.
      expect(run(['start_pa']).diagnostics[0]).toMatchObject({ code: 'SYM_UNKNOWN', message: 'livepatch: fx: Unknown symbol: start_pa' });
    });

    it('inspect reads the recipe payload', async () => {
      const r = inspectPayload(readFileSync(good.file), good.file);
      expect(r.abi).toMatchObject({ name: 'L2c', version: 2, arch: 'x86_64' });
      expect(r.buildId).toBe(good.buildId);
      expect(r.depends).toBe(XEN_BUILD_ID);
      expect(r.xenDepends).toBe(XEN_BUILD_ID);
      expect(r.funcs).toEqual([
        {
          index: 0,
          name: 'xen_extra_version',
          newSymbol: 'vgood_fn',
          oldAddr: 'xen_extra_version',
          newSize: r.funcs[0]!.newSize,
          oldSize: 12,
          version: 2,
        },
      ]);
      expect(r.undefinedSymbols).toContain('xen_extra_version');
      expect(r.sections.find((s) => s.name === '.livepatch.funcs')).toMatchObject({ entrySize: 104, entries: 1, flags: 'WA' });
      const c = await cli(['inspect', good.file, '--json']);
      expect(c.code).toBe(0);
      expect(JSON.parse(c.out)).toMatchObject({ file: good.file, buildId: good.buildId, funcs: [{ name: 'xen_extra_version' }] });
      const h = await cli(['inspect', stacked.file]);
      expect(h.out).toMatch(new RegExp(`depends: +${good.buildId}`));
    });
  },
);

describe('verify/inspect CLI contract (no Debian files needed)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('verify-cli');
  });

  it('exit 2 for an unreadable payload, one stderr line, JSON error document', async () => {
    const r = await cli(['verify', join(dir, 'missing.livepatch'), '--xen', 'ee'.repeat(20), '--xen-version', '4.17.7', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out)).toMatchObject({ ok: false, error: { code: 'IO_ENOENT' } });
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(/^xsplice: .*missing\.livepatch: no such file/);
  });

  it('exit 2 when the target does not reveal its version', async () => {
    const f = join(dir, 'p.livepatch');
    await writeFile(f, new PayloadFixture().build().bytes);
    const r = await cli(['verify', f, '--xen', 'ee'.repeat(20)]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--xen-version/);
  });

  it('exit 1 for a file the hypervisor rejects as not ELF (understood and refused)', async () => {
    const f = join(dir, 'junk.livepatch');
    await writeFile(f, 'this is not an ELF payload at all, but it is long enough for a header......');
    const r = await cli(['verify', f, '--xen', 'ee'.repeat(20), '--xen-version', '4.17.7', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out).payloads[0].diagnostics[0]).toMatchObject({
      code: 'HDR_NOT_ELF',
      errno: 'EINVAL',
      message: 'livepatch: junk: Not an ELF payload',
    });
  });

  it('exit 0 for the clean fixture; verify needs --xen', async () => {
    const f = join(dir, 'clean.livepatch');
    await writeFile(f, new PayloadFixture({ xenId: 'ee'.repeat(20) }).build().bytes);
    expect((await cli(['verify', f, '--xen', 'ee'.repeat(20), '--xen-version', '4.17.7'])).code).toBe(0);
    const r = await cli(['verify', f]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/needs --xen/);
  });

  it('inspect: exit 2 on a malformed file', async () => {
    const f = join(dir, 'bad.livepatch');
    await writeFile(f, new Uint8Array(10));
    const r = await cli(['inspect', f, '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out).ok).toBe(false);
  });

  it('inspect: the fixture payload', async () => {
    const f = join(dir, 'fx.livepatch');
    const fx = new PayloadFixture();
    fx.addSection({ name: '.livepatch.hooks.load', type: 1, flags: 2n, addralign: 8n, data: new Uint8Array(8) });
    fx.addReloc('.livepatch.hooks.load', { offset: 0n, type: 1, symbol: 'xsplice_fn', addend: 0n });
    fx.addSection({ name: '.modinfo', type: 1, flags: 2n, addralign: 1n, data: Buffer.from('LIVEPATCH_RULEZ\0a=b\0') });
    fx.funcs[0]!.bytes = { 72: 1 | (2 << 1), 73: 0xab, 74: 0xcd };
    await writeFile(f, fx.build().bytes);
    const r = await cli(['inspect', f, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.hooks).toEqual({ load: ['xsplice_fn'] });
    expect(j.modinfo).toEqual(['LIVEPATCH_RULEZ', 'a=b']);
    expect(j.funcs[0]).toMatchObject({
      name: 'xen_extra_version',
      newSymbol: 'xsplice_fn',
      oldAddr: '0x0',
      expect: { enabled: true, len: 2, data: 'abcd' },
    });
    expect(j.undefinedSymbols).toEqual([]);
  });
});
