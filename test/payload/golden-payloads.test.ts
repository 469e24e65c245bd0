/**
 * Byte-identity guard for `xsplice build`: a corpus of payloads, one or more per payload ABI row
 * (xsplice, L1, L2a, L2b, L2c on x86_64; L1, L2a, L2b, L2c on arm64 and arm32), is built through
 * the CLI in-process and each payload's SHA-256 is compared with the digest committed in
 * test/payload/golden-payloads.json. A refactor of build, the ELF reader/writer or the build-id
 * code that changes one byte of one payload fails here, naming the payloads that changed.
 *
 * Inputs are assembled from the sources below with GNU `as` (not compiled by gcc: code generation
 * changes between gcc releases, an assembler's encoding of explicit instructions does not). The
 * digests of the input objects are committed too, so a different assembler is reported as such
 * (before any payload is compared), not as a build regression.
 *
 * Targets: Debian's pinned xen-syms 4.17 (x86_64: old_addr, old_size and --expect bytes from its
 * symbol table) and build-id-only targets (every arch: sizes from --spec, old_addr 0).
 * Features covered: --patch (name, OLD=NEW, --old-addr name), --nop, every hook kind a row has,
 * --expect, --depends on a payload (stacking) and on the hypervisor, several objects (global
 * binding across objects, a COMDAT group kept once, a weak definition replaced by a strong one,
 * locals, .data/.bss, mergeable strings), an input .note.gnu.build-id and .modinfo.
 *
 * Regenerate (only when a payload change is intended, and say why in the commit):
 *   XSPLICE_UPDATE_GOLDENS=1 npx vitest run test/payload/golden-payloads.test.ts
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID } from '../helpers/debian.js';
import { removeTempDirs, tempDir } from '../helpers/corpus.js';
import { have } from '../helpers/tools.js';
import { runCli } from '../helpers/cli.js';

const exec = promisify(execFile);
const GOLDEN_FILE = join(REPO, 'test/payload/golden-payloads.json');
const UPDATE = process.env.XSPLICE_UPDATE_GOLDENS === '1';
const XEN = debianXen.xenSyms;

type Arch = 'x86_64' | 'arm64' | 'arm32';
const AS: Record<Arch, string[]> = {
  x86_64: ['as', '--64'],
  arm64: ['aarch64-linux-gnu-as'],
  // ARMv7 as Xen is built (older defaults mark `bx lr` with R_ARM_V4BX, which Xen refuses).
  arm32: ['arm-linux-gnueabihf-as', '-march=armv7-a'],
};

const HOOK_KINDS = ['load', 'unload', 'pre-apply', 'apply', 'post-apply', 'pre-revert', 'revert', 'post-revert'] as const;
const hookSym = (k: string) => `hook_${k.replace('-', '_')}`;

/* ---------------------------------------------------------------------------------------------
 * Input objects (assembly). x86_64 code follows what gcc makes with examples/xen-cflags (-fpic,
 * return thunks): PC-relative data, PLT32 calls, R_X86_64_64 pointers in data.
 * ------------------------------------------------------------------------------------------- */
