/**
 * The stages of `patch` that need no Xen tree: unified diffs (parse, apply with offsets, the failing
 * hunk named), the klp-style `#line` fix (checked with gcc's own `__LINE__`), recorded-command
 * parsing, the cache's completion marker, the lock, and tool checks naming packages.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RefusedError, XspliceError } from '../../src/errors.js';
import { applyHunks, parseUnifiedDiff, toLines, type Hunk } from '../../src/patch/unified-diff.js';
import { classifyDrift, parseObjdumpLines, touchedOldLines } from '../../src/patch/drift.js';
import { fixPatchLines, insertLineDirectives, unsafeLineStarts } from '../../src/patch/linefix.js';
import { REPO } from '../helpers/debian.js';
import { readFileSync } from 'node:fs';
import { affectedObjects, parseCmdFile, splitWords } from '../../src/patch/cmdfile.js';
import { overlayCommand } from '../../src/patch/recompile.js';
import { lookupBuildId, readRecord, recordBuildId } from '../../src/patch/cache.js';
import { acquireLock } from '../../src/patch/lock.js';
import { requireTools } from '../../src/patch/tools.js';
import { checkDebianVersion } from '../../src/patch/debian-source.js';
import { applyPatches } from '../../src/patch/apply.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'xsplice-patch-unit-'));

function caught(f: () => unknown): XspliceError {
  try {
    f();
  } catch (e) {
    if (e instanceof XspliceError) return e;
    throw e;
  }
  throw new Error('expected an XspliceError');
}

const FILE = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);

function diff(hunks: string): string {
  return `diff --git a/xen/f.c b/xen/f.c\nindex 1..2 100644\n--- a/xen/f.c\n+++ b/xen/f.c\n${hunks}`;
}

describe('unified diffs', () => {
  it('parses git format-patch output and applies two hunks', () => {
    const text =
      `From abc Mon Sep 17 00:00:00 2001\nSubject: [PATCH] fix\n\n---\n xen/f.c | 2 +-\n\n` +
      diff(
        '@@ -2,3 +2,4 @@\n line 2\n-line 3\n+line 3 fixed\n+line 3b\n line 4\n@@ -20,3 +21,3 @@\n line 20\n-line 21\n+line 21 fixed\n line 22\n',
      ) +
      '-- \n2.39.2\n';
    const [fp] = parseUnifiedDiff(text, 'fix.patch');
    expect(fp!.oldPath).toBe('xen/f.c');
    expect(fp!.hunks.map((h) => [h.oldStart, h.oldLines, h.newStart, h.newLines])).toEqual([
      [2, 3, 2, 4],
      [20, 3, 21, 3],
    ]);
    const r = applyHunks(FILE, false, fp!);
    expect(r.lines.slice(0, 5)).toEqual(['line 1', 'line 2', 'line 3 fixed', 'line 3b', 'line 4']);
    expect(r.lines[21]).toBe('line 21 fixed');
    expect(r.lines.length).toBe(31);
    // After the first group the next context line (old 4) sits at new line 5: shift +1.
    expect(r.marks[0]).toEqual({ newIndex: 4, oldLine: 4, delta: 1 });
  });

  it('finds a hunk that moved (offset) and reports it', () => {
    const [fp] = parseUnifiedDiff(diff('@@ -10,3 +10,3 @@\n line 14\n-line 15\n+line 15 fixed\n line 16\n'), 'p');
    const r = applyHunks(FILE, false, fp!);
    expect(r.applied[0]!.offset).toBe(4);
    expect(r.lines[14]).toBe('line 15 fixed');
  });

  it('names the hunk that does not apply, and the line that differs', () => {
    const [fp] = parseUnifiedDiff(
      diff('@@ -2,2 +2,2 @@\n line 2\n-line 3\n+x\n@@ -7,3 +7,3 @@\n line 7\n-line 8 (as in another release)\n+line 8 fixed\n line 9\n'),
      'fix.patch',
    );
    const e = caught(() => applyHunks(FILE, false, fp!));
    expect(e).toBeInstanceOf(RefusedError);
    expect(e.code).toBe('PATCH_HUNK_FAILED');
    expect(e.message).toBe(
      'fix.patch: xen/f.c: hunk #2 (@@ -7,3 +7,3 @@) does not apply: line 8 is "line 8", the patch expects "line 8 (as in another release)"',
    );
  });

  it('refuses a truncated hunk and a file without a diff', () => {
    expect(caught(() => parseUnifiedDiff(diff('@@ -2,3 +2,3 @@\n line 2\n-line 3\n'), 'p')).code).toBe('PATCH_BAD_DIFF');
    expect(caught(() => parseUnifiedDiff('just text\n', 'p')).message).toBe('p: no unified diff in this file (no ---/+++ pair)');
  });

  it('keeps a missing final newline', () => {
    const { lines, noEol } = toLines('a\nb');
    const [fp] = parseUnifiedDiff(
      '--- a/xen/f.c\n+++ b/xen/f.c\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n',
      'p',
    );
    const r = applyHunks(lines, noEol, fp!);
    expect(r.lines).toEqual(['a', 'c']);
    expect(r.noEol).toBe(true);
  });
});

describe('#line fix (klp fix-patch-lines)', () => {
  it('puts the rest of the file back on its old numbering, as gcc sees __LINE__', () => {
    const dir = tmp();
    const src = ['int f(int x)', '{', '\treturn x;', '}', '', 'int g(void)', '{', '\treturn 7000000 + __LINE__;', '}', ''].join('\n');
    const patch = '--- a/xen/g.c\n+++ b/xen/g.c\n@@ -1,4 +1,6 @@\n int f(int x)\n {\n+\tif (x < 0)\n+\t\treturn 0;\n \treturn x;\n }\n';
    const [fp] = parseUnifiedDiff(patch, 'p');
    const { lines } = toLines(src);
    const r = applyHunks(lines, false, fp!);
    const lineOf = (text: string): string => {
      writeFileSync(join(dir, 'g.c'), text);
      return execFileSync('gcc', ['-E', '-P', join(dir, 'g.c')], { encoding: 'utf8' }).match(/7000000 \+ (\d+)/)![1]!;
    };
    expect(lineOf(r.lines.join('\n') + '\n')).toBe('10'); // without the fix: shifted by 2
    const fixed = insertLineDirectives(r.lines, r.marks);
    expect(fixed.inserted).toEqual([{ at: 4, oldLine: 3 }]);
    expect(lineOf(fixed.lines.join('\n') + '\n')).toBe('8'); // as in the base
  });

  it('never puts a directive inside a comment or a continued macro; a later place corrects the shift', () => {
    const lines = ['/* a', '   b */', '#define M(x) \\', '\t(x)', 'int y;', 'int z;'];
    expect(unsafeLineStarts(lines)).toEqual([false, true, false, true, false, false]);
    const r = insertLineDirectives(lines, [
      { newIndex: 1, oldLine: 1, delta: 1 },
      { newIndex: 3, oldLine: 3, delta: 1 },
      { newIndex: 5, oldLine: 4, delta: 2 },
    ]);
    expect(r.skipped).toBe(2);
    expect(r.lines).toEqual(['/* a', '   b */', '#define M(x) \\', '\t(x)', 'int y;', '#line 4', 'int z;']);
  });

  it('inserts nothing when the shift is already zero', () => {
    const r = insertLineDirectives(['a', 'b', 'c'], [{ newIndex: 1, oldLine: 2, delta: 0 }]);
    expect(r.lines).toEqual(['a', 'b', 'c']);
  });
});

