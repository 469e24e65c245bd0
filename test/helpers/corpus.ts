/**
 * The ELF test corpus and its recipe: small C, C++ and assembly sources below, compiled by the real
 * toolchain (Debian's gcc/g++, gcc-multilib, and the powerpc/s390x/arm/aarch64 cross binutils that
 * scripts/setup-deps.sh installs) into a fresh temp directory. Nothing is committed; every test
 * file builds the objects it needs once, in beforeAll.
 *
 * Each object records how it was made (`command`), its class and byte order, and the `ld -r`
 * command that links it (the round-trip oracle).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './tmp.js';

const exec = promisify(execFile);

export interface CorpusObject {
  name: string;
  path: string;
  class: 32 | 64;
  littleEndian: boolean;
  /** The command that made it, for failure messages. */
  command: string[];
  /** `ld -r` for this object's target (the output file is appended as `-o OUT IN`). */
  ldr: string[];
  /** Section count, when the recipe is about it. */
  big?: boolean;
  noRoundTrip?: string;
}

export interface Corpus {
  dir: string;
  objects: CorpusObject[];
  get(name: string): CorpusObject;
}

/** C: data, bss, merged strings, a switch table, TLS, weak/hidden/protected, common, ctor, retain, ifunc, custom section. */
export const CORPUS_C = `
extern int ext_counter;
extern void ext_fn(int);
static int counter;
int shared = 5;
int common_sym;
const char *msg = "hello, corpus";
char arr[100];
char *mid = &arr[50];
__thread int tls_var = 3;
__thread int tls_bss;
__attribute__((weak)) int weak_fn(int x) { return x + 1; }
__attribute__((visibility("hidden"))) int hidden_var = 7;
__attribute__((visibility("protected"))) int protected_fn(void) { return 1; }
__attribute__((section(".my.custom"), used)) static const char custom[] = "custom";
__attribute__((constructor)) static void ctor(void) { counter = 1; }
__attribute__((retain, used)) static int retained = 9;
static int table_fn(int x) {
  switch (x) { case 0: return 11; case 1: return 4; case 2: return 9; case 3: return 17; case 4: return 22; case 5: return 5; default: return -1; }
}
int (*fp)(int) = weak_fn;
static int impl_a(int x) { return x * 3; }
static int (*resolve_pick(void))(int) { return impl_a; }
int picked(int) __attribute__((ifunc("resolve_pick")));
int api(int x) {
  static int calls;
  calls++;
  ext_fn(x);
  return picked(x) + table_fn(x) + ext_counter + counter + tls_var + tls_bss + calls + fp(x) + custom[x & 3] + hidden_var;
}
`;

/** x86-64 medium code model: large data in .lbss/.ldata (SHF_X86_64_LARGE) and a LARGE_COM common. */
export const CORPUS_LARGE_C = `
int big_common[100000];
static int big_static[100000] = { 1 };
int small;
int f(int i) { return big_common[i] + big_static[i] + small; }
`;

/** C++: templates, inline functions, vtables and typeinfo in COMDAT groups. */
export const CORPUS_CC = `
template <typename T> struct Box { T v; explicit Box(T x) : v(x) {} T get() const { return v; } virtual ~Box() {} };
inline int shared_inline(int x) { static int s; return s += x; }
int use(int x) { Box<int> b(x); Box<long> c(x); return b.get() + (int)c.get() + shared_inline(x); }
Box<int> *make(int x) { return new Box<int>(x); }
`;

/** x86-64 assembly: notes (build-id style, odd descriptor size), SHF_LINK_ORDER, a COMDAT group, negative addends. */
export const CORPUS_NOTES_S = `
	.section .note.gnu.build-id,"a",@note
	.p2align 2
	.long 4, 20, 3
	.asciz "GNU"
	.byte 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20
	.section .note.xsplice,"a",@note
	.p2align 2
	.long 8, 3, 0x42
	.asciz "Xsplice"
	.byte 1,2,3,0
	.text
	.globl g
	.type g,@function
g:	ret
	.size g,.-g
	.section .meta,"ao",@progbits,.text
	.quad g - 8
	.quad ext_sym + 0x7fffffff
	.section .text.grp,"axG",@progbits,grp_sig,comdat
	.globl grp_sig
	.type grp_sig,@function
grp_sig:
	call g
	ret
`;