const SOURCES: Record<string, { arch: Arch; text: string }> = {
  'x86_new.o': {
    arch: 'x86_64',
    text: `
	.file "x86_new.c"
	.section .text.xen_extra_version,"ax",@progbits
	.globl xen_extra_version
	.type xen_extra_version, @function
xen_extra_version:
	leaq .LC0(%rip), %rax
	jmp __x86_return_thunk
	.size xen_extra_version, .-xen_extra_version
	.section .rodata.str1.1,"aMS",@progbits,1
.LC0:
	.string "+golden"
	.section .note.GNU-stack,"",@progbits
`,
  },
  // Calls a global of x86_multi_b.o, a weak function the other object defines strongly, a COMDAT
  // function both define, and a local; data with absolute pointers and a .bss counter.
  'x86_multi_a.o': {
    arch: 'x86_64',
    text: `
	.file "multi_a.c"
	.text
	.type local_count, @function
local_count:
	movq counter(%rip), %rax
	addq $1, %rax
	movq %rax, counter(%rip)
	jmp __x86_return_thunk
	.size local_count, .-local_count
	.section .text.xen_extra_version,"ax",@progbits
	.globl xen_extra_version
	.type xen_extra_version, @function
xen_extra_version:
	pushq %rbx
	call local_count
	call comdat_fn
	call helper_w
	popq %rbx
	jmp helper_str
	.size xen_extra_version, .-xen_extra_version
	.section .text.comdat_fn,"axG",@progbits,comdat_fn,comdat
	.globl comdat_fn
	.hidden comdat_fn
	.type comdat_fn, @function
comdat_fn:
	jmp __x86_return_thunk
	.size comdat_fn, .-comdat_fn
	.section .text.helper_w,"ax",@progbits
	.weak helper_w
	.type helper_w, @function
helper_w:
	movl $1, %eax
	jmp __x86_return_thunk
	.size helper_w, .-helper_w
	.data
	.align 8
	.type table, @object
table:
	.quad xen_extra_version
	.quad helper_str + 4
	.size table, 16
	.bss
	.align 8
	.type counter, @object
counter:
	.zero 8
	.size counter, 8
	.section .note.GNU-stack,"",@progbits
`,
  },
  'x86_multi_b.o': {
    arch: 'x86_64',
    text: `
	.file "multi_b.c"
	.section .text.helper_str,"ax",@progbits
	.globl helper_str
	.type helper_str, @function
helper_str:
	leaq .LC0(%rip), %rax
	jmp __x86_return_thunk
	.size helper_str, .-helper_str
	.section .text.helper_w,"ax",@progbits
	.globl helper_w
	.type helper_w, @function
helper_w:
	xorl %eax, %eax
	jmp __x86_return_thunk
	.size helper_w, .-helper_w
	.section .text.comdat_fn,"axG",@progbits,comdat_fn,comdat
	.globl comdat_fn
	.hidden comdat_fn
	.type comdat_fn, @function
comdat_fn:
	jmp __x86_return_thunk
	.size comdat_fn, .-comdat_fn
	.section .rodata.str1.1,"aMS",@progbits,1
.LC0:
	.string "+multi"
	.section .note.GNU-stack,"",@progbits
`,
  },
  // Stacks on the multi payload: calls helper_str, which only that payload defines.
  'x86_upper.o': {
    arch: 'x86_64',
    text: `
	.file "upper.c"
	.section .text.xen_extra_version,"ax",@progbits
	.globl xen_extra_version
	.type xen_extra_version, @function
xen_extra_version:
	call helper_str
	addq $1, %rax
	jmp __x86_return_thunk
	.size xen_extra_version, .-xen_extra_version
	.section .note.GNU-stack,"",@progbits
`,
  },
  'x86_hooks.o': { arch: 'x86_64', text: hooksAsm('x86_64') },
  // An input build-id (replaced by the payload's own, with a warning) and .modinfo strings (kept).
  'x86_extras.o': {
    arch: 'x86_64',
    text: `
	.section .note.gnu.build-id,"a",@note
	.p2align 2
	.long 4, 20, 3
	.string "GNU"
	.fill 20, 1, 0xab
	.section .modinfo,"a",@progbits
	.string "license=GPL"
	.string "golden=extras"
	.section .note.GNU-stack,"",@progbits
`,
  },
  'arm64_new.o': {
    arch: 'arm64',
    text: `
	.section .text.new_fn,"ax",%progbits
	.globl new_fn
	.type new_fn,%function
new_fn:
	adrp x0, new_str
	add x0, x0, :lo12:new_str
	ret
	.size new_fn, .-new_fn
	.section .rodata.new_str,"a",%progbits
new_str: .asciz "+arm64"
	.data
	.p2align 3
ptrs:	.xword new_fn
	.xword ext_sym - 8
`,
  },
  'arm64_upper.o': {
    arch: 'arm64',
    text: `
	.section .text.upper_fn,"ax",%progbits
	.globl upper_fn
	.type upper_fn,%function
upper_fn:
	b new_fn
	.size upper_fn, .-upper_fn
`,
  },
  'arm64_hooks.o': { arch: 'arm64', text: hooksAsm('arm64') },
  'arm32_new.o': {
    arch: 'arm32',
    text: `
	.syntax unified
	.arm
	.section .text.new_fn,"ax",%progbits
	.globl new_fn
	.type new_fn,%function
new_fn:
	movw r0, #:lower16:new_str
	movt r0, #:upper16:new_str
	bx lr
	.size new_fn, .-new_fn
	.section .rodata.new_str,"a",%progbits
new_str: .asciz "+arm32"
	.data
	.p2align 2
ptrs:	.word new_fn
`,
  },
  'arm32_hooks.o': { arch: 'arm32', text: hooksAsm('arm32') },
};

