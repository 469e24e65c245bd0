/**
 * The contract of cli.md (and docs/cli.md's additions) on every path, in-process: usage errors as
 * one JSON document, `ok` in every JSON result, verify's refusal lines, errors that blame the
 * right file, `-o DIR/`, inspect of non-payloads, buildid --verify without a recomputable id,
 * help texts, and livepatch-build-tools' option names.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID } from '../helpers/debian.js';
import { FIXTURE_OWN_ID, FIXTURE_XEN_ID, PayloadFixture, taggedPayload } from '../helpers/payload-fixture.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { removeTempDirs, tempDirSync } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const cli = (...argv: string[]): Promise<CliRun> => runCli(argv);

/** Exactly one JSON document on stdout. */
function oneJson(out: string): unknown {
  expect(out.trim().length).toBeGreaterThan(0);
  return JSON.parse(out);
}

const B_ID = 'bb'.repeat(20);
const C_ID = 'cc'.repeat(20);
const payload = taggedPayload;

let dir: string;
const p = (f: string): string => join(dir, f);
const XEN = ['--xen', FIXTURE_XEN_ID, '--xen-version', '4.17.7'];

beforeAll(() => {
  dir = tempDirSync('contract');
  writeFileSync(p('a.livepatch'), payload('a', FIXTURE_OWN_ID, FIXTURE_XEN_ID));
  writeFileSync(p('c.livepatch'), payload('c', C_ID, B_ID));
  writeFileSync(p('a.c'), 'int x = 1;\nint f(void) { return x; }\n');
  execFileSync('gcc', ['-O2', '-c', p('a.c'), '-o', p('a.o')]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--json: one document, also for usage errors; every result has ok', () => {
  const usage: [string, string[]][] = [
    ['unknown option (elf)', ['elf', '--json', '--bogus', 'x']],
    ['unknown option (inspect)', ['inspect', '--bogus', '--json', 'x']],
    ['missing argument (inspect)', ['inspect', '--json']],
    ['missing argument (verify)', ['verify', '--json']],
    ['unknown option (build)', ['build', '--json', '--frob']],
    ['unknown option (buildid)', ['buildid', '--json', '--frob', 'x']],
    ['missing argument (buildid set)', ['buildid', 'set', '--json']],
    ['unknown command', ['frobnicate', '--json']],
  ];
  for (const [what, argv] of usage) {
    it(`${what}: exit 2, one stderr line, and { ok: false, error } on stdout`, async () => {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^xsplice: /);
      const doc = oneJson(r.out) as { ok: boolean; error: { code: string; message: string } };
      expect(doc).toMatchObject({ ok: false, error: { code: 'USAGE' } });
      expect(r.err).toContain(doc.error.message);
    });
  }

  it('without --json a usage error prints nothing on stdout', async () => {
    const r = await cli('inspect', '--bogus', 'x');
    expect([r.code, r.out]).toEqual([2, '']);
  });

  it('elf, inspect, buildid, buildid set, verify and build --abi help: ok in each JSON result', async () => {
    const elf = oneJson((await cli('elf', '--json', p('a.o'))).out) as Record<string, unknown>;
    expect(elf.ok).toBe(true);
    const ins = oneJson((await cli('inspect', '--json', p('a.livepatch'))).out) as Record<string, unknown>;
    expect(ins.ok).toBe(true);
    const ids = await cli('buildid', '--json', p('a.livepatch'), 'ee'.repeat(20), p('missing.o'));
    expect(ids.code).toBe(2);
    const arr = oneJson(ids.out) as Record<string, unknown>[];
    expect(arr.map((x) => x.ok)).toEqual([true, true, false]);
    execFileSync('cp', [p('a.o'), p('set.o')]);
    const set = oneJson((await cli('buildid', 'set', p('set.o'), '--json')).out) as Record<string, unknown>;
    expect(set.ok).toBe(true);
    const v = oneJson((await cli('verify', p('a.livepatch'), ...XEN, '--json')).out) as Record<string, unknown>;
    expect(v.ok).toBe(true);
    const abi = oneJson((await cli('build', '--abi', 'help', '--json')).out) as Record<string, unknown>;
    expect(abi.ok).toBe(true);
  });
});

