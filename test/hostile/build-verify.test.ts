/**
 * `build` never leaves a payload its own `verify` refuses (it runs verify before the rename), the
 * hypervisor argument is a hypervisor, relocations are never silently dropped, and outputs keep
 * what they replace: the CLI in-process against Debian's xen-syms, inputs from gcc/as and from the
 * tests' malformed-input builder.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/xsplice.js';
import { readElf } from '../../src/elf/reader.js';
import { debianXen, haveDebianXen, missing, REPO } from '../helpers/debian.js';
import { buildFixture, symbols } from '../helpers/malformed.js';
import { crelObject } from './inputs.js';

const exec = promisify(execFile);
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const EXAMPLE_C = join(REPO, 'examples/xen-extra-version/xen_extra_version.c');
const XEN = debianXen.xenSyms;

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

/** .text with xen_extra_version (12 bytes), a symbol table, and a hook to spoil one thing. */
function smallObject(
  spoil: (s: { textAddr: bigint; textFlags: bigint; relFlags: bigint; undefName: number; fnSize: bigint }) => void = () => undefined,
): Uint8Array {
  const o = { textAddr: 0n, textFlags: 6n, relFlags: 0x40n, undefName: 19, fnSize: 12n };
  spoil(o);
  const strtab = new Uint8Array([0, ...new TextEncoder().encode('xen_extra_version\0do_domctl\0')]);
  const text = new Uint8Array([0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x90, 0x90, 0x90, 0x90, 0xc3]);
  const rela = new Uint8Array(24);
  const dv = new DataView(rela.buffer);
  dv.setBigUint64(0, 3n, true);
  dv.setBigUint64(8, (3n << 32n) | 2n, true); // symbol 3 (do_domctl), R_X86_64_PC32
  dv.setBigInt64(16, -4n, true);
  return buildFixture({
    class: 64,
    littleEndian: true,
    sections: [
      { name: '.text', type: 1, flags: o.textFlags, addr: o.textAddr, addralign: 16n, data: text },
      { name: '.rela.text', type: 4, flags: o.relFlags, link: 3, info: 1, entsize: 24n, addralign: 8n, data: rela },
      {
        name: '.symtab',
        type: 2,
        link: 4,
        info: 2,
        entsize: 24n,
        addralign: 8n,
        data: symbols(64, true, [
          [0, 0n, 0n, 0, 0, 0],
          [0, 0n, 0n, 3, 0, 1],
          [1, 0n, o.fnSize, 0x12, 0, 1],
          [o.undefName, 0n, 0n, 0x10, 0, 0],
        ]),
      },
      { name: '.strtab', type: 3, addralign: 1n, data: strtab },
    ],
  }).bytes;
}

const ready = haveDebianXen() && have('gcc') && have('as');