function hooksAsm(arch: Arch): string {
  const body = { x86_64: '\txorl %eax, %eax\n\tjmp __x86_return_thunk', arm64: '\tmov w0, #0\n\tret', arm32: '\tmov r0, #0\n\tbx lr' }[
    arch
  ];
  const type = arch === 'x86_64' ? '@function' : '%function';
  const pre = arch === 'arm32' ? '\t.syntax unified\n\t.arm\n' : '';
  return (
    pre +
    HOOK_KINDS.map(
      (k) =>
        `\t.section .text.${hookSym(k)},"ax",${arch === 'x86_64' ? '@' : '%'}progbits\n\t.globl ${hookSym(k)}\n\t.type ${hookSym(k)},${type}\n${hookSym(k)}:\n${body}\n\t.size ${hookSym(k)}, .-${hookSym(k)}\n`,
    ).join('')
  );
}

/* ---------------------------------------------------------------------------------------------
 * The corpus. `args` are `xsplice build` arguments after the objects; {dir} is the work
 * directory, {payload:NAME} the payload an earlier case built. Hooks per row: load/unload on
 * xsplice and L1, all eight kinds on L2*.
 * ------------------------------------------------------------------------------------------- */
interface Case {
  name: string;
  objects: string[];
  args: string[];
}

const hookArgs = (kinds: readonly string[]) => kinds.flatMap((k) => ['--hook', `${k}=${hookSym(k)}`]);
const LOADUNLOAD = ['load', 'unload'];
const X86_ROWS: [string, string[], boolean][] = [
  // row, how it is chosen, has an expectation block
  ['xsplice', ['--abi', 'xsplice'], false],
  ['L1', ['--xen-version', '4.10.0'], false],
  ['L2a', ['--xen-version', '4.14.0'], true],
  ['L2b', ['--xen-version', '4.16.1'], true],
  ['L2c', [], true],
];

/**
 * A build-id-only target reveals no release: the row comes from a release that uses it (so that
 * verify judges the payload by that release's rules: NOPs from 4.8, ARM from 4.8), or --abi for
 * the pre-release xSplice format.
 */
const RELEASE_OF_ROW: Record<string, string> = { L1: '4.10.0', L2a: '4.14.0', L2b: '4.16.1', L2c: '4.19.0' };
const pickRow = (row: string): string[] => (row in RELEASE_OF_ROW ? ['--xen-version', RELEASE_OF_ROW[row]!] : ['--abi', row]);

