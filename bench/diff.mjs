#!/usr/bin/env node
/**
 * Benchmark: `diff` correlation + comparison at scale (spec §2.2: 60,000 sections in under 1 s,
 * near-linear from 6,000). LBT's quadratic walk took 0.45 s → 49 s for the same sizes.
 *
 *   node bench/diff.mjs [--runs N] [--tree XEN_DIR] [--keep]
 *
 * With --tree (a built Xen tree, e.g. the Debian base the `patch` command caches), it also times
 * the self-equivalence run over its objects: once as `diff DIR DIR` (identical files skipped
 * unparsed) and once forced through the whole pipeline (each object against a copy with one byte
 * appended, so nothing is skipped); both must report zero changed symbols.
 *
 * Objects are generated with xsplice's own ELF writer, shaped like gcc's -ffunction-sections
 * output: per function a `.text.fN` (lea of its string, a call to the next function through the
 * section symbol, jmp to the return thunk), its `.rela.text.fN` and a `.rodata.fN.str1.1`. ORIG and
 * PATCHED differ in one function. Needs `npm run build` (dist/).
 *
 * Only the diff is timed (objects are generated before the clock starts). Besides wall and CPU
 * time, the main thread's scheduler statistics (/proc/self/task/<tid>/schedstat: time running,
 * time runnable but waiting for a core) split the wall time, so that a slow run on a loaded
 * machine shows as waiting, not as diff's cost. Last, the 60,000-section pair is written to files
 * and `xsplice diff ORIG PATCHED --json` is timed as a user runs it (a fresh process: node start,
 * module loading, reading the files), next to `xsplice diff --help` (start-up alone).
 */
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { ObjectBuilder } = await import(join(root, 'dist/src/elf/builder.js'));
const { SHF, SHT, STB, STT, R_X86_64 } = await import(join(root, 'dist/src/elf/constants.js'));
const { diffObjects } = await import(join(root, 'dist/src/diff/index.js'));
const args = process.argv.slice(2);
const runs = Number(args[args.indexOf('--runs') + 1] || 3) || 3;