/** PowerPC (32-bit big-endian, RELA): code, data relocations, strings, a note, a group, bss. */
export const CORPUS_PPC_S = `
	.section .text
	.globl f
	.type f, @function
f:
	lis 3, data_sym@ha
	addi 3, 3, data_sym@l
	bl ext_fn
	blr
	.size f, .-f
	.section .data
	.globl data_sym
	.type data_sym, @object
data_sym:
	.long f
	.long ext_sym + 8
	.long ext_sym - 12
	.size data_sym, 12
	.section .rodata.str1.1,"aMS",@progbits,1
	.string "hello"
	.section .note.test,"a",@note
	.long 4, 8, 1
	.string "xsp"
	.long 0x01020304, 0x05060708
	.section .text.grp,"axG",@progbits,grp_sig,comdat
	.globl grp_sig
grp_sig:
	bl f
	blr
	.lcomm buf, 64
`;

/** s390x (64-bit big-endian, RELA). */
export const CORPUS_S390X_S = `
	.text
	.globl f
	.type f,@function
f:
	larl %r1, data_sym
	brasl %r14, ext_fn@PLT
	br %r14
	.size f,.-f
	.data
	.globl data_sym
	.type data_sym,@object
data_sym:
	.quad f
	.quad ext_sym - 16
	.quad ext_sym + 0x123456789
	.size data_sym, 24
	.section .rodata
	.long 0xdeadbeef
	.section .text.grp,"axG",@progbits,grp_sig,comdat
	.globl grp_sig
grp_sig:
	brasl %r14, f
	br %r14
	.section .tbss,"awT",@nobits
	.globl tls_s
tls_s:	.zero 8
`;

/** Arm (32-bit, REL): unwind tables (.ARM.exidx: SHF_LINK_ORDER, SHT_ARM_EXIDX), attributes, MOVW/MOVT, a group. */
export const CORPUS_ARM_S = `
	.syntax unified
	.arch armv7-a
	.eabi_attribute 28, 1
	.text
	.globl f
	.type f, %function
	.fnstart
f:
	push {r4, lr}
	bl ext_fn
	movw r0, #:lower16:data_sym
	movt r0, #:upper16:data_sym
	pop {r4, pc}
	.fnend
	.size f, .-f
	.data
	.globl data_sym
data_sym:
	.word f
	.word ext_sym + 12
	.section .text.grp,"axG",%progbits,grp_sig,comdat
	.globl grp_sig
	.type grp_sig, %function
	.fnstart
grp_sig:
	bx lr
	.fnend
`;

/** AArch64 (RELA): ADRP/ADD pairs, calls, data relocations with negative addends, a group. */
export const CORPUS_AARCH64_S = `
	.text
	.globl f
	.type f, %function
f:
	adrp x0, data_sym
	add x0, x0, :lo12:data_sym
	bl ext_fn
	ret
	.size f, .-f
	.data
	.globl data_sym
data_sym:
	.xword f
	.xword ext_sym - 8
	.section .text.grp,"axG",%progbits,grp_sig,comdat
	.globl grp_sig
grp_sig:
	ret
`;

/** More than 65,280 sections (extended numbering), with symbols and a relocation in high sections. */
export function bigSectionsAsm(n = 70_000): string {
  const parts = ['\t.text\n\t.globl start\nstart:\tret\n'];
  for (let i = 0; i < n; i++) parts.push(`\t.section .t.${i},"ax",@progbits\nl${i}:\t.byte ${i & 255}\n`);
  parts.push(`\t.section .t.${n - 10},"ax",@progbits\n\t.globl high\n\t.type high,@function\nhigh:\t.quad high\n\t.quad l${n - 5} + 3\n`);
  return parts.join('');
}

interface Recipe {
  name: string;
  src: string;
  text: string | (() => string);
  cmd: (src: string, out: string) => string[];
  /** A second command run on the output in place (e.g. strip). */
  post?: (out: string) => string[];
  class: 32 | 64;
  littleEndian: boolean;
  ldr: string[];
  big?: boolean;
  /** Why the model cannot rebuild it (the round-trip test then asserts the refusal). */
  noRoundTrip?: string;
}

const LD64 = ['ld', '-r'];
const LD32 = ['ld', '-r', '-m', 'elf_i386'];

