/**
 * One converter from a read object to the model (src/elf/object-view.ts): the payload build and
 * `ObjectBuilder.fromElf` see a symbol's section the same way. The case that made them drift: a
 * symbol whose real section index is 0xfff1 (SHN_ABS's value), reached through SHN_XINDEX in an
 * object of more than 0xff00 sections, became an absolute symbol in the payload.
 *
 * The input is x86_new.o-like code assembled by GNU as, padded by the project's writer with
 * one-byte sections so that the function's section is index 0xfff1 (readelf confirms it); the
 * payload is built by the library for a vendor ABI row whose section limit admits it (Xen itself
 * would refuse it, so the CLI does), and read by readelf.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ObjectBuilder } from '../../src/elf/builder.js';
import { EM, SHF, SHN, SHT, STB, STT } from '../../src/elf/constants.js';
import { objectView } from '../../src/elf/object-view.js';
import { readElf } from '../../src/elf/reader.js';
import { abiByName, loadAbiFile } from '../../src/payload/abi.js';
import { buildPayload } from '../../src/payload/build.js';
import { loadTarget } from '../../src/payload/target.js';
import { removeTempDirs, tempDir } from '../helpers/corpus.js';
import { debianXen, haveDebianXen, missing } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';

const exec = promisify(execFile);

afterAll(removeTempDirs);

/** Symbols of `file` per `readelf -sW`: name → [type, Ndx]. */
async function readelfSymbols(file: string): Promise<Map<string, [string, string]>> {
  const out = (await exec('readelf', ['-sW', file], { maxBuffer: 1 << 28 })).stdout;
  const m = new Map<string, [string, string]>();
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 8 && /^\d+:$/.test(f[0]!)) m.set(f[7]!, [f[3]!, f[6]!]);
  }
  return m;
}

