/**
 * The build's target: every XEN form (Debian's xen-syms, xen.gz, xen.efi, hex, sysfs raw bytes,
 * `xl info`), the version each reveals, Xen's `file#name` symbol naming (checked against nm and
 * the STT_FILE order readelf shows), ambiguity, and bytes at an address (checked against objdump).
 * Plus a vendor ABI row (--abi-file) driving a whole build: own section names, entry size,
 * version and an extra hook kind, checked with readelf.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID, XEN_VERSION_STRING } from '../helpers/debian.js';
import { loadTarget, SymbolTable, type TargetSymbol } from '../../src/payload/target.js';
import { RefusedError, UsageError } from '../../src/errors.js';
import { buildFiles } from '../../src/payload/build-files.js';
import { have } from '../helpers/tools.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);

const sym = (name: string, file: string | undefined, value: bigint, bind = 0): TargetSymbol => ({
  name: file ? `${file}#${name}` : name,
  elfName: name,
  ...(file ? { file } : {}),
  value,
  size: 8n,
  type: 2,
  bind,
  shndx: 1,
});

describe('SymbolTable', () => {
  const t = new SymbolTable([
    sym('foo', 'common/a.c', 0x10n),
    sym('foo', 'common/b.c', 0x20n),
    sym('bar', 'common/a.c', 0x30n),
    sym('bar', 'common/a.c', 0x40n),
    sym('glob', undefined, 0x50n, 1),
  ]);
  it('finds globals by name and locals as file#name', () => {
    expect(t.lookup('glob').value).toBe(0x50n);
    expect(t.lookup('common/b.c#foo').value).toBe(0x20n);
  });
  it('a local named without its file: refused with the candidates', () => {
    expect(() => t.lookup('foo')).toThrow(RefusedError);
    expect(() => t.lookup('foo')).toThrow(
      /"foo" is a local \(static\) symbol in the target: name it as file#name \(common\/a\.c#foo, common\/b\.c#foo\)/,
    );
  });
  it('two symbols with one Xen name: ambiguous, with both addresses', () => {
    expect(() => t.lookup('common/a.c#bar')).toThrow(/"common\/a\.c#bar" names 2 symbols in the target \(0x30 size 8, 0x40 size 8\)/);
  });
  it('unknown names', () => {
    expect(() => t.lookup('nope')).toThrow(/the target defines no symbol "nope"/);
    expect(() => t.lookup('common/c.c#foo')).toThrow(
      /the target has no "common\/c\.c#foo"; locals of that name: common\/a\.c#foo, common\/b\.c#foo/,
    );
  });
});

describe.skipIf(missing("Debian's Xen 4.17 (scripts/setup-deps.sh xen) + binutils", haveDebianXen() && have('nm') && have('readelf')))(
  'loadTarget on Debian Xen 4.17',
  () => {
    it('xen-syms: build-id, version from the distribution string, arch, symbols', async () => {
      const t = await loadTarget(debianXen.xenSyms);
      expect(t).toMatchObject({
        buildIdHex: XEN_BUILD_ID,
        source: 'elf',
        version: XEN_VERSION_STRING,
        versionSource: 'xen_compile_system_version()',
        arch: 'x86_64',
      });
      // Every nm symbol of type t/T is found, under Xen's name (file#name for locals: the STT_FILE before it).
      const rs = (await exec('readelf', ['-sW', debianXen.xenSyms], { maxBuffer: 64 << 20 })).stdout.split('\n');
      let file: string | undefined;
      let checked = 0;
      for (const line of rs) {
        const f = line.trim().split(/\s+/);
        if (f.length < 8 || !/^\d+:$/.test(f[0]!)) continue;
        if (f[3] === 'FILE') {
          file = f[7];
          continue;
        }
        if (f[3] !== 'FUNC') continue;
        const name = f[4] === 'LOCAL' ? `${file}#${f[7]}` : f[7]!;
        const hits = t.symbols!.find(name);
        expect(
          hits.map((h) => h.value),
          name,
        ).toContain(BigInt('0x' + f[1]));
        checked++;
      }
      expect(checked).toBeGreaterThan(3000);
    });

    it('bytes at an address are what objdump shows', async () => {
      const t = await loadTarget(debianXen.xenSyms);
      const s = t.symbols!.lookup('xen_major_version');
      const od = (
        await exec('objdump', [
          '-d',
          `--start-address=0x${s.value.toString(16)}`,
          `--stop-address=0x${(s.value + 5n).toString(16)}`,
          debianXen.xenSyms,
        ])
      ).stdout;
      expect(od).toMatch(/b8 04 00 00 00\s+mov\s+\$0x4,%eax/);
      expect(Buffer.from(t.bytesAt!(s.value, 5)).toString('hex')).toBe('b804000000');
      expect(() => t.bytesAt!(0x1000n, 4)).toThrow(/no section of the target holds 4 bytes at 0x1000/);
    });

    it('xen.gz and xen.efi: the build-id and the embedded version string', async () => {
      expect(await loadTarget(debianXen.xenGz)).toMatchObject({
        buildIdHex: XEN_BUILD_ID,
        source: 'gzip-elf',
        version: XEN_VERSION_STRING,
        arch: 'x86_64',
      });
      const efi = await loadTarget(debianXen.xenEfi);
      expect(efi).toMatchObject({ source: 'pe', version: XEN_VERSION_STRING, arch: 'x86_64' });
      expect(efi.buildIdHex).toMatch(/^[0-9a-f]{32}$/); // CodeView signature: not the xen-syms note (buildid.md)
    });

    it('hex, sysfs raw bytes, xl info', async () => {
      const dir = await tempDir('target');
      expect(await loadTarget('0x' + XEN_BUILD_ID.toUpperCase())).toMatchObject({ buildIdHex: XEN_BUILD_ID, source: 'hex' });
      await writeFile(join(dir, 'buildid'), Buffer.from(XEN_BUILD_ID, 'hex'));
      expect(await loadTarget(join(dir, 'buildid'))).toMatchObject({ buildIdHex: XEN_BUILD_ID, source: 'sysfs' });
      const xl = `xen_major              : 4\nxen_minor              : 17\nxen_extra              : .7\nxen_caps               : xen-3.0-x86_64 hvm-3.0-x86_64\nbuild_id               : ${XEN_BUILD_ID}\n`;
      expect(await loadTarget('-', { stdinText: xl })).toMatchObject({
        buildIdHex: XEN_BUILD_ID,
        source: 'xl-info',
        version: '4.17.7',
        arch: 'x86_64',
      });
      await expect(loadTarget('-', { stdinText: 'build_id               : \n' })).rejects.toThrow(/has no build_id line \(or it is empty/);
      await expect(loadTarget(join(dir, 'nope'))).rejects.toThrow(/ENOENT/);
    });
  },
);

describe.skipIf(missing('Debian xen-syms + gcc + readelf', haveDebianXen() && have('gcc') && have('readelf')))(
  'a vendor row (--abi-file) drives a whole build',
  () => {
    it('own section names, 112-byte version-7 entries and a "quiesce" hook kind', async () => {
      const dir = await tempDir('vendor');
      const cflags = (await readFile(join(REPO, 'examples/xen-cflags'), 'utf8')).split(/\s+/).filter(Boolean);
      await writeFile(
        join(dir, 'f.c'),
        'const char *xen_extra_version(void);\nconst char *xen_extra_version(void) { return "+acme"; }\nint acme_q(void *p);\nint acme_q(void *p) { (void)p; return 0; }\n',
      );
      await exec('gcc', [...cflags, '-c', join(dir, 'f.c'), '-o', join(dir, 'f.o')]);
      await writeFile(
        join(dir, 'acme.json'),
        JSON.stringify({
          base: 'L2c-x86_64',
          name: 'acme',
          releases: 'ACME-HV 2.x',
          sections: { funcs: '.acme.funcs', depends: '.acme.depends', xenDepends: '.acme.xen_depends', modinfo: '.acme.info' },
          mandatory: ['.acme.depends', '.acme.xen_depends', '.note.gnu.build-id'],
          atLeastOneOf: ['.acme.funcs', '.acme.hooks.quiesce'],
          funcEntry: {
            size: 112,
            align: 8,
            version: 7,
            fields: {
              name: { offset: 0, size: 8 },
              newAddr: { offset: 8, size: 8 },
              oldAddr: { offset: 16, size: 8 },
              newSize: { offset: 24, size: 4 },
              oldSize: { offset: 28, size: 4 },
              version: { offset: 32, size: 1 },
              zeroed: [{ offset: 33, size: 47 }],
              expect: { offset: 80, size: 32 },
            },
          },
          hooks: [{ kind: 'quiesce', section: '.acme.hooks.quiesce', array: false }],
        }),
      );
      const out = join(dir, 'p.acme');
      const r = await buildFiles({
        objects: [join(dir, 'f.o')],
        out,
        xen: debianXen.xenSyms,
        abiFile: join(dir, 'acme.json'),
        patch: ['xen_extra_version'],
        hook: ['quiesce=acme_q'],
        expect: true,
      });
      expect(r.abi.id).toBe('acme-x86_64');
      const s = (await exec('readelf', ['-SW', out])).stdout;
      expect(s).toMatch(/\.acme\.funcs\s+PROGBITS\s+\S+\s+\S+\s+0+70\s/); // 112 bytes
      for (const n of ['.acme.depends', '.acme.xen_depends', '.acme.info', '.acme.hooks.quiesce']) expect(s).toContain(n);
      expect(s).not.toContain('.livepatch.');
      const funcs = (await exec('readelf', ['-x', '.acme.funcs', out])).stdout;
      // version 7 at byte 32, expectation header (enabled, len 12 → 0x19) at byte 80.
      const bytes = Buffer.from(
        [...funcs.matchAll(/^\s+0x[0-9a-f]+ ((?:[0-9a-f]{8} ?){1,4})/gm)].map((m) => m[1]!.replace(/ /g, '')).join(''),
        'hex',
      );
      expect(bytes.length).toBe(112);
      expect(bytes[32]).toBe(7);
      expect(bytes[80]).toBe(0x19);
      // The hook kind the built-in rows lack is refused for them.
      await expect(
        buildFiles({
          objects: [join(dir, 'f.o')],
          out: join(dir, 'q.livepatch'),
          xen: debianXen.xenSyms,
          patch: ['xen_extra_version'],
          hook: ['quiesce=acme_q'],
        }),
      ).rejects.toThrow(UsageError);
    });
  },
);