const CASES: Case[] = [
  // x86_64 against Debian's xen-syms.
  { name: 'x86_64-L2c-single', objects: ['x86_new.o'], args: ['--patch', 'xen_extra_version'] },
  { name: 'x86_64-L2c-old-addr-name', objects: ['x86_new.o'], args: ['--patch', 'xen_extra_version', '--old-addr', 'name'] },
  { name: 'x86_64-L2c-by-address', objects: ['x86_new.o'], args: ['--patch', '0xffff82d040234940=xen_extra_version', '--expect'] },
  { name: 'x86_64-L2c-nop-only', objects: [], args: ['--nop', 'xen_minor_version:5', '--nop', 'xen_major_version:5'] },
  { name: 'x86_64-L2c-multi', objects: ['x86_multi_a.o', 'x86_multi_b.o'], args: ['--patch', 'xen_extra_version', '--expect'] },
  {
    name: 'x86_64-L2c-depends-payload',
    objects: ['x86_upper.o'],
    args: ['--patch', 'xen_extra_version', '--depends', '{payload:x86_64-L2c-multi}'],
  },
  { name: 'x86_64-L2c-depends-hex', objects: ['x86_new.o'], args: ['--patch', 'xen_extra_version', '--depends', '5eed'.repeat(10)] },
  { name: 'x86_64-L2c-extras', objects: ['x86_new.o', 'x86_extras.o'], args: ['--patch', 'xen_extra_version'] },
  ...X86_ROWS.map(([row, pick, hasExpect]): Case => ({
    name: `x86_64-${row}-hooks-nop${hasExpect ? '-expect' : ''}`,
    objects: ['x86_new.o', 'x86_hooks.o'],
    args: [
      ...pick,
      '--patch',
      'xen_extra_version',
      ...(row === 'xsplice' ? [] : ['--nop', 'xen_minor_version:5']),
      ...hookArgs(row === 'xsplice' || row === 'L1' ? LOADUNLOAD : HOOK_KINDS),
      ...(hasExpect ? ['--expect'] : []),
    ],
  })),
  {
    name: 'x86_64-L1-depends-payload',
    objects: ['x86_upper.o'],
    args: ['--xen-version', '4.10.0', '--patch', 'xen_extra_version', '--depends', '{payload:x86_64-L1-multi}'],
  },
  // Build-id-only targets: every row on every arch, sizes from the spec file.
  ...(['xsplice', 'L1', 'L2a', 'L2b', 'L2c'] as const).map((row): Case => ({
    name: `x86_64-${row}-buildid-only`,
    objects: ['x86_new.o', 'x86_hooks.o'],
    args: [
      '--xen',
      XEN_BUILD_ID,
      ...pickRow(row),
      '--spec',
      `{dir}/spec-x86_64${row === 'xsplice' ? '-no-nop' : ''}.json`,
      ...hookArgs(row === 'xsplice' || row === 'L1' ? LOADUNLOAD : HOOK_KINDS),
    ],
  })),
  ...(['arm64', 'arm32'] as const).flatMap((arch) =>
    (['L1', 'L2a', 'L2b', 'L2c'] as const).map((row): Case => ({
      name: `${arch}-${row}-buildid-only`,
      objects: [`${arch}_new.o`, `${arch}_hooks.o`],
      args: [
        '--xen',
        XEN_BUILD_ID,
        '--arch',
        arch,
        ...pickRow(row),
        '--spec',
        `{dir}/spec-${arch}.json`,
        ...hookArgs(row === 'L1' ? LOADUNLOAD : HOOK_KINDS),
      ],
    })),
  ),
  {
    name: 'arm64-L2c-version-depends-payload',
    objects: ['arm64_upper.o'],
    args: [
      '--xen',
      XEN_BUILD_ID,
      '--arch',
      'arm64',
      '--xen-version',
      '4.19.0',
      '--patch',
      'xen_minor_version=upper_fn',
      '--spec',
      '{dir}/spec-arm64-upper.json',
      '--depends',
      '{payload:arm64-L2c-buildid-only}',
    ],
  },
];
// The L1 stacking case needs its base.
CASES.splice(
  CASES.findIndex((c) => c.name === 'x86_64-L1-depends-payload'),
  0,
  {
    name: 'x86_64-L1-multi',
    objects: ['x86_multi_a.o', 'x86_multi_b.o'],
    args: ['--xen-version', '4.10.0', '--patch', 'xen_extra_version'],
  },
);

const SPECS: Record<string, unknown> = {
  'spec-x86_64.json': { patches: [{ old: 'xen_extra_version', oldSize: 12 }], nops: [{ old: 'xen_minor_version', len: 5, oldSize: 6 }] },
  'spec-x86_64-no-nop.json': { patches: [{ old: 'xen_extra_version', oldSize: 12 }] },
  'spec-arm64.json': {
    patches: [{ old: 'xen_extra_version', new: 'new_fn', oldSize: 16 }],
    nops: [{ old: 'xen_minor_version', len: 4, oldSize: 8 }],
  },
  'spec-arm32.json': {
    patches: [{ old: 'xen_extra_version', new: 'new_fn', oldSize: 16 }],
    nops: [{ old: 'xen_minor_version', len: 4, oldSize: 8 }],
  },
  'spec-arm64-upper.json': { patches: [{ old: 'xen_minor_version', new: 'upper_fn', oldSize: 8 }] },
};
// Spec patches and command-line patches add up: the arm64 stacking case names its patch in its spec only.
const upper = CASES.find((c) => c.name === 'arm64-L2c-version-depends-payload')!;
upper.args.splice(upper.args.indexOf('--patch'), 2);

