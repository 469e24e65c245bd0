/**
 * One release table: every fact that differs between releases or architectures is in the row
 * abiForVersion resolves (format columns, the loader columns under `row.loader`, limits, ENDBR
 * offset, hypervisor-state bytes, relocation set, special-section entry sizes), verify reads it
 * from the row, and a vendor row (--abi-file) can set each one. inspect recognises a payload built
 * for a vendor row.
 */
import { ENDBR64_POISON } from '../../src/elf/constants.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { abiForVersion, parseAbiJson } from '../../src/payload/abi.js';
import type { PayloadAbi } from '../../src/payload/abi-types.js';
import { inspectPayload } from '../../src/payload/inspect.js';
import { FEATURES } from '../../src/payload/releases.js';
import { verifyPayloads, type PayloadVerdict } from '../../src/payload/verify.js';
import { FIXTURE_XEN_ID, PayloadFixture, R, SHF, SHT, STB, STT, fakeTarget, hexBytes } from '../helpers/payload-fixture.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';

afterAll(removeTempDirs);

const vendor = (row: Record<string, unknown>): PayloadAbi =>
  parseAbiJson(JSON.stringify({ base: 'L2c-x86_64', name: 'vendor', ...row }), 'vendor.json')[0]!;

function verify(fx: PayloadFixture, abi?: PayloadAbi, target = fakeTarget()): PayloadVerdict {
  return verifyPayloads([{ file: 'hello.livepatch', bytes: fx.build().bytes }], target, abi ? { abi } : {}).payloads[0]!;
}
const firstCode = (v: PayloadVerdict): string | undefined => v.diagnostics.find((d) => d.first)?.code;

describe('the row of a release holds every release fact', () => {
  it('abiForVersion resolves the loader columns into the row', () => {
    const r = abiForVersion('4.17.5+72-g01140da4e8-1', 'x86_64');
    expect(r.loader).toMatchObject({
      release: '4.17.5+72-g01140da4e8-1',
      payloadArea: { symbol: '__2M_rwdata_end' },
      x86CapWords: 21,
      bugInstruction: 'ud2',
    });
    expect(abiForVersion('4.17.5', 'x86_64').loader).toMatchObject({ x86CapWords: 19 });
    expect(Object.keys(r.loader!.features!).sort()).toEqual(Object.keys(FEATURES).sort());
    expect(r.loader!.features).toMatchObject({ endbr: true, endbrPoison: true, altStrict: true, xenDependsFirst: false, altFlagNot: true }); // a 4.17.6 snapshot (errata.test.ts)
    expect(abiForVersion('4.22.0', 'x86_64').loader).toMatchObject({ bugInstruction: 'udb', x86CapWords: 22 });
    expect(abiForVersion('4.19.0', 'arm64').loader).toMatchObject({
      payloadArea: { base: 0x00000a0001000000n },
      x86CapWords: null,
      bugInstruction: null,
    });
  });
  it('limits, ENDBR offset, hypervisor-state bytes, relocations and special entry sizes are row fields', () => {
    const l2b = abiForVersion('4.17.0', 'x86_64');
    expect(l2b.limits).toMatchObject({ maxSections: 1024, maxSymbolLen: 126, maxNobits: 2 * 1024 * 1024 });
    expect(l2b.endbrOffset).toBe(4);
    expect(l2b.funcEntry.hypervisorState).toEqual([64, 65]);
    expect(abiForVersion('4.14.0', 'x86_64').funcEntry.hypervisorState).toEqual([64]);
    expect(abiForVersion('4.19.0', 'x86_64').funcEntry.hypervisorState).toBeUndefined();
    expect(abiForVersion('4.14.0', 'x86_64').endbrOffset).toBe(0);
    expect(abiForVersion('4.19.0', 'x86_64').relocTypes).toEqual([0, 1, 2, 4]);
    // The shape the diff helper reads: special = [{ section, entrySize }].
    expect(abiForVersion('4.19.0', 'x86_64').special).toContainEqual({ section: '.altinstructions', entrySize: 14 });
    expect(abiForVersion('4.10.0', 'x86_64').special).toContainEqual({ section: '.altinstructions', entrySize: 12 });
  });
});