describe('recorded commands (.o.cmd)', () => {
  const cmd = [
    "cmd_common/kernel.o := x86_64-linux-gnu-gcc -MMD -MP -MF common/.kernel.o.d -m64 -O2 -I./include -I./arch/x86/include '-D__OBJECT_LABEL__=common/kernel.o' -c common/kernel.c -o common/.kernel.o.tmp -MQ common/kernel.o",
    '',
    'source_common/kernel.o := common/kernel.c',
    '',
    'deps_common/kernel.o := \\',
    '    $(wildcard include/config/x86.h) \\',
    '  include/xen/config.h \\',
    '  common/../include/xen/lib.h \\',
    '',
    'common/kernel.o: $(deps_common/kernel.o)',
    '',
  ].join('\n');

  it('parses command, source and dependencies', () => {
    const rec = parseCmdFile(cmd, '/t/xen/common/.kernel.o.cmd')!;
    expect(rec.object).toBe('common/kernel.o');
    expect(rec.source).toBe('common/kernel.c');
    expect(rec.deps).toEqual(['include/xen/config.h', 'include/xen/lib.h']);
    expect(splitWords(rec.command)).toContain('-D__OBJECT_LABEL__=common/kernel.o');
    const recs = new Map([[rec.object, rec]]);
    expect(affectedObjects(recs, ['include/xen/lib.h']).map((r) => r.object)).toEqual(['common/kernel.o']);
    expect(affectedObjects(recs, ['include/xen/sched.h'])).toEqual([]);
  });

  it('rewrites the command for the overlay: no dependency files, overlay includes first, prefix mapped back', () => {
    const rec = parseCmdFile(cmd, 'x')!;
    const dir = tmp();
    mkdirSync(join(dir, 'include'), { recursive: true });
    const argv = overlayCommand(rec, dir, '/out/k.o.tmp');
    expect(argv).not.toContain('-MMD');
    expect(argv).not.toContain('-MF');
    expect(argv).not.toContain('common/kernel.c');
    expect(argv.indexOf(`-I${dir}/./include`)).toBeLessThan(argv.indexOf('-I./include'));
    expect(argv).not.toContain(`-I${dir}/./arch/x86/include`); // not in the overlay
    expect(argv.slice(-6)).toEqual(['-iquote', 'common', `-ffile-prefix-map=${dir}/=`, '-o', '/out/k.o.tmp', join(dir, 'common/kernel.c')]);
  });

  it('refuses shell syntax beyond quoting', () => {
    expect(caught(() => splitWords('gcc -c a.c && rm -rf /', 'f.cmd')).message).toBe('f.cmd: shell syntax "&" in a recorded command');
    expect(splitWords(`a 'b c' "d\\"e" f\\ g`)).toEqual(['a', 'b c', 'd"e', 'f g']);
  });
});

