/**
 * The ABI table: release → row mapping (point-release backports included), lookups, vendor rows
 * (--abi-file) and their validation errors, the expectation codec.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  abiById,
  abiByName,
  abiForVersion,
  hookRule,
  listAbis,
  parseAbiJson,
  parseXenVersion,
  validateAbi,
} from '../../src/payload/abi.js';
import { decodeExpectation, decodeFuncEntries, encodeExpectation, encodeFuncEntry } from '../../src/payload/funcs.js';
import { archOfMachine, isDeniedMappingSymbol, isSkippedMappingSymbol, relocWidth, RELOC_TYPES } from '../../src/payload/abi-rows.js';
import { EM, R_AARCH64, R_ARM, R_X86_64 } from '../../src/elf/constants.js';

describe('per-architecture facts written once (abi-rows)', () => {
  it('e_machine → arch', () => {
    expect([EM.X86_64, EM.AARCH64, EM.ARM, EM['386'], 0].map(archOfMachine)).toEqual(['x86_64', 'arm64', 'arm32', undefined, undefined]);
  });

  it('relocation sets and widths come from the ELF constants', () => {
    expect(RELOC_TYPES.x86_64).toEqual({ R_X86_64_NONE: 0, R_X86_64_64: 1, R_X86_64_PC32: 2, R_X86_64_PLT32: 4 });
    expect(RELOC_TYPES.arm32.R_ARM_MOVT_ABS).toBe(R_ARM.MOVT_ABS);
    expect(Object.keys(RELOC_TYPES.arm64)).toHaveLength(36);
    expect([R_X86_64['64'], R_X86_64.PC32, R_X86_64.PLT32, R_X86_64['32']].map((t) => relocWidth('x86_64', t))).toEqual([8, 4, 4, 0]);
    expect([R_AARCH64.ABS64, R_AARCH64.PREL64, R_AARCH64.CALL26].map((t) => relocWidth('arm64', t))).toEqual([8, 8, 4]);
    expect(relocWidth('arm32', R_ARM.ABS32)).toBe(4);
  });

  it('ARM mapping symbols: $a/$d/$x skipped on ARM only, $t denied on arm32 only', () => {
    const names = ['$a', '$d', '$x', '$x.text', '$t', '$t.1', '$xy', 'f$d', '$'];
    expect(names.filter((n) => isSkippedMappingSymbol('arm64', n))).toEqual(['$a', '$d', '$x', '$x.text']);
    expect(names.filter((n) => isSkippedMappingSymbol('arm32', n))).toEqual(['$a', '$d', '$x', '$x.text']);
    expect(names.filter((n) => isSkippedMappingSymbol('x86_64', n))).toEqual([]);
    expect(names.filter((n) => isDeniedMappingSymbol('arm32', n))).toEqual(['$t', '$t.1']);
    expect(names.filter((n) => isDeniedMappingSymbol('arm64', n))).toEqual([]);
  });
});

describe('abiForVersion', () => {
  // [version, row, funcs must be writable (x86), funcs emitted writable]
  const table: [string, string, boolean][] = [
    ['4.7.0', 'L1', false],
    ['4.8.5', 'L1', false],
    ['4.13.4', 'L1', false],
    ['4.14.0', 'L2a', false],
    ['4.14.4', 'L2a', false],
    ['4.14.5', 'L2b', false],
    ['4.14.6', 'L2b', false],
    ['4.15.2', 'L2a', false],
    ['4.15.3', 'L2b', false],
    ['4.16.0', 'L2a', false],
    ['4.16.1', 'L2b', false],
    ['4.16.3', 'L2b', false],
    ['4.16.4', 'L2b', true],
    ['4.16.6', 'L2b', true],
    ['4.17.0', 'L2b', false],
    ['4.17.1', 'L2b', true],
    ['4.17.2', 'L2b', true],
    ['4.17.3', 'L2c', false],
    ['4.17.7+13-g2445b30a44-0+deb12u1', 'L2c', false],
    ['4.18.0', 'L2b', true],
    ['4.18.1', 'L2c', false],
    ['4.19.0', 'L2c', false],
    ['4.20.1', 'L2c', false],
    ['4.22.0', 'L2c', false],
    ['4.23-dev', 'L2c', false],
    ['4.19.0-rc2', 'L2c', false],
  ];
  for (const [v, row, w] of table) {
    it(`${v} → ${row}${w ? ' (funcs must be writable)' : ''}`, () => {
      const a = abiForVersion(v, 'x86_64');
      expect(a.name).toBe(row);
      expect(a.funcsMustBeWritable).toBe(w);
      if (w) expect(a.funcsWritable).toBe(true);
    });
  }

  it('ARM needs a writable funcs section before 4.19 in every release, not with L2c', () => {
    for (const v of ['4.8.0', '4.14.0', '4.16.4', '4.17.0', '4.18.0']) expect(abiForVersion(v, 'arm64').funcsMustBeWritable).toBe(true);
    for (const v of ['4.17.3', '4.19.0']) expect(abiForVersion(v, 'arm32').funcsMustBeWritable).toBe(false);
  });

  it('point-release facts: alt_instr 12 bytes up to 4.10, ARM three bug frames up to 4.14, no hooks or NOPs in 4.7, .alt_call_sites from 4.21', () => {
    const alt = (v: string) => abiForVersion(v, 'x86_64').special.find((s) => s.section === '.altinstructions')!.entrySize;
    expect([alt('4.7.0'), alt('4.10.0'), alt('4.11.0'), alt('4.17.3')]).toEqual([12, 12, 14, 14]);
    const bf = (v: string) => abiForVersion(v, 'arm64').special.filter((s) => s.section.startsWith('.bug_frames.')).length;
    expect([bf('4.8.0'), bf('4.14.6'), bf('4.15.0')]).toEqual([3, 3, 4]);
    const v47 = abiForVersion('4.7.2', 'x86_64');
    expect(v47.hooks).toEqual([]);
    expect(v47.nopAllowed).toBe(false);
    expect(abiForVersion('4.8.0', 'x86_64').hooks.map((h) => h.kind)).toEqual(['load', 'unload']);
    expect(abiForVersion('4.8.0', 'arm32').special.some((s) => s.section === '.altinstructions')).toBe(false);
    expect(abiForVersion('4.9.0', 'arm32').special.some((s) => s.section === '.altinstructions')).toBe(true);
    expect(abiForVersion('4.20.0', 'x86_64').special.some((s) => s.section === '.alt_call_sites')).toBe(false);
    expect(abiForVersion('4.21.0', 'x86_64').special.some((s) => s.section === '.alt_call_sites')).toBe(true);
  });

  it('refuses what it does not know, with the reason (never a guess)', () => {
    const err = (v: string, arch: 'x86_64' | 'arm64' = 'x86_64') => {
      try {
        abiForVersion(v, arch);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return `${(e as UsageError).code}: ${(e as UsageError).message}`;
      }
      throw new Error(`${v} was accepted`);
    };
    expect(err('4.6.0')).toMatch(/^XEN_VERSION_UNKNOWN: Xen 4.6.0 predates live patching/);
    expect(err('4.24.0')).toMatch(/^XEN_VERSION_UNKNOWN: .*newer than this tool's release table.*--abi/);
    expect(err('5.0.0')).toMatch(/^XEN_VERSION_UNKNOWN/);
    expect(err('4.17')).toMatch(/^XEN_VERSION_AMBIGUOUS: .*4\.17\.0 → L2b.*4\.17\.3–4\.17\.x → L2c/);
    expect(err('banana')).toMatch(/^XEN_VERSION_BAD/);
    expect(err('4.7.0', 'arm64')).toMatch(/^ARCH_UNSUPPORTED: Xen 4.7.0 has no live patching on arm64/);
    // A minor release whose format never changed needs no point release.
    expect(abiForVersion('4.10', 'x86_64').name).toBe('L1');
  });

  it('parses version strings', () => {
    expect(parseXenVersion('4.17.7+13-g2445b30a44-0+deb12u1')).toEqual({
      major: 4,
      minor: 17,
      patch: 7,
      extra: '+13-g2445b30a44-0+deb12u1',
      prerelease: false,
    });
    expect(parseXenVersion('4.23-dev')).toMatchObject({ major: 4, minor: 23, patch: null, prerelease: true });
  });
});

describe('rows', () => {
  it('sizes per spec §1.2: 64/52 (v1), 104/92 (v2); expectation at 72/60', () => {
    const got = Object.fromEntries(
      listAbis().map((a) => [a.id, [a.funcEntry.size, a.funcEntry.version, a.funcEntry.fields.expect?.offset ?? null]]),
    );
    expect(got).toEqual({
      'xsplice-x86_64': [64, 1, null],
      'L1-x86_64': [64, 1, null],
      'L1-arm64': [64, 1, null],
      'L1-arm32': [52, 1, null],
      'L2a-x86_64': [104, 2, 72],
      'L2a-arm64': [104, 2, 72],
      'L2a-arm32': [92, 2, 60],
      'L2b-x86_64': [104, 2, 72],
      'L2b-arm64': [104, 2, 72],
      'L2b-arm32': [92, 2, 60],
      'L2c-x86_64': [104, 2, 72],
      'L2c-arm64': [104, 2, 72],
      'L2c-arm32': [92, 2, 60],
    });
  });

  it('xsplice row: .xsplice.* names, no xen_depends, the v5 proposal hook names with a note', () => {
    const x = abiById('xsplice-x86_64')!;
    expect(x.sections).toEqual({
      funcs: '.xsplice.funcs',
      depends: '.xsplice.depends',
      xenDepends: null,
      buildId: '.note.gnu.build-id',
      modinfo: null,
    });
    expect(x.mandatory).toEqual(['.xsplice.funcs', '.xsplice.depends', '.note.gnu.build-id']);
    expect(x.hooks.map((h) => h.section)).toEqual(['.xsplice.hooks.load', '.xsplice.hooks.unload']);
    expect(x.hooks.every((h) => /no released hypervisor/.test(h.note ?? ''))).toBe(true);
    expect(x.nopAllowed).toBe(false);
  });

  it('L2 rows: xen_depends mandatory, funcs or a hook at least, six single-pointer hooks', () => {
    const a = abiByName('L2c', 'arm32');
    expect(a.mandatory).toEqual(['.livepatch.depends', '.livepatch.xen_depends', '.note.gnu.build-id']);
    expect(a.atLeastOneOf).toHaveLength(9);
    expect(a.hooks.filter((h) => !h.array).map((h) => h.section)).toEqual([
      '.livepatch.hooks.preapply',
      '.livepatch.hooks.apply',
      '.livepatch.hooks.postapply',
      '.livepatch.hooks.prerevert',
      '.livepatch.hooks.revert',
      '.livepatch.hooks.postrevert',
    ]);
    expect(a.relocTypes.sort((x, y) => x - y)).toEqual([0, 2, 3, 28, 29, 43, 44]);
    expect(a.relAllowed).toBe(true);
    expect(abiByName('L2c', 'x86_64').relocTypes.sort()).toEqual([0, 1, 2, 4]);
    expect(abiByName('L2c', 'arm64').relocTypes).not.toContain(256); // no R_AARCH64_NONE in Xen
  });

  it('lookups refuse unknown names and hook kinds with what exists', () => {
    expect(() => abiByName('xsplice', 'arm64')).toThrow(/unknown payload ABI "xsplice" for arm64 \(exists only for x86_64\)/);
    expect(() => hookRule(abiByName('L1', 'x86_64'), 'pre-apply')).toThrow(
      /hook kind "pre-apply" does not exist in payload ABI L1-x86_64 \(it has: load, unload\)/,
    );
    expect(() => hookRule(abiByName('L2c', 'x86_64'), 'bogus')).toThrow(/unknown hook kind "bogus"/);
  });

  it('rows are copies: mutating one does not change the table', () => {
    const a = abiById('L2c-x86_64')!;
    a.funcEntry.size = 1;
    expect(abiById('L2c-x86_64')!.funcEntry.size).toBe(104);
  });
});

describe('vendor rows (--abi-file)', () => {
  const vendor = {
    base: 'L2c-x86_64',
    name: 'acme',
    description: 'ACME hypervisor: own section names, 112-byte entries, version 7, one extra hook kind',
    sections: { funcs: '.acme.funcs', depends: '.acme.depends', xenDepends: '.acme.xen_depends' },
    mandatory: ['.acme.depends', '.acme.xen_depends', '.note.gnu.build-id'],
    atLeastOneOf: ['.acme.funcs', '.acme.hooks.quiesce'],
    funcEntry: {
      size: 112,
      align: 8,
      version: 7,
      fields: {
        name: { offset: 0, size: 8 },
        newAddr: { offset: 8, size: 8 },
        oldAddr: { offset: 16, size: 8 },
        newSize: { offset: 24, size: 4 },
        oldSize: { offset: 28, size: 4 },
        version: { offset: 32, size: 1 },
        zeroed: [{ offset: 33, size: 47 }],
        expect: { offset: 80, size: 32 },
      },
    },
    hooks: [
      { kind: 'load', section: '.acme.hooks.load', array: true },
      { kind: 'quiesce', section: '.acme.hooks.quiesce', array: false },
    ],
  };

  it('a partial row on a built-in base validates and keeps the base for what it does not say', () => {
    const [r] = parseAbiJson(JSON.stringify(vendor), 'vendor.json');
    expect(r!.id).toBe('acme-x86_64');
    expect(r!.funcEntry.size).toBe(112);
    expect(r!.sections.buildId).toBe('.note.gnu.build-id');
    expect(r!.relocTypes).toEqual(abiById('L2c-x86_64')!.relocTypes);
    expect(hookRule(r!, 'quiesce').section).toBe('.acme.hooks.quiesce');
    const e = encodeFuncEntry(r!, { name: 0n, newAddr: 0n, oldAddr: 0xffff82d040000000n, newSize: 9, oldSize: 12 }, true);
    expect(e.length).toBe(112);
    expect(e[32]).toBe(7);
  });

  it('a full row (as `build --abi help --json` prints them) round-trips', () => {
    for (const row of listAbis()) expect(validateAbi(JSON.parse(JSON.stringify(row)))).toEqual(row);
  });

  const bad: [string, (v: Record<string, unknown>) => void, RegExp][] = [
    ['not JSON', () => undefined, /not valid JSON/],
    [
      'overlapping fields',
      (v) => {
        (v.funcEntry as { fields: { zeroed: unknown[] } }).fields.zeroed = [{ offset: 30, size: 10 }];
      },
      /\.funcEntry\.fields\.(zeroed\[0\]|version).*overlaps/,
    ],
    [
      'field past the end',
      (v) => {
        (v.funcEntry as { size: number }).size = 100;
      },
      /\.funcEntry\.fields\.expect: lies past the end of the 100-byte entry/,
    ],
    [
      'pointer field not pointer-sized',
      (v) => {
        (v.funcEntry as { fields: { name: unknown } }).fields.name = { offset: 0, size: 4 };
      },
      /\.funcEntry\.fields\.name\.size: must be the pointer size 8, found 4/,
    ],
    [
      'unknown base',
      (v) => {
        v.base = 'L9-x86_64';
      },
      /\.base: unknown built-in row "L9-x86_64"/,
    ],
    [
      'bad arch',
      (v) => {
        v.arch = 'riscv';
      },
      /\.arch: must be one of x86_64, arm64, arm32, found "riscv"/,
    ],
    [
      'duplicate hook kind',
      (v) => {
        (v.hooks as unknown[]).push({ kind: 'load', section: '.x', array: true });
      },
      /\.hooks\[2\]\.kind: duplicate hook kind "load"/,
    ],
    [
      'version out of range',
      (v) => {
        (v.funcEntry as { version: number }).version = 300;
      },
      /\.funcEntry\.version: must be ≤ 255, found 300/,
    ],
  ];
  for (const [what, mutate, re] of bad) {
    it(`refuses ${what} with the JSON path (UsageError, exit 2)`, () => {
      const v = structuredClone(vendor) as unknown as Record<string, unknown>;
      mutate(v);
      const text = what === 'not JSON' ? '{ "name": ' : JSON.stringify(v);
      let err: unknown;
      try {
        parseAbiJson(text, 'vendor.json');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      expect((err as UsageError).code).toBe('ABI_FILE_INVALID');
      expect((err as UsageError).exitCode).toBe(2);
      expect((err as UsageError).message).toMatch(/^vendor\.json: /);
      expect((err as UsageError).message).toMatch(re);
    });
  }
});

describe('funcs codec', () => {
  it('expectation byte 0: enabled bit 0, len bits 1–5, rsv bits 6–7 (enabled=1,len=8 → 0x11)', () => {
    const e = encodeExpectation({ enabled: true, len: 8, rsv: 0, data: new Uint8Array([1, 2, 3]) });
    expect(e.length).toBe(32);
    expect(e[0]).toBe(0x11);
    expect(encodeExpectation({ enabled: false, len: 31, rsv: 3, data: new Uint8Array() })[0]).toBe(0xfe);
    expect(decodeExpectation(e)).toMatchObject({ enabled: true, len: 8, rsv: 0 });
    expect(() => encodeExpectation({ enabled: true, len: 32, rsv: 0, data: new Uint8Array() })).toThrow(/0–31/);
  });

  it('encode → decode round trip on every row, both byte orders; scratch bytes reported', () => {
    for (const abi of listAbis()) {
      for (const le of [true, false]) {
        const big = abi.pointerSize === 8 ? 0xffff82d040234b20n : 0x00234b20n;
        const entry = {
          name: 0n,
          newAddr: 0n,
          oldAddr: big,
          newSize: 17,
          oldSize: 12,
          version: abi.funcEntry.version,
          ...(abi.funcEntry.fields.expect
            ? { expect: { enabled: true, len: 3, rsv: 0, data: new Uint8Array([0xaa, 0xbb, 0xcc, ...new Array(28).fill(0)]) } }
            : {}),
        };
        const bytes = encodeFuncEntry(abi, entry, le);
        const two = new Uint8Array(bytes.length * 2);
        two.set(bytes);
        two.set(bytes, bytes.length);
        two[abi.funcEntry.fields.zeroed[0]!.offset + bytes.length] = 1;
        const back = decodeFuncEntries(abi, two, le);
        expect(back[0]).toMatchObject({ oldAddr: big, newSize: 17, oldSize: 12, version: abi.funcEntry.version, scratchNonZero: [] });
        expect(back[1]!.scratchNonZero).toEqual([abi.funcEntry.fields.zeroed[0]!.offset]);
        if (abi.funcEntry.fields.expect) expect(back[0]!.expect).toMatchObject({ enabled: true, len: 3 });
      }
    }
  });

  it('refuses values that do not fit and sections that are not whole entries', () => {
    const arm32 = abiById('L2c-arm32')!;
    expect(() => encodeFuncEntry(arm32, { name: 0n, newAddr: 0n, oldAddr: 1n << 32n, newSize: 1, oldSize: 1 }, true)).toThrow(
      /old_addr does not fit in 4 bytes/,
    );
    expect(() => decodeFuncEntries(arm32, new Uint8Array(93), true)).toThrow(/not a multiple of the 92-byte entry/);
  });
});