describe('a vendor row sets each fact, and verify follows it', () => {
  it('limits.maxSections', () => {
    expect(firstCode(verify(new PayloadFixture(), vendor({ limits: { maxSections: 8 } })))).toBe('HDR_TOO_MANY_SECTIONS');
    expect(verify(new PayloadFixture(), vendor({})).diagnostics).toEqual([]);
  });
  it('limits.maxSymbolLen (names truncated before the duplicate check)', () => {
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'printkXYZ', bind: STB.GLOBAL, type: STT.FUNC, section: '.text', value: 8n, size: 1n });
    expect(verify(fx, vendor({})).diagnostics).toEqual([]);
    const v = verify(fx, vendor({ limits: { maxSymbolLen: 6 } }));
    expect(v.diagnostics.find((d) => d.first)).toMatchObject({
      code: 'DUPLICATE_SYMBOL',
      errno: 'EEXIST',
      message: 'livepatch: hello: duplicate new symbol: printk',
    });
  });
  it('limits.maxNobits', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.bss', type: SHT.NOBITS, flags: SHF.ALLOC | SHF.WRITE, addralign: 8n, size: 4096n });
    expect(verify(fx, vendor({})).diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(firstCode(verify(fx, vendor({ limits: { maxNobits: 1024 } })))).toBe('SEC_NOBITS_TOO_BIG');
  });
  it('relocTypes', () => {
    const fx = new PayloadFixture();
    fx.addReloc('.text', { offset: 3n, type: R.PLT32, symbol: 'xsplice_str', addend: -4n });
    fx.section('.rela.text').relocs = [{ offset: 3n, type: R.PLT32, symbol: 'xsplice_str', addend: -4n }];
    expect(verify(fx, vendor({})).diagnostics).toEqual([]);
    expect(firstCode(verify(fx, vendor({ relocTypes: [0, 1, 2] })))).toBe('RELOC_UNHANDLED');
  });
  it('special entry sizes (.ex_table)', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.ex_table', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 4n, data: new Uint8Array(12) });
    expect(firstCode(verify(fx, vendor({})))).toBe('SEC_WRONG_SIZE');
    const row = vendor({});
    row.special = row.special.map((s) => (s.section === '.ex_table' ? { ...s, entrySize: 12 } : s));
    expect(verify(fx, row).diagnostics).toEqual([]);
  });
  it('endbrOffset and loader.features.endbrPoison', () => {
    const poison = fakeTarget({ code: Uint8Array.from([...ENDBR64_POISON, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xc3]) });
    const fx = new PayloadFixture();
    fx.funcs[0]!.oldSize = 8;
    expect(verify(fx, vendor({}), poison).diagnostics.find((d) => d.first)?.message).toMatch(/smaller than the 9 bytes/);
    expect(verify(fx, vendor({ endbrOffset: 2 }), poison).diagnostics).toEqual([]);
    expect(verify(fx, vendor({ loader: { features: { endbrPoison: false } } }), poison).diagnostics).toEqual([]);
  });
  it('funcEntry.hypervisorState', () => {
    const fx = new PayloadFixture();
    fx.funcs[0]!.bytes = { 64: 1 };
    expect(verify(fx, vendor({})).diagnostics.map((d) => d.code)).toEqual(['NOTE_PAD_NONZERO']);
    const row = vendor({});
    row.funcEntry.hypervisorState = [64];
    expect(verify(fx, row).diagnostics.map((d) => d.code)).toEqual(['UNCHECKED_SCRATCH_NONZERO']);
  });
  it('loader.payloadArea (ARM LIVEPATCH_VMAP_START of a vendor build)', () => {
    const fx = new PayloadFixture({ arch: 'arm64' });
    fx.funcs[0]!.oldAddr = 0x40250000n;
    const target = { buildId: hexBytes(FIXTURE_XEN_ID), version: '4.19.0', arch: 'arm64' as const };
    const row = parseAbiJson(JSON.stringify({ base: 'L2c-arm64', name: 'vendor' }))[0]!;
    expect(firstCode(verify(fx, row, target as never))).toBe('FUNC_DISTANCE');
    const moved = parseAbiJson(JSON.stringify({ base: 'L2c-arm64', name: 'vendor', loader: { payloadArea: { base: '0x41000000' } } }))[0]!;
    expect(verify(fx, moved, target as never).diagnostics).toEqual([]);
  });
  it('loader values are validated with their JSON path', () => {
    expect(() => vendor({ loader: { features: { noSuchThing: true } } })).toThrow(/\.loader\.features\.noSuchThing: unknown feature/);
    expect(() => vendor({ loader: { payloadArea: { base: 'zz' } } })).toThrow(/\.loader\.payloadArea\.base: must be an address/);
    expect(() => vendor({ loader: { bugInstruction: 'int3' } })).toThrow(/\.loader\.bugInstruction: must be "ud2", "udb" or null/);
    expect(() => vendor({ funcEntry: { ...abiForVersion('4.19.0', 'x86_64').funcEntry, hypervisorState: [200] } })).toThrow(
      /hypervisorState: must be an array of byte offsets below the entry size 104/,
    );
  });
});