describe('classifying what a patch touches', () => {
  const tree = tmp();
  mkdirSync(join(tree, 'xen', 'arch'), { recursive: true });
  const one = (path: string): string => {
    const f = join(tree, `${path.replace(/\W/g, '_')}.patch`);
    writeFileSync(f, `--- a/${path}\n+++ b/${path}\n@@ -1,1 +1,1 @@\n-a\n+b\n`);
    return f;
  };
  it('refuses assembly, build files, deletions and non-hypervisor-only patches with the reason', () => {
    const ov = join(tree, 'ov');
    expect(caught(() => applyPatches([one('xen/arch/x86/entry.S')], tree, ov, true)).code).toBe('PATCH_ASSEMBLY');
    expect(caught(() => applyPatches([one('xen/arch/x86/entry.S')], tree, ov, true)).message).toContain(
      'xen/arch/x86/entry.S: the patch changes assembly',
    );
    expect(caught(() => applyPatches([one('xen/common/Makefile')], tree, ov, true)).code).toBe('PATCH_BUILD_FILES');
    expect(caught(() => applyPatches([one('tools/libs/ctrl/xc_domain.c')], tree, ov, true)).message).toContain(
      'the patches touch no hypervisor file (only tools/libs/ctrl/xc_domain.c)',
    );
    const del = join(tree, 'del.patch');
    writeFileSync(del, '--- a/xen/common/x.c\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-a\n');
    expect(caught(() => applyPatches([del], tree, ov, true)).code).toBe('PATCH_REMOVES_FILE');
  });
});

