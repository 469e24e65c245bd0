/**
 * For every built-in ABI row: a payload built by `xsplice build` carries funcs entries whose bytes
 * match, field by field, the same entry compiled by gcc from a C struct written here (from
 * payload-format.md §1.2/§1.3, not from the project's tables) with a static initialiser.
 *
 * - 64-bit rows (x86_64, arm64): native gcc (LP64). arm32 rows: gcc -m32 (ILP32), as the spec did.
 * - Field offsets and sizes come from gcc too (offsetof/sizeof emitted into a `.layout` array).
 * - Pointer fields are relocated in both objects: compared by what the relocation points at (the
 *   function symbol for new_addr, the NUL-terminated string for name), read with readelf/objcopy.
 * - Targets: Debian's xen-syms for x86-64; for ARM a tiny "hypervisor" assembled and linked with
 *   the cross binutils (xen_extra_version, xen_{major,minor}_version, a build-id), so old_addr,
 *   old_size and the expectation bytes come from a real symbol table on every arch.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing } from '../helpers/debian.js';
import { listAbis } from '../../src/payload/abi.js';
import type { PayloadAbi } from '../../src/payload/abi-types.js';
import { buildFiles } from '../../src/payload/build-files.js';
import { have } from '../helpers/tools.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const tools =
  have('gcc') &&
  have('readelf') &&
  have('objcopy') &&
  have('aarch64-linux-gnu-as') &&
  have('aarch64-linux-gnu-ld') &&
  have('arm-linux-gnueabihf-as') &&
  have('arm-linux-gnueabihf-ld') &&
  spawnSync('sh', ['-c', 'echo "int x;" | gcc -m32 -x c -c - -o /dev/null'], { stdio: 'ignore' }).status === 0;

/* ---------------------------------------------------------------------------------------------
 * The reference structs, typed from payload-format.md §1.2 (L1, L2a, L2b, L2c) and §1.3.
 * ------------------------------------------------------------------------------------------- */
const EXPECT_T = `typedef struct {
  uint8_t enabled : 1;
  uint8_t len : 5;
  uint8_t rsv : 2;
  uint8_t data[31];
} livepatch_expectation_t;`;

const HEAD = `const char *name; void *new_addr; void *old_addr; uint32_t new_size; uint32_t old_size; uint8_t version;`;
const STRUCTS: Record<'L1' | 'L2a' | 'L2b' | 'L2c', { body: string; fields: string[] }> = {
  L1: { body: `${HEAD} uint8_t opaque[31];`, fields: ['name', 'new_addr', 'old_addr', 'new_size', 'old_size', 'version', 'opaque'] },
  L2a: {
    body: `${HEAD} uint8_t opaque[31]; uint8_t applied; uint8_t _pad[7]; livepatch_expectation_t expect;`,
    fields: ['name', 'new_addr', 'old_addr', 'new_size', 'old_size', 'version', 'opaque', 'applied', '_pad', 'expect'],
  },
  L2b: {
    body: `${HEAD} uint8_t opaque[31]; uint8_t applied; uint8_t patch_offset; uint8_t _pad[6]; livepatch_expectation_t expect;`,
    fields: ['name', 'new_addr', 'old_addr', 'new_size', 'old_size', 'version', 'opaque', 'applied', 'patch_offset', '_pad', 'expect'],
  },
  L2c: {
    body: `${HEAD} uint8_t _pad[39]; livepatch_expectation_t expect;`,
    fields: ['name', 'new_addr', 'old_addr', 'new_size', 'old_size', 'version', '_pad', 'expect'],
  },
};

const A64_XEN = `
	.text
	.globl xen_extra_version
	.type xen_extra_version,%function
xen_extra_version:
	adrp x0, extra
	add x0, x0, :lo12:extra
	ret
	nop
	.size xen_extra_version, .-xen_extra_version
	.globl xen_major_version
	.type xen_major_version,%function
xen_major_version:
	mov w0, #4
	ret
	.size xen_major_version, .-xen_major_version
	.globl xen_minor_version
	.type xen_minor_version,%function
xen_minor_version:
	mov w0, #17
	ret
	.size xen_minor_version, .-xen_minor_version
	.section .rodata
extra:	.asciz ".3"
`;
const A64_NEW = `
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
`;
const A32_XEN = `
	.syntax unified
	.arm
	.text
	.globl xen_extra_version
	.type xen_extra_version,%function
xen_extra_version:
	movw r0, #:lower16:extra
	movt r0, #:upper16:extra
	bx lr
	nop
	.size xen_extra_version, .-xen_extra_version
	.section .rodata
extra:	.asciz ".3"
`;
const A32_NEW = `
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
`;
const X86_NEW = `const char *new_fn(void);\nconst char *new_fn(void) { return "+x86"; }\n`;