describe('verify: one stderr line per refused payload, with what was expected and what was found', () => {
  it('a depends mismatch names both build-ids and the payload expected below', async () => {
    const r = await cli('verify', p('a.livepatch'), p('c.livepatch'), ...XEN);
    expect(r.code).toBe(1);
    const lines = r.err.split('\n').filter((l) => l.startsWith('xsplice: ') && !l.includes('warning'));
    expect(lines).toEqual([
      `xsplice: ${p('c.livepatch')}: refused at apply (EINVAL): DEPENDS_MISMATCH: livepatch: c: check against a build-id failed; expected depends ${FIXTURE_OWN_ID} (a), found ${B_ID}`,
    ]);
    // Also with --json (stdout holds the document, stderr the line).
    const j = await cli('verify', p('a.livepatch'), p('c.livepatch'), ...XEN, '--json');
    expect((oneJson(j.out) as { ok: boolean }).ok).toBe(false);
    expect(j.err).toContain(`expected depends ${FIXTURE_OWN_ID} (a), found ${B_ID}`);
  });

  it('diagnostics cite docs/rules.md#<code>, not a section of a document users do not have', async () => {
    const r = await cli('verify', p('a.livepatch'), p('c.livepatch'), ...XEN);
    expect(r.out).toContain('(docs/rules.md#depends_mismatch)');
    expect(r.out).not.toMatch(/§/);
    const j = oneJson((await cli('verify', p('c.livepatch'), ...XEN, '--json')).out) as {
      payloads: { diagnostics: { code: string; rule: string }[] }[];
    };
    for (const d of j.payloads[0]!.diagnostics) expect(d.rule).toBe(`docs/rules.md#${d.code.toLowerCase()}`);
  });

  describe.skipIf(missing("Debian's Xen 4.17 (scripts/setup-deps.sh xen)", haveDebianXen()))('against xen.efi', () => {
    it('the line says the EFI id differs from the ELF one by design and which file to use', async () => {
      const good = payload('g', FIXTURE_OWN_ID, XEN_BUILD_ID);
      writeFileSync(p('g.livepatch'), good);
      const r = await cli('verify', p('g.livepatch'), '--xen', debianXen.xenEfi);
      expect(r.code).toBe(1);
      const line = r.err.split('\n').find((l) => l.startsWith(`xsplice: ${p('g.livepatch')}: refused`));
      expect(line).toMatch(/XEN_DEPENDS_MISMATCH: .*expected xen_depends [0-9a-f]{32} \(the hypervisor\), found 39a640e6/);
      expect(line).toMatch(
        /XEN is an EFI image: its build-id [0-9a-f]{32} .* differs by design from the ELF id of xen-syms and xen\.gz; verify against xen-syms when the host boots xen\.gz/,
      );
    });
  });
});

describe('errors name the file that is wrong; outputs', () => {
  it('a directory given as an input is blamed on that input, not on the output', async () => {
    mkdirSync(p('objdir'), { recursive: true });
    const r = await cli('build', p('objdir'), '-o', p('out.livepatch'), ...XEN, '--patch', 'f');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(new RegExp(`^xsplice: ${p('objdir')}: `));
    expect(r.err).not.toContain('out.livepatch');
  });

  it('the output directory is checked before any work, and a missing one is named as such (no temporary file name)', async () => {
    // XEN does not exist either: the output's directory is what is reported.
    const r = await cli('build', p('a.o'), '-o', p('nodir/out.livepatch'), '--xen', p('no-such-xen'), '--patch', 'f', '--json');
    expect(r.code).toBe(2);
    expect(r.err).toBe(`xsplice: ${p('nodir')}: the directory of the output ${p('nodir/out.livepatch')} does not exist\n`);
    expect((oneJson(r.out) as { error: { code: string } }).error.code).toBe('OUTPUT_DIR');
    expect(r.err).not.toMatch(/\.tmp/);
    const slash = await cli('build', p('a.o'), '-o', p('nodir/'), '--xen', p('no-such-xen'), '--patch', 'f');
    expect(slash.err).toBe(`xsplice: ${p('nodir')}: output directory does not exist\n`);
  });

  it('buildid set -o DIR/ writes DIR/<file name>', async () => {
    mkdirSync(p('ids'), { recursive: true });
    const r = await cli('buildid', 'set', p('a.o'), '-o', p('ids') + '/');
    expect(r.code).toBe(0);
    expect(readdirSync(p('ids'))).toEqual(['a.o']);
  });

  describe.skipIf(missing("Debian's Xen 4.17 (scripts/setup-deps.sh xen)", haveDebianXen()))('build -o DIR/', () => {
    it('writes DIR/<first object>.livepatch, as livepatch-build users expect', async () => {
      const obj = p('xen_extra_version.o');
      const cflags = execFileSync('cat', [join(REPO, 'examples/xen-cflags')])
        .toString()
        .split(/\s+/)
        .filter(Boolean);
      execFileSync('gcc', [...cflags, '-c', join(REPO, 'examples/xen-extra-version/xen_extra_version.c'), '-o', obj]);
      mkdirSync(p('out'), { recursive: true });
      const r = await cli('build', obj, '-o', p('out') + '/', '--xen', debianXen.xenSyms, '--patch', 'xen_extra_version', '--json');
      expect(r.code).toBe(0);
      expect(readdirSync(p('out'))).toEqual(['xen_extra_version.livepatch']);
      expect(oneJson(r.out)).toMatchObject({ ok: true, file: p('out/xen_extra_version.livepatch') });
      // livepatch-build's --xen-syms is taken as --xen.
      const alias = await cli(
        'build',
        obj,
        '-o',
        p('out/alias.livepatch'),
        '--xen-syms',
        debianXen.xenSyms,
        '--patch',
        'xen_extra_version',
      );
      expect(alias.code).toBe(0);
      expect(existsSync(p('out/alias.livepatch'))).toBe(true);
      expect((await cli('verify', p('out/alias.livepatch'), '--xen-syms', debianXen.xenSyms)).code).toBe(0);
    });

    it('buildid --verify of xen.gz alone cannot recompute the id: it says so and exits 1', async () => {
      const r = await cli('buildid', '--verify', debianXen.xenGz);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/cannot verify: the id cannot be recomputed/);
    });
  });
});

