/**
 * The stacking chain and REPLACE (payload-format.md §2.13), with fixture payloads: each
 * `.livepatch.depends` must equal the build-id of the payload applied before it, or the
 * hypervisor's for the first; REPLACE compares with the hypervisor's and reverts the stack.
 */
import { describe, expect, it } from 'vitest';
import { verifyPayloads, type VerifyOptions } from '../../src/payload/verify.js';
import { FIXTURE_OWN_ID, FIXTURE_XEN_ID, PayloadFixture, SHF, SHT, R, fakeTarget, taggedPayload } from '../helpers/payload-fixture.js';

const A_ID = FIXTURE_OWN_ID;
const B_ID = 'bb'.repeat(20);
const C_ID = 'cc'.repeat(20);

const payload = taggedPayload;

function run(list: [string, Uint8Array][], opts: VerifyOptions = {}) {
  return verifyPayloads(
    list.map(([file, bytes]) => ({ file, bytes })),
    fakeTarget(),
    opts,
  );
}

describe('stacking chain', () => {
  const a = payload('a', A_ID, FIXTURE_XEN_ID);
  const b = payload('b', B_ID, A_ID);
  const c = payload('c', C_ID, B_ID);

  it('a chain of three in order is accepted; each later one notes the function it supersedes', () => {
    const r = run([
      ['a.lp', a],
      ['b.lp', b],
      ['c.lp', c],
    ]);
    expect(r.ok).toBe(true);
    expect(r.payloads.map((p) => p.depends)).toEqual([FIXTURE_XEN_ID, A_ID, B_ID]);
    expect(r.payloads[2]!.diagnostics.map((d) => [d.code, d.message])).toEqual([
      ['NOTE_PATCHED_BEFORE', 'xen_extra_version is also patched by b; this payload supersedes it while both are applied'],
    ]);
  });

  it('skipping a link: c after a is refused at apply against a', () => {
    const r = run([
      ['a.lp', a],
      ['c.lp', c],
    ]);
    const p = r.payloads[1]!;
    expect(p).toMatchObject({ ok: false, errno: 'EINVAL', refusedAt: 'apply' });
    expect(p.diagnostics[0]).toMatchObject({
      code: 'DEPENDS_MISMATCH',
      first: true,
      message: 'livepatch: c: check against a build-id failed',
    });
  });

  it('a second payload built against the hypervisor: APPLY refuses, the note says REPLACE would take it', () => {
    const a2 = payload('a2', B_ID, FIXTURE_XEN_ID);
    const r = run([
      ['a.lp', a],
      ['a2.lp', a2],
    ]);
    const p = r.payloads[1]!;
    expect(p.diagnostics.map((d) => d.code)).toEqual(['DEPENDS_MISMATCH', 'NOTE_REPLACE']);
    expect(p.diagnostics[0]!.message).toBe('livepatch: a2: check against a build-id failed');
    expect(p.diagnostics[1]!.message).toMatch(/`xen-livepatch replace a2` would accept it after reverting a/);
  });

  it('--replace: depends must be the hypervisor; the stack is reverted first', () => {
    const a2 = payload('a2', B_ID, FIXTURE_XEN_ID);
    const r = run(
      [
        ['a.lp', a],
        ['a2.lp', a2],
      ],
      { replace: true },
    );
    expect(r.ok).toBe(true);
    expect(r.payloads[1]!.diagnostics.map((d) => [d.code, d.message])).toEqual([
      ['NOTE_REPLACE', 'REPLACE reverts a (top down) before applying a2'],
    ]);
    const rb = run(
      [
        ['a.lp', a],
        ['b.lp', b],
      ],
      { replace: true },
    );
    expect(rb.payloads[1]!.diagnostics[0]).toMatchObject({
      code: 'DEPENDS_MISMATCH',
      message: 'livepatch: b: check against hypervisor build-id failed',
    });
  });

  it('a payload refused at upload is not loaded: the next one stacks on what was applied', () => {
    const bad = new PayloadFixture({ ownId: 'dd'.repeat(20) });
    bad.funcs[0]!.version = 1;
    const r = run([
      ['a.lp', a],
      ['bad.lp', bad.build().bytes],
      ['b.lp', b],
    ]);
    expect(r.payloads.map((p) => [p.ok, p.errno])).toEqual([
      [true, null],
      [false, 'EOPNOTSUPP'],
      [true, null],
    ]);
  });

  it('a dependency on a loaded payload that is not on top: the note names the load order', () => {
    const b2 = payload('b2', C_ID, A_ID);
    const r = run([
      ['a.lp', a],
      ['b.lp', b],
      ['b2.lp', b2],
    ]);
    expect(r.payloads[2]!.diagnostics.map((d) => d.code)).toEqual(['DEPENDS_MISMATCH', 'NOTE_REPLACE']);
    expect(r.payloads[2]!.diagnostics[1]!.message).toMatch(/depends on a, which is not the last applied payload \(b\)/);
  });

  it('REPLACE_VETO also when an applied payload has a vetoing hook', () => {
    const fx = new PayloadFixture();
    fx.addSection({ name: '.livepatch.hooks.postapply', type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 8n, data: new Uint8Array(8) });
    fx.addReloc('.livepatch.hooks.postapply', { offset: 0n, type: R.R64, symbol: 'xsplice_fn', addend: 0n });
    const a2 = payload('a2', B_ID, FIXTURE_XEN_ID);
    const r = run(
      [
        ['h.lp', fx.build().bytes],
        ['a2.lp', a2],
      ],
      { replace: true },
    );
    expect(r.payloads[0]!.errno).toBe('EOPNOTSUPP');
    // The hooked payload was refused by REPLACE, so nothing is applied below a2.
    expect(r.payloads[1]!.ok).toBe(true);
    const plain = run([
      ['h.lp', fx.build().bytes],
      ['a2.lp', a2],
    ]);
    expect(plain.payloads[0]!.ok).toBe(true);
    const r2 = verifyPayloads([{ file: 'h.lp', bytes: fx.build().bytes }], fakeTarget());
    expect(r2.ok).toBe(true);
  });
});
