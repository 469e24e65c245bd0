#!/usr/bin/env node
// The ELF layer against binutils, measured in one run (needs `npm run build` for dist/):
//   read + the `xsplice elf` view  vs  readelf -W -S -s -r -n     (Debian xen-syms, and 70k sections)
//   read → ObjectBuilder → write   vs  objcopy IN OUT              (the same rewrite, 70k sections)
// Library timings are in-process medians (n runs after one warm-up); tool timings are process wall
// times (medians), so the ratio includes readelf's/objcopy's own start-up. Prints one JSON line last.
//   node bench/elf.mjs [runs]     (default 7)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const runs = Math.max(3, Number(process.argv[2] ?? 7));
const { readElf } = await import(join(root, 'dist/src/elf/reader.js'));
const { elfView } = await import(join(root, 'dist/src/elf/dump.js'));
const { ObjectBuilder } = await import(join(root, 'dist/src/elf/builder.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function timeFn(fn) {
  fn();
  const t = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(t);
}
function timeCmd(cmd, args) {
  spawnSync(cmd, args, { stdio: 'ignore' });
  const t = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: 'ignore', maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}`);
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(t);
}

const dir = mkdtempSync(join(tmpdir(), 'xsplice-bench-elf-'));
const parts = ['\t.text\n\t.globl start\nstart:\tret\n'];
for (let i = 0; i < 70000; i++) parts.push(`\t.section .t.${i},"ax",@progbits\nl${i}:\t.byte ${i & 255}\n`);
writeFileSync(join(dir, 'big.s'), parts.join(''));
execFileSync('as', [join(dir, 'big.s'), '-o', join(dir, 'big.o')]);

const inputs = [['sections-70k', join(dir, 'big.o')]];
const xen = join(root, '.cache/debian/root/usr/lib/debug/boot/xen-syms-4.17-amd64');
if (existsSync(xen)) inputs.unshift(['xen-syms', xen]);
const result = { bench: 'elf', runs };
for (const [name, file] of inputs) {
  const bytes = new Uint8Array(readFileSync(file));
  const lib = timeFn(() => elfView(readElf(bytes)));
  const tool = timeCmd('readelf', ['-W', '-S', '-s', '-r', '-n', file]);
  console.log(`${name}: read + view ${lib.toFixed(1)} ms, readelf -S -s -r -n ${tool.toFixed(1)} ms, ratio ${(lib / tool).toFixed(2)}x`);
  result[`${name}.view.ratio`] = +(lib / tool).toFixed(3);
}
const big = new Uint8Array(readFileSync(join(dir, 'big.o')));
const rw = timeFn(() => ObjectBuilder.fromElf(readElf(big)).builder.write());
const oc = timeCmd('objcopy', [join(dir, 'big.o'), join(dir, 'big.objcopy.o')]);
console.log(`sections-70k: read → model → write ${rw.toFixed(1)} ms, objcopy ${oc.toFixed(1)} ms, ratio ${(rw / oc).toFixed(2)}x`);
result['sections-70k.rewrite.ratio'] = +(rw / oc).toFixed(3);
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify(result));
