/** Text form of a diff result (`xsplice diff`, `--explain`); the JSON form is the result itself (§8). */
import type { DiffResult } from './types.js';

export function formatDiff(d: DiffResult, explain: boolean): string {
  const L: string[] = [];
  for (const f of d.functions) {
    if (!explain && f.status === 'same') continue;
    L.push(
      `${f.included ? '+' : ' '} ${f.status.padEnd(12)} ${f.xenName ?? f.name}  (${f.object})${explain ? `\n      ${f.reason} [${f.rule}]` : ''}`,
    );
  }
  for (const x of d.data)
    L.push(`  data ${x.status.padEnd(7)} ${x.xenName ?? x.name} in ${x.section}${explain ? `\n      ${x.reason}` : ''}`);
  if (explain) {
    for (const o of d.explain.objects) {
      for (const p of o.pulledIn) L.push(`  pulled in ${p.name} via ${p.via.join(' → ')}  (${o.object})`);
      for (const e of o.external)
        L.push(`  external ${e.name}${e.address ? ' = ' + e.address : ''}${e.verified === true ? ' (bytes match ORIG)' : ''}`);
      for (const c of o.copied) L.push(`  copied ${c.kind} ${c.name} (${c.size} bytes)`);
    }
    if (d.explain.identical.length) L.push(`  ${d.explain.identical.length} identical object(s) skipped without parsing`);
    if (d.explain.equivalent.length) L.push(`  equivalent (bytes differ, no symbol does): ${d.explain.equivalent.join(', ')}`);
  }
  for (const p of d.patches) L.push(`  patch ${p.old} -> ${p.new}`);
  for (const h of d.hooks) L.push(`  hook ${h.kind}: ${h.symbol}`);
  for (const e of d.errors)
    L.push(`  refused ${e.code}${e.symbol ? ' ' + e.symbol : ''}: ${e.message}${explain ? `\n      ${e.suggestion}` : ''}`);
  return L.length ? L.join('\n') + '\n' : '';
}
