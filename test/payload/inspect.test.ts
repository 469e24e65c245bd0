/**
 * `inspect` on fixture payloads: ABI recognition from section names, entry size and version byte;
 * funcs entries with the symbols their pointers are relocated against; hooks; entry counts.
 */
import { describe, expect, it } from 'vitest';
import { formatInspect, inspectPayload } from '../../src/payload/inspect.js';
import { FIXTURE_OWN_ID, FIXTURE_XEN_ID, PayloadFixture, R, SHF, SHT } from '../helpers/payload-fixture.js';

describe('inspect', () => {
  it('a version-2 payload: L2 rows, ids, funcs entry, no undefined symbols', () => {
    const r = inspectPayload(new PayloadFixture().build().bytes, 'p.livepatch');
    expect(r.abi).toMatchObject({ name: 'L2c', version: 2, arch: 'x86_64', compatible: ['L2a-x86_64', 'L2b-x86_64', 'L2c-x86_64'] });
    expect(r).toMatchObject({
      buildId: FIXTURE_OWN_ID,
      depends: FIXTURE_XEN_ID,
      xenDepends: FIXTURE_XEN_ID,
      hooks: {},
      undefinedSymbols: [],
    });
    expect(r.funcs).toEqual([
      { index: 0, name: 'xen_extra_version', newSymbol: 'xsplice_fn', oldAddr: '0x0', newSize: 8, oldSize: 12, version: 2 },
    ]);
  });

  it('a version-1 payload (64-byte entries) is L1', () => {
    const r = inspectPayload(new PayloadFixture({ entrySize: 64 }).build().bytes, 'p.livepatch');
    expect(r.abi).toMatchObject({ name: 'L1', version: 1, compatible: ['L1-x86_64'] });
  });

  it('.xsplice.funcs is the xSplice tree', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.section('.livepatch.funcs').name = '.xsplice.funcs';
    fx.section('.livepatch.depends').name = '.xsplice.depends';
    fx.section('.rela.livepatch.funcs').info = '.xsplice.funcs';
    const r = inspectPayload(fx.build().bytes, 'p.xsplice');
    expect(r.abi).toMatchObject({ name: 'xsplice', version: 1, compatible: ['xsplice-x86_64'] });
    expect(r.depends).toBe(FIXTURE_XEN_ID);
    expect(r.funcs[0]).toMatchObject({ name: 'xen_extra_version', newSymbol: 'xsplice_fn' });
  });

  it('a hooks-only payload with .livepatch.xen_depends is version 2; hooks are listed by kind', () => {
    const fx = new PayloadFixture();
    fx.removeSection('.livepatch.funcs');
    fx.addSection({ name: '.livepatch.hooks.apply', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(8) });
    fx.addReloc('.livepatch.hooks.apply', { offset: 0n, type: R.R64, symbol: 'xsplice_fn', addend: 0n });
    const r = inspectPayload(fx.build().bytes, 'h.livepatch');
    expect(r.abi).toMatchObject({ name: 'L2c', version: null });
    expect(r.funcs).toEqual([]);
    expect(r.hooks).toEqual({ apply: ['xsplice_fn'] });
    expect(r.sections.find((s) => s.name === '.livepatch.hooks.apply')).toMatchObject({ entrySize: 8, entries: 1 });
  });

  it('an entry size that fits no row is a damaged funcs section, not "abi unknown, 0 funcs" (issue 15)', () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.funcs').data = new Uint8Array(100);
    fx.section('.rela.livepatch.funcs').relocs = [];
    expect(() => inspectPayload(fx.build().bytes, 'p.livepatch')).toThrow(
      expect.objectContaining({
        name: 'FormatError',
        code: 'FUNCS_DAMAGED',
        exitCode: 2,
        message:
          'p.livepatch: section .livepatch.funcs: damaged funcs section: no payload ABI reads it (expected a multiple of an entry size: 64 (version 1), 104 (version 2), found size 100, version byte 0)',
      }),
    );
  });

  it('undefined symbols and a readable text rendering', () => {
    const fx = new PayloadFixture();
    fx.symbols.push({ name: 'printk', bind: 1, type: 0, section: 'UND', value: 0n, size: 0n });
    const r = inspectPayload(fx.build().bytes, 'p.livepatch');
    expect(r.undefinedSymbols).toEqual(['printk']);
    const t = formatInspect(r);
    expect(t).toMatch(/abi: +L2c \(payload version 2, x86_64\)/);
    expect(t).toMatch(/\[0\] xen_extra_version @ 0x0 \(12 bytes\) -> xsplice_fn \(8 bytes\), version 2/);
    expect(t).toMatch(/\.livepatch\.funcs +WA +104  1 × 104/);
    expect(t).toMatch(/undefined symbols \(1\): printk/);
  });
});
