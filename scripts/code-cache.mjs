#!/usr/bin/env node
// Writes dist/xsplice-cli.cache, V8's code cache of the CLI bundle (see cli/launcher.cts): loads the
// bundle, runs the main commands once on a small made-up hypervisor and patch (built with the GNU
// assembler and linker, as the tests build theirs), then saves the bytecode V8 compiled on the way,
// so a real run starts with it. Without `as`/`ld` the warm-up covers only the help texts (the
// cache is then smaller, the CLI a little slower to start, the results the same).
// Run by scripts/bundle.mjs in a process of its own: V8 takes a cache only under the same flags.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const launcher = createRequire(import.meta.url)(join(root, 'dist/xsplice.cjs'));
const loaded = launcher.loadCli();
const quiet = process.env.XSPLICE_DEBUG === "warmup" ? { out() {}, err: (s) => process.stderr.write(s) } : { out() {}, err() {} };
const dir = mkdtempSync(join(tmpdir(), 'xsplice-code-cache-'));
const N = 8;
let ran = 'help texts only';
try {
  for (const argv of [['--help'], ['build', '--help'], ['verify', '--help']]) await loaded.cli.main(argv, quiet);
  let tools = true;
  try {
    const xen = ['\t.text', '\t.globl __x86_return_thunk', '\t.type __x86_return_thunk,@function', '__x86_return_thunk:', '\tret', '\tint3', '\t.size __x86_return_thunk, .-__x86_return_thunk'];
    const neu = [];
    for (let i = 0; i < N; i++) {
      xen.push(`\t.globl f${i}`, `\t.type f${i},@function`, `f${i}:`, '\t.fill 15,1,0x90', '\tret', `\t.size f${i}, .-f${i}`);
      neu.push(`\t.section .text.f${i},"ax",@progbits`, `\t.globl f${i}`, `\t.type f${i},@function`, `f${i}:`, `\tleaq .LC${i}(%rip), %rax`, '\tjmp __x86_return_thunk',
        `\t.size f${i}, .-f${i}`, '\t.section .rodata.str1.1,"aMS",@progbits,1', `.LC${i}:`, `\t.string "+${i}"`);
    }
    writeFileSync(join(dir, 'base.s'), neu.join('\n') + '\n');
    neu.push('\t.section .text.hook,"ax",@progbits', '\t.type hook,@function', 'hook:', '\tjmp __x86_return_thunk', '\t.size hook, .-hook');
    writeFileSync(join(dir, 'xen.s'), xen.join('\n') + '\n');
    writeFileSync(join(dir, 'new.s'), neu.join('\n') + '\n');
    execFileSync('as', ['--64', join(dir, 'xen.s'), '-o', join(dir, 'xen.o')], { stdio: 'ignore' });
    execFileSync('ld', ['-m', 'elf_x86_64', '--build-id=sha1', '-Ttext=0xffff82d040200000', '-e', '0', join(dir, 'xen.o'), '-o', join(dir, 'xen-syms')], { stdio: 'ignore' });
    for (const f of ['base', 'new']) execFileSync('as', ['--64', join(dir, `${f}.s`), '-o', join(dir, `${f}.o`)], { stdio: 'ignore' });
  } catch {
    tools = false;
  }
  if (tools) {
    const p = (f) => join(dir, f);
    writeFileSync(p('spec.json'), JSON.stringify({ patches: Array.from({ length: N }, (_, i) => `f${i}`) }));
    const common = ['--xen', p('xen-syms'), '--xen-version', '4.17.3'];
    const runs = [
      ['build', p('base.o'), '-o', p('a.livepatch'), ...common, '--spec', p('spec.json')],
      ['build', p('new.o'), '-o', p('b.livepatch'), ...common, '--spec', p('spec.json'), '--expect', '--hook', 'load=hook', '--depends', p('a.livepatch'), '--json'],
      ['inspect', p('a.livepatch')],
      ['inspect', p('b.livepatch'), '--json'],
      ['verify', p('a.livepatch'), p('b.livepatch'), ...common],
      ['verify', p('a.livepatch'), ...common, '--json'],
      ['buildid', p('a.livepatch'), p('xen-syms'), '--verify'],
      ['elf', p('new.o')],
    ];
    const codes = [];
    for (const argv of runs) codes.push(await loaded.cli.main(argv, quiet));
    ran = `${runs.length} commands on a ${N}-function patch (exit ${codes.join(' ')})`;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const size = launcher.writeCodeCache(loaded);
if (process.env.XSPLICE_DEBUG) process.stderr.write(`code cache: ${size} bytes after ${ran}\n`);
