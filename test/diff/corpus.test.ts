/**
 * The synthetic corpus of spec §6.4 stage 3: ORIG/PATCHED pairs compiled by gcc here with the
 * hypervisor's flags, with and without -g. Each case asserts the exact function set and reasons.
 */
import { describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/reader.js';
import { diffObjects, type DiffResult } from '../../src/diff/index.js';
import { abiForVersion } from '../../src/payload/abi.js';
import { join } from 'node:path';
import { CFLAGS, CORPUS, compile, pair, tmp } from './compile.js';

const H = '#include "xen-mini.h"\nstruct domain { int id; };\n';

async function run(
  name: string,
  orig: string,
  patched: string,
  g: boolean,
  extra: { includeLineOnly?: boolean; allow?: string[] } = {},
): Promise<DiffResult> {
  const p = pair(name, H + orig, H + patched, { g });
  return diffObjects({ orig: p.orig, patched: p.patched, ...extra });
}
const set = (r: DiffResult, status?: string): string[] =>
  r.functions
    .filter((f) => !status || f.status === status)
    .map((f) => `${f.status}:${f.xenName ?? f.name}`)
    .sort();
const included = (r: DiffResult): string[] =>
  r.functions
    .filter((f) => f.included)
    .map((f) => f.xenName ?? f.name)
    .sort();
const codes = (r: DiffResult): string[] => r.errors.map((e) => e.code);
const sections = (r: DiffResult): string[] =>
  r.objects[0]
    ? readElf(r.objects[0].bytes)
        .sections.map((s) => s.name)
        .filter(Boolean)
    : [];

for (const g of [false, true]) {
  describe(`diff corpus (${g ? 'with' : 'without'} -g)`, () => {
    it('changed global and static functions, referencing unchanged statics by file#name', async () => {
      const base =
        'static int table[4] = {1,2,3,4};\nstatic noinline int helper(int x) { return x * 3 + table[x & 3]; }\nint api(int x) { return helper(x) + 1; }\nint other(int x) { return x - 1; }\n';
      const r = await run('glob', base, base.replace('x * 3', 'x * 5').replace('+ 1;', '+ 2;'), g);
      expect(set(r)).toEqual(['changed:api', 'changed:glob.c#helper']);
      expect(r.ok).toBe(true);
      expect(r.patches.map((p) => p.old).sort()).toEqual(['api', 'glob.c#helper']);
      const ext = r.explain.objects[0]!.external.map((e) => e.name);
      expect(ext).toContain('glob.c#table');
      expect(r.functions.find((f) => f.name === 'helper')!.reason).toMatch(/lea .*\(%rdi,%rdi,2\).*→.*\(%rdi,%rdi,4\)/);
    });

    it('a new function is included under a deterministic name and pulled in by its caller', async () => {
      const o = 'int api(int x) { return x + 1; }\n';
      const p = 'static noinline int lp_new_check(int x) { return x > 10 ? 10 : x; }\nint api(int x) { return lp_new_check(x) + 1; }\n';
      const r = await run('newfn', o, p, g);
      expect(set(r)).toEqual(['changed:api', 'new:lp_new_check']);
      expect(r.patches.map((q) => q.old)).toEqual(['api']);
      const syms = readElf(r.objects[0]!.bytes)
        .symbols()
        .map((s) => s.name);
      expect(syms).toContain(`lp_new_check.lp${r.inputDigest.slice(0, 8)}`);
    });

    it('a changed string: only the referenced strings are copied', async () => {
      const o = 'const char *xen_extra_version(void) { return "-one"; }\nconst char *unrelated(void) { return "keep-me-out"; }\n';
      const r = await run('str', o, o.replace('-one', '-two'), g);
      expect(set(r)).toEqual(['changed:xen_extra_version']);
      expect(r.explain.objects[0]!.copied).toEqual([{ kind: 'string', name: '"-two"', size: 5 }]);
      expect(r.functions[0]!.reason).toContain('str:-one');
    });

    it('a new static local is new data, copied with a warning', async () => {
      const o = 'int count(int x) { return x + 1; }\n';
      const p = 'int count(int x) { static int seen; seen += x; return x + seen; }\n';
      const r = await run('newstatic', o, p, g);
      expect(set(r)).toEqual(['changed:count']);
      expect(r.data.map((d) => `${d.status}:${d.name}`)).toEqual(['new:seen.0']);
      expect(r.warnings.join()).toMatch(/new data seen\.0/);
      expect(r.ok).toBe(true);
    });

    it('renumbered statics (calls.0 → calls.1) pair and are referenced as the running name', async () => {
      const o = 'int f(int x) { static int calls; calls++; return x + calls; }\n';
      const p =
        'int g(int x) { static int calls; calls += 2; return calls; }\nint f(int x) { static int calls; calls++; return x + calls + 1; }\n';
      const r = await run('renum', o, p, g);
      expect(set(r)).toEqual(['changed:f', 'new:g']);
      const ext = r.explain.objects[0]!.external.map((e) => e.name);
      expect(ext).toEqual(expect.arrayContaining(['renum.c#calls.0']));
      // f's counter is the running one; g's is new (whichever number gcc gave each).
      const newData = r.data.filter((d) => d.status === 'new').map((d) => d.name);
      expect(newData).toHaveLength(1);
      expect(newData[0]).toMatch(/^calls\.\d$/);
    });

    it('data-only change: DIFF_DATA_ONLY, never "no change"', async () => {
      const o = 'int opt_level = 3;\nint get(void) { return 1; }\n';
      const r = await run('dataonly', o, o.replace('= 3', '= 4'), g);
      expect(r.ok).toBe(false);
      expect(codes(r)).toEqual(['DIFF_DATA_ONLY', 'DIFF_CHANGED_DATA']);
      expect(r.errors[1]!.symbol).toBe('opt_level');
      expect(r.errors[1]!.message).toMatch(/first differing byte \+0x0/);
    });

    it('changed initialiser used by changed code: refused, naming it', async () => {
      const o = 'static int limit = 3;\nvoid set_limit(int v) { limit = v; }\nint check(int x) { return x > limit; }\n';
      const r = await run('initval', o, o.replace('= 3', '= 4').replace('x > limit', 'x >= limit'), g);
      expect(codes(r)).toEqual(['DIFF_CHANGED_DATA']);
      expect(r.errors[0]!.symbol).toBe('initval.c#limit');
      expect(set(r)).toEqual(['changed:check']);
      expect(r.errors[0]!.suggestion).toMatch(/LIVEPATCH_LOAD_HOOK/);
    });

    it('identical inputs: DIFF_NO_FUNCTIONAL_CHANGE', async () => {
      const o = 'int f(int x) { return x; }\n';
      const r = await run('ident', o, o, g);
      expect(codes(r)).toEqual(['DIFF_NO_FUNCTIONAL_CHANGE']);
      // Without -g the two compiles are byte-identical (skipped unparsed); with -g only the
      // DWARF (compilation directory) differs, and no symbol does.
      if (g) expect(r.explain.equivalent).toEqual(['ident.o']);
      else expect(r.explain.identical).toEqual(['ident.o']);
    });

    it('__LINE__-only via domain_crash and via bug frames: excluded and listed, both ways', async () => {
      const body =
        'int a(struct domain *d, int x) { if (x > 5) domain_crash(d); return x; }\nint b(int x) { BUG_ON(x == 7); return x + 1; }\nint c(int x) { return x * 2; }\n';
      const o = `${body}`;
      const p = `\n\n\n${body.replace('x * 2', 'x * 3')}`;
      const r = await run('line', o, p, g);
      expect(set(r)).toEqual(['changed:c', 'line-only:a', 'line-only:b']);
      expect(included(r)).toEqual(['c']);
      const a = r.functions.find((f) => f.name === 'a')!;
      expect(a.reason).toMatch(/__LINE__ immediates passed to printk differ \[\d+\]→\[\d+\]/);
      expect(a.lines!.patched[0]! - a.lines!.orig[0]!).toBe(3);
      const bb = r.functions.find((f) => f.name === 'b')!;
      expect(bb.reason).toMatch(/bug-frame line numbers/);
      expect(bb.lines!.patched[0]! - bb.lines!.orig[0]!).toBe(3);
      const r2 = await run('line2', o, p, g, { includeLineOnly: true });
      expect(included(r2)).toEqual(['a', 'b', 'c']);
      // Lines shifting the other way, with nothing else: no functional change.
      const r3 = await run('line3', `\n\n${body}`, body, g);
      expect(codes(r3)).toEqual(['DIFF_NO_FUNCTIONAL_CHANGE']);
      expect(r3.errors[0]!.message).toMatch(/a: __LINE__ immediates; b: bug-frame lines/);
    });

    it('special sections are cut per function (bug frames, ex_table + .fixup, alternatives repacked)', async () => {
      const fns = (k: number) =>
        `int guarded(const int *p) { int v; if (read_guarded(p, &v)) return -1; alternative("clac", "", 0x26b); return v + ${k}; }\n` +
        'int other(const int *p) { int v; if (read_guarded(p, &v)) return -2; alternative("nop; nop; nop", "stac", 0x26f); WARN(); return v; }\n' +
        `int bugger(int x) { BUG_ON(x == 3); alternative("nop", "call printk", 0x26f); return x + ${k}; }\n`;
      const r = await run('special', fns(1), fns(2), g);
      expect(set(r)).toEqual(['changed:bugger', 'changed:guarded']);
      const elf = readElf(r.objects[0]!.bytes);
      const size = (n: string) => Number(elf.sectionByName(n)?.size ?? -1n);
      expect(size('.ex_table')).toBe(8);
      expect(size('.altinstructions')).toBe(28);
      expect(size('.bug_frames.2')).toBe(8);
      expect(size('.bug_frames.1')).toBe(-1);
      // Replacement bytes: "" (0) + "call printk" (5) kept, "stac" (3) of `other` dropped.
      expect(size('.altinstr_replacement')).toBe(5);
      expect(size('.fixup')).toBeGreaterThan(0);
      const rel = elf.relocations().find((x) => elf.sections[x.target]!.name === '.altinstr_replacement')!;
      expect(rel.entries.map((e) => elf.symbols()[e.symbol]!.name)).toEqual(['printk']);
      expect(sections(r)).not.toContain('.discard');
    });

    it('__init change: DIFF_INIT_CHANGED, or listed with --allow init', async () => {
      const o = 'int __init boot_thing(void) { return 42; }\nint rt(int x) { return x; }\n';
      const p = o.replace('42', '43');
      const r = await run('initc', o, p, g);
      expect(codes(r)).toContain('DIFF_INIT_CHANGED');
      expect(r.errors[0]!.symbol).toBe('boot_thing');
      const r2 = await run('initc2', o, p, g, { allow: ['init'] });
      expect(codes(r2)).toEqual(['DIFF_NO_FUNCTIONAL_CHANGE']);
    });

    it('a reference to __initdata from changed code: DIFF_INIT_REFERENCE', async () => {
      const o = 'int __initdata boot_opt = 5;\nint rt(int x) { return x; }\n';
      const r = await run('initref', o, o.replace('return x;', 'return x + boot_opt;'), g);
      expect(codes(r)).toEqual(['DIFF_INIT_REFERENCE']);
      expect(r.errors[0]!.symbol).toBe('boot_opt');
    });

    it('a new per-cpu variable: DIFF_NEW_PERCPU', async () => {
      const o = 'int rt(int x) { return x; }\n';
      const r = await run('percpu', o, 'DEFINE_PER_CPU(int, hits);\nint rt(int x) { this_cpu(hits)++; return x; }\n', g);
      expect(codes(r)).toEqual(['DIFF_NEW_PERCPU']);
      expect(r.errors[0]!.symbol).toBe('per_cpu__hits');
    });

    it('a hook written in the patch becomes a hook request', async () => {
      const o = 'int rt(int x) { return x; }\n';
      const p = 'static void lp_load(void) { printk("loaded\\n"); }\nLIVEPATCH_LOAD_HOOK(lp_load);\nint rt(int x) { return x + 1; }\n';
      const r = await run('hook', o, p, g);
      expect(r.hooks).toEqual([{ kind: 'load', symbol: `lp_load.lp${r.inputDigest.slice(0, 8)}` }]);
      expect(set(r)).toEqual(['changed:rt', 'new:lp_load']);
      expect(sections(r).some((s) => s.startsWith('.livepatch'))).toBe(false);
    });

    it('a .cold child whose only change is in the cold part changes its parent', async () => {
      const o =
        'extern void report(const char *m, int x) __attribute__((cold));\nextern int work(int);\n' +
        'int parent(int x) { int i, s = 0; for (i = 0; i < x; i++) { if (unlikely(work(i) < 0)) { report("one", i); s -= work(i + 1); continue; } s += work(i * 2); } return s; }\n';
      const r = await run('cold', o, o.replace('"one"', '"two"'), g);
      expect(set(r)).toEqual(['changed:parent']);
      const secs = sections(r);
      expect(secs.some((s) => s.startsWith('.text.unlikely.'))).toBe(true);
      expect(r.patches.map((p) => p.old)).toEqual(['parent']);
      expect(r.functions[0]!.reason).toMatch(/special-section entries or \.cold part/);
      expect(r.explain.objects[0]!.copied.map((c) => c.name)).toEqual(['"two"']);
    });

    it('printk_once flags are referenced in place (file#once_.N), never copied', async () => {
      const o = 'int rt(int x) { printk_once("hello\\n"); return x; }\n';
      const r = await run('once', o, o.replace('return x;', 'return x + 1;'), g);
      expect(set(r)).toEqual(['changed:rt']);
      expect(r.explain.objects[0]!.external.map((e) => e.name)).toContain('once.c#once_.0');
    });
  });
}

describe('diff corpus: clones, frames, tables', () => {
  it('two .constprop clones with swapped numbering pair by content; the caller references the running number', async () => {
    const src =
      'extern int sink(int);\nstatic noinline int clone_a(int x) { return sink(x * 7) + 1; }\nstatic noinline int clone_b(int x) { return sink(x * 11) - 1; }\n' +
      'int use_a(int x) { return clone_a(x) + K; }\nint use_b(int x) { return clone_b(x); }\n';
    const d = tmp('constprop');
    const { execFileSync } = await import('node:child_process');
    // gcc -O2 makes one clone per function (no -fipa-cp-clone); the renumbering between two builds is
    // reproduced by naming the two specialisations the way gcc would, swapped in PATCHED.
    const o = compile(join(d, 'o'), 'cp', H + src.replace('K', '1'));
    const p = compile(join(d, 'p'), 'cp', H + src.replace('K', '2'));
    execFileSync('objcopy', ['--redefine-sym', 'clone_a=spec.constprop.0', '--redefine-sym', 'clone_b=spec.constprop.1', o]);
    execFileSync('objcopy', ['--redefine-sym', 'clone_a=spec.constprop.1', '--redefine-sym', 'clone_b=spec.constprop.0', p]);
    const r = await diffObjects({ orig: o, patched: p });
    expect(set(r)).toEqual(['changed:use_a']);
    expect(r.explain.objects[0]!.external.map((e) => e.name)).toContain('cp.c#spec.constprop.0');
    // Both clones changed: content cannot pair them, their callers can (level 4).
    const p2 = compile(join(d, 'p2'), 'cp', H + src.replace('K', '2').replace('x * 7', 'x * 8').replace('x * 11', 'x * 12'));
    execFileSync('objcopy', ['--redefine-sym', 'clone_a=spec.constprop.1', '--redefine-sym', 'clone_b=spec.constprop.0', p2]);
    const r2 = await diffObjects({ orig: o, patched: p2 });
    expect(
      r2.functions
        .filter((f) => f.status === 'changed')
        .map((f) => `${f.name}<-${f.xenName}`)
        .sort(),
    ).toEqual(['spec.constprop.0<-cp.c#spec.constprop.1', 'spec.constprop.1<-cp.c#spec.constprop.0', 'use_a<-use_a']);
    // Changed and referenced by nothing that tells them apart: refused, never guessed.
    const lone =
      'extern int sink(int);\n__attribute__((used)) static noinline int clone_a(int x) { return sink(x * K); }\n__attribute__((used)) static noinline int clone_b(int x) { return sink(x * J); }\n';
    const o3 = compile(join(d, 'o3'), 'cp', H + lone.replace('K', '7').replace('J', '11'));
    const p3 = compile(join(d, 'p3'), 'cp', H + lone.replace('K', '8').replace('J', '12'));
    execFileSync('objcopy', ['--redefine-sym', 'clone_a=spec.constprop.0', '--redefine-sym', 'clone_b=spec.constprop.1', o3]);
    execFileSync('objcopy', ['--redefine-sym', 'clone_a=spec.constprop.1', '--redefine-sym', 'clone_b=spec.constprop.0', p3]);
    const r3 = await diffObjects({ orig: o3, patched: p3 });
    expect(codes(r3)).toEqual(['DIFF_AMBIGUOUS_CORRELATION']);
    expect(r3.errors[0]!.message).toMatch(/ORIG spec\.constprop\.0.*ORIG spec\.constprop\.1.*PATCHED/);
  });

  it('assert frames (.bug_frames.3) are cut with their 16-byte entries; line-only asserts recognised', async () => {
    const src = (k: number) => `int f1(int x) { ASSERT(x != 3); return x + ${k}; }\nint f2(int x) { ASSERT(x > 0); return x * 2; }\n`;
    const r = await run('assert', src(1), `\n${src(2)}`, false);
    expect(set(r)).toEqual(['changed:f1', 'line-only:f2']);
    const elf = readElf(r.objects[0]!.bytes);
    expect(Number(elf.sectionByName('.bug_frames.3')!.size)).toBe(16);
    const rel = elf.relocations().find((x) => elf.sections[x.target]!.name === '.bug_frames.3')!;
    expect(rel.entries.map((e) => Number(e.offset))).toEqual([0, 4, 12]);
    expect(r.explain.objects[0]!.copied.map((c) => c.name)).toEqual(expect.arrayContaining(['"x != 3"']));
  });

  it('run_in_exception_handler pointing at a hypervisor function: DIFF_BUGFRAME_FAR', async () => {
    const src = (k: number) =>
      `void handler(void) { printk("h\\n"); }\nint f(int x) { if (x == 9) run_in_exception_handler(handler); return x + ${k}; }\n`;
    const r = await run('far', src(1), src(2), false);
    expect(codes(r)).toEqual(['DIFF_BUGFRAME_FAR']);
    expect(r.errors[0]!.message).toMatch(/\.bug_frames\.0 entry of f points outside the payload \(handler\)/);
  });

  it('an alternative call ("call ." replacement) keeps its entry; the pointer is external', async () => {
    const src = (k: number) =>
      `extern void (*hook_ptr)(void);\nint f(int x) { alternative("call *hook_ptr(%%rip)", "call .", 0x5d); return x + ${k}; }\n`;
    const r = await run('altcall', src(1), src(2), false);
    expect(set(r)).toEqual(['changed:f']);
    const elf = readElf(r.objects[0]!.bytes);
    expect(Number(elf.sectionByName('.altinstructions')!.size)).toBe(14);
    expect([...elf.sectionByName('.altinstr_replacement')!.data()]).toEqual([0xe8, 0xfb, 0xff, 0xff, 0xff]);
    expect(r.explain.objects[0]!.external.map((e) => e.name)).toContain('hook_ptr');
  });

  it('.alt_call_sites: cut with the 4-byte stride of 4.21+ rows, refused as unknown for 4.17', async () => {
    const site =
      'asm volatile ( "1: call *fp_x(%%rip)\\n.pushsection .alt_call_sites, \\"a\\", @progbits\\n.long 1b - .\\n.popsection" ::: "memory" );';
    const src = (k: number) =>
      `extern void (*fp_x)(void);\nint f(int x) { ${site} return x + ${k}; }\nint g(int x) { ${site} return x; }\n`;
    const p = pair('acs', H + src(1), H + src(2));
    const r21 = await diffObjects({ orig: p.orig, patched: p.patched, abi: abiForVersion('4.21.0', 'x86_64') });
    expect(set(r21)).toEqual(['changed:f']);
    const elf = readElf(r21.objects[0]!.bytes);
    expect(Number(elf.sectionByName('.alt_call_sites')!.size)).toBe(4);
    const r17 = await diffObjects({ orig: p.orig, patched: p.patched, abi: abiForVersion('4.17.5', 'x86_64') });
    expect(codes(r17)).toEqual(['DIFF_UNSUPPORTED_SPECIAL']);
    expect(r17.errors[0]!.message).toMatch(/f has entries in \.alt_call_sites/);
  });

  it('init symbols renamed by TEMP_NAME (name_<__LINE__>) pair as renamed-init, harmlessly', async () => {
    const tn = '#define CAT_(a, b) a##_##b\n#define CAT(a, b) CAT_(a, b)\n#define TEMP_NAME(b) CAT(b, __LINE__)\n';
    const body = (k: number) =>
      `static const char __attribute__((used, section(".init.rodata"))) TEMP_NAME(ignored)[] = "opt";\nint rt(int x) { return x + ${k}; }\n`;
    const r = await run('tempname', tn + body(1), tn + '\n\n' + body(2), false);
    expect(set(r)).toEqual(['changed:rt']);
    expect(r.data.map((d) => `${d.status}:${d.name}`)).toEqual([expect.stringMatching(/^renamed-init:ignored_\d+$/)]);
    expect(r.ok).toBe(true);
  });

  it('FILE symbols that do not match: DIFF_FILE_MISMATCH, never a guess', async () => {
    const d = tmp('filemis');
    const o = compile(join(d, 'o'), 'fm', H + 'int f(int x) { return x; }\n', { file: 'common/fm.c' });
    const p = compile(join(d, 'p'), 'fm', H + 'int f(int x) { return x + 1; }\n', { file: 'arch/x86/fm.c' });
    const r = await diffObjects({ orig: o, patched: p });
    expect(codes(r)).toEqual(['DIFF_FILE_MISMATCH']);
    expect(r.errors[0]!.message).toMatch(/possible toolchain or config mismatch/);
  });

  it('a new registration-table entry: DIFF_REGISTRATION_TABLE', async () => {
    const o = 'int rt(int x) { return x; }\n';
    const p = 'static int __attribute__((used, section(".data.paramhypfs"))) param_x = 1;\nint rt(int x) { return x + 1; }\n';
    const r = await run('regtab', o, p, false);
    expect(codes(r)).toEqual(['DIFF_REGISTRATION_TABLE']);
    expect(r.errors[0]!.symbol).toBe('param_x');
  });

  it('an object built from assembly: DIFF_ASSEMBLY', async () => {
    const d = tmp('asm');
    const { execFileSync } = await import('node:child_process');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const mk = (sub: string, k: number): string => {
      mkdirSync(join(d, sub), { recursive: true });
      writeFileSync(
        join(d, sub, 'entry.S'),
        `.section .text.entry_fn,"ax"\n.globl entry_fn\n.type entry_fn,@function\nentry_fn: mov $${k},%eax\nret\n.size entry_fn,.-entry_fn\n`,
      );
      execFileSync('gcc', ['-c', 'entry.S', '-o', 'entry.o'], { cwd: join(d, sub) });
      return join(d, sub, 'entry.o');
    };
    const r = await diffObjects({ orig: mk('o', 1), patched: mk('p', 2) });
    expect(codes(r)).toContain('DIFF_ASSEMBLY');
  });
});

describe('hook skeleton for changed data (§8.3)', () => {
  it('writes the new initialiser at load, restores at unload; the skeleton compiles and diffs into two hooks', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdirSync, writeFileSync, copyFileSync } = await import('node:fs');
    const o = 'static int limit = 3;\nvoid set_limit(int v) { limit = v; }\nint check(int x) { return x > limit; }\n';
    const p = pair('skel', H + o, H + o.replace('= 3', '= 0x01020304'));
    const r = await diffObjects({ orig: p.orig, patched: p.patched, hookSkeleton: true });
    expect(codes(r)).toEqual(['DIFF_DATA_ONLY', 'DIFF_CHANGED_DATA']);
    expect(r.hookSkeleton).toContain('__asm__("\\"skel.c#limit\\"")');
    expect(r.hookSkeleton).toContain('{ 0x04, 0x03, 0x02, 0x01 }');
    // Compile it against stand-in headers, add it to ORIG's tree as a new object: two hooks, the variable by Xen name.
    const d = tmp('skelbuild');
    mkdirSync(join(d, 'inc', 'xen'), { recursive: true });
    writeFileSync(join(d, 'inc', 'xen', 'lib.h'), '');
    writeFileSync(join(d, 'inc', 'xen', 'string.h'), 'void *memcpy(void *, const void *, unsigned long);\n');
    writeFileSync(join(d, 'inc', 'xen', 'livepatch_payload.h'), '#include "xen-mini.h"\n');
    mkdirSync(join(d, 'o'));
    mkdirSync(join(d, 'p'));
    writeFileSync(join(d, 'p', 'lp-hooks.c'), r.hookSkeleton!);
    execFileSync('gcc', [...CFLAGS, '-I', join(d, 'inc'), '-I', CORPUS, '-c', 'lp-hooks.c', '-o', 'lp-hooks.o'], { cwd: join(d, 'p') });
    copyFileSync(p.orig, join(d, 'o', 'skel.o'));
    copyFileSync(p.orig, join(d, 'p', 'skel.o'));
    const r2 = await diffObjects({ orig: join(d, 'o'), patched: join(d, 'p') });
    expect(r2.hooks.map((h) => h.kind).sort()).toEqual(['load', 'unload']);
    expect(r2.explain.objects[0]!.external.map((e) => e.name)).toEqual(expect.arrayContaining(['skel.c#limit', 'memcpy']));
    expect(r2.errors).toEqual([]);
  });
});