describe('cache, lock and tools', () => {
  it('a base without its completion marker (or whose tree is gone) is never taken as built', () => {
    const root = tmp();
    expect(readRecord(join(root, 'base.json'))).toBeUndefined();
    const tree = join(root, 'tree');
    mkdirSync(join(tree, 'xen'), { recursive: true });
    recordBuildId({ buildId: 'ab', source: 'debian:x', tree, completed: '' }, root);
    expect(lookupBuildId('ab', root)).toBeUndefined(); // no xen-syms in the tree
    writeFileSync(join(tree, 'xen', 'xen-syms'), 'x');
    expect(lookupBuildId('ab', root)?.source).toBe('debian:x');
    writeFileSync(join(root, 'by-build-id', 'cd.json'), '{"buildId": "cd", "tr');
    expect(lookupBuildId('cd', root)).toBeUndefined();
  });

  it('takes over a lock whose owner is gone, and waits for a live one', async () => {
    const dir = join(tmp(), 'l.lock');
    mkdirSync(dir);
    writeFileSync(join(dir, 'pid'), '999999999');
    const lock = await acquireLock(dir, 2000);
    let waitedFor = 0;
    await expect(acquireLock(dir, 600, (pid) => (waitedFor = pid))).rejects.toThrow(/held by process/);
    expect(waitedFor).toBe(process.pid);
    lock.release();
    (await acquireLock(dir, 500)).release();
  });

  it('names the missing programs and the packages to install', () => {
    const bin = tmp();
    writeFileSync(join(bin, 'sh'), '#!/bin/true\n', { mode: 0o755 });
    const e = caught(() => requireTools(['sh', 'flex', 'bison', 'dpkg-source'], `/nonexistent:${bin}`));
    expect(e.code).toBe('PATCH_TOOL_MISSING');
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(
      'flex, bison, dpkg-source not installed: install the Debian packages flex, bison, dpkg-dev (scripts/setup-deps.sh patch does)',
    );
  });

  it('checks Debian version strings', () => {
    expect(() => checkDebianVersion('4.17.5+72-g01140da4e8-1')).not.toThrow();
    expect(caught(() => checkDebianVersion('1.0; rm -rf /')).code).toBe('PATCH_BAD_VERSION');
  });
});

describe('progress lines', () => {
  it('one line per phase with the elapsed time, and heartbeats while a long step runs', async () => {
    const { makeProgress } = await import('../../src/patch/progress.js');
    const lines: string[] = [];
    const p = makeProgress((l) => lines.push(l), 40);
    await p.step(
      'build the base',
      () => new Promise((r) => setTimeout(r, 150)),
      () => '12 objects',
    );
    expect(lines[0]).toMatch(/^xsplice: patch: \[\s+0\.\ds\] build the base \.\.\.\n$/);
    const beats = lines.filter((l) => l.includes('still running'));
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats[0]).toMatch(/build the base: still running \(0\.\ds, 12 objects\)\n$/);
    expect(lines[lines.length - 1]).toMatch(/build the base: done in 0\.\ds\n$/);
  });
});

describe('code-generation drift (§3.2 rule 4): lines through the hunks', () => {
  const hunk = (lines: string[]): Hunk => ({
    header: '',
    index: 1,
    oldStart: 1,
    oldLines: 0,
    newStart: 1,
    newLines: 0,
    lines: lines.map((l) => ({ kind: l[0] as ' ' | '+' | '-', text: l.slice(1) })),
    oldNoEol: false,
    newNoEol: false,
  });
  it('a removed line counts itself; an insertion both neighbours', () => {
    expect(touchedOldLines(hunk([' a', ' b', '-c', '+C', ' d']), 9)).toEqual([12, 13]);
    expect(touchedOldLines(hunk([' a', '+x', ' b']), 0)).toEqual([1, 2]);
  });
  it('drift only when no touched line lies in any file span of the function (inlined lines included)', () => {
    const lines = [
      { file: 'common/a.c', line: 100 },
      { file: 'common/a.c', line: 120 },
      { file: 'include/xen/h.h', line: 7 },
    ];
    expect(classifyDrift(lines, new Map([['common/a.c', new Set([50])]]))).toEqual({
      drift: true,
      lines: [
        { file: 'common/a.c', first: 100, last: 120 },
        { file: 'include/xen/h.h', first: 7, last: 7 },
      ],
    });
    expect(classifyDrift(lines, new Map([['common/a.c', new Set([110])]]))).toMatchObject({ drift: false, why: 'touched' });
    expect(classifyDrift(lines, new Map([['include/xen/h.h', new Set([7])]]))).toMatchObject({ drift: false, why: 'touched' });
    expect(classifyDrift(lines, new Map([['common/a.c', null]]))).toMatchObject({ drift: false, why: 'unknown' });
    expect(classifyDrift([], new Map())).toMatchObject({ drift: false, why: 'unknown' });
  });
  it('reads objdump -dl lines relative to xen/', () => {
    const out = 'f():\n/t/xen/common/a.c:12\n   0:\tret\n./include/xen/b.h:3 (discriminator 1)\nxen/common/c.c:4\n';
    expect(parseObjdumpLines(out, '/t/xen')).toEqual([
      { file: 'common/a.c', line: 12 },
      { file: 'include/xen/b.h', line: 3 },
      { file: 'xen/common/c.c', line: 4 },
    ]);
  });
});

