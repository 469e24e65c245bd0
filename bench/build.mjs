#!/usr/bin/env node
// bench/build.mjs: `xsplice build` against the equivalent binutils recipe (the one Xen's own test
// Makefile uses: nm for the sizes, a C descriptor compiled by gcc, objcopy for the two build-id
// notes, `ld -r --build-id=sha1`), for 1, 100 and 5,000 patched functions. Prints the times and
// the ratio measured in this run. Run after `npm run build`:  node bench/build.mjs [N...]
//
// Both flows start from the same inputs: a synthetic "hypervisor" (N functions, linked by GNU ld
// with a build-id, so nm and xsplice see the same symbol table) and one object holding the N
// replacement functions, compiled once with the Xen flags (examples/xen-cflags). Wall-clock time
// of the whole flow, process start-up included on both sides; median of REPEAT runs.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin/xsplice');
const REPEAT = Number(process.env.REPEAT ?? 3);
const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const NS = sizes.length ? sizes : [1, 100, 5000];
const CFLAGS = readFileSync(join(root, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);

// CPU time (user+sys) of every timed child, read from /usr/bin/time: on a loaded machine the
// wall-clock ratio is noisy, the CPU ratio much less so. Both are printed.
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
let cpuAcc = 0;
const sh = (cmd, args, opts = {}) => {
  const tf = TIME && opts.timed ? join(tmpdir(), `xsplice-bench-time-${process.pid}`) : null;
  const [c, a] = tf ? [TIME, ['-f', '%U %S', '-o', tf, cmd, ...args]] : [cmd, args];
  try {
    const out = execFileSync(c, a, { maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
    if (tf)
      cpuAcc += readFileSync(tf, 'utf8')
        .trim()
        .split('\n')
        .pop()
        .split(' ')
        .reduce((x, y) => x + Number(y) * 1000, 0);
    return out;
  } catch (e) {
    throw new Error(`${cmd} ${args.slice(0, 4).join(' ')} … failed: ${String(e.stderr ?? e.message).trim()}`);
  }
};
const T = { timed: true };
const now = () => Number(process.hrtime.bigint()) / 1e6;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function fixtures(n, dir) {
  // The "hypervisor": n 16-byte functions at Xen's x86-64 addresses, with a GNU build-id.
  const asm = [
    '\t.text',
    '\t.globl __x86_return_thunk',
    '\t.type __x86_return_thunk,@function',
    '__x86_return_thunk:',
    '\tret',
    '\tint3',
    '\t.size __x86_return_thunk, .-__x86_return_thunk',
  ];
  for (let i = 0; i < n; i++)
    asm.push(`\t.globl f${i}`, `\t.type f${i},@function`, `f${i}:`, '\t.fill 15,1,0x90', '\tret', `\t.size f${i}, .-f${i}`);
  writeFileSync(join(dir, 'xen.s'), asm.join('\n') + '\n');
  sh('as', ['--64', join(dir, 'xen.s'), '-o', join(dir, 'xen.o')]);
  sh('ld', [
    '-m',
    'elf_x86_64',
    '--build-id=sha1',
    '-Ttext=0xffff82d040200000',
    '-e',
    '0',
    join(dir, 'xen.o'),
    '-o',
    join(dir, 'xen-syms'),
  ]);
  // The replacements: same names (so they override, as in the example), one string each.
  const c = [];
  for (let i = 0; i < n; i++) c.push(`const char *f${i}(void);`, `const char *f${i}(void) { return "+${i}"; }`);
  writeFileSync(join(dir, 'new.c'), c.join('\n') + '\n');
  sh('gcc', [...CFLAGS, '-c', join(dir, 'new.c'), '-o', join(dir, 'new.o')]);
  writeFileSync(join(dir, 'spec.json'), JSON.stringify({ patches: Array.from({ length: n }, (_, i) => `f${i}`) }));
  // 5,000 entries (with -ffunction-sections) make a ~2.6 MB payload of ~15,000 sections, above Xen's
  // 2 MiB upload and 1,024-section limits, which xsplice enforces.
  // The recipe does not care; to time the same work, xsplice gets a vendor row (--abi-file) that is
  // L2c with a larger limit: the mechanism a downstream hypervisor would use.
  writeFileSync(
    join(dir, 'bench-abi.json'),
    JSON.stringify({ base: 'L2c-x86_64', name: 'L2c-bench', limits: { maxPayloadSize: 64 << 20, maxSections: 1 << 20 } }),
  );
}

function nmSizes(file) {
  const m = new Map();
  for (const line of sh('nm', ['--defined', '-S', file], T).toString().split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 4) m.set(f[3], { addr: f[0], size: parseInt(f[1], 16) });
  }
  return m;
}

const MAGIC = ['-I', 'binary', '-O', 'elf64-x86-64', '-B', 'i386:x86-64'];

function recipe(n, dir, out) {
  const xen = join(dir, 'xen-syms');
  const oldS = nmSizes(xen);
  const newS = nmSizes(join(dir, 'new.o'));
  const lines = [
    'typedef unsigned char u8; typedef unsigned int u32;',
    'struct livepatch_func { const char *name; void *new_addr; void *old_addr; u32 new_size; u32 old_size; u8 version; u8 pad[39]; u8 expect[32]; };',
  ];
  for (let i = 0; i < n; i++) lines.push(`extern const char *f${i}(void);`);
  lines.push('struct livepatch_func __attribute__((used, section(".livepatch.funcs"))) funcs[] = {');
  for (let i = 0; i < n; i++) {
    const o = oldS.get(`f${i}`);
    lines.push(
      `  { .name = "f${i}", .new_addr = f${i}, .old_addr = (void *)0x${o.addr}UL, .new_size = ${newS.get(`f${i}`).size}, .old_size = ${o.size}, .version = 2 },`,
    );
  }
  lines.push('};');
  writeFileSync(join(dir, 'desc.c'), lines.join('\n') + '\n');
  sh('gcc', [...CFLAGS, '-c', join(dir, 'desc.c'), '-o', join(dir, 'desc.o')], T);
  sh('objcopy', ['-O', 'binary', '--only-section=.note.gnu.build-id', xen, join(dir, 'note.bin')], T);
  sh(
    'objcopy',
    [
      ...MAGIC,
      '--rename-section=.data=.livepatch.depends,alloc,load,readonly,data,contents',
      '-S',
      join(dir, 'note.bin'),
      join(dir, 'note.o'),
    ],
    T,
  );
  sh(
    'objcopy',
    [
      ...MAGIC,
      '--rename-section=.data=.livepatch.xen_depends,alloc,load,readonly,data,contents',
      '-S',
      join(dir, 'note.bin'),
      join(dir, 'xen_note.o'),
    ],
    T,
  );
  sh(
    'ld',
    [
      '-m',
      'elf_x86_64',
      '-r',
      '--build-id=sha1',
      '-o',
      out,
      join(dir, 'desc.o'),
      join(dir, 'new.o'),
      join(dir, 'note.o'),
      join(dir, 'xen_note.o'),
    ],
    T,
  );
  sh('objcopy', ['--set-section-flags', '.livepatch.funcs=alloc,readonly', out], T);
}

function xsplice(dir, out) {
  sh(
    BIN,
    [
      'build',
      join(dir, 'new.o'),
      '-o',
      out,
      '--xen',
      join(dir, 'xen-syms'),
      '--abi-file',
      join(dir, 'bench-abi.json'),
      '--spec',
      join(dir, 'spec.json'),
    ],
    T,
  );
}

// In-process library time too (modules loaded, node start-up excluded): the cost of the work
// itself, next to the CLI's wall clock which includes ~80 ms of node start-up and module loading.
const { buildFiles } = await import('../dist/src/payload/build-files.js');
const { VERSION } = await import('../dist/cli/xsplice.js');
async function xspliceLib(dir, out) {
  await buildFiles({
    objects: [join(dir, 'new.o')],
    out,
    xen: join(dir, 'xen-syms'),
    abiFile: join(dir, 'bench-abi.json'),
    spec: join(dir, 'spec.json'),
    toolVersion: VERSION,
  });
}

const rows = [];
for (const n of NS) {
  const dir = mkdtempSync(join(tmpdir(), `xsplice-bench-build-${n}-`));
  fixtures(n, dir);
  const tr = [];
  const tx = [];
  const cr = [];
  const cx = [];
  const tl = [];
  for (let k = 0; k < REPEAT; k++) {
    cpuAcc = 0;
    let t = now();
    recipe(n, dir, join(dir, 'recipe.livepatch'));
    tr.push(now() - t);
    cr.push(cpuAcc);
    cpuAcc = 0;
    t = now();
    xsplice(dir, join(dir, 'xsplice.livepatch'));
    tx.push(now() - t);
    cx.push(cpuAcc);
    t = now();
    await xspliceLib(dir, join(dir, 'lib.livepatch'));
    tl.push(now() - t);
  }
  // Sanity: both payloads carry n entries of 104 bytes.
  if (Buffer.compare(readFileSync(join(dir, 'lib.livepatch')), readFileSync(join(dir, 'xsplice.livepatch'))) !== 0)
    throw new Error('library and CLI payloads differ');
  for (const f of ['recipe.livepatch', 'xsplice.livepatch']) {
    const s = sh('readelf', ['-SW', join(dir, f)]).toString();
    const m = /\.livepatch\.funcs\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)/.exec(s);
    if (!m || parseInt(m[1], 16) !== 104 * n) throw new Error(`${f}: .livepatch.funcs is not ${n} entries`);
  }
  const r = median(tr);
  const x = median(tx);
  rows.push({ n, recipeMs: r, xspliceMs: x, ratio: x / r, recipeCpu: median(cr), xspliceCpu: median(cx), libMs: median(tl) });
}

process.stdout.write(
  `xsplice build vs binutils recipe (nm + gcc descriptor + 2x objcopy notes + ld -r --build-id=sha1), median of ${REPEAT}; load average ${(await import('node:os')).loadavg()[0].toFixed(1)}\n`,
);
process.stdout.write(
  'functions   recipe ms   xsplice ms   wall ratio   library ms   lib ratio   recipe cpu ms   xsplice cpu ms   cpu ratio\n',
);
for (const r of rows) {
  const cpu = TIME
    ? `${r.recipeCpu.toFixed(0).padStart(13)}   ${r.xspliceCpu.toFixed(0).padStart(14)}   ${(r.xspliceCpu / r.recipeCpu).toFixed(2).padStart(9)}`
    : '';
  process.stdout.write(
    `${String(r.n).padStart(9)}   ${r.recipeMs.toFixed(0).padStart(9)}   ${r.xspliceMs.toFixed(0).padStart(10)}   ${r.ratio.toFixed(2).padStart(10)}   ${r.libMs.toFixed(0).padStart(10)}   ${(r.libMs / r.recipeMs).toFixed(2).padStart(9)}   ${cpu}${r.n >= 100 ? (r.ratio <= 1 ? '   not slower' : '   SLOWER') : ''}\n`,
  );
}