interface Reloc {
  offset: number;
  type: string;
  symbol: string;
  addend: number | null;
}

/** Relocations of `section` per `readelf -rW` (the oracle, not the project's reader). */
async function relocsOf(file: string, section: string): Promise<Reloc[]> {
  const out = (await exec('readelf', ['-rW', file])).stdout;
  const blocks = out.split(/\nRelocation section '/);
  const rel = blocks.find((b) => b.startsWith(`.rela${section}'`) || b.startsWith(`.rel${section}'`));
  if (!rel) return [];
  const res: Reloc[] = [];
  for (const line of rel.split('\n').slice(2)) {
    const m = /^([0-9a-f]+)\s+[0-9a-f]+\s+(\S+)\s+[0-9a-f]+\s+(\S+)(?:\s+([+-])\s+([0-9a-f]+))?/.exec(line.trim());
    if (m)
      res.push({
        offset: parseInt(m[1]!, 16),
        type: m[2]!,
        symbol: m[3]!,
        addend: m[4] ? (m[4] === '-' ? -1 : 1) * parseInt(m[5]!, 16) : null,
      });
  }
  return res;
}

async function sectionBytes(file: string, section: string, dir: string, prefix = ''): Promise<Buffer> {
  const out = join(dir, `sec-${Math.random().toString(36).slice(2)}.bin`);
  await exec(`${prefix}objcopy`, ['-O', 'binary', `--only-section=${section}`, file, out]);
  return readFile(out);
}

async function nmSym(file: string, sym: string, prefix = ''): Promise<{ addr: bigint; size: number }> {
  const out = (await exec(`${prefix}nm`, ['-S', '--defined-only', file])).stdout;
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 4 && f[3] === sym) return { addr: BigInt('0x' + f[0]), size: parseInt(f[1]!, 16) };
  }
  throw new Error(`${file}: no ${sym}`);
}

async function bytesAtAddr(file: string, addr: bigint, len: number, dir: string, prefix: string): Promise<Buffer> {
  const text = await sectionBytes(file, '.text', dir, prefix);
  const hdr = (await exec('readelf', ['-SW', file])).stdout;
  const m = /\]\s+\.text\s+PROGBITS\s+([0-9a-f]+)/.exec(hdr)!;
  const off = Number(addr - BigInt('0x' + m[1]));
  return text.subarray(off, off + len);
}

/** What a pointer field at `offset` points at: a symbol name, or for section symbols the string there. */
async function pointee(
  file: string,
  rels: Reloc[],
  offset: number,
  inPlace: Buffer | null,
  ptr: number,
  dir: string,
  prefix: string,
): Promise<string> {
  const r = rels.find((x) => x.offset === offset);
  if (!r) return '<no relocation>';
  let addend = r.addend;
  if (addend === null) addend = inPlace ? (ptr === 4 ? inPlace.readInt32LE(offset) : Number(inPlace.readBigInt64LE(offset))) : 0;
  if (r.symbol.startsWith('.')) {
    const b = await sectionBytes(file, r.symbol, dir, prefix);
    const end = b.indexOf(0, addend);
    return `string "${b.subarray(addend, end).toString('latin1')}"`;
  }
  return `symbol ${r.symbol}${addend ? `+${addend}` : ''}`;
}

const ABS_RELOC: Record<string, string> = { x86_64: 'R_X86_64_64', arm64: 'R_AARCH64_ABS64', arm32: 'R_ARM_ABS32' };

