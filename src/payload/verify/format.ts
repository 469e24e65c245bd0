/** Verify's text output: one block per payload, its diagnostics, and a summary line. */
import { ruleRef } from '../rules.js';
import type { VerifyResult } from './types.js';

/** Human-readable rendering of a verify result. */
export function formatVerify(r: VerifyResult): string {
  const L: string[] = [];
  L.push(`target: Xen ${r.target.version} ${r.target.arch}, build-id ${r.target.buildId ?? '(none)'}, payload ABI ${r.target.abi}`);
  for (const p of r.payloads) {
    const decides = p.diagnostics
      .filter((d) => d.code === 'NOTE_HOOK_DECIDES')
      .map((d) => d.message.replace(/^its (\S+) hook (\S+).*$/, '$1 hook $2'));
    const verdict = p.ok
      ? decides.length
        ? `uploads; whether it applies is decided at run time by its ${decides.join(', ')}`
        : 'ok'
      : p.crashAt
        ? `CRASHES the hypervisor at ${p.crashAt}`
        : p.refusedAt
          ? `REFUSED at ${p.refusedAt} (${p.errno})`
          : 'accepted by the hypervisor, but UNSAFE';
    L.push(`${p.file} (name ${p.name}${p.buildId ? `, build-id ${p.buildId}` : ''}): ${verdict}`);
    for (const d of p.diagnostics) {
      const where = [d.section, d.symbol, d.offset !== undefined ? `+0x${d.offset.toString(16)}` : undefined]
        .filter((x) => x !== undefined && x !== '')
        .join(' ');
      const head = `  ${d.severity === 'error' ? 'error' : 'warning'} ${d.code}${d.errno ? ` ${d.errno}` : ''}${d.first ? ' (what the hypervisor returns)' : ''}${where ? ` [${where}]` : ''} (${ruleRef(d.code)})`;
      L.push(head);
      for (const line of d.message.split('\n')) L.push(`      ${line}`);
    }
  }
  const bad = r.payloads.filter((p) => !p.ok).length;
  const decided = r.payloads.filter((p) => p.ok && p.diagnostics.some((d) => d.code === 'NOTE_HOOK_DECIDES')).length;
  L.push(
    bad
      ? `${bad} of ${r.payloads.length} payload(s) refused`
      : `all ${r.payloads.length} payload(s) accepted${decided ? ` (${decided} subject to a hook's decision at run time)` : ''}`,
  );
  return L.join('\n') + '\n';
}
