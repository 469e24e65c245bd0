/** ORIG/PATCHED as two directories matched by path: identical objects skipped unparsed, removed ones refused. */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diffObjects } from '../../src/diff/index.js';
import { compile, tmp } from './compile.js';

describe('diff of two trees', () => {
  it('pairs by relative path, skips identical files without parsing, diffs the changed one', async () => {
    const d = tmp('dirs');
    const a = compile(join(d, 'src-a'), 'x', 'int xa(int v) { return v + 1; }\n', { file: 'common/x.c' });
    compile(join(d, 'o', 'arch'), 'y', 'int ya(int v) { return v * 2; }\n', { file: 'arch/y.c' });
    compile(join(d, 'p', 'arch'), 'y', 'int ya(int v) { return v * 3; }\n', { file: 'arch/y.c' });
    mkdirSync(join(d, 'o', 'common'), { recursive: true });
    mkdirSync(join(d, 'p', 'common'), { recursive: true });
    copyFileSync(a, join(d, 'o', 'common', 'x.o'));
    copyFileSync(a, join(d, 'p', 'common', 'x.o'));
    // A file that is not ELF at all, identical on both sides: never parsed, so no error.
    writeFileSync(join(d, 'o', 'common', 'junk.o'), 'not an object');
    writeFileSync(join(d, 'p', 'common', 'junk.o'), 'not an object');
    const r = await diffObjects({ orig: join(d, 'o'), patched: join(d, 'p') });
    expect(r.explain.identical).toEqual(['common/junk.o', 'common/x.o']);
    expect(r.functions.map((f) => `${f.object}:${f.status}:${f.xenName}`)).toEqual(['arch/y.o:changed:ya']);
    expect(r.objects.map((o) => o.name)).toEqual(['arch_y.lp.o']);
    expect(r.ok).toBe(true);
    // An object only in ORIG is refused.
    writeFileSync(join(d, 'o', 'common', 'gone.o'), 'x');
    const r2 = await diffObjects({ orig: join(d, 'o'), patched: join(d, 'p') });
    expect(r2.errors.map((e) => `${e.code}:${e.object}`)).toEqual(['DIFF_REMOVED_OBJECT:common/gone.o']);
  });
});

describe('tree walking', () => {
  it('leaves out partial links, tools and the intermediates of .init.o objects', async () => {
    const { linkOnly } = await import('../../src/diff/sources.js');
    const have = new Set([
      'common/kernel.o',
      'common/built_in.o',
      'prelink.o',
      'arch/x86/dmi_scan.o',
      'arch/x86/dmi_scan.init.o',
      'tools/kconfig/conf.o',
      'arch/x86/.xen-syms.0.o',
    ]);
    expect([...have].filter((r) => !linkOnly(r, have)).sort()).toEqual(['arch/x86/dmi_scan.init.o', 'common/kernel.o']);
  });
});
