/**
 * The per-release loader table (src/payload/releases.ts): version strings, x.y.0 features and
 * stable-branch backports, and the release-dependent message style.
 */
import { describe, expect, it } from 'vitest';
import { compareVersions, hasFeature, parseXenVersion, rulesFor } from '../../src/payload/releases.js';
import { verifyPayloads } from '../../src/payload/verify.js';
import { abiById, abiForVersion } from '../../src/payload/abi.js';
import { PayloadFixture, fakeTarget } from '../helpers/payload-fixture.js';

const V = (s: string) => parseXenVersion(s)!;
/** The loader rules verify reads from the release's row. */
const rulesOf = (ver: string, arch: 'x86_64' | 'arm64' | 'arm32') => rulesFor(abiForVersion(ver, arch), V(ver));

describe('versions', () => {
  it('parses distribution strings, short forms and dev trees', () => {
    expect(V('4.17.7+13-g2445b30a44-0+deb12u1')).toMatchObject({ major: 4, minor: 17, patch: 7, xsplice: false });
    expect(V('4.17')).toMatchObject({ major: 4, minor: 17, patch: 0 });
    expect(V('4.23-dev')).toMatchObject({ major: 4, minor: 23, patch: 0 });
    expect(V('xsplice')).toMatchObject({ xsplice: true });
    expect(parseXenVersion('banana')).toBeUndefined();
    expect(compareVersions(V('4.17.10'), V('4.17.9'))).toBeGreaterThan(0);
    expect(compareVersions(V('4.18.0'), V('4.17.99'))).toBeGreaterThan(0);
    expect(compareVersions(V('4.17.7+13-gabc'), V('4.17.7'))).toBe(0);
  });
});

describe('features by release, with backports', () => {
  const cases: [string, Parameters<typeof hasFeature>[1], boolean][] = [
    ['4.9.0', 'alignChecks', false],
    ['4.10.0', 'alignChecks', true],
    ['4.9.9', 'stnUndefReject', false],
    ['4.10.0', 'stnUndefReject', true],
    ['4.16.0', 'loadZeroSize', false],
    ['4.16.1', 'loadZeroSize', true],
    ['4.15.2', 'loadZeroSize', false],
    ['4.15.3', 'loadZeroSize', true],
    ['4.14.4', 'ignoredSymbolRelocs', false],
    ['4.14.5', 'ignoredSymbolRelocs', true],
    ['4.17.0', 'ignoredSymbolRelocs', true],
    ['4.17.3', 'altStrict', false],
    ['4.17.4', 'altStrict', true],
    ['4.18.0', 'altStrict', true],
    ['4.17.7', 'xenDependsFirst', false],
    ['4.18.3', 'xenDependsFirst', false],
    ['4.18.4', 'xenDependsFirst', true],
    ['4.19.0', 'xenDependsFirst', false],
    ['4.19.1', 'xenDependsFirst', true],
    ['4.20.0', 'xenDependsFirst', true],
    ['4.12.9', 'printkErrors', false],
    ['4.13.0', 'printkErrors', true],
    ['4.20.9', 'altCallSites', false],
    ['4.21.0', 'altCallSites', true],
    ['4.17.2', 'funcsReadOnlyOk', false],
    ['4.17.3', 'funcsReadOnlyOk', true],
    ['4.18.0', 'funcsReadOnlyOk', false],
    ['4.18.1', 'funcsReadOnlyOk', true],
    ['4.9.0', 'exTableEmptyOk', false],
    ['4.10.0', 'exTableEmptyOk', true],
  ];
  for (const [ver, f, want] of cases) {
    it(`${f} on ${ver}: ${want}`, () => expect(hasFeature(V(ver), f)).toBe(want));
  }
  it('arch-specific rows', () => {
    expect(hasFeature(V('4.17.0'), 'endbr', 'x86_64')).toBe(true);
    expect(hasFeature(V('4.17.0'), 'endbr', 'arm64')).toBe(false);
    expect(rulesOf('4.10.0', 'x86_64').altInstrSize).toBe(12);
    expect(rulesOf('4.11.0', 'x86_64').altInstrSize).toBe(14);
    expect(rulesOf('4.14.0', 'arm64').bugFrameCount).toBe(3);
    expect(rulesOf('4.15.0', 'arm64').bugFrameCount).toBe(4);
    expect(rulesOf('4.8.0', 'arm32').hasAlternative).toBe(false);
    expect(rulesOf('4.9.0', 'arm32').hasAlternative).toBe(true);
  });
});

describe('message style per release', () => {
  it('the xSplice tree prints "xsplice: NAME: …!" in debug builds only', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.section('.livepatch.funcs').name = '.xsplice.funcs';
    fx.section('.rela.livepatch.funcs').info = '.xsplice.funcs';
    fx.section('.livepatch.depends').name = '.xsplice.depends';
    fx.funcs[0]!.version = 2;
    const r = verifyPayloads([{ file: 'hello.xsplice', bytes: fx.build().bytes }], fakeTarget(), {
      xenVersion: 'xsplice',
      abi: abiById('xsplice-x86_64')!,
    });
    const d = r.payloads[0]!.diagnostics[0]!;
    expect(d).toMatchObject({
      code: 'FUNC_VERSION',
      errno: 'EOPNOTSUPP',
      printed: 'debug',
      message: 'xsplice: hello: Wrong version (2). Expected 1!',
    });
  });
  it('4.7 refuses NOP entries (new_addr 0): "Address or size fields are zero"', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    Object.assign(fx.funcs[0]!, { newSymbol: null, newSize: 4 });
    const d = verifyPayloads([{ file: 'hello.livepatch', bytes: fx.build().bytes }], fakeTarget(), { xenVersion: '4.7.0' }).payloads[0]!
      .diagnostics[0]!;
    expect(d).toMatchObject({ code: 'FUNC_ZERO_FIELDS', errno: 'EINVAL', message: 'livepatch: hello: Address or size fields are zero!' });
  });
  it('4.9: "Wrong size of .livepatch.funcs" without sizes', () => {
    const fx = new PayloadFixture({ entrySize: 64 });
    fx.section('.livepatch.funcs').data = new Uint8Array(60);
    fx.section('.rela.livepatch.funcs').relocs = [];
    const d = verifyPayloads([{ file: 'hello.livepatch', bytes: fx.build().bytes }], fakeTarget(), { xenVersion: '4.9.0' }).payloads[0]!
      .diagnostics[0]!;
    expect(d).toMatchObject({ code: 'SEC_WRONG_SIZE', errno: 'EINVAL', message: 'livepatch: hello: Wrong size of .livepatch.funcs!' });
  });
});
