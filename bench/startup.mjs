#!/usr/bin/env node
// Start-up cost of the CLI on a real command: `xsplice inspect` of the example payload (the
// payload `npm run example` writes; made here the same way when it is missing), run as a user's
// shell runs it (bin/xsplice found through its #!/usr/bin/env node line), against two baselines
// run the same way:
//   - `node -e 0`: Node starting and doing nothing, the floor of any command written for Node;
//   - `readelf -S -n PAYLOAD`: the C tool a user would otherwise run to look at a payload.
// Pairs run alternately (drift in machine load hits every side alike), n >= 20, medians compared.
// Every side runs with this process's environment as it is: nothing is unset for either. When
// that environment sets NODE_EXTRA_CA_CERTS (Node 20 parses the file at start-up, before any
// JavaScript), its cost is in both Node figures; it is shown on its own line for reference.
//   node bench/startup.mjs [pairs]        (default 30; prints one JSON line last)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const n = Math.max(20, Number(process.argv[2] ?? 30));
const bin = join(root, 'bin', 'xsplice');
const payload = join(root, 'out', 'xen-extra-version.livepatch');

if (!existsSync(payload)) {
  // What `npm run example` does, without its set-up steps: the Debian hypervisor must be there.
  const xenSyms = join(root, '.cache/debian/root/usr/lib/debug/boot/xen-syms-4.17-amd64');
  if (!existsSync(xenSyms)) execFileSync('bash', [join(root, 'scripts/setup-deps.sh'), 'xen-min'], { stdio: 'inherit' });
  mkdirSync(join(root, 'out'), { recursive: true });
  const cflags = readFileSync(join(root, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
  const obj = join(root, 'out', 'xen_extra_version.o');
  execFileSync('gcc', [...cflags, '-c', join(root, 'examples/xen-extra-version/xen_extra_version.c'), '-o', obj]);
  execFileSync(bin, ['build', obj, '-o', payload, '--xen', xenSyms, '--patch', 'xen_extra_version'], { stdio: 'ignore' });
}

const sides = {
  xsplice: [bin, ['inspect', payload]],
  node: ['node', ['-e', '0']],
  readelf: ['readelf', ['-S', '-n', payload]],
};

function time([cmd, argv]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// One warm-up of each (file cache), not counted.
for (const s of Object.values(sides)) time(s);
const names = Object.keys(sides);
const t = Object.fromEntries(names.map((k) => [k, []]));
for (let i = 0; i < n; i++) {
  // Rotate which one goes first.
  for (let j = 0; j < names.length; j++) {
    const k = names[(i + j) % names.length];
    t[k].push(time(sides[k]));
  }
}
let withoutCa = null;
if (process.env.NODE_EXTRA_CA_CERTS !== undefined) {
  const env = { ...process.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const xs = [];
  for (let i = 0; i < 10; i++) {
    const t0 = process.hrtime.bigint();
    spawnSync('node', ['-e', '0'], { env });
    xs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  withoutCa = median(xs);
}
const m = Object.fromEntries(names.map((k) => [k, median(t[k])]));
const rNode = m.xsplice / m.node;
const rReadelf = m.xsplice / m.readelf;
console.log(`xsplice inspect (example payload): median ${m.xsplice.toFixed(1)} ms over ${n} runs`);
console.log(`node -e 0:                         median ${m.node.toFixed(1)} ms`);
console.log(`readelf -S -n (same payload):      median ${m.readelf.toFixed(1)} ms`);
if (withoutCa !== null)
  console.log(`(this environment sets NODE_EXTRA_CA_CERTS; node -e 0 without it: ${withoutCa.toFixed(1)} ms; not used above)`);
console.log(
  `ratio vs node -e 0: ${rNode.toFixed(2)}x; vs readelf: ${rReadelf.toFixed(2)}x; xsplice's own start-up and work: ${(m.xsplice - m.node).toFixed(1)} ms above Node's`,
);
console.log(
  JSON.stringify({
    bench: 'startup',
    command: 'inspect',
    pairs: n,
    node: process.version,
    xspliceMs: +m.xsplice.toFixed(2),
    nodeMs: +m.node.toFixed(2),
    readelfMs: +m.readelf.toFixed(2),
    ratioVsNode: +rNode.toFixed(3),
    ratioVsReadelf: +rReadelf.toFixed(3),
    nodeExtraCaCertsSet: withoutCa !== null,
    nodeWithoutExtraCaCertsMs: withoutCa === null ? null : +withoutCa.toFixed(2),
  }),
);