describe('objectView: the section of a symbol comes from the stored st_shndx', () => {
  it('real sections 0xfff1 and 0xfff2 through SHN_XINDEX are sections, the stored SHN_ABS is ABS', () => {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
    const ids = [];
    for (let i = 1; i <= SHN.COMMON; i++)
      ids.push(b.addSection({ name: `.s${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(1) }));
    b.addSymbol({ name: 'in_fff1', bind: STB.GLOBAL, type: STT.OBJECT, section: ids[SHN.ABS - 1]!, value: 0n, size: 1n });
    b.addSymbol({ name: 'in_fff2', bind: STB.GLOBAL, type: STT.OBJECT, section: ids[SHN.COMMON - 1]!, value: 0n, size: 1n });
    b.addSymbol({ name: 'really_abs', bind: STB.GLOBAL, type: STT.NOTYPE, section: 'ABS', value: 5n, size: 0n });
    const elf = readElf(b.write());
    const view = objectView(elf);
    const sectionOf = (name: string) => {
      const id = view.symbolIds().find((s) => view.symbol(s).name === name)!;
      return view.symbol(id).section;
    };
    expect([sectionOf('in_fff1'), sectionOf('in_fff2'), sectionOf('really_abs')]).toEqual([SHN.ABS, SHN.COMMON, 'ABS']);
    expect(view.section(SHN.ABS).name).toBe(`.s${SHN.ABS}`);
    // fromElf goes through the same view: the same symbols in the same sections.
    const { builder, sectionIds } = ObjectBuilder.fromElf(elf);
    const inFff1 = builder.symbol(builder.findSymbol('in_fff1')!);
    expect(inFff1.section).toBe(sectionIds.get(SHN.ABS));
    expect(builder.section(inFff1.section as number).name).toBe(`.s${SHN.ABS}`);
  });

  it('a reserved st_shndx other than UND/ABS/COMMON is refused even when the object has that many sections', () => {
    const b = new ObjectBuilder({ class: 64, littleEndian: true, machine: EM.X86_64 });
    for (let i = 1; i <= 0xff03; i++)
      b.addSection({ name: `.s${i}`, type: SHT.PROGBITS, flags: SHF.ALLOC, addralign: 1n, data: new Uint8Array(1) });
    b.addSymbol({ name: 'large_common', bind: STB.GLOBAL, type: STT.OBJECT, section: 'COM', value: 8n, size: 8n });
    const bytes = b.write();
    // Turn the stored SHN_COMMON into SHN_X86_64_LCOMMON (0xff02), a reserved index that is not
    // a section even though section 0xff02 exists.
    const elf = readElf(bytes);
    const symtab = elf.symtabSection()!;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = symtab.offset + 24 + 6; // symbol 1, st_shndx
    expect(dv.getUint16(at, true)).toBe(SHN.COMMON);
    dv.setUint16(at, 0xff02, true);
    const view = objectView(readElf(bytes, { file: 'lcommon.o' }));
    expect(() => view.symbol(1)).toThrow(
      expect.objectContaining({
        code: 'ELF_UNSUPPORTED',
        message: expect.stringMatching(
          /^lcommon\.o: .*symbol large_common: symbol's section index 65282 is reserved or not a carried section$/,
        ),
      }),
    );
  });
});

const ready = haveDebianXen() && have('as') && have('readelf');

describe.skipIf(missing('Debian xen-syms + GNU as and readelf (scripts/setup-deps.sh)', ready))(
  'xsplice build: a function in real section 0xfff1',
  () => {
    it('stays a function in its section in the payload (not an absolute symbol), as fromElf keeps it', async () => {
      const dir = await tempDir('xindex');
      await writeFile(
        join(dir, 'new.s'),
        `
	.section .text.xen_extra_version,"ax",@progbits
	.globl xen_extra_version
	.type xen_extra_version, @function
xen_extra_version:
	leaq .LC0(%rip), %rax
	jmp __x86_return_thunk
	.size xen_extra_version, .-xen_extra_version
	.section .rodata.str1.1,"aMS",@progbits,1
.LC0:
	.string "+fff1"
`,
      );
      await exec('as', ['--64', '-o', join(dir, 'new.o'), join(dir, 'new.s')]);
      const { builder } = ObjectBuilder.fromElf(readElf(new Uint8Array(await readFile(join(dir, 'new.o')))));
      const text = builder.findSection('.text.xen_extra_version')!;
      // Pad before the function's section until it is written at index 0xfff1 (each model section
      // before it is one index, its relocation section one more).
      const before = builder.sectionIds().slice(0, builder.sectionIds().indexOf(text));
      const taken = 1 + before.length + before.filter((id) => builder.relocationsOf(id)).length;
      for (let i = taken; i < SHN.ABS; i++)
        builder.addSection({ name: `.pad.${i}`, type: SHT.PROGBITS, flags: 0n, addralign: 1n, data: new Uint8Array([i & 0xff]) }, text);
      expect(builder.plan().sectionIndex.get(text)).toBe(SHN.ABS);
      const obj = join(dir, 'big.o');
      await writeFile(obj, builder.write());
      expect((await readelfSymbols(obj)).get('xen_extra_version')).toEqual(['FUNC', String(SHN.ABS)]);

      // Xen refuses such a payload (more than 1,024 sections, and its loader has no extended section
      // numbering), so the CLI, which verifies before writing, would too: the library's buildPayload
      // builds it, for a vendor row whose limits admit it.
      await writeFile(
        join(dir, 'abi.json'),
        JSON.stringify({ base: 'L2c-x86_64', name: 'L2c-big', limits: { maxPayloadSize: 64 << 20, maxSections: 1 << 20 } }),
      );
      const abi = abiByName('L2c-big', 'x86_64', await loadAbiFile(join(dir, 'abi.json')));
      const built = await buildPayload({
        objects: [{ name: 'big.o', bytes: new Uint8Array(await readFile(obj)) }],
        target: await loadTarget(debianXen.xenSyms),
        abi,
        patches: [{ old: 'xen_extra_version' }],
      });
      const out = join(dir, 'big.livepatch');
      await writeFile(out, built.bytes);
      const [type, ndx] = (await readelfSymbols(out)).get('xen_extra_version')!;
      expect(type).toBe('FUNC');
      expect(ndx).not.toBe('ABS');
      const payload = readElf(built.bytes);
      const sym = payload.symbols().find((s) => s.name === 'xen_extra_version')!;
      expect(sym.rawShndx === SHN.XINDEX || sym.rawShndx < SHN.LORESERVE).toBe(true);
      expect(payload.sections[sym.shndx]!.name).toBe('.text.xen_extra_version');
      // The funcs entry's new_addr is relocated against that function, not against an absolute 0.
      const funcsRel = payload.relocations().find((r) => payload.sections[r.target]!.name === '.livepatch.funcs')!;
      const symbols = payload.symbols();
      expect(funcsRel.entries.map((e) => symbols[e.symbol]!.name)).toContain('xen_extra_version');
    }, 120_000);
  },
);
