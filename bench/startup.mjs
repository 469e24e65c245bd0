#!/usr/bin/env node
// Start-up cost of the CLI: `bin/xsplice --version`, run as a program (as a user runs it: the shell
// line, then Node on dist/xsplice.cjs), against a bare `node -e 0`, measured as pairs run
// alternately (so drift in machine load hits both sides alike), n >= 20 pairs, medians compared.
// The bound: the ratio stays within 1.5x. Both sides run without NODE_EXTRA_CA_CERTS, which
// bin/xsplice drops for its own Node (Node 20 parses that file at start-up); what `node -e 0`
// costs with it, when this environment sets it, is printed too.
//   node bench/startup.mjs [pairs]        (default 30; prints one JSON line last)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const n = Math.max(20, Number(process.argv[2] ?? 30));
const node = process.execPath;
const bin = join(root, 'bin', 'xsplice');

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function time(args, e = env) {
  const t0 = process.hrtime.bigint();
  const [cmd, argv] = args[0] === bin ? [bin, args.slice(1)] : [node, args];
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: e });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout.toString() };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// One warm-up of each (file cache), not counted.
const v = time([bin, '--version']).out.trim();
time(['-e', '0']);
const cli = [];
const bare = [];
for (let i = 0; i < n; i++) {
  // Alternate which one goes first within the pair.
  if (i % 2 === 0) { cli.push(time([bin, '--version']).ms); bare.push(time(['-e', '0']).ms); }
  else { bare.push(time(['-e', '0']).ms); cli.push(time([bin, '--version']).ms); }
}
let withCa = null;
if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
  const xs = [];
  for (let i = 0; i < 10; i++) xs.push(time(['-e', '0'], process.env).ms);
  withCa = median(xs);
}
const mc = median(cli);
const mb = median(bare);
const ratio = mc / mb;
console.log(`xsplice --version (${v}): median ${mc.toFixed(1)} ms over ${n} runs`);
console.log(`node -e 0:               median ${mb.toFixed(1)} ms over ${n} runs`);
if (withCa !== null) console.log(`node -e 0 with this environment's NODE_EXTRA_CA_CERTS: median ${withCa.toFixed(1)} ms over 10 runs`);
console.log(`ratio ${ratio.toFixed(3)}x (bound 1.5x) ${ratio <= 1.5 ? 'ok' : 'TOO SLOW'}`);
console.log(JSON.stringify({ bench: 'startup', pairs: n, xspliceVersionMs: +mc.toFixed(2), nodeMs: +mb.toFixed(2), nodeWithExtraCaCertsMs: withCa === null ? null : +withCa.toFixed(2), ratio: +ratio.toFixed(3) }));
process.exitCode = ratio <= 1.5 ? 0 : 1;