export const RECIPES: Recipe[] = [
  {
    name: 'c-O0',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-O0', '-fcommon', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-O2',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-O2', '-fcommon', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-O2-g',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-O2', '-g', '-fcf-protection', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-sections',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-O2', '-g', '-ffunction-sections', '-fdata-sections', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-gz',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-O2', '-g', '-gz', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-large-model',
    src: 'large.c',
    text: CORPUS_LARGE_C,
    cmd: (s, o) => ['gcc', '-O2', '-mcmodel=medium', '-fcommon', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
    noRoundTrip: 'a SHN_X86_64_LCOMMON (LARGE_COM) symbol: the model has no reserved section indices but UND/ABS/COM',
  },
  {
    name: 'cxx-comdat',
    src: 'corpus.cc',
    text: CORPUS_CC,
    cmd: (s, o) => ['g++', '-O0', '-g', '-c', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'c-m32',
    src: 'corpus.c',
    text: CORPUS_C,
    cmd: (s, o) => ['gcc', '-m32', '-O2', '-g', '-fcommon', '-c', s, '-o', o],
    class: 32,
    littleEndian: true,
    ldr: LD32,
  },
  {
    name: 'cxx-m32',
    src: 'corpus.cc',
    text: CORPUS_CC,
    cmd: (s, o) => ['g++', '-m32', '-O2', '-c', s, '-o', o],
    class: 32,
    littleEndian: true,
    ldr: LD32,
  },
  { name: 'notes-s', src: 'notes.s', text: CORPUS_NOTES_S, cmd: (s, o) => ['as', s, '-o', o], class: 64, littleEndian: true, ldr: LD64 },
  {
    name: 'ppc-be',
    src: 'ppc.s',
    text: CORPUS_PPC_S,
    cmd: (s, o) => ['powerpc-linux-gnu-as', s, '-o', o],
    class: 32,
    littleEndian: false,
    ldr: ['powerpc-linux-gnu-ld', '-r'],
  },
  {
    name: 's390x-be',
    src: 's390x.s',
    text: CORPUS_S390X_S,
    cmd: (s, o) => ['s390x-linux-gnu-as', s, '-o', o],
    class: 64,
    littleEndian: false,
    ldr: ['s390x-linux-gnu-ld', '-r'],
  },
  {
    name: 'arm32',
    src: 'arm.s',
    text: CORPUS_ARM_S,
    cmd: (s, o) => ['arm-linux-gnueabihf-as', s, '-o', o],
    class: 32,
    littleEndian: true,
    ldr: ['arm-linux-gnueabihf-ld', '-r'],
  },
  {
    name: 'arm64',
    src: 'arm64.s',
    text: CORPUS_AARCH64_S,
    cmd: (s, o) => ['aarch64-linux-gnu-as', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: ['aarch64-linux-gnu-ld', '-r'],
  },
  { name: 'empty-s', src: 'empty.s', text: '', cmd: (s, o) => ['as', s, '-o', o], class: 64, littleEndian: true, ldr: LD64 },
  {
    name: 'stripped',
    src: 'data.s',
    text: '\t.data\n\t.long 1\n\t.section .rodata\n\t.string "x"\n',
    cmd: (s, o) => ['as', s, '-o', o],
    post: (o) => ['strip', '--strip-all', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
  },
  {
    name: 'sections-70k',
    src: 'big.s',
    text: () => bigSectionsAsm(),
    cmd: (s, o) => ['as', s, '-o', o],
    class: 64,
    littleEndian: true,
    ldr: LD64,
    big: true,
  },
];

export { removeTempDirs, tempDir } from './tmp.js';

/** Builds the named corpus objects (all by default) into a fresh temp directory. */
export async function buildCorpus(only?: string[]): Promise<Corpus> {
  const dir = await tempDir('corpus');
  const recipes = only ? RECIPES.filter((r) => only.includes(r.name)) : RECIPES;
  const written = new Set<string>();
  for (const r of recipes) {
    if (written.has(r.src)) continue;
    written.add(r.src);
    await writeFile(join(dir, r.src), typeof r.text === 'string' ? r.text : r.text());
  }
  const objects = await Promise.all(
    recipes.map(async (r): Promise<CorpusObject> => {
      const out = join(dir, `${r.name}.o`);
      const command = r.cmd(join(dir, r.src), out);
      for (const c of [command, ...(r.post ? [r.post(out)] : [])]) {
        try {
          await exec(c[0]!, c.slice(1), { cwd: dir, maxBuffer: 1 << 26 });
        } catch (e) {
          throw new Error(`corpus: ${c.join(' ')} failed: ${(e as Error).message}`);
        }
      }
      if (r.post) command.push('&&', ...r.post(out));
      return {
        name: r.name,
        path: out,
        class: r.class,
        littleEndian: r.littleEndian,
        command,
        ldr: r.ldr,
        big: r.big,
        noRoundTrip: r.noRoundTrip,
      };
    }),
  );
  return {
    dir,
    objects,
    get(name: string) {
      const o = objects.find((x) => x.name === name);
      if (!o) throw new Error(`corpus: no object ${name}`);
      return o;
    },
  };
}

/** Runs a tool; returns stdout (throws with stderr on failure). */
export async function tool(cmd: string, args: string[]): Promise<string> {
  const r = await exec(cmd, args, { maxBuffer: 1 << 28, encoding: 'utf8' });
  return r.stdout;
}

/** Runs a tool; returns exit status and outputs (never throws on a non-zero status). */
export async function toolStatus(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(cmd, args, { maxBuffer: 1 << 28, encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e) };
  }
}
