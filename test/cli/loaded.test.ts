/**
 * verify against what a host has loaded (`xen-livepatch list` output, and the payload files it
 * names where available): names already loaded, the depends chain on the last applied payload,
 * and the simulated upload and apply of the loaded payloads before the new one.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLivepatchList, verifyAgainstLoaded, type LoadedInput } from '../../src/payload/loaded.js';
import { FIXTURE_OWN_ID, FIXTURE_XEN_ID, fakeTarget, taggedPayload } from '../helpers/payload-fixture.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { removeTempDirs, tempDirSync } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const A_ID = FIXTURE_OWN_ID;
const B_ID = 'bb'.repeat(20);
const C_ID = 'cc'.repeat(20);
const payload = taggedPayload;

// What xen-livepatch list prints (tools/misc/xen-livepatch.c, 4.14+): "%-40.*s| %s", then
// "    | " and the metadata.
const row = (name: string, state: string, meta = '', rc = ''): string => `${name.padEnd(40)}| ${state}${rc}    | ${meta}`;
const HEAD =
  ' ID                                     | status     | metadata\n----------------------------------------+------------+---------------\n';

const cli = (...argv: string[]): Promise<CliRun> => runCli(argv);

describe('parseLivepatchList', () => {
  it('reads the 4.14+ rows (state, rc, metadata), the older two-column rows, and "Nothing to list"', () => {
    const text =
      HEAD + row('a', 'APPLIED', 'LIVEPATCH_RULEZ=1;') + '\n' + row('b', 'CHECKED', '', ' (-11, Resource temporarily unavailable)') + '\n';
    expect(parseLivepatchList(text)).toEqual([
      { name: 'a', state: 'APPLIED', rc: null, metadata: 'LIVEPATCH_RULEZ=1;' },
      { name: 'b', state: 'CHECKED', rc: -11, metadata: null },
    ]);
    const old =
      ' ID                                     | status\n----------------------------------------+------------\n' +
      `${'xen_hello'.padEnd(40)}| APPLIED\n`;
    expect(parseLivepatchList(old)).toEqual([{ name: 'xen_hello', state: 'APPLIED', rc: null, metadata: null }]);
    const long = 'n'.repeat(50);
    expect(parseLivepatchList(`${long}| CHECKED    | \n`)[0]).toMatchObject({ name: long, state: 'CHECKED' });
    expect(parseLivepatchList('Nothing to list\n')).toEqual([]);
  });

  it('a line that is not a row is a format error naming the line', () => {
    expect(() => parseLivepatchList(HEAD + 'hello world\n', 'list.txt')).toThrow(
      expect.objectContaining({
        code: 'LOADED_LIST_FORMAT',
        exitCode: 2,
        message: expect.stringMatching(/^list\.txt: line 3 is not a row of `xen-livepatch list` output/),
      }),
    );
  });
});

describe('verifyAgainstLoaded', () => {
  const a = payload('a', A_ID, FIXTURE_XEN_ID);
  const b = payload('b', B_ID, A_ID);
  const b0 = payload('b0', B_ID, FIXTURE_XEN_ID);
  const entry = (name: string, state: 'APPLIED' | 'CHECKED'): LoadedInput['entry'] => ({ name, state, rc: null, metadata: null });

  it('a name already loaded is refused at upload with EEXIST', () => {
    const r = verifyAgainstLoaded([{ file: 'a.livepatch', bytes: a }], fakeTarget(), [{ entry: entry('a', 'CHECKED') }]);
    expect(r.ok).toBe(false);
    expect(r.payloads[0]).toMatchObject({ errno: 'EEXIST', refusedAt: 'upload' });
    expect(r.payloads[0]!.diagnostics[0]).toMatchObject({ code: 'DUPLICATE_NAME', first: true });
  });

  it('without files: a payload built on the hypervisor is refused when something is applied; one built on something else is not checked, and says so', () => {
    const r = verifyAgainstLoaded([{ file: 'b0.livepatch', bytes: b0 }], fakeTarget(), [{ entry: entry('a', 'APPLIED') }]);
    expect(r.payloads[0]).toMatchObject({ ok: false, errno: 'EINVAL', refusedAt: 'apply' });
    expect(r.payloads[0]!.diagnostics.find((d) => d.code === 'DEPENDS_MISMATCH')!.message).toMatch(
      /^livepatch: b0: check against a build-id failed \(it depends on the hypervisor 39a640e6/,
    );
    // The same payload on an empty host is accepted.
    expect(verifyAgainstLoaded([{ file: 'b0.livepatch', bytes: b0 }], fakeTarget(), []).ok).toBe(true);
    const s = verifyAgainstLoaded([{ file: 'b.livepatch', bytes: b }], fakeTarget(), [{ entry: entry('a', 'APPLIED') }]);
    expect(s.ok).toBe(true);
    expect(s.payloads[0]!.diagnostics.map((d) => d.code)).toContain('NOTE_LOADED');
    expect(s.payloads[0]!.diagnostics.find((d) => d.code === 'NOTE_LOADED')!.message).toMatch(/no payload file for a/);
  });

  it('with files: the loaded payloads are simulated first, so the chain, and the functions they patch, are checked', () => {
    const loaded: LoadedInput[] = [{ entry: entry('a', 'APPLIED'), file: 'a.livepatch', bytes: a }];
    const ok = verifyAgainstLoaded([{ file: 'b.livepatch', bytes: b }], fakeTarget(), loaded);
    expect(ok.ok).toBe(true);
    expect(ok.payloads).toHaveLength(1);
    expect(ok.payloads[0]!.diagnostics.map((d) => [d.code, d.message])).toEqual([
      ['NOTE_PATCHED_BEFORE', 'xen_extra_version is also patched by a; this payload supersedes it while both are applied'],
    ]);
    expect(ok.loaded).toEqual([{ name: 'a', state: 'APPLIED', file: 'a.livepatch', used: 'simulated', buildId: A_ID, ok: true }]);
    const bad = verifyAgainstLoaded([{ file: 'b0.livepatch', bytes: b0 }], fakeTarget(), loaded);
    expect(bad.payloads[0]!.diagnostics[0]).toMatchObject({
      code: 'DEPENDS_MISMATCH',
      message: 'livepatch: b0: check against a build-id failed',
    });
    // Applied payloads listed out of order are stacked by their depends chain.
    const c = payload('c', C_ID, B_ID);
    const two: LoadedInput[] = [{ entry: entry('b', 'APPLIED'), file: 'b.livepatch', bytes: b }, ...loaded];
    expect(verifyAgainstLoaded([{ file: 'c.livepatch', bytes: c }], fakeTarget(), two).ok).toBe(true);
  });
});

describe('verifyAgainstLoaded: CHECKED payloads', () => {
  it('a CHECKED payload with its file is uploaded, not applied: the next one still stacks on the hypervisor', () => {
    const a = payload('a', A_ID, FIXTURE_XEN_ID);
    const b0 = payload('b0', B_ID, FIXTURE_XEN_ID);
    const loaded: LoadedInput[] = [{ entry: { name: 'a', state: 'CHECKED', rc: null, metadata: null }, file: 'a.livepatch', bytes: a }];
    const r = verifyAgainstLoaded([{ file: 'b0.livepatch', bytes: b0 }], fakeTarget(), loaded);
    expect(r.ok).toBe(true);
    expect(r.top).toBe(null);
    expect(r.loaded).toEqual([{ name: 'a', state: 'CHECKED', file: 'a.livepatch', used: 'simulated', buildId: A_ID, ok: true }]);
    // Its name is taken, as on the host (the simulation's own upload check).
    const again = verifyAgainstLoaded([{ file: 'a.livepatch', bytes: a }], fakeTarget(), loaded);
    expect(again.payloads[0]).toMatchObject({ ok: false, errno: 'EEXIST', refusedAt: 'upload' });
    // Applied on top of it, b would be refused: a is not applied.
    const b = payload('b', B_ID, A_ID);
    expect(verifyAgainstLoaded([{ file: 'b.livepatch', bytes: b }], fakeTarget(), loaded).payloads[0]!.diagnostics[0]).toMatchObject({
      code: 'DEPENDS_MISMATCH',
      message: 'livepatch: b: check against hypervisor build-id failed',
    });
  });
});

describe('xsplice verify --loaded', () => {
  let dir: string;
  const p = (f: string): string => join(dir, f);
  beforeAll(() => {
    dir = tempDirSync('loaded');
    mkdirSync(p('lp'));
    writeFileSync(p('lp/a.livepatch'), payload('a', A_ID, FIXTURE_XEN_ID));
    writeFileSync(p('b.livepatch'), payload('b', B_ID, A_ID));
    writeFileSync(p('b0.livepatch'), payload('b0', B_ID, FIXTURE_XEN_ID));
    writeFileSync(p('list.txt'), HEAD + row('a', 'APPLIED') + '\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const XEN = ['--xen', FIXTURE_XEN_ID, '--xen-version', '4.17.7'];

  it('stacks on what is loaded: accepted with the files, refused with a stderr line naming both ids', async () => {
    const ok = await cli('verify', p('b.livepatch'), ...XEN, '--loaded', p('list.txt'), '--loaded-dir', p('lp'), '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, loaded: [{ name: 'a', used: 'simulated', file: p('lp/a.livepatch') }] });
    const bad = await cli('verify', p('b0.livepatch'), ...XEN, '--loaded', p('list.txt'), '--loaded-dir', p('lp'));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain(
      `xsplice: ${p('b0.livepatch')}: refused at apply (EINVAL): DEPENDS_MISMATCH: livepatch: b0: check against a build-id failed; expected depends ${A_ID} (a), found ${FIXTURE_XEN_ID}`,
    );
    // Without --loaded the same payload is accepted (nothing is applied).
    expect((await cli('verify', p('b0.livepatch'), ...XEN)).code).toBe(0);
  });

  it('usage: --loaded-dir needs --loaded; a malformed list is exit 2 naming it', async () => {
    expect((await cli('verify', p('b.livepatch'), ...XEN, '--loaded-dir', p('lp'))).code).toBe(2);
    writeFileSync(p('bad.txt'), 'garbage\n');
    const r = await cli('verify', p('b.livepatch'), ...XEN, '--loaded', p('bad.txt'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`^xsplice: ${p('bad.txt')}: line 1 is not a row`));
  });
});