describe('a payload built for a vendor row', () => {
  /** The clean fixture with its funcs and depends sections renamed in .shstrtab (same lengths). */
  const renamed = (): { build(): { bytes: Uint8Array } } => ({
    build: () => {
      const b = Buffer.from(new PayloadFixture().build().bytes);
      for (const [from, to] of [
        ['.livepatch.funcs\0', '.acmepatch.funcs\0'],
        ['.livepatch.depends\0', '.acmepatch.depends\0'],
      ] as const) {
        for (let at = b.indexOf(from); at >= 0; at = b.indexOf(from, at + 1)) b.write(to, at, 'latin1');
      }
      return { bytes: new Uint8Array(b) };
    },
  });
  const json = JSON.stringify({
    base: 'L2c-x86_64',
    name: 'acme',
    sections: { funcs: '.acmepatch.funcs', depends: '.acmepatch.depends' },
    mandatory: ['.acmepatch.depends', '.livepatch.xen_depends', '.note.gnu.build-id'],
    atLeastOneOf: ['.acmepatch.funcs'],
  });
  it('inspect recognises it (without the row it is not a payload, with a hint)', () => {
    const bytes = renamed().build().bytes;
    expect(() => inspectPayload(bytes, 'acme.livepatch')).toThrow(
      /^acme\.livepatch: not a live-patch payload: no .*\.livepatch\.funcs.* section \(a payload built for a vendor ABI row: pass its --abi-file\)$/,
    );
    const r = inspectPayload(bytes, 'acme.livepatch', { abis: parseAbiJson(json) });
    expect(r.abi).toMatchObject({ name: 'acme', version: 2, arch: 'x86_64' });
    expect(r.depends).toBe(FIXTURE_XEN_ID);
    expect(r.funcs).toHaveLength(1);
    expect(r.funcs[0]).toMatchObject({ name: 'xen_extra_version', newSymbol: 'xsplice_fn', version: 2 });
  });
  it('xsplice inspect / verify --abi-file', async () => {
    const dir = await tempDir('vendor');
    const rowFile = join(dir, 'acme.json');
    const file = join(dir, 'hello.livepatch');
    await writeFile(rowFile, json);
    await writeFile(file, renamed().build().bytes);
    const run = runCli;
    const i = await run(['inspect', '--json', '--abi-file', rowFile, file]);
    expect(i.code).toBe(0);
    expect(JSON.parse(i.out).abi.name).toBe('acme');
    const v = await run(['verify', '--xen', FIXTURE_XEN_ID, '--xen-version', '4.19.0', '--abi-file', rowFile, file]);
    expect({ code: v.code, err: v.err }).toEqual({ code: 0, err: '' });
    expect(v.out).toMatch(/payload ABI acme-x86_64/);
    const plain = await run(['verify', '--xen', FIXTURE_XEN_ID, '--xen-version', '4.19.0', file]);
    expect(plain.code).toBe(1);
  });
});