describe('inspect refuses what is not a payload', () => {
  it('a relocatable object without live-patch sections: exit 2 with the reason, not a guessed ABI', async () => {
    const r = await cli('inspect', p('a.o'));
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `xsplice: ${p('a.o')}: not a live-patch payload: no .livepatch.depends, .livepatch.funcs, .xsplice.depends or .xsplice.funcs section\n`,
    );
  });

  it('a damaged funcs section is an error that says what was expected and found', async () => {
    const fx = new PayloadFixture();
    fx.section('.livepatch.funcs').data = new Uint8Array(100);
    writeFileSync(p('damaged.livepatch'), fx.build().bytes);
    const r = await cli('inspect', p('damaged.livepatch'), '--json');
    expect(r.code).toBe(2);
    expect(oneJson(r.out)).toMatchObject({ ok: false, error: { code: 'FUNCS_DAMAGED' } });
    expect(r.err).toMatch(
      /section \.livepatch\.funcs: damaged funcs section: no payload ABI reads it \(expected a multiple of an entry size: .*104 \(version 2\).*, found size 100/,
    );
  });
});

describe('buildid --verify', () => {
  it('a hex id cannot be recomputed: exit 1 and it says so', async () => {
    const r = await cli('buildid', '--verify', 'ee'.repeat(20));
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `xsplice: ${'ee'.repeat(20)}: cannot verify: the id cannot be recomputed: a hex build-id has no file to recompute it from\n`,
    );
    const j = oneJson((await cli('buildid', '--verify', '--json', 'ee'.repeat(20))).out) as Record<string, unknown>[];
    expect(j[0]).toMatchObject({ ok: false, verified: null, reason: expect.stringMatching(/no file/) });
  });

  it('a binary stripped after linking gets the hint that stripping changes the hash', async () => {
    execFileSync('ld', ['-r', '--build-id=sha1', p('a.o'), '-o', p('linked.o')]);
    expect((await cli('buildid', '--verify', p('linked.o'))).code).toBe(0);
    execFileSync('strip', ['--strip-all', p('linked.o'), '-o', p('stripped.o')]);
    const r = await cli('buildid', '--verify', p('stripped.o'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/does not verify/);
    expect(r.err).toMatch(/hint: the file has no \.symtab: stripping \(or objcopy\) after linking changes the bytes the linker hashed/);
  });
});

describe('--help', () => {
  const commands = [['elf'], ['buildid'], ['buildid', 'set'], ['build'], ['inspect'], ['verify'], ['try']];
  for (const c of commands) {
    it(`${c.join(' ')} --help: its own usage, examples, exit codes, no "(default: [])"`, async () => {
      const r = await cli(...c, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^Usage: xsplice ${c.join(' ')} `));
      expect(r.out).toMatch(/\nExamples:\n {2}xsplice /);
      expect(r.out).toMatch(/\nExit status:\n {2}0 .*\n {2}1 .*refused[\s\S]*\n {2}2 .*usage/);
      expect(r.out).not.toContain('(default: [])');
    });
  }

  it('required options are marked as required', async () => {
    const b = (await cli('build', '--help')).out.replace(/\s+/g, ' ');
    expect(b).toMatch(/-o, --output <file> .*?\.livepatch \(required\) --xen </);
    expect(b).toMatch(/--xen <xen> .*? \(required\) --xen-version/);
    const v = (await cli('verify', '--help')).out.replace(/\s+/g, ' ');
    expect(v).toMatch(/--xen <xen> .*? \(required\) --xen-version/);
  });
});

describe("livepatch-build-tools' option names", () => {
  it('--xen-syms is --xen for verify; --depends where there is none gets a suggestion (also in JSON)', async () => {
    expect((await cli('verify', p('a.livepatch'), '--xen-syms', FIXTURE_XEN_ID, '--xen-version', '4.17.7')).code).toBe(0);
    const r = await cli('verify', p('a.livepatch'), ...XEN, '--depends', FIXTURE_OWN_ID, '--json');
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      "xsplice: unknown option '--depends'\nxsplice: hint: livepatch-build's --depends ID is `xsplice build --depends PAYLOAD|HEX`\n",
    );
    expect(oneJson(r.out)).toMatchObject({ ok: false, error: { code: 'USAGE', hint: expect.stringMatching(/xsplice build --depends/) } });
    const x = await cli('build', p('a.o'), '-o', p('x.livepatch'), '--xen-depends', FIXTURE_XEN_ID);
    expect(x.err).toMatch(/hint: xsplice takes xen_depends from --xen XEN/);
  });
});
