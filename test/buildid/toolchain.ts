/**
 * Builds the build-id test corpus with the real toolchain (gcc, g++, GNU ld, gold, lld 14, lld 16,
 * cross binutils) in a temporary directory. Every fixture is made here, from the sources below,
 * by the exact commands listed; nothing is checked in. Tools that are missing are reported so the
 * tests can skip (or fail under CI=true, through `missing`).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDirSync } from '../helpers/tmp.js';

export { have } from '../helpers/tools.js';

export function sh(cmd: string, args: string[], cwd: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

export class Workdir {
  readonly dir: string;
  constructor(prefix = 'xsplice-buildid-') {
    this.dir = tempDirSync(prefix.replace(/^xsplice-|-$/g, ''));
  }
  path(name: string): string {
    return join(this.dir, name);
  }
  write(name: string, text: string | Uint8Array): string {
    const p = this.path(name);
    writeFileSync(p, text);
    return p;
  }
  read(name: string): Uint8Array {
    return new Uint8Array(readFileSync(this.path(name)));
  }
  run(cmd: string, ...args: string[]): string {
    return sh(cmd, args, this.dir);
  }
  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** C sources of the corpus. */
export const SOURCES = {
  'a.c': `
#include <stdio.h>
int counter = 42;
static const char msg[] = "hello from a";
int helper(int x);
int main(void) { counter += helper(3); puts(msg); return counter & 1; }
`,
  'b.c': `
int helper(int x) { static int calls; calls++; return x * 7 + calls; }
`,
  // Freestanding: links with any linker directly, no libc, no crt files.
  'fs.c': `
int data_word = 0x12345678;
static int twice(int x) { return 2 * x; }
int compute(int x) { return twice(x) + data_word; }
void _start(void) { for (;;) { data_word = compute(data_word); } }
`,
  // COMDAT section groups.
  'g.cc': `
template <typename T> T addone(T v) { return v + 1; }
inline int shared_inline(int v) { static int n; return v + ++n; }
int use_int(int v) { return addone(v) + shared_inline(v); }
double use_double(double v) { return addone(v); }
`,
  'h.cc': `
template <typename T> T addone(T v) { return v + 1; }
inline int shared_inline(int v) { static int n; return v + ++n; }
int other(int v) { return addone(v) * shared_inline(v); }
`,
};

/** Assembly with `n` allocated sections (extended numbering above 0xff00). */
export function manySectionsAsm(n: number): string {
  const out: string[] = ['.text', '.globl _start', '_start:', ' ret'];
  for (let i = 0; i < n; i++) out.push(`.section .s${i},"a",@progbits`, `.byte ${i & 0xff}`);
  return out.join('\n') + '\n';
}

/** Big-endian freestanding program: s390x. */
export const S390X_ASM = `
  .text
  .globl _start
_start:
  larl %r1, value
  l %r2, 0(%r1)
  br %r14
  .data
value: .long 0x11223344
`;

/** Big-endian ELF32: powerpc. */
export const PPC_ASM = `
  .text
  .globl _start
_start:
  lis 3, value@ha
  lwz 3, value@l(3)
  blr
  .data
value: .long 0x11223344
`;

/** Freestanding program with a data blob of `path` (random bytes: several lld chunks). */
export function blobAsm(path: string): string {
  return `
  .text
  .globl _start
_start:
  ret
  .data
  .globl blob
blob:
  .incbin "${path}"
`;
}