describe.skipIf(missing('Debian xen-syms + gcc (-m32) + cross binutils for aarch64/arm (scripts/setup-deps.sh)', tools && haveDebianXen()))(
  'ABI rows against gcc-compiled reference structs',
  () => {
    let dir: string;
    const inputs: Record<string, { obj: string; xen: string; nmPrefix: string }> = {};

    beforeAll(async () => {
      dir = await tempDir('abi-layout');
      await writeFile(join(dir, 'x86_new.c'), X86_NEW);
      await exec('gcc', [
        '-O2',
        '-fpic',
        '-fno-asynchronous-unwind-tables',
        '-ffunction-sections',
        '-c',
        join(dir, 'x86_new.c'),
        '-o',
        join(dir, 'x86_new.o'),
      ]);
      inputs.x86_64 = { obj: join(dir, 'x86_new.o'), xen: debianXen.xenSyms, nmPrefix: '' };
      for (const [arch, xenS, newS, tool] of [
        ['arm64', A64_XEN, A64_NEW, 'aarch64-linux-gnu-'],
        ['arm32', A32_XEN, A32_NEW, 'arm-linux-gnueabihf-'],
      ] as const) {
        await writeFile(join(dir, `${arch}_xen.s`), xenS);
        await writeFile(join(dir, `${arch}_new.s`), newS);
        // ARMv7 for arm32 (as Xen is built): older defaults mark `bx lr` with R_ARM_V4BX, an
        // STN_UNDEF relocation the hypervisor refuses.
        const march = arch === 'arm32' ? ['-march=armv7-a'] : [];
        await exec(`${tool}as`, [...march, join(dir, `${arch}_xen.s`), '-o', join(dir, `${arch}_xen.o`)]);
        await exec(`${tool}ld`, [
          '--build-id=sha1',
          '-Ttext=0x00200000',
          '-e',
          '0',
          join(dir, `${arch}_xen.o`),
          '-o',
          join(dir, `${arch}_xen`),
        ]);
        await exec(`${tool}as`, [...march, join(dir, `${arch}_new.s`), '-o', join(dir, `${arch}_new.o`)]);
        inputs[arch] = { obj: join(dir, `${arch}_new.o`), xen: join(dir, `${arch}_xen`), nmPrefix: tool };
      }
    }, 120_000);

    const rows = listAbis();
    it('covers xsplice, L1, L2a, L2b, L2c on every arch they exist for', () => {
      expect(rows.map((r) => r.id).sort()).toEqual([
        'L1-arm32',
        'L1-arm64',
        'L1-x86_64',
        'L2a-arm32',
        'L2a-arm64',
        'L2a-x86_64',
        'L2b-arm32',
        'L2b-arm64',
        'L2b-x86_64',
        'L2c-arm32',
        'L2c-arm64',
        'L2c-x86_64',
        'xsplice-x86_64',
      ]);
    });

    for (const row of rows) {
      it(`${row.id}: funcs entry written by xsplice build == gcc's ${row.arch === 'arm32' ? '-m32 ' : ''}struct, field by field`, async () => {
        const inp = inputs[row.arch]!;
        const kind = (row.name === 'xsplice' ? 'L1' : row.name) as keyof typeof STRUCTS;
        const hasExpect = kind !== 'L1';
        const out = join(dir, `${row.id}.livepatch`);
        const r = await buildFiles({
          objects: [inp.obj],
          out,
          xen: inp.xen,
          abi: row.name,
          arch: row.arch,
          patch: ['xen_extra_version=new_fn'],
          expect: hasExpect,
          toolVersion: 'test',
        });
        expect(r.abi.id).toBe(row.id);

        // Values for the initialiser, from nm/objcopy (not from xsplice).
        const old = await nmSym(inp.xen, 'xen_extra_version', inp.nmPrefix);
        const nw = await nmSym(inp.obj, 'new_fn', inp.nmPrefix);
        const expLen = Math.min(31, old.size);
        const expBytes = await bytesAtAddr(inp.xen, old.addr, expLen, dir, inp.nmPrefix);
        const sec = row.sections.funcs;
        const m32 = row.arch === 'arm32';
        const S = STRUCTS[kind];
        const c = [
          '#include <stdint.h>',
          '#include <stddef.h>',
          EXPECT_T,
          `struct livepatch_func { ${S.body} };`,
          'extern const char *new_fn(void);',
          `struct livepatch_func __attribute__((used, section("${sec}"))) entry = {`,
          '  .name = "xen_extra_version",',
          '  .new_addr = (void *)new_fn,',
          `  .old_addr = (void *)${old.addr}ULL,`,
          `  .new_size = ${nw.size},`,
          `  .old_size = ${old.size},`,
          `  .version = ${kind === 'L1' ? 1 : 2},`,
          ...(hasExpect ? [`  .expect = { .enabled = 1, .len = ${expLen}, .data = { ${[...expBytes].join(', ')} } },`] : []),
          '};',
          `const unsigned int __attribute__((used, section(".layout"))) layout[] = {`,
          ...S.fields.map((f) => `  offsetof(struct livepatch_func, ${f}), sizeof(((struct livepatch_func *)0)->${f}),`),
          '  sizeof(struct livepatch_func), _Alignof(struct livepatch_func),',
          '};',
        ].join('\n');
        const cFile = join(dir, `${row.id}-ref.c`);
        const refO = join(dir, `${row.id}-ref.o`);
        await writeFile(cFile, c);
        await exec('gcc', [
          ...(m32 ? ['-m32'] : []),
          '-O0',
          '-fno-pic',
          '-Wno-int-to-pointer-cast',
          '-Wno-pointer-to-int-cast',
          '-c',
          cFile,
          '-o',
          refO,
        ]);

        const layoutBuf = await sectionBytes(refO, '.layout', dir);
        const L = Array.from({ length: layoutBuf.length / 4 }, (_, i) => layoutBuf.readUInt32LE(i * 4));
        const size = L[L.length - 2]!;
        const align = L[L.length - 1]!;
        const gccFields = S.fields.map((f, i) => ({ f, offset: L[2 * i]!, size: L[2 * i + 1]! }));

        const ref = await sectionBytes(refO, sec, dir);
        const ours = await sectionBytes(out, sec, dir, inp.nmPrefix);
        expect(ref.length).toBe(size);
        expect(ours.length, "one entry of the row's size").toBe(size);
        expect(row.funcEntry.size).toBe(size);
        expect(row.funcEntry.align).toBe(align);
        const refRel = await relocsOf(refO, sec);
        const ourRel = await relocsOf(out, sec);
        const ptr = m32 ? 4 : 8;
        // Every field, as gcc laid it out.
        for (const { f, offset, size: fsz } of gccFields) {
          if (f === 'name' || f === 'new_addr') {
            const a = await pointee(refO, refRel, offset, m32 ? ref : null, ptr, dir, '');
            const b = await pointee(out, ourRel, offset, m32 ? ours : null, ptr, dir, inp.nmPrefix);
            expect(b, `${row.id} field ${f} at ${offset}`).toBe(a);
            expect(ourRel.find((x) => x.offset === offset)!.type).toBe(ABS_RELOC[row.arch]);
            continue;
          }
          expect([...ours.subarray(offset, offset + fsz)], `${row.id} field ${f} at ${offset}+${fsz}`).toEqual([
            ...ref.subarray(offset, offset + fsz),
          ]);
        }
        // Nothing else is relocated, and the row's table agrees with gcc's offsets.
        expect(ourRel.map((x) => x.offset).sort()).toEqual(refRel.map((x) => x.offset).sort());
        const F = row.funcEntry.fields;
        const byName = Object.fromEntries(gccFields.map((g) => [g.f, g]));
        expect([F.name.offset, F.newAddr.offset, F.oldAddr.offset, F.newSize.offset, F.oldSize.offset, F.version.offset]).toEqual([
          byName.name!.offset,
          byName.new_addr!.offset,
          byName.old_addr!.offset,
          byName.new_size!.offset,
          byName.old_size!.offset,
          byName.version!.offset,
        ]);
        if (hasExpect) expect(F.expect).toEqual({ offset: byName.expect!.offset, size: byName.expect!.size });
        else expect(F.expect).toBeUndefined();
        // Writability as the row says (SHF_WRITE for pre-4.19 layouts, as Xen's tests; read-only L2c).
        const flags = /\]\s+\S+funcs\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+\S+\s+(\S+)/.exec((await exec('readelf', ['-SW', out])).stdout)![1]!;
        expect(flags.includes('W')).toBe(row.funcsWritable ?? row.funcsMustBeWritable);
      });
    }

    it('the ARM targets are read as what they are (version from the symbol table on arm64)', async () => {
      const { loadTarget } = await import('../../src/payload/target.js');
      const t = await loadTarget(inputs.arm64!.xen);
      expect(t.arch).toBe('arm64');
      expect(t.version).toBe('4.17.3');
      expect((await loadTarget(inputs.arm32!.xen)).arch).toBe('arm32');
    });
  },
);

export type { PayloadAbi };
void existsSync;