describe.skipIf(missing('Debian xen-syms + gcc/binutils (scripts/setup-deps.sh)', ready))('build runs verify before the rename', () => {
  let dir: string;
  let good: string;
  let goodPayload: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'xs-build-verify-'));
    good = join(dir, 'good.o');
    await exec('gcc', [...CFLAGS, '-c', EXAMPLE_C, '-o', good]);
    goodPayload = join(dir, 'good.livepatch');
    const r = await cli(['build', good, '-o', goodPayload, '--xen', XEN, '--patch', 'xen_extra_version']);
    expect(r.code, r.err).toBe(0);
  });

  it('what build writes, verify accepts against the same target; no temporary is left', async () => {
    const v = await cli(['verify', goodPayload, '--xen', XEN]);
    expect(v.code, v.out).toBe(0);
    expect(readdirSync(dir).filter((n) => n.includes('xsplice-tmp'))).toEqual([]);
  });

  it('the small hand-made object builds, and verify accepts it', async () => {
    const o = join(dir, 'small.o');
    writeFileSync(o, smallObject());
    const out = join(dir, 'small.livepatch');
    const r = await cli(['build', o, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
    expect(r.code, r.err).toBe(0);
    expect((await cli(['verify', out, '--xen', XEN])).code).toBe(0);
  });

  it('a relocation verify refuses (PC32 out of reach): exit 1 with its reason, nothing written', async () => {
    const s = join(dir, 'far.s');
    await writeFile(
      s,
      '.text\n.globl xen_extra_version\n.type xen_extra_version,@function\nxen_extra_version:\n leaq do_domctl-0x7ffffff0(%rip), %rax\n ret\n.size xen_extra_version, .-xen_extra_version\n',
    );
    const o = join(dir, 'far.o');
    await exec('as', [s, '-o', o]);
    const out = join(dir, 'far.livepatch');
    const r = await cli(['build', o, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
    expect(r.code, r.err).toBe(1);
    // Warnings may come first (an addend past the symbol); the error is one line.
    const errors = r.err
      .trimEnd()
      .split('\n')
      .filter((l) => !l.startsWith('xsplice: warning: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^xsplice: .*far\.(livepatch|o): .*(RELOC_OVERFLOW|overflow)/i);
    expect(existsSync(out)).toBe(false);
  });

  it('SHT_CREL relocations: build refuses naming the section; verify flags a payload whose relocations Xen would skip', async () => {
    const o = join(dir, 'crel.o');
    writeFileSync(o, crelObject());
    const out = join(dir, 'crel.livepatch');
    const r = await cli(['build', o, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version=f']);
    expect(r.code, r.err).toBe(1);
    expect(r.err).toMatch(
      /section \[4\] \.crel\.text, .*: holds relocations in SHT_CREL \(as --crel, clang -Wa,--crel\), which xsplice does not decode and Xen does not apply/,
    );
    expect(existsSync(out)).toBe(false);
    // A payload whose .rela.text is retyped SHT_CREL: Xen would load it and never fix the code up.
    const bytes = new Uint8Array(readFileSync(goodPayload));
    const elf = readElf(bytes);
    const rela = elf.sections.find((s) => s.type === 4 && s.info !== 0 && elf.sections[s.info]!.flags & 2n)!;
    expect(rela).toBeDefined();
    new DataView(bytes.buffer).setUint32(rela.headerOffset + 4, 0x40000014, true);
    const bad = join(dir, 'crel-payload.livepatch');
    writeFileSync(bad, bytes);
    const v = await cli(['verify', bad, '--xen', XEN, '--json']);
    expect(v.code).toBe(1);
    const diags = JSON.parse(v.out).payloads[0].diagnostics;
    expect(diags).toContainEqual(expect.objectContaining({ code: 'UNCHECKED_RELOC_IGNORED', severity: 'error', errno: null }));
    expect(diags.find((d: { code: string }) => d.code === 'UNCHECKED_RELOC_IGNORED').message).toMatch(
      /\.rela\.text\S* \(SHT_CREL\) holds relocations of \.text/,
    );
  });

  it('input validation: sh_addr, a W/A/X relocation section, an unnamed undefined symbol, code without SHF_ALLOC, a symbol past its section', async () => {
    const cases: [string, Parameters<typeof smallObject>[0], RegExp][] = [
      [
        'addr',
        (s) => {
          s.textAddr = 0x1000n;
        },
        /section \[1\] \.text, .*: has a non-zero sh_addr in a relocatable object \(expected sh_addr 0, found 0x1000\)/,
      ],
      [
        'wax',
        (s) => {
          s.relFlags = 7n;
        },
        /section \[2\] \.rela\.text, .*: relocation section is flagged writable, allocated or executable/,
      ],
      [
        'unnamed',
        (s) => {
          s.undefName = 0;
        },
        /symbol #3, .*: an undefined symbol has no name/,
      ],
      [
        'not-alloc',
        (s) => {
          s.textFlags = 4n;
        },
        /section \[1\] \.text, .*: code section \(SHF_EXECINSTR\) is not SHF_ALLOC: the loader would never map it/,
      ],
      [
        'past-end',
        (s) => {
          s.fnSize = 4096n;
        },
        /symbol xen_extra_version: symbol lies past the end of its section \.text \(expected value \+ size <= 0xc, found 0x0 \+ 0x1000\)/,
      ],
    ];
    for (const [name, spoil, what] of cases) {
      const o = join(dir, `${name}.o`);
      writeFileSync(o, smallObject(spoil));
      const out = join(dir, `${name}.livepatch`);
      const r = await cli(['build', o, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(r.code, `${name}: ${r.err}`).toBe(1);
      expect(r.err, name).toMatch(what);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('--xen given a relocatable object or a payload is refused', async () => {
    const out = join(dir, 'x.livepatch');
    const a = await cli(['build', good, '-o', out, '--xen', good, '--patch', 'xen_extra_version']);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(
      /good\.o: is a relocatable object, not a hypervisor: give xen-syms, xen\.gz, xen\.efi or a build-id \(expected ET_EXEC \(xen-syms, xen\.gz\), found ET_REL\)/,
    );
    const b = await cli(['build', good, '-o', out, '--xen', goodPayload, '--patch', 'xen_extra_version']);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/good\.livepatch: is a live-patch payload \(it has \.livepatch\.funcs\), not a hypervisor/);
    const c = await cli(['verify', goodPayload, '--xen', goodPayload]);
    expect(c.code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });

  it('buildid set in place through a symlink rewrites the target, keeps the link and the mode', async () => {
    const real = join(dir, 'real.o');
    copyFileSync(good, real);
    chmodSync(real, 0o640);
    // The owner is kept where the process may set it (root, as on these machines and in CI).
    const root = process.getuid?.() === 0;
    if (root) chownSync(real, 1234, 4321);
    const link = join(dir, 'link.o');
    symlinkSync(real, link);
    const r = await cli(['buildid', 'set', link]);
    expect(r.code, r.err).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(statSync(real).mode & 0o777).toBe(0o640);
    if (root) expect(statSync(real)).toMatchObject({ uid: 1234, gid: 4321 });
    expect((await cli(['buildid', '--verify', link])).code).toBe(0);
    expect(readdirSync(dir).filter((n) => n.includes('xsplice-tmp'))).toEqual([]);
  });

  it("a killed run's temporary is recognisable and removed by the next write", async () => {
    const dead = spawnSync('true').pid!; // a process that has exited
    const out = join(dir, 'again.livepatch');
    const stale = join(dir, `.again.livepatch.xsplice-tmp.${dead}.0123456789ab`);
    writeFileSync(stale, 'partial');
    const r = await cli(['build', good, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(out)).toBe(true);
  });
});
