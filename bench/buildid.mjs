#!/usr/bin/env node
/**
 * Benchmark: `bin/xsplice buildid --verify` on a 64 MiB ELF against `sha1sum` on the same file.
 * Whole processes, paired and alternating (A B A B …, the order flipped every pair), file in page
 * cache; prints the medians and the ratio. Target: xsplice / sha1sum <= 1.5.
 *
 *   node bench/buildid.mjs [--pairs N] [--size MiB] [--keep]
 *
 * The input is made here with the real toolchain: 64 MiB of random bytes (.incbin in .data),
 * assembled with `as` and linked with `ld --build-id=sha1`. Needs `npm run build` first (dist/).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, statSync, existsSync, openSync, readSync, closeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const pairs = opt('--pairs', 15);
const sizeMiB = opt('--size', 64);
const keep = args.includes('--keep');
const xsplice = join(root, 'bin', 'xsplice');
if (!existsSync(join(root, 'dist', 'cli', 'xsplice.js'))) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'xsplice-bench-'));
try {
  // 1. A 64 MiB ELF made by GNU ld.
  const blob = join(dir, 'blob.bin');
  const payload = sizeMiB * 1024 * 1024 - 64 * 1024; // leave room for headers: the file ends up ~sizeMiB
  const fd = openSync(blob, 'w');
  for (let left = payload; left > 0; left -= 1 << 20) writeFileSync(fd, randomBytes(Math.min(left, 1 << 20)));
  closeSync(fd);
  writeFileSync(join(dir, 'big.s'), `.text\n.globl _start\n_start:\n ret\n.data\n.incbin "${blob}"\n`);
  execFileSync('as', ['big.s', '-o', 'big.o'], { cwd: dir });
  execFileSync('ld', ['--build-id=sha1', 'big.o', '-o', 'big'], { cwd: dir });
  const file = join(dir, 'big');
  const size = statSync(file).size;
  // Drop the intermediates and flush dirty pages: writeback during the timed runs would skew them.
  rmSync(blob);
  rmSync(join(dir, 'big.o'));
  execFileSync('sync');

  // Warm the page cache and check both commands work.
  const buf = new Uint8Array(1 << 20);
  const rfd = openSync(file, 'r');
  while (readSync(rfd, buf) > 0);
  closeSync(rfd);
  const check = spawnSync(xsplice, ['buildid', '--verify', '--json', file], { encoding: 'utf8' });
  if (check.status !== 0) {
    console.error(`bench: xsplice buildid --verify failed (${check.status}): ${check.stderr}`);
    process.exit(1);
  }
  const res = JSON.parse(check.stdout)[0];
  const readelf = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', file], { encoding: 'utf8' }))?.[1];
  if (res.buildId !== readelf || res.verified !== true) {
    console.error(`bench: unexpected result ${JSON.stringify(res)} (readelf: ${readelf})`);
    process.exit(1);
  }

  const time = (cmd, argv) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    const t = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    return t;
  };
  const load0 = loadavg()[0];
  const A = { name: 'sha1sum', run: () => time('sha1sum', [file]) };
  const B = { name: 'xsplice buildid --verify', run: () => time(xsplice, ['buildid', '--verify', file]) };
  // Two warm-up rounds, not counted.
  A.run();
  B.run();
  A.run();
  B.run();
  const ta = [],
    tb = [],
    ratios = [];
  for (let i = 0; i < pairs; i++) {
    let a, b;
    if (i % 2 === 0) {
      a = A.run();
      b = B.run();
    } else {
      b = B.run();
      a = A.run();
    }
    ta.push(a);
    tb.push(b);
    ratios.push(b / a);
  }
  const median = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const ma = median(ta),
    mb = median(tb),
    mr = median(ratios);
  const fmt = (x) => x.toFixed(1).padStart(7);
  console.log(`file: ${size} bytes (${(size / 1048576).toFixed(1)} MiB), GNU ld --build-id=sha1, id ${res.buildId} (${res.algorithm})`);
  console.log(
    `pairs: ${pairs}, alternating order; wall ms median [min-max]; ${cpus().length} CPUs, load average ${load0.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after (other work on the machine skews node's start-up more than sha1sum's)`,
  );
  console.log(`  ${A.name.padEnd(26)} ${fmt(ma)} [${Math.min(...ta).toFixed(1)}-${Math.max(...ta).toFixed(1)}]`);
  console.log(`  ${B.name.padEnd(26)} ${fmt(mb)} [${Math.min(...tb).toFixed(1)}-${Math.max(...tb).toFixed(1)}]`);
  console.log(
    `ratio xsplice/sha1sum: median of paired ratios ${mr.toFixed(2)}, ratio of medians ${(mb / ma).toFixed(2)} (target <= 1.5): ${mr <= 1.5 ? 'PASS' : 'FAIL'}`,
  );
  process.exitCode = mr <= 1.5 ? 0 : 1;
} finally {
  if (keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