interface Goldens {
  about: string;
  assembler: string;
  inputs: Record<string, string>;
  payloads: Record<string, string>;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const ready = haveDebianXen() && have('as') && have('aarch64-linux-gnu-as') && have('arm-linux-gnueabihf-as');

afterAll(removeTempDirs);

describe.skipIf(missing('Debian xen-syms + GNU as, aarch64-linux-gnu-as, arm-linux-gnueabihf-as (scripts/setup-deps.sh)', ready))(
  'golden payloads: byte-identical builds',
  () => {
    let dir: string;
    const inputs: Record<string, string> = {};
    const payloads: Record<string, string> = {};
    const failures: string[] = [];
    let assembler = '';

    beforeAll(async () => {
      dir = await tempDir('golden');
      assembler = (await exec('as', ['--version'])).stdout.split('\n')[0]!;
      for (const [name, src] of Object.entries(SOURCES)) {
        const s = join(dir, name.replace(/\.o$/, '.s'));
        await writeFile(s, src.text);
        const [cmd, ...flags] = AS[src.arch];
        // Relative paths, run in `dir`: nothing of the temporary path reaches the object.
        await exec(cmd!, [...flags, '-o', name, name.replace(/\.o$/, '.s')], { cwd: dir });
        inputs[name] = sha256(await readFile(join(dir, name)));
      }
      for (const [name, spec] of Object.entries(SPECS)) await writeFile(join(dir, name), JSON.stringify(spec));
      for (const c of CASES) {
        const out = join(dir, `${c.name}.livepatch`);
        const args = c.args.map((a) =>
          a.replace('{dir}', dir).replace(/^\{payload:(.+)\}$/, (_, n: string) => join(dir, `${n}.livepatch`)),
        );
        const argv = [
          'build',
          ...c.objects.map((o) => join(dir, o)),
          '-o',
          out,
          ...(args.includes('--xen') ? [] : ['--xen', XEN]),
          ...args,
        ];
        const { code, err } = await runCli(argv);
        if (code !== 0 || !existsSync(out)) {
          failures.push(`${c.name}: exit ${code}: ${err.trim()}`);
          continue;
        }
        payloads[c.name] = sha256(await readFile(out));
      }
      if (UPDATE) {
        const g: Goldens = {
          about:
            'SHA-256 of the payloads test/payload/golden-payloads.test.ts builds; regenerate with XSPLICE_UPDATE_GOLDENS=1 (see the test)',
          assembler,
          inputs,
          payloads,
        };
        writeFileSync(GOLDEN_FILE, JSON.stringify(g, null, 2) + '\n');
        process.stderr.write(`golden-payloads: wrote ${Object.keys(payloads).length} digests to ${GOLDEN_FILE}\n`);
      }
    }, 300_000);

    it('every case builds (exit 0)', () => {
      expect(failures).toEqual([]);
      expect(Object.keys(payloads).sort()).toEqual(CASES.map((c) => c.name).sort());
    });

    it('covers every payload ABI row on every arch it exists for', () => {
      const rows = new Set(CASES.map((c) => c.name.split('-').slice(0, 2).join('-')));
      expect([...rows].sort()).toEqual([
        'arm32-L1',
        'arm32-L2a',
        'arm32-L2b',
        'arm32-L2c',
        'arm64-L1',
        'arm64-L2a',
        'arm64-L2b',
        'arm64-L2c',
        'x86_64-L1',
        'x86_64-L2a',
        'x86_64-L2b',
        'x86_64-L2c',
        'x86_64-xsplice',
      ]);
    });

    it('the input objects are the ones the goldens were made from (same assembler output)', () => {
      const g = JSON.parse(readFileSync(GOLDEN_FILE, 'utf8')) as Goldens;
      expect(
        inputs,
        `the assembler (${assembler}) made other objects than the goldens' (${g.assembler}): the payload digests below cannot be compared; regenerate the goldens on the reference toolchain`,
      ).toEqual(g.inputs);
    });

    it('every payload is byte-identical to its committed digest', () => {
      const g = JSON.parse(readFileSync(GOLDEN_FILE, 'utf8')) as Goldens;
      const changed = Object.keys(g.payloads).filter((n) => payloads[n] !== g.payloads[n]);
      expect(
        changed,
        `payloads changed: ${changed.join(', ')} (regenerate with XSPLICE_UPDATE_GOLDENS=1 only if the change is intended)`,
      ).toEqual([]);
      expect(payloads).toEqual(g.payloads);
    });
  },
);
