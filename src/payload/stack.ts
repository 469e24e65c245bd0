/**
 * The apply side of `xsplice verify` (payload-format.md §2.13): the stacking chain (each payload's
 * `.livepatch.depends` must equal the build-id of the payload applied before it, or the
 * hypervisor's for the first), expectations, REPLACE, re-apply safety, and functions patched by
 * more than one payload. Called for each payload after a successful simulated upload, in load
 * order, the way `xen-livepatch load` uploads then applies.
 */
import { equalBytes, toHex } from '../buildid/note.js';
import type { PayloadAbi } from './abi-types.js';
import type { LoaderRules } from './releases.js';
import { makeDiagnostic } from './diagnostics.js';
import { bytesAtLoaded, type Collector, type LoadedPayload, type VerifiedFunc, type VerifyTarget } from './verify/types.js';

/** A payload the simulated hypervisor has applied (top of stack = last). */
export type AppliedPayload = LoadedPayload;

export interface ApplyContext {
  rules: LoaderRules;
  abi: PayloadAbi;
  target: VerifyTarget;
  loaded: LoadedPayload[];
  applied: AppliedPayload[];
  col: Collector;
  xenBuildId: Uint8Array | null;
  replace: boolean;
}

/** Runs the APPLY (or REPLACE) checks; on success pushes the payload onto the applied stack. */
export function applyChecks(lp: LoadedPayload, funcs: VerifiedFunc[], c: ApplyContext): void {
  const { col, rules: r } = c;
  const before = col.errorsAt('apply').length;
  const top = c.applied[c.applied.length - 1];

  // build_id_dep: REPLACE and an empty stack compare against the hypervisor; APPLY against the top.
  const against = c.replace || !top ? { name: 'hypervisor', id: c.xenBuildId } : { name: top.name, id: top.buildId };
  if (!against.id) {
    col.list.push(makeDiagnostic('XEN_NO_BUILD_ID', r, col.name, {}, {}, { stage: 'apply' }));
  } else if (!equalBytes(lp.depends, against.id)) {
    col.add('DEPENDS_MISMATCH', { against: against.name }, { section: c.abi.sections.depends });
    if (!c.replace && top && c.xenBuildId && equalBytes(lp.depends, c.xenBuildId)) {
      col.add('NOTE_REPLACE', {
        why: `it depends on the hypervisor itself, not on ${top.name}: \`xen-livepatch replace ${lp.name}\` would accept it after reverting ${c.applied
          .map((p) => p.name)
          .reverse()
          .join(', ')}`,
      });
    } else {
      const owner = c.loaded.find((p) => p !== lp && equalBytes(p.buildId, lp.depends));
      if (owner && owner !== top) {
        col.add('NOTE_REPLACE', {
          why: `it depends on ${owner.name}, which is not the last applied payload (${top ? top.name : 'none'}): load order is wrong`,
        });
      }
    }
  }

  // REPLACE refuses vetoing (pre/post) hooks in this payload or any applied one (4.14+).
  if (c.replace && r.features.v2) {
    if (lp.vetoingHooks || c.applied.some((p) => p.vetoingHooks)) col.add('REPLACE_VETO');
  }

  // Expectations (4.14+): at APPLY before scheduling; for REPLACE after reverting everything.
  if (r.features.v2 && col.errorsAt('apply').length === before) {
    for (const f of funcs) {
      const e = f.expect;
      if (!e || !e.enabled) continue;
      const label = f.name ?? `entry ${f.index}`;
      const ctx = { section: c.abi.sections.funcs, offset: f.index * c.abi.funcEntry.size, symbol: label };
      if (f.oldAddr === 0n) {
        col.add('EXPECT_NO_OLD_ADDR', { symbol: label }, ctx);
        break;
      }
      if (e.rsv) {
        col.add('EXPECT_RESERVED', { symbol: label }, ctx);
        break;
      }
      if (f.oldSize < e.len) {
        col.add('EXPECT_RANGE', { symbol: label }, ctx);
        break;
      }
      const actual = bytesAtLoaded(c.loaded, c.target, f.oldAddr, e.len);
      if (!actual) {
        col.add('NOTE_UNCHECKED_TARGET', { what: `expectation of ${label} (no bytes at 0x${f.oldAddr.toString(16)})` }, ctx);
        continue;
      }
      const want = e.data.subarray(0, e.len);
      if (!equalBytes(actual, want)) {
        // Xen prints the function name there, then the payload line [LP (livepatch_verify_expectation_fn)].
        const message =
          `${r.prefix}${label}: expectation failed: expected:${toHex(want)}, actual:${toHex(actual)}\n` +
          `${r.prefix}${col.name}: expectations of ${label} failed (rc=-22), aborting!`;
        const d = makeDiagnostic('EXPECT_MISMATCH', r, col.name, { expected: toHex(want), found: toHex(actual) }, ctx, { message });
        col.list.push(d);
        break;
      }
    }
  }

  if (col.errorsAt('apply').length !== before) return;

  // Applied. Notes about the stack.
  if (c.replace && c.applied.length) {
    col.add('NOTE_REPLACE', {
      why: `REPLACE reverts ${c.applied
        .map((p) => p.name)
        .reverse()
        .join(', ')} (top down) before applying ${lp.name}`,
    });
  }
  const stack = c.replace ? [] : c.applied;
  for (const f of funcs) {
    if (!f.oldAddr) continue;
    const other = [...stack].reverse().find((p) => p.funcs.some((g) => g.oldAddr === f.oldAddr));
    if (other)
      col.add('NOTE_PATCHED_BEFORE', { symbol: f.name ?? `0x${f.oldAddr.toString(16)}`, other: other.name }, { symbol: f.name ?? '' });
  }
  if (r.features.nopPatching) {
    const rw = lp.elf.rwSections;
    const safe = r.features.roOnlyReapply
      ? rw.length === 0 || (rw.length === 1 && rw[0]!.name === c.abi.sections.funcs)
      : rw.length === 1 && rw[0]!.name === c.abi.sections.funcs;
    if (!safe) {
      const bad = rw.find((s) => s.name !== c.abi.sections.funcs) ?? rw[0];
      col.add('NOTE_NO_REAPPLY', { section: bad ? bad.name : '(none)' }, bad ? { section: bad.name } : {});
    }
  }
  if (c.replace) c.applied.length = 0;
  c.applied.push(lp);
}