function object(nfunc, changed, every = 0) {
  const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: 62 });
  b.addSymbol({ name: 'gen.c', bind: STB.LOCAL, type: STT.FILE, section: 'ABS', value: 0n, size: 0n });
  const thunk = b.addSymbol({ name: '__x86_return_thunk', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'UND', value: 0n, size: 0n });
  const text = [];
  const strs = [];
  for (let i = 0; i < nfunc; i++) {
    const code = Uint8Array.from([0x48, 0x8d, 0x05, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0xe9, 0, 0, 0, 0]);
    if (i === changed || (every && i % every === 0)) code[1] = 0x8b; // a different instruction
    const t = b.addSection({ name: `.text.f${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, addralign: 16n, data: code });
    const s = b.addSection({
      name: `.rodata.f${i}.str1.1`,
      type: SHT.PROGBITS,
      flags: SHF.ALLOC | SHF.MERGE | SHF.STRINGS,
      addralign: 1n,
      entsize: 1n,
      data: new TextEncoder().encode(`string of f${i}\0`),
    });
    text.push(t);
    strs.push(s);
  }
  const tsym = text.map((t) => b.addSymbol({ name: '', bind: STB.LOCAL, type: STT.SECTION, section: t, value: 0n, size: 0n }));
  const ssym = strs.map((s) => b.addSymbol({ name: '', bind: STB.LOCAL, type: STT.SECTION, section: s, value: 0n, size: 0n }));
  for (let i = 0; i < nfunc; i++)
    b.addSymbol({ name: `f${i}`, bind: i % 2 ? STB.GLOBAL : STB.LOCAL, type: STT.FUNC, section: text[i], value: 0n, size: 17n });
  for (let i = 0; i < nfunc; i++) {
    b.setRelocations(text[i], {
      rela: true,
      entries: [
        { offset: 3n, type: R_X86_64.PC32, symbol: ssym[i], addend: -4n },
        { offset: 8n, type: R_X86_64.PLT32, symbol: tsym[(i + 1) % nfunc], addend: -4n },
        { offset: 13n, type: R_X86_64.PLT32, symbol: thunk, addend: -4n },
      ],
    });
  }
  return b.write();
}

/** Main thread: [ns running, ns runnable waiting for a CPU]; null where Linux's schedstat is absent. */
async function schedstat() {
  try {
    const { readFileSync } = await import('node:fs');
    const [run, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return [run, wait];
  } catch {
    return null;
  }
}

async function measure(sections) {
  const n = Math.round(sections / 3);
  const orig = object(n, -1);
  const patched = object(n, n >> 1);
  const times = [];
  const cpus = [];
  const split = [];
  let r;
  for (let k = 0; k < runs; k++) {
    const s0 = await schedstat();
    const t = process.hrtime.bigint();
    const c = process.cpuUsage();
    r = await diffObjects({ orig: [{ path: 'gen.o', bytes: orig }], patched: [{ path: 'gen.o', bytes: patched }] });
    const cu = process.cpuUsage(c);
    const wall = Number(process.hrtime.bigint() - t) / 1e6;
    const s1 = await schedstat();
    times.push(wall);
    cpus.push((cu.user + cu.system) / 1000);
    if (s0 && s1) split.push({ wall, run: (s1[0] - s0[0]) / 1e6, wait: (s1[1] - s0[1]) / 1e6 });
  }
  if (r.functions.length !== 1 || r.functions[0].status !== 'changed')
    throw new Error(`unexpected result: ${JSON.stringify(r.functions.slice(0, 3))}`);
  split.sort((a, b) => a.wall - b.wall);
  times.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  return { wall: times[times.length >> 1], cpu: cpus[cpus.length >> 1], split: split[split.length >> 1], orig, patched };
}

const fmtSplit = (x) =>
  x
    ? `; main thread ${x.run.toFixed(0)} ms running, ${x.wait.toFixed(0)} ms waiting for a core, ${Math.max(0, x.wall - x.run - x.wait).toFixed(0)} ms neither (blocked: I/O, GC pauses waiting on helpers)`
    : '';

await measure(600); // warm-up (decoder, JIT)
{
  // Every 10th function changed: inclusion, emission and the payload object scale too.
  const n = 20000;
  const o = object(n, -1);
  const p = object(n, -1, 10);
  const t = process.hrtime.bigint();
  const r = await diffObjects({ orig: [{ path: 'gen.o', bytes: o }], patched: [{ path: 'gen.o', bytes: p }] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.functions.filter((f) => f.status === 'changed').length !== n / 10 || r.objects.length !== 1)
    throw new Error('unexpected result with every 10th function changed');
  console.log(
    `diff 60,000 sections, 2,000 functions changed: ${ms.toFixed(0)} ms wall (the diff only), payload object ${r.objects[0].bytes.length} bytes`,
  );
}
const small = await measure(6000);
const big = await measure(60000);
// Wall time on a shared machine follows its load; CPU time (this process, all threads) less so.
console.log(`diff  6,000 sections: ${small.wall.toFixed(0)} ms wall, ${small.cpu.toFixed(0)} ms CPU (median of ${runs})`);
console.log(
  `diff 60,000 sections: ${big.wall.toFixed(0)} ms wall, ${big.cpu.toFixed(0)} ms CPU (median of ${runs})  ${big.wall < 1000 ? 'under' : 'OVER'} the 1 s goal${fmtSplit(big.split)}`,
);
{
  // As a user runs it: a fresh `xsplice diff` process on files. CPU from the children's rusage.
  const { mkdtempSync, writeFileSync, rmSync, readFileSync } = await import('node:fs');
  const { tmpdir, loadavg } = await import('node:os');
  const { spawnSync } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'xsplice-bench-diff-'));
  const a = join(dir, 'o', 'gen.o');
  const b = join(dir, 'p', 'gen.o');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dirname(a));
  mkdirSync(dirname(b));
  writeFileSync(a, big.orig);
  writeFileSync(b, big.patched);
  const childCpu = () => {
    const f = readFileSync('/proc/self/stat', 'utf8')
      .slice(readFileSync('/proc/self/stat', 'utf8').lastIndexOf(')') + 2)
      .split(' ');
    return (Number(f[13]) + Number(f[14])) * 10; // cutime + cstime, 100 Hz ticks → ms
  };
  const cli = (argv) => {
    const c0 = childCpu();
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [join(root, 'bin', 'xsplice'), ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    const wall = Number(process.hrtime.bigint() - t) / 1e6;
    if (r.status !== 0) throw new Error(`xsplice ${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return { wall, cpu: childCpu() - c0 };
  };
  const med = (f) => {
    const xs = Array.from({ length: runs }, f).sort((x, y) => x.wall - y.wall);
    return xs[xs.length >> 1];
  };
  const help = med(() => cli(['diff', '--help']));
  const run = med(() => cli(['diff', a, b, '--json']));
  console.log(
    `xsplice diff ORIG PATCHED --json (60,000 sections, ${(big.orig.length / 1e6).toFixed(1)} MB each, a fresh process): ${run.wall.toFixed(0)} ms wall, ${run.cpu.toFixed(0)} ms CPU; start-up alone (diff --help) ${help.wall.toFixed(0)} ms wall, ${help.cpu.toFixed(0)} ms CPU; load average ${loadavg()[0].toFixed(1)} on ${(await import('node:os')).availableParallelism()} cores`,
  );
  if (args.includes('--keep')) console.log(`files kept for profiling: ${a} ${b} (node --cpu-prof bin/xsplice diff …)`);
  else rmSync(dir, { recursive: true, force: true });
}
console.log(
  `ratio 60,000 / 6,000: ${(big.wall / small.wall).toFixed(1)} wall, ${(big.cpu / small.cpu).toFixed(1)} CPU (10 = linear; LBT measured 0.45 s → 49 s, 109)`,
);

const ti = args.indexOf('--tree');
if (ti >= 0) {
  const { readFileSync } = await import('node:fs');
  const { execSync } = await import('node:child_process');
  const { linkOnly } = await import(join(root, 'dist/src/diff/sources.js'));
  const tree = args[ti + 1];
  const all = execSync(`cd ${JSON.stringify(tree)} && find . -name '*.o'`)
    .toString()
    .trim()
    .split('\n')
    .map((x) => x.slice(2));
  const have = new Set(all);
  const list = all.filter((r) => !linkOnly(r, have)).sort();
  let t = Date.now();
  const quick = await diffObjects({ orig: tree, patched: tree });
  const tq = Date.now() - t;
  const orig = [];
  const patched = [];
  for (const p of list) {
    const b = new Uint8Array(readFileSync(join(tree, p)));
    orig.push({ path: p, bytes: b });
    const c = new Uint8Array(b.length + 1);
    c.set(b);
    patched.push({ path: p, bytes: c });
  }
  t = Date.now();
  const c0 = process.cpuUsage();
  const forced = await diffObjects({ orig, patched });
  const cu = process.cpuUsage(c0);
  const tf = Date.now() - t;
  const refusedKinds = [...new Set(forced.errors.map((e) => e.code))].join(', ');
  console.log(
    `self-equivalence, ${list.length} objects: diff DIR DIR ${tq} ms (${quick.explain.identical.length} identical, skipped unparsed); forced ${tf} ms wall, ${((cu.user + cu.system) / 1000).toFixed(0)} ms CPU; ${forced.functions.length + forced.data.length} changed symbols${refusedKinds ? ` (objects refused as such: ${refusedKinds})` : ''}`,
  );
  if (forced.functions.length + forced.data.length) process.exitCode = 1;
}
