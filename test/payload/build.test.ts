/**
 * `xsplice build` offline, through the CLI in-process (cli.md contract: exit 0/1/2, one stderr line,
 * --json) and the library, against Debian's xen-syms 4.17. Oracles: readelf and `ld -r` (GNU
 * binutils) read and link what we write; gcc makes the inputs (including the bad ones).
 * Reproducibility: two child processes in different directories, time zones, locales and times.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID, XEN_VERSION_STRING, XEN_EXTRA_VERSION_ADDR } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';
import { runCli as cli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const EXAMPLE_C = join(REPO, 'examples/xen-extra-version/xen_extra_version.c');
const XEN = debianXen.xenSyms;

async function gcc(dir: string, name: string, src: string, extra: string[] = [], flags = CFLAGS): Promise<string> {
  const c = join(dir, `${name}.c`);
  await writeFile(c, src);
  const o = join(dir, `${name}.o`);
  await exec('gcc', [...flags, ...extra, '-c', c, '-o', o]);
  return o;
}

const ready = haveDebianXen() && have('gcc') && have('ld') && have('readelf');

describe.skipIf(missing('Debian xen-syms + gcc/binutils (scripts/setup-deps.sh)', ready))(
  'xsplice build (offline, Debian Xen 4.17 target)',
  () => {
    let dir: string;
    let good: string;

    beforeAll(async () => {
      dir = await tempDir('build');
      good = join(dir, 'good.o');
      await exec('gcc', [...CFLAGS, '-c', EXAMPLE_C, '-o', good]);
    });

    it('builds the example; readelf and GNU ld -r accept the payload; JSON per contract', async () => {
      const out = join(dir, 'ok.livepatch');
      const r = await cli(['build', good, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version', '--json']);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out);
      expect(j).toMatchObject({
        ok: true,
        file: out,
        depends: XEN_BUILD_ID,
        xenDepends: XEN_BUILD_ID,
        abi: { id: 'L2c-x86_64', name: 'L2c', arch: 'x86_64', version: 2 },
        target: { buildId: XEN_BUILD_ID, version: XEN_VERSION_STRING, source: 'elf' },
        funcs: [
          {
            name: 'xen_extra_version',
            newSymbol: 'xen_extra_version',
            oldAddr: XEN_EXTRA_VERSION_ADDR,
            oldSize: 12,
            newSize: 12,
            version: 2,
          },
        ],
        undefinedSymbols: ['__x86_return_thunk'],
      });
      expect(j.buildId).toMatch(/^[0-9a-f]{40}$/);
      // Oracles.
      const re = await exec('readelf', ['-hSrnsW', out]);
      expect(re.stderr).toBe('');
      expect(re.stdout).toContain(`Build ID: ${j.buildId}`);
      expect(re.stdout).toMatch(/\.livepatch\.xen_depends\s+NOTE/);
      expect(re.stdout).toMatch(/Type:\s+REL \(Relocatable file\)/);
      const linked = join(dir, 'ok-linked.o');
      const ld = await exec('ld', ['-r', '-o', linked, out]);
      expect(ld.stderr).toBe('');
      expect((await exec('readelf', ['-rW', linked])).stdout).toMatch(/R_X86_64_64\s+0+\s+xen_extra_version \+ 0/);
      // The funcs section: read-only on L2c (4.19's tests), depends/xen_depends/modinfo read-only.
      expect(re.stdout).toMatch(/\.livepatch\.funcs\s+PROGBITS\s+\S+\s+\S+\s+0+68\s+00\s+A\s/);
      expect(re.stdout).toMatch(/\.modinfo\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+00\s+A\s/);
      const modinfo = (await exec('readelf', ['-p', '.modinfo', out])).stdout;
      expect(modinfo).toContain('xsplice=0.1.0');
      expect(modinfo).toMatch(/input=good\.o sha256:[0-9a-f]{64}/);
    });

    it('is reproducible: same bytes from other directories, times, time zones and locales', async () => {
      const runIn = async (sub: string, env: Record<string, string>) => {
        const d = join(dir, sub);
        await mkdir(d, { recursive: true });
        await copyFile(EXAMPLE_C, join(d, 'xen_extra_version.c'));
        await exec('gcc', [...CFLAGS, '-c', 'xen_extra_version.c', '-o', 'x.o'], { cwd: d, env: { ...process.env, ...env } });
        await exec(
          process.execPath,
          [join(REPO, 'bin/xsplice'), 'build', 'x.o', '-o', 'p.livepatch', '--xen', XEN, '--patch', 'xen_extra_version', '--expect'],
          { cwd: d, env: { ...process.env, ...env } },
        );
        return readFile(join(d, 'p.livepatch'));
      };
      if (!existsSync(join(REPO, 'dist/cli/xsplice.js'))) throw new Error('dist/ missing: run npm run build');
      const a = await runIn('one/deeper/dir', { TZ: 'UTC', LANG: 'C', LC_ALL: 'C', SOURCE_DATE_EPOCH: '1' });
      await new Promise((r) => setTimeout(r, 1100));
      const b = await runIn('two', {
        TZ: 'Pacific/Kiritimati',
        LANG: 'de_DE.UTF-8',
        LC_ALL: 'tr_TR.UTF-8',
        SOURCE_DATE_EPOCH: '2000000000',
      });
      expect(a.length).toBeGreaterThan(1000);
      expect(Buffer.compare(a, b)).toBe(0);
    });

    it('old_addr by name (0) and by address literal; --expect fills the block from xen-syms', async () => {
      const byName = await cli([
        'build',
        good,
        '-o',
        join(dir, 'n.livepatch'),
        '--xen',
        XEN,
        '--patch',
        'xen_extra_version',
        '--old-addr',
        'name',
        '--json',
      ]);
      expect(JSON.parse(byName.out).funcs[0].oldAddr).toBe('0x0');
      const byAddr = await cli([
        'build',
        good,
        '-o',
        join(dir, 'a.livepatch'),
        '--xen',
        XEN,
        '--patch',
        `${XEN_EXTRA_VERSION_ADDR}=xen_extra_version`,
        '--expect',
        '--json',
      ]);
      expect(byAddr.code).toBe(0);
      const f = JSON.parse(byAddr.out).funcs[0];
      expect(f).toMatchObject({ name: 'xen_extra_version', oldAddr: XEN_EXTRA_VERSION_ADDR, expect: { len: 12 } });
      // The expectation bytes are what objdump shows at xen_extra_version.
      const od = (
        await exec('objdump', [
          '-d',
          `--start-address=${XEN_EXTRA_VERSION_ADDR}`,
          `--stop-address=0x${(BigInt(XEN_EXTRA_VERSION_ADDR) + 12n).toString(16)}`,
          XEN,
        ])
      ).stdout;
      const hex = [...od.matchAll(new RegExp(`^\\s*${XEN_EXTRA_VERSION_ADDR.slice(2, -2)}[0-9a-f]{2}:\\s+((?:[0-9a-f]{2} )+)`, 'gm'))]
        .map((m) => m[1]!.replace(/ /g, ''))
        .join('');
      expect(f.expect.data).toBe(hex);
    });

    it('a build-id-only target needs --xen-version (or --abi) and the sizes from --spec; old_addr is 0', async () => {
      const noVer = await cli(['build', good, '-o', join(dir, 'h.livepatch'), '--xen', XEN_BUILD_ID, '--patch', 'xen_extra_version']);
      expect(noVer.code).toBe(2);
      expect(noVer.err).toMatch(/cannot tell which Xen release the build-id is: pass --xen-version X\.Y\.Z or --abi NAME/);
      const noSize = await cli([
        'build',
        good,
        '-o',
        join(dir, 'h.livepatch'),
        '--xen',
        XEN_BUILD_ID,
        '--xen-version',
        '4.17.7',
        '--patch',
        'xen_extra_version',
      ]);
      expect(noSize.code).toBe(2);
      expect(noSize.err).toMatch(/XEN is only a build-id: give oldSize for xen_extra_version in --spec/);
      const spec = join(dir, 'spec.json');
      await writeFile(spec, JSON.stringify({ patches: [{ old: 'xen_extra_version', oldSize: 12 }] }));
      const ok = await cli([
        'build',
        good,
        '-o',
        join(dir, 'h.livepatch'),
        '--xen',
        XEN_BUILD_ID,
        '--xen-version',
        '4.17.7',
        '--spec',
        spec,
        '--json',
      ]);
      expect(ok.code).toBe(0);
      expect(ok.err).toMatch(/warning: the target is only a build-id: cannot check that the hypervisor defines __x86_return_thunk/);
      expect(JSON.parse(ok.out).funcs[0]).toMatchObject({ oldAddr: '0x0', oldSize: 12, newSize: 12 });
    });

    it('reads `xl info` on stdin (--xen -)', async () => {
      const xl = `host : dom0\nxen_major : 4\nxen_minor : 17\nxen_extra : .7\nxen_version : 4.17.7\nxen_caps : xen-3.0-x86_64 hvm-3.0-x86_64\nbuild_id : ${XEN_BUILD_ID}\n`;
      const spec = join(dir, 'spec2.json');
      await writeFile(spec, JSON.stringify({ patches: [{ old: 'xen_extra_version', oldSize: 12 }] }));
      const r = await cli(['build', good, '-o', join(dir, 'xl.livepatch'), '--xen', '-', '--spec', spec, '--json'], xl);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({
        abi: { id: 'L2c-x86_64' },
        target: { source: 'xl-info', version: '4.17.7' },
        xenDepends: XEN_BUILD_ID,
      });
    });

    it('an explicit --abi wins over what XEN reveals, with a warning; --abi help lists the rows', async () => {
      const r = await cli([
        'build',
        good,
        '-o',
        join(dir, 'b.livepatch'),
        '--xen',
        XEN,
        '--abi',
        'L2b',
        '--patch',
        'xen_extra_version',
        '--json',
      ]);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(
        new RegExp(
          `warning: --abi L2b wins over what XEN reveals \\(Xen ${XEN_VERSION_STRING.replace(/[.+]/g, (c) => `\\${c}`)} uses L2c\\)`,
        ),
      );
      expect(JSON.parse(r.out).abi.id).toBe('L2b-x86_64');
      expect((await exec('readelf', ['-SW', join(dir, 'b.livepatch')])).stdout).toMatch(
        /\.livepatch\.funcs\s+PROGBITS\s+\S+\s+\S+\s+\S+\s+00\s+WA\s/,
      );
      const h = await cli(['build', '--abi', 'help']);
      expect(h.code).toBe(0);
      for (const n of ['xsplice', 'L1', 'L2a', 'L2b', 'L2c']) expect(h.out).toMatch(new RegExp(`^${n}\\s`, 'm'));
      const hj = JSON.parse((await cli(['build', '--abi', 'help', '--json'])).out);
      expect(hj.rows).toHaveLength(13);
    });

    it('--abi xsplice: .xsplice.* sections, 64-byte version-1 entries, and a note that no release reads its hooks', async () => {
      const hook = await gcc(dir, 'xs_hook', 'void xs_hook(void);\nvoid xs_hook(void) {}\n');
      const out = join(dir, 'xs.xsplice');
      const r = await cli([
        'build',
        good,
        hook,
        '-o',
        out,
        '--xen',
        XEN,
        '--abi',
        'xsplice',
        '--patch',
        'xen_extra_version',
        '--hook',
        'load=xs_hook',
      ]);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(
        /warning: \.xsplice\.hooks\.load: proposed by the xSplice v5 series; no released hypervisor reads this section/,
      );
      const s = (await exec('readelf', ['-SW', out])).stdout;
      expect(s).toMatch(/\.xsplice\.funcs\s+PROGBITS\s+\S+\s+\S+\s+0+40\s/);
      expect(s).toMatch(/\.xsplice\.depends\s/);
      expect(s).toMatch(/\.xsplice\.hooks\.load\s/);
      expect(s).not.toMatch(/xen_depends|\.modinfo/);
    });

    it('binds references between objects and resolves against the payload it depends on', async () => {
      const a = await gcc(
        dir,
        'multi_a',
        'const char *helper_str(void);\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return helper_str(); }\n',
      );
      const b = await gcc(dir, 'multi_b', 'const char *helper_str(void);\nconst char *helper_str(void) { return "+multi"; }\n');
      const base = join(dir, 'base.livepatch');
      expect((await cli(['build', a, b, '-o', base, '--xen', XEN, '--patch', 'xen_extra_version', '--json'])).code).toBe(0);
      // A second payload calling helper_str from the first: refused alone, accepted with --depends.
      const c = await gcc(
        dir,
        'upper',
        'const char *helper_str(void);\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return helper_str() + 1; }\n',
      );
      const alone = await cli(['build', c, '-o', join(dir, 'up.livepatch'), '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(alone.code).toBe(1);
      expect(alone.err).toMatch(/^xsplice: .*undefined symbol neither the objects nor the target define: helper_str/m);
      const stacked = await cli([
        'build',
        c,
        '-o',
        join(dir, 'up.livepatch'),
        '--xen',
        XEN,
        '--patch',
        'xen_extra_version',
        '--depends',
        base,
        '--json',
      ]);
      expect(stacked.code).toBe(0);
      const baseId = JSON.parse(
        (await cli(['build', a, b, '-o', join(dir, 'base2.livepatch'), '--xen', XEN, '--patch', 'xen_extra_version', '--json'])).out,
      ).buildId;
      expect(JSON.parse(stacked.out).depends).toBe(baseId);
      const dup = await gcc(dir, 'dup', 'const char *helper_str(void);\nconst char *helper_str(void) { return "+dup"; }\n');
      const twice = await cli(['build', a, b, dup, '-o', join(dir, 'd.livepatch'), '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(twice.code).toBe(1);
      expect(twice.err).toMatch(/symbol helper_str: global symbol defined twice \(in .*multi_b\.o and .*dup\.o\)/);
    });

    it('a strong definition wins over a weak one, as with a linker', async () => {
      const w = await gcc(
        dir,
        'weak_a',
        '__attribute__((weak)) const char *helper_w(void);\n__attribute__((weak)) const char *helper_w(void) { return "+weak"; }\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return helper_w(); }\n',
      );
      const st = await gcc(dir, 'weak_b', 'const char *helper_w(void);\nconst char *helper_w(void) { return "+strong"; }\n');
      const out = join(dir, 'weak.livepatch');
      const r = await cli(['build', w, st, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(r.code, r.err).toBe(0);
      const syms = (await exec('readelf', ['-sW', out])).stdout.split('\n').filter((l) => / helper_w$/.test(l));
      expect(syms).toHaveLength(1);
      expect(syms[0]).toMatch(/FUNC\s+GLOBAL/);
      // Both objects have a .text.helper_w; the symbol must be in the second one (weak_b.o's).
      const idx = [...(await exec('readelf', ['-SW', out])).stdout.matchAll(/\[\s*(\d+)\] \.text\.helper_w /g)].map((m) => Number(m[1]));
      expect(idx).toHaveLength(2);
      expect(Number(syms[0]!.trim().split(/\s+/)[6])).toBe(Math.max(...idx));
      const rel = (await exec('readelf', ['-rW', out])).stdout;
      expect(rel).toMatch(/R_X86_64_PLT32\s+0+\s+helper_w - 4/);
    });

    it('what it builds for each release passes `xsplice verify` for that release (another implementation of the checks)', async () => {
      const hook = await gcc(
        dir,
        'vhook',
        'int vhook_pre(void *p);\nint vhook_pre(void *p) { (void)p; return 0; }\nvoid vhook_load(void);\nvoid vhook_load(void) {}\n',
      );
      for (const v of [
        '4.7.0',
        '4.9.0',
        '4.13.0',
        '4.14.0',
        '4.15.3',
        '4.16.4',
        '4.17.0',
        '4.17.2',
        '4.17.7',
        '4.18.0',
        '4.19.0',
        '4.21.0',
      ]) {
        const out = join(dir, `ver-${v}.livepatch`);
        const minor = Number(v.split('.')[1]);
        // 4.7: no hooks, no NOPs; 4.8+: load hooks and NOPs; 4.14+: pre-apply hooks and expectations.
        const extra =
          minor < 8
            ? []
            : [
                '--hook',
                'load=vhook_load',
                '--nop',
                'xen_minor_version:5',
                ...(minor >= 14 ? ['--hook', 'pre-apply=vhook_pre', '--expect'] : []),
              ];
        const b = await cli(['build', good, hook, '-o', out, '--xen', XEN, '--xen-version', v, '--patch', 'xen_extra_version', ...extra]);
        expect(b.code, `${v}: ${b.err}`).toBe(0);
        const r = await cli(['verify', out, '--xen', XEN, '--xen-version', v, '--json']);
        const j = JSON.parse(r.out);
        expect(r.code, `${v}: ${JSON.stringify(j.payloads?.[0]?.diagnostics ?? j)}`).toBe(0);
        expect(j.ok).toBe(true);
      }
    });

    // ---- Refusals: what the hypervisor would refuse, exit 1 with the reason --------------------
    // The code is verify's name for the same check (src/payload/refusal-codes.ts); the alias, build's former code.
    const refusals: [string, () => Promise<string[]>, RegExp, string, string?][] = [
      [
        'R_X86_64_32S (code not built -fpic)',
        async () => [
          await gcc(
            dir,
            'r32s',
            'static const char s[] = "+k";\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return s; }\n',
            ['-mcmodel=kernel', '-fno-pic'],
            CFLAGS.filter((f) => f !== '-fpic'),
          ),
          '--patch',
          'xen_extra_version',
        ],
        /relocation type R_X86_64_32S \(11\) at 0x[0-9a-f]+ is not handled by the hypervisor's loader: compile with -fpic, as the hypervisor is built/,
        'RELOC_UNHANDLED',
        'BUILD_RELOC_TYPE',
      ],
      [
        'old_size below the 5-byte jump',
        async () => [
          await gcc(dir, 'small', 'void __set_fixmap_x(void *d);\nvoid __set_fixmap_x(void *d) { (void)d; }\n'),
          '--patch',
          '__set_fixmap_x',
        ],
        /symbol __set_fixmap_x: __set_fixmap_x is 2 bytes, smaller than the 5-byte patch; the hypervisor would refuse it \(-EINVAL\) \(expected old_size ≥ 5, found 2\)/,
        'FUNC_OLD_SIZE',
        'BUILD_OLD_TOO_SMALL',
      ],
      [
        'a symbol neither the objects nor the target define',
        async () => [
          await gcc(
            dir,
            'undef',
            'const char *no_such_xen_fn(void);\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return no_such_xen_fn(); }\n',
          ),
          '--patch',
          'xen_extra_version',
        ],
        /undefined symbol neither the objects nor the target define: no_such_xen_fn; the hypervisor would refuse the upload \("Unknown symbol"\)/,
        'SYM_UNKNOWN',
        'BUILD_UNDEFINED',
      ],
      [
        'a static of the target named without its file',
        async () => [good, '--patch', 'add_entry=xen_extra_version'],
        /"add_entry" is a local \(static\) symbol in the target: name it as file#name \(common\/hypfs\.c#add_entry, common\/timer\.c#add_entry\)/,
        'SYMBOL_LOCAL',
      ],
      [
        'a new symbol that the hypervisor already has',
        async () => [
          await gcc(
            dir,
            'dupnew',
            'const char *xen_changeset(void);\nconst char *xen_changeset(void) { return "x"; }\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return xen_changeset(); }\n',
          ),
          '--patch',
          'xen_extra_version',
        ],
        /symbol xen_changeset: xen_changeset would be a new symbol of the payload, but the hypervisor already has one of that name; the hypervisor would refuse the upload \("duplicate new symbol", -EEXIST\)/,
        'DUPLICATE_SYMBOL',
        'BUILD_DUPLICATE_NEW_SYMBOL',
      ],
      [
        'a writable and executable section',
        async () => [
          await gcc(
            dir,
            'wx',
            '__asm__(".section .wxsec,\\"awx\\",@progbits\\n.byte 0xc3\\n.previous");\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return "+wx"; }\n',
          ),
          '--patch',
          'xen_extra_version',
        ],
        /section \.wxsec: section is both writable and executable/,
        'SEC_WRITE_EXEC',
        'BUILD_WX_SECTION',
      ],
      [
        'a COMMON symbol',
        async () => [
          await gcc(
            dir,
            'common',
            'int counter;\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { counter++; return "+c"; }\n',
            ['-fcommon'],
            CFLAGS.filter((f) => f !== '-fno-common'),
          ),
          '--patch',
          'xen_extra_version',
        ],
        /symbol counter: COMMON symbol: the hypervisor refuses them \("Unexpected common symbol"\); compile with -fno-common/,
        'SYM_COMMON',
        'BUILD_COMMON_SYMBOL',
      ],
      [
        'an .altinstructions section that is not whole 14-byte entries',
        async () => [
          await gcc(
            dir,
            'alt',
            '__asm__(".section .altinstr_replacement,\\"ax\\"\\n.byte 0x90\\n.section .altinstructions,\\"a\\"\\n.fill 13,1,0\\n.previous");\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return "+a"; }\n',
          ),
          '--patch',
          'xen_extra_version',
        ],
        /section \.altinstructions: size 13 is not a multiple of the 14-byte entries the hypervisor expects/,
        'SEC_WRONG_SIZE',
        'BUILD_SPECIAL_SIZE',
      ],
      [
        '.altinstructions without .altinstr_replacement',
        async () => [
          await gcc(
            dir,
            'alt2',
            '__asm__(".section .altinstructions,\\"a\\"\\n.fill 14,1,0\\n.previous");\nconst char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return "+a"; }\n',
          ),
          '--patch',
          'xen_extra_version',
        ],
        /section \.altinstructions: \.altinstructions provided, but no \.altinstr_replacement/,
        'ALT_NO_REPLACEMENT',
        'BUILD_ALT_NO_REPLACEMENT',
      ],
      [
        'a NOP longer than 31 bytes',
        async () => [good, '--nop', 'xen_extra_version:32'],
        /NOP length 32 for xen_extra_version exceeds 31 bytes/,
        'FUNC_NOP_TOO_LONG',
        'BUILD_NOP_LEN',
      ],
      [
        'two functions for a single-pointer hook',
        async () => [
          await gcc(
            dir,
            'hooks2',
            'int h1(void *p);\nint h1(void *p) { (void)p; return 0; }\nint h2(void *p);\nint h2(void *p) { (void)p; return 0; }\n',
          ),
          '--hook',
          'pre-apply=h1',
          '--hook',
          'pre-apply=h2',
        ],
        /symbol h2: hook kind pre-apply takes exactly one function/,
        'BUILD_HOOK_SINGLE',
      ],
    ];
    for (const [what, args, re, code, alias] of refusals) {
      it(`refuses ${what} (exit 1, one line naming why)`, async () => {
        const out = join(dir, `refused-${what.replace(/\W+/g, '_')}.livepatch`);
        const r = await cli(['build', ...(await args()), '-o', out, '--xen', XEN, '--json']);
        expect(r.code, r.err).toBe(1);
        expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
        expect(r.err).toMatch(/^xsplice: /);
        expect(r.err).toMatch(re);
        const j = JSON.parse(r.out);
        expect(j.ok).toBe(false);
        expect(j.error.message).toMatch(re);
        expect(j.error.code).toBe(code);
        expect(j.error.alias).toBe(alias);
        expect(existsSync(out)).toBe(false);
      });
    }

    it('usage errors exit 2: a hook kind the row lacks, nothing to patch, output over an input', async () => {
      const l1 = await cli([
        'build',
        good,
        '-o',
        join(dir, 'u.livepatch'),
        '--xen',
        XEN,
        '--xen-version',
        '4.10.0',
        '--patch',
        'xen_extra_version',
        '--hook',
        'pre-apply=xen_extra_version',
      ]);
      expect(l1.code).toBe(2);
      expect(l1.err).toMatch(/hook kind "pre-apply" does not exist in payload ABI L1-x86_64 \(it has: load, unload\)/);
      expect(l1.err).toMatch(/warning: --xen-version 4\.10\.0 wins over what XEN reveals/);
      const none = await cli(['build', good, '-o', join(dir, 'u.livepatch'), '--xen', XEN]);
      expect(none.code).toBe(2);
      expect(none.err).toMatch(/nothing to patch/);
      const badSpec = join(dir, 'bad-spec.json');
      await writeFile(badSpec, JSON.stringify({ patches: [{ old: 'xen_extra_version', oldSize: -1 }] }));
      const bs = await cli(['build', good, '-o', join(dir, 'u.livepatch'), '--xen', XEN, '--spec', badSpec]);
      expect(bs.code).toBe(2);
      expect(bs.err).toMatch(/bad-spec\.json: patches\[0\]\.oldSize: expected a 32-bit size, found -1/);
      await writeFile(badSpec, JSON.stringify({ patchez: [] }));
      expect((await cli(['build', good, '-o', join(dir, 'u.livepatch'), '--xen', XEN, '--spec', badSpec])).err).toMatch(
        /unknown key "patchez"/,
      );
      const before = await readFile(good);
      const over = await cli(['build', good, '-o', good, '--xen', XEN, '--patch', 'xen_extra_version']);
      expect(over.code).toBe(2);
      expect(over.err).toMatch(/the output would overwrite an input/);
      expect(Buffer.compare(before, await readFile(good))).toBe(0);
    });

    it('hostile objects: only the project errors (never a crash), and nothing written', async () => {
      const { buildFiles } = await import('../../src/payload/build-files.js');
      const { XspliceError } = await import('../../src/errors.js');
      const base = await readFile(good);
      let seed = 12345;
      const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
      const cases: Buffer[] = [];
      for (const cut of [0, 3, 16, 63, 64, 100, base.length >> 1, base.length - 1]) cases.push(base.subarray(0, cut));
      for (let k = 0; k < 60; k++) {
        const b = Buffer.from(base);
        // Flip bytes in the header and the section header table (where offsets and sizes live).
        const shoff = Number(b.readBigUInt64LE(0x28));
        for (let j = 0; j < 4; j++) {
          const at = rnd() < 0.3 ? Math.floor(rnd() * 64) : shoff + Math.floor(rnd() * (b.length - shoff));
          b[at] = Math.floor(rnd() * 256);
        }
        cases.push(b);
      }
      const bad = join(dir, 'hostile.o');
      const out = join(dir, 'hostile.livepatch');
      let refused = 0;
      for (const c of cases) {
        await writeFile(bad, c);
        try {
          await buildFiles({ objects: [bad], out, xen: XEN, patch: ['xen_extra_version'] });
        } catch (e) {
          expect(e, String((e as Error)?.stack)).toBeInstanceOf(XspliceError);
          refused++;
          expect(existsSync(out)).toBe(false);
          continue;
        }
        // Accepted: the mutation hit bytes that do not matter; then the payload must read back.
        const { readElf } = await import('../../src/elf/reader.js');
        expect(() => readElf(new Uint8Array(readFileSync(out)))).not.toThrow();
        await (await import('node:fs/promises')).unlink(out);
      }
      expect(refused).toBeGreaterThan(cases.length / 2);
    });

    it('leaves no temporary or partial file behind, on success or failure', () => {
      expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    });

    it('NOP patching: new_addr 0, no relocation for it, new_size = LEN', async () => {
      const out = join(dir, 'nop.livepatch');
      const r = await cli(['build', '-o', out, '--xen', XEN, '--nop', 'xen_minor_version:5', '--json']);
      expect(r.code, r.err).toBe(0);
      expect(JSON.parse(r.out).funcs[0]).toMatchObject({ name: 'xen_minor_version', newSymbol: null, newSize: 5 });
      const rel = (await exec('readelf', ['-rW', out])).stdout.split("'.rela.livepatch.funcs'")[1]!;
      expect(rel.match(/R_X86_64_64/g)).toHaveLength(1);
    });
  },
);