describe('xsplice linefix (diff.md §8.7): the #line fix printed as a patch', () => {
  // Two hunks with shifting groups (+2, then -1 +0), a replace that does not shift, a comment.
  const src = [
    'int f(int x)',
    '{',
    '\treturn x;',
    '}',
    '',
    '/* keep',
    ' * this */',
    'int h(int y)',
    '{',
    '\ty++;',
    '\ty--;',
    '\treturn y;',
    '}',
    '',
    'int g(void)',
    '{',
    '\treturn 7000000 + __LINE__;',
    '}',
    '',
  ];
  const patch =
    'From: someone\nSubject: [PATCH] fix\n\n---\n' +
    '--- a/xen/common/g.c\n+++ b/xen/common/g.c\n@@ -1,4 +1,6 @@\n int f(int x)\n {\n+\tif (x < 0)\n+\t\treturn 0;\n \treturn x;\n }\n' +
    '@@ -9,5 +11,4 @@ int h(int y)\n {\n-\ty++;\n-\ty--;\n+\ty += 0;\n \treturn y;\n }\n-- \n2.39\n';
  it("applies (GNU patch) to the same file as the patch command's own fix, and __LINE__ below keeps its value", () => {
    const dir = tmp();
    mkdirSync(join(dir, 'tree', 'xen', 'common'), { recursive: true });
    writeFileSync(join(dir, 'tree', 'xen', 'common', 'g.c'), src.join('\n'));
    writeFileSync(join(dir, 'fix.patch'), patch);
    const r = fixPatchLines(patch, 'fix.patch');
    expect(r.inserted).toEqual([
      { file: 'xen/common/g.c', oldLine: 3 },
      { file: 'xen/common/g.c', oldLine: 12 },
    ]);
    expect(r.text).toContain('@@ -1,4 +1,7 @@\n int f(int x)\n {\n+\tif (x < 0)\n+\t\treturn 0;\n+#line 3\n \treturn x;');
    expect(r.text).toContain('@@ -9,5 +12,5 @@ int h(int y)\n');
    expect(r.text.startsWith('From: someone\nSubject: [PATCH] fix\n')).toBe(true);
    // The patch command's fix (whole file known) ...
    applyPatches([join(dir, 'fix.patch')], join(dir, 'tree'), join(dir, 'ov'), true);
    const viaPatchCommand = readFileSync(join(dir, 'ov', 'common', 'g.c'), 'utf8');
    // ... equals GNU patch applying linefix's output.
    writeFileSync(join(dir, 'fixed.patch'), r.text);
    execFileSync('patch', ['-p1', '-s', '-i', join(dir, 'fixed.patch')], { cwd: join(dir, 'tree') });
    const viaGnuPatch = readFileSync(join(dir, 'tree', 'xen', 'common', 'g.c'), 'utf8');
    expect(viaGnuPatch).toBe(viaPatchCommand);
    const line = execFileSync('gcc', ['-E', '-P', '-x', 'c', '-'], { input: viaGnuPatch, encoding: 'utf8' }).match(/7000000 \+ (\d+)/)![1];
    expect(line).toBe('17'); // as in the base
  });
  it('the CLI prints it; a malformed patch exits 2 with one line', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'fix.patch'), patch);
    const out = execFileSync(process.execPath, [join(REPO, 'bin', 'xsplice'), 'linefix', join(dir, 'fix.patch')], { encoding: 'utf8' });
    expect(out).toBe(fixPatchLines(patch, 'x').text);
    writeFileSync(join(dir, 'bad.patch'), '--- a/xen/x.c\n+++ b/xen/x.c\n@@ -1,3 +1,3 @@\n a\n');
    const bad = spawnSync(process.execPath, [join(REPO, 'bin', 'xsplice'), 'linefix', join(dir, 'bad.patch')], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^xsplice: .*bad\.patch: .*truncated/)]);
  });
});
