#!/usr/bin/env node
// `npm run example` (after tsc): builds the bundled example payload end to end.
//   1. Debian's Xen 4.17 hypervisor and its symbols only (scripts/setup-deps.sh xen-min: the -dbg
//      package is 1.1 MB) and gcc (setup-deps.sh tools if missing)
//   2. gcc $(examples/xen-cflags) -c examples/xen-extra-version/xen_extra_version.c
//   3. the library's `xsplice build` against xen-syms-4.17-amd64: --patch xen_extra_version
//   4. out/xen-extra-version.livepatch, and a short summary
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rel = (p) => relative(process.cwd(), p) || '.';
const xenSyms = join(root, '.cache/debian/root/usr/lib/debug/boot/xen-syms-4.17-amd64');
const src = join(root, 'examples/xen-extra-version/xen_extra_version.c');
const outDir = join(root, 'out');
const obj = join(outDir, 'xen_extra_version.o');
const payload = join(outDir, 'xen-extra-version.livepatch');

function step(msg) {
  process.stderr.write(`example: ${msg}\n`);
}

try {
  if (spawnSync('sh', ['-c', 'command -v gcc'], { stdio: 'ignore' }).status !== 0) {
    step('gcc missing: installing the toolchain (scripts/setup-deps.sh tools)');
    execFileSync('bash', [join(root, 'scripts/setup-deps.sh'), 'tools'], { stdio: 'inherit' });
  }
  step("Debian's Xen 4.17 hypervisor and its symbols (scripts/setup-deps.sh xen-min; cached in .cache/debian)");
  execFileSync('bash', [join(root, 'scripts/setup-deps.sh'), 'xen-min'], { stdio: 'inherit' });

  mkdirSync(outDir, { recursive: true });
  const cflags = readFileSync(join(root, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
  step(`gcc <examples/xen-cflags> -c ${rel(src)} -o ${rel(obj)}`);
  execFileSync('gcc', [...cflags, '-c', src, '-o', obj], { stdio: 'inherit' });

  const { buildFiles } = await import('../dist/src/payload/build-files.js');
  const { VERSION } = await import('../dist/cli/xsplice.js');
  step(`xsplice build ${rel(obj)} -o ${rel(payload)} --xen ${rel(xenSyms)} --patch xen_extra_version`);
  const r = await buildFiles({ objects: [obj], out: payload, xen: xenSyms, patch: ['xen_extra_version'], toolVersion: VERSION });
  for (const w of r.warnings) step(`warning: ${w}`);
  const lines = [
    `payload      ${rel(payload)} (${r.bytes.length} bytes)`,
    `target       Xen ${r.target.version ?? '?'} (build-id ${r.target.buildId})`,
    `abi          ${r.abi.id} (payload version ${r.abi.version})`,
    `build-id     ${r.buildId}`,
    `depends      ${r.depends}${r.depends === r.target.buildId ? ' (the hypervisor)' : ''}`,
    `xen_depends  ${r.xenDepends ?? '-'}`,
    ...r.funcs.map(
      (f) =>
        `func         ${f.name} -> ${f.newSymbol} (old_addr 0x${f.oldAddr.toString(16)}, old_size ${f.oldSize}, new_size ${f.newSize})`,
    ),
    '',
    `next: bin/xsplice try ${rel(payload)} --expect-extra +xsplice-demo`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
} catch (e) {
  process.stderr.write(`example: failed: ${e && e.message ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
