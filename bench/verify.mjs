#!/usr/bin/env node
/**
 * Benchmark: `bin/xsplice verify` against Debian's Xen 4.17 xen-syms, whole processes.
 *
 *   1. one payload per process call:   xsplice verify p000.livepatch --xen xen-syms
 *   2. 100 payloads in one call:       xsplice verify p000 … p099 --xen xen-syms   (a stack of 100)
 *
 * Prints the medians, the time per payload in the 100-payload call, and the marginal cost of a
 * payload ((t100 − t1) / 99, i.e. without process start and loading xen-syms).
 *
 *   node bench/verify.mjs [--runs N] [--count N] [--keep]
 *
 * The payloads are made here the way Xen's own tests make them: gcc compiles a replacement function
 * and a `struct livepatch_func` (104-byte version-2 layout), objcopy turns build-id notes into
 * `.livepatch.depends`/`.livepatch.xen_depends`, `ld -r --build-id=sha1` links. Each payload depends
 * on the one before (the first on xen-syms), so all of them verify clean in one call.
 * Needs `npm run build` (dist/) and scripts/setup-deps.sh (Debian's xen-syms in .cache/debian).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const runs = opt('--runs', 7);
const count = opt('--count', 100);
const keep = args.includes('--keep');
const xsplice = join(root, 'bin', 'xsplice');
const xenSyms = join(root, '.cache/debian/root/usr/lib/debug/boot/xen-syms-4.17-amd64');
if (!existsSync(join(root, 'dist', 'cli', 'xsplice.js'))) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(2);
}
if (!existsSync(xenSyms)) {
  console.error(`bench: ${xenSyms} is missing; run scripts/setup-deps.sh first`);
  process.exit(2);
}

const CFLAGS = [
  '-O2',
  '-m64',
  '-nostdinc',
  '-ffreestanding',
  '-fno-builtin',
  '-fno-common',
  '-fno-stack-protector',
  '-fno-asynchronous-unwind-tables',
  '-fpic',
  '-fvisibility=hidden',
  '-mno-red-zone',
  '-mno-sse',
  '-mno-mmx',
  '-ffunction-sections',
  '-fdata-sections',
];
const MAGIC = ['-I', 'binary', '-O', 'elf64-x86-64', '-B', 'i386:x86-64'];

function sizeOf(file, sym) {
  for (const l of execFileSync('nm', ['--defined', '-S', file], { encoding: 'utf8' }).split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f.length === 4 && f[3] === sym) return parseInt(f[1], 16);
  }
  throw new Error(`${file}: no ${sym}`);
}

function noteObject(elf, section, dir, base) {
  const bin = join(dir, `${base}.bin`);
  execFileSync('objcopy', ['-O', 'binary', '--only-section=.note.gnu.build-id', elf, bin]);
  const obj = join(dir, `${base}.o`);
  execFileSync('objcopy', [...MAGIC, `--rename-section=.data=${section},alloc,load,readonly,data,contents`, '-S', bin, obj]);
  return obj;
}

const dir = mkdtempSync(join(tmpdir(), 'xsplice-bench-verify-'));
try {
  const t0 = Date.now();
  const oldSize = sizeOf(xenSyms, 'xen_extra_version');
  const xenNote = noteObject(xenSyms, '.livepatch.xen_depends', dir, 'xen_note');
  const files = [];
  let prev = xenSyms;
  for (let i = 0; i < count; i++) {
    const tag = `p${String(i).padStart(3, '0')}`;
    const c = join(dir, `${tag}.c`);
    writeFileSync(
      c,
      [
        `static const char ${tag}_str[] = "bench-${tag}";`,
        `const char *${tag}_fn(void);`,
        `const char *${tag}_fn(void) { return ${tag}_str; }`,
        'struct lpf { const char *name; void *new_addr; void *old_addr; unsigned int new_size, old_size;',
        '  unsigned char version, pad[39], expect[32]; };',
        'extern const char *xen_extra_version(void);',
        `static const char ${tag}_name[] = "xen_extra_version";`,
        `struct lpf __attribute__((used, section(".livepatch.funcs"))) ${tag}_patch = {`,
        `  .name = ${tag}_name, .new_addr = ${tag}_fn, .old_addr = xen_extra_version,`,
        `  .new_size = 16, .old_size = ${oldSize}, .version = 2 };`,
        '',
      ].join('\n'),
    );
    const o = join(dir, `${tag}.o`);
    execFileSync('gcc', [...CFLAGS, '-c', c, '-o', o]);
    const dep = noteObject(prev, '.livepatch.depends', dir, `${tag}_dep`);
    const out = join(dir, `${tag}.livepatch`);
    execFileSync('ld', ['-m', 'elf_x86_64', '--build-id=sha1', '-r', '-o', out, o, dep, xenNote]);
    files.push(out);
    prev = out;
  }
  const bytes = files.reduce((n, f) => n + readFileSync(f).length, 0);
  console.log(`made ${count} payloads (${Math.round(bytes / count)} bytes each) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const time = (argv) => {
    const s = process.hrtime.bigint();
    const r = spawnSync(xsplice, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
    const ms = Number(process.hrtime.bigint() - s) / 1e6;
    if (r.status !== 0) throw new Error(`xsplice ${argv.slice(0, 3).join(' ')} … exited ${r.status}: ${r.stderr}${r.stdout.slice(-2000)}`);
    return ms;
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  // Warm-up (page cache, module cache).
  time(['verify', files[0], '--xen', xenSyms]);
  const one = [];
  const all = [];
  for (let r = 0; r < runs; r++) {
    // Alternate the two measurements so drift affects both alike.
    if (r % 2 === 0) {
      one.push(time(['verify', files[0], '--xen', xenSyms]));
      all.push(time(['verify', ...files, '--xen', xenSyms]));
    } else {
      all.push(time(['verify', ...files, '--xen', xenSyms]));
      one.push(time(['verify', files[0], '--xen', xenSyms]));
    }
  }
  const t1 = median(one);
  const tn = median(all);
  console.log(`verify 1 payload against xen-syms, one process:      median ${t1.toFixed(1)} ms (${runs} runs)`);
  console.log(`verify ${count} payloads (a stack) in one process:       median ${tn.toFixed(1)} ms (${runs} runs)`);
  console.log(`  time per payload in the ${count}-payload call:         ${(tn / count).toFixed(2)} ms`);
  console.log(`  marginal time per payload ((t${count} - t1) / ${count - 1}):    ${((tn - t1) / (count - 1)).toFixed(2)} ms`);
} finally {
  if (keep) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
