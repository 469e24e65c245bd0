/**
 * Debian's Xen 4.17 binaries (unpacked by scripts/setup-deps.sh): xen-syms recomputes with GNU
 * ld's algorithm; xen.gz carries the same id but cannot be recomputed alone (and can through
 * xen-syms); xen.efi has its own CodeView id, recomputed with GNU ld's PE algorithm. The ids are
 * facts about those fixed files (docs: spec buildid.md part 1b).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { compareBuildIds, readBuildId, readBuildIdSync } from '../../src/buildid/index.js';
import { XEN_BUILD_ID, debianXen, haveDebianXen, missing } from '../helpers/debian.js';
import { Workdir } from './toolchain.js';
import { runCli as cli } from '../helpers/cli.js';

const EFI_RAW = '06d44821da0ad7671fd72bb991f319eb';
const EFI_GUID_ORDER = '2148d4060ada67d71fd72bb991f319eb';

describe.skipIf(missing('Debian Xen 4.17 binaries (.cache/debian)', haveDebianXen()))('Debian Xen 4.17', () => {
  it('xen-syms: 151b373f… recomputes with gnu-ld-sha1, and readelf agrees', async () => {
    const r = await readBuildId({ path: debianXen.xenSyms }, { verify: true });
    expect(r).toMatchObject({ buildId: XEN_BUILD_ID, source: 'elf', algorithm: 'gnu-ld-sha1', verified: true, linker: 'gnu-ld' });
    expect(execFileSync('readelf', ['-n', debianXen.xenSyms], { encoding: 'utf8' })).toContain(`Build ID: ${XEN_BUILD_ID}`);
  });

  it('xen-syms: the streaming path (hash from disk) gives the same verdict as in memory', async () => {
    const w = new Workdir();
    try {
      // Pad past the streaming threshold without touching any hashed byte: append after the file.
      const b = new Uint8Array(readFileSync(debianXen.xenSyms));
      const big = new Uint8Array(b.length + 5 * 1024 * 1024);
      big.set(b);
      writeFileSync(w.path('xen-syms-padded'), big);
      const r = await readBuildId({ path: w.path('xen-syms-padded') }, { verify: true, stream: true });
      expect(r).toMatchObject({ buildId: XEN_BUILD_ID, algorithm: 'gnu-ld-sha1', verified: true });
      expect(r.elf).toBeUndefined();
      big[0x8000 + 100]! ^= 1; // inside the LOAD segment (.text)
      writeFileSync(w.path('xen-syms-bad'), big);
      expect((await readBuildId({ path: w.path('xen-syms-bad') }, { verify: true, stream: true })).verified).toBe(false);
    } finally {
      w.cleanup();
    }
  });

  it('xen.gz: the same id; not recomputable alone (the notes say why); verified through xen-syms', async () => {
    const alone = await readBuildId({ path: debianXen.xenGz }, { verify: true });
    expect(alone).toMatchObject({ buildId: XEN_BUILD_ID, source: 'gzip-elf', verified: null, algorithm: null, bootImage: true });
    expect(alone.notes.join('\n')).toMatch(/cannot be recomputed from the boot image alone.*ELF64 header/);
    const both = await readBuildId({ path: debianXen.xenGz }, { verify: true, xenSyms: debianXen.xenSyms });
    expect(both).toMatchObject({ buildId: XEN_BUILD_ID, verified: true, algorithm: 'gnu-ld-sha1' });
    expect(both.notes.join('\n')).toMatch(/\.text \(0x292920 bytes\) equals xen-syms' LOAD segment at file offset 0x8000/);
  });

  it("xen.gz whose payload differs from xen-syms' LOAD segment is refused", async () => {
    const raw = new Uint8Array(gunzipSync(readFileSync(debianXen.xenGz)));
    raw[0x80 + 0x1000]! ^= 1;
    const r = readBuildIdSync({ bytes: raw, name: 'xen-bad' }, { verify: true, xenSyms: debianXen.xenSyms });
    expect(r.source).toBe('elf');
    expect(r.verified).toBe(false);
    expect(r.reason).toMatch(/differs from xen-syms' LOAD segment/);
  });

  it('xen.efi: its own id, the raw GUID bytes Xen reports, recomputed with pe-gnu-ld-sha1; objdump order named', async () => {
    const r = await readBuildId({ path: debianXen.xenEfi }, { verify: true });
    expect(r).toMatchObject({ buildId: EFI_RAW, guidOrder: EFI_GUID_ORDER, source: 'pe', algorithm: 'pe-gnu-ld-sha1', verified: true });
    expect(r.notes.join('\n')).toContain('{2148D406-0ADA-67D7-1FD7-2BB991F319EB}');
    expect(execFileSync('objdump', ['-p', debianXen.xenEfi], { encoding: 'utf8' })).toContain(`signature ${EFI_GUID_ORDER}`);
    const bad = new Uint8Array(readFileSync(debianXen.xenEfi));
    bad[bad.length - 100]! ^= 1;
    expect(readBuildIdSync({ bytes: bad, name: 'bad.efi' }, { verify: true }).verified).toBe(false);
  });

  it('comparing an EFI-booted Xen with xen-syms warns that they differ by design', async () => {
    const syms = await readBuildId({ path: debianXen.xenSyms });
    const efi = await readBuildId({ path: debianXen.xenEfi });
    const sysfs = await readBuildId({ bytes: Buffer.from(EFI_RAW, 'hex'), name: '/sys/hypervisor/properties/buildid' });
    expect(sysfs.source).toBe('sysfs');
    for (const other of [efi, sysfs]) {
      const c = compareBuildIds(syms, other);
      expect(c.equal).toBe(false);
      expect(c.warning).toMatch(/differ by design/);
    }
    expect(compareBuildIds(efi, sysfs)).toEqual({ equal: true });
    const c = await cli(['buildid', debianXen.xenSyms, debianXen.xenEfi]);
    expect(c.code).toBe(0);
    expect(c.err).toMatch(/warning: .*differ by design/);
  });

  it('CLI: one line per input, --verify and --json over all three; xen.gz + xen-syms verify together', async () => {
    const c = await cli(['buildid', '--verify', '--json', debianXen.xenSyms, debianXen.xenGz, debianXen.xenEfi]);
    expect(c.code).toBe(0);
    const doc = JSON.parse(c.out) as Record<string, unknown>[];
    expect(doc.map((d) => [d.buildId, d.source, d.algorithm, d.verified])).toEqual([
      [XEN_BUILD_ID, 'elf', 'gnu-ld-sha1', true],
      [XEN_BUILD_ID, 'gzip-elf', 'gnu-ld-sha1', true],
      [EFI_RAW, 'pe', 'pe-gnu-ld-sha1', true],
    ]);
    const t = await cli(['buildid', debianXen.xenSyms, debianXen.xenEfi]);
    expect(t.out).toBe(`${XEN_BUILD_ID}  ${debianXen.xenSyms}\n${EFI_RAW}  ${debianXen.xenEfi}\n`);
    // A boot image alone: its id cannot be recomputed, and --verify says so with exit 1 (cli.md).
    const gz = await cli(['buildid', '--verify', '--json', debianXen.xenGz]);
    expect(gz.code).toBe(1);
    expect(JSON.parse(gz.out)[0]).toMatchObject({
      verified: null,
      notes: expect.arrayContaining([expect.stringMatching(/give xen-syms/)]),
    });
    const gz2 = await cli(['buildid', '--verify', '--xen-syms', debianXen.xenSyms, debianXen.xenGz]);
    expect(gz2.code).toBe(0);
    expect(gz2.err).toMatch(/verified \(gnu-ld-sha1\)/);
  });
});

describe('text and raw sources', () => {
  const XL = `host                   : dom0\nxen_major              : 4\nbuild_id               : ${XEN_BUILD_ID}\ncc_compiler            : gcc\n`;
  it('xl info text (from bytes or text), hex strings, raw sysfs bytes', async () => {
    expect(await readBuildId({ text: XL })).toMatchObject({ buildId: XEN_BUILD_ID, source: 'xl-info', verified: null });
    expect(await readBuildId({ bytes: new TextEncoder().encode(XL), name: '-' })).toMatchObject({
      buildId: XEN_BUILD_ID,
      source: 'xl-info',
      input: '-',
    });
    expect(await readBuildId({ text: `0x${XEN_BUILD_ID.slice(0, 8)}:${XEN_BUILD_ID.slice(8)}` })).toMatchObject({
      buildId: XEN_BUILD_ID,
      source: 'hex',
    });
    const raw = Buffer.from(XEN_BUILD_ID, 'hex');
    expect(await readBuildId({ bytes: raw, name: 'buildid' })).toMatchObject({ buildId: XEN_BUILD_ID, source: 'sysfs' });
    // A file holding hex text is hex, not raw bytes.
    expect(await readBuildId({ bytes: new TextEncoder().encode(XEN_BUILD_ID + '\n'), name: 'f' })).toMatchObject({
      buildId: XEN_BUILD_ID,
      source: 'hex',
    });
    const v = await readBuildId({ text: XL }, { verify: true });
    expect(v.verified).toBeNull();
    expect(v.reason).toMatch(/cannot be recomputed/);
  });
  it.each([
    [{ text: 'build_id               : \n' }, 'BUILDID_XL_EMPTY'],
    [{ text: 'hello' }, 'BUILDID_UNKNOWN_INPUT'],
    [{ bytes: new Uint8Array(0), name: 'empty' }, 'BUILDID_UNKNOWN_INPUT'],
    [{ bytes: new TextEncoder().encode('<denied>\n'), name: 'buildid' }, 'BUILDID_DENIED'],
    [{ bytes: new Uint8Array(100).fill(0x55), name: 'junk' }, 'BUILDID_UNKNOWN_INPUT'],
    [{ bytes: new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]), name: 'bad.gz' }, 'BUILDID_GZIP'],
    [{ bytes: new Uint8Array([0x4d, 0x5a, 0, 0]), name: 'short.efi' }, 'PE_TRUNCATED'],
  ])('refuses %j with code %s', async (src, code) => {
    await expect(readBuildId(src as { text?: string; bytes?: Uint8Array; name?: string })).rejects.toMatchObject({ code, exitCode: 2 });
  });
});
