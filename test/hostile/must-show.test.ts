/**
 * Issue 14's "must show": each hostile input, given to every command that takes it, ends within
 * seconds and ~200 MB (peak RSS of the child, measured by itself) with the project's one-line
 * error: `xsplice: <file>: <what>` on stderr, exit 2 (malformed/unreadable) or 1 (refused), no
 * stack trace, no output file. Run through the CLI bundle bin/xsplice loads, in a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XEN_BUILD_ID, debianXen, haveDebianXen, missing } from '../helpers/debian.js';
import { cleanupWrapper, runChild, type ChildResult } from './child.js';
import { gzipBomb, sharedNotes, sharedRelocations } from './inputs.js';

const MAX_MS = 10_000;
const MAX_RSS_MIB = 200;
let dir: string;
const figures: { input: string; command: string; ms: number; rssMiB: number; code: number | null }[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'xs-hostile-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cleanupWrapper();
  if (process.env.XSPLICE_HOSTILE_FIGURES) writeFileSync(process.env.XSPLICE_HOSTILE_FIGURES, JSON.stringify(figures, null, 2));
});

/** The contract for a hostile input: bounded, one error line (plus detail lines), the expected exit and code text. */
function expectBoundedError(r: ChildResult, exit: number, what: RegExp, label: string, input = label): void {
  figures.push({ input, command: label, ms: Math.round(r.ms), rssMiB: Math.round(r.rssMiB), code: r.code });
  expect(r.signal, `${label}: killed (hang)`).toBeNull();
  expect(r.ms, `${label}: time`).toBeLessThan(MAX_MS);
  expect(r.rssMiB, `${label}: peak RSS MiB`).toBeLessThan(MAX_RSS_MIB);
  expect(r.code, `${label}: exit status; stderr: ${r.stderr}`).toBe(exit);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0], label).toMatch(/^xsplice: /);
  expect(r.stderr, label).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stderr.length, `${label}: error text is bounded`).toBeLessThan(4096);
  expect(r.stderr, label).toMatch(what);
}

const xen = (): string => debianXen.xenSyms;

describe.skipIf(missing("Debian's Xen packages (scripts/setup-deps.sh)", haveDebianXen()))('the hostile set, every command', () => {
  it('4,000 relocation headers sharing one block: refused as overlapping, not decoded 4,000 times', async () => {
    const f = join(dir, 'reloc-share.o');
    writeFileSync(f, sharedRelocations());
    const out = join(dir, 'out.livepatch');
    const cases: [string[], number, RegExp][] = [
      [['elf', f], 2, /ELF_OVERLAP|shares file bytes with relocation section \[4\] \.rela\.text/],
      [['elf', f, '--json'], 2, /shares file bytes with relocation section/],
      [['buildid', 'set', f, '-o', out], 2, /shares file bytes with section \[4\] \.rela\.text/],
      [
        ['build', f, '--xen', xen(), '--patch', 'do_domctl=f', '-o', out],
        2,
        /shares file bytes with section \[4\] \.rela\.text: sections of an object never overlap/,
      ],
      [['inspect', f], 2, /xsplice: /],
      [['verify', f, '--xen', xen()], 1, /xsplice: |livepatch/],
    ];
    for (const [args, exit, what] of cases) {
      const r = await runChild(args);
      const label = args.slice(0, 2).join(' ');
      if (args[0] === 'inspect') {
        // inspect reads no relocations: it may describe the file; bounded either way.
        figures.push({ input: 'reloc-share.o', command: label, ms: Math.round(r.ms), rssMiB: Math.round(r.rssMiB), code: r.code });
        expect(r.ms).toBeLessThan(MAX_MS);
        expect(r.rssMiB).toBeLessThan(MAX_RSS_MIB);
        expect([0, 1, 2], `${label}: ${r.stderr}`).toContain(r.code);
      } else if (args[0] === 'verify') {
        // Not a payload Xen would take: refused (1, diagnostics on stdout), bounded.
        figures.push({ input: 'reloc-share.o', command: label, ms: Math.round(r.ms), rssMiB: Math.round(r.rssMiB), code: r.code });
        expect(r.ms).toBeLessThan(MAX_MS);
        expect(r.rssMiB).toBeLessThan(MAX_RSS_MIB);
        expect(r.code, r.stderr).toBe(1);
        expect(r.stdout.toString()).toMatch(what);
        expect(r.stdout.length).toBeLessThan(65536);
      } else expectBoundedError(r, exit, what, label, 'reloc-share.o');
      expect(existsSync(out)).toBe(false);
    }
  });

  it('2,000 note sections sharing 4,000 notes: each note walked once, --verify bounded', async () => {
    const f = join(dir, 'note-share.o');
    writeFileSync(f, sharedNotes());
    const x = join(dir, 'note-share-xen');
    writeFileSync(x, sharedNotes(2000, 4000, 2));
    const r1 = await runChild(['buildid', '--verify', f]);
    figures.push({
      input: 'note-share.o',
      command: 'buildid --verify',
      ms: Math.round(r1.ms),
      rssMiB: Math.round(r1.rssMiB),
      code: r1.code,
    });
    expect(r1.ms).toBeLessThan(MAX_MS);
    expect(r1.rssMiB).toBeLessThan(MAX_RSS_MIB);
    expect(r1.code).toBe(1); // understood, does not verify
    expect(r1.stdout.toString()).toMatch(/^[0-9a-f]{40} {2}/);
    expect(r1.stderr).toMatch(/does not verify: .*on the first 4 of 4000 build-id notes only/);
    expect(r1.stderr.length).toBeLessThan(4096);
    const rv = await runChild(['verify', f, '--xen', x, '--xen-version', '4.17.5']);
    figures.push({ input: 'note-share.o', command: 'verify', ms: Math.round(rv.ms), rssMiB: Math.round(rv.rssMiB), code: rv.code });
    expect(rv.code).toBe(1);
    expect(rv.ms).toBeLessThan(MAX_MS);
    expect(rv.rssMiB).toBeLessThan(MAX_RSS_MIB);
    expect(rv.stdout.toString()).toMatch(/livepatch: note-share: Too many \(2005\) sections/);
    for (const [args, exit, what] of [
      [['elf', f], 2, /shares file bytes with note section/],
      [['buildid', 'set', f, '-o', join(dir, 'o.o')], 2, /shares file bytes with section/],
      [
        ['build', f, '--xen', x, '--xen-version', '4.17.5', '--patch', 'f', '-o', join(dir, 'o.livepatch')],
        2,
        /shares file bytes with section \[4\] \.note\.gnu\.build-id/,
      ],
    ] as [string[], number, RegExp][]) {
      expectBoundedError(await runChild(args), exit, what, args.slice(0, 2).join(' '), 'note-share.o');
    }
  });

  it('/dev/zero as every input: refused at once as not a regular file', async () => {
    const z = '/dev/zero';
    const o = join(dir, 'z.livepatch');
    const notRegular = /\/dev\/zero: not a regular file \(character device\)/;
    for (const args of [
      ['elf', z],
      ['elf', z, '--json'],
      ['buildid', z],
      ['buildid', '--verify', z],
      ['buildid', 'set', z],
      ['inspect', z],
      ['verify', z, '--xen', xen()],
      ['verify', o, '--xen', z],
      ['build', z, '--xen', xen(), '--patch', 'f', '-o', o],
      ['build', '--xen', z, '--nop', 'do_domctl', '-o', o],
      ['build', '--xen', xen(), '--spec', z, '-o', o],
      ['build', '--xen', xen(), '--abi-file', z, '--nop', 'do_domctl', '-o', o],
      ['build', '--xen', xen(), '--depends', z, '--nop', 'do_domctl', '-o', o],
    ]) {
      expectBoundedError(await runChild(args), 2, notRegular, args.join(' '), '/dev/zero');
      expect(existsSync(o)).toBe(false);
    }
  });

  it('an endless stdin: read up to 1 MiB, then one line', async () => {
    const o = join(dir, 'e.livepatch');
    for (const args of [
      ['buildid', '-'],
      ['verify', o, '--xen', '-'],
      ['build', '--xen', '-', '--nop', 'do_domctl', '-o', o],
    ]) {
      expectBoundedError(
        await runChild(args, { stdin: 'endless' }),
        2,
        /xsplice: -: standard input is larger than the 1048576 bytes accepted/,
        args.join(' '),
        'endless stdin',
      );
    }
  });

  it('a 10 MB gzip that inflates to 10 GiB: inflating stops at the cap', async () => {
    const g = join(dir, 'bomb.gz');
    const bytes = gzipBomb();
    expect(bytes.length).toBeGreaterThan(9_000_000);
    expect(bytes.length).toBeLessThan(12_000_000);
    writeFileSync(g, bytes);
    const o = join(dir, 'g.livepatch');
    for (const args of [
      ['buildid', g],
      ['buildid', '--verify', g],
      ['verify', o, '--xen', g],
      ['build', '--xen', g, '--nop', 'do_domctl', '-o', o],
    ]) {
      expectBoundedError(
        await runChild(args),
        2,
        /bomb\.gz: gzip data inflates to more than 67108864 bytes/,
        args.join(' '),
        '10 GiB gzip',
      );
    }
  });

  it('a payload larger than Xen accepts (2 MiB) is not read whole: verify reports UPLOAD_SIZE, inspect and --depends refuse', async () => {
    const big = join(dir, 'big.livepatch');
    writeFileSync(big, '');
    truncateSync(big, 3 * 2 ** 30); // 3 GiB, sparse
    const v = await runChild(['verify', big, '--xen', xen(), '--json']);
    figures.push({ input: '3 GiB payload', command: 'verify', ms: Math.round(v.ms), rssMiB: Math.round(v.rssMiB), code: v.code });
    expect(v.code).toBe(1);
    expect(v.rssMiB).toBeLessThan(MAX_RSS_MIB);
    expect(JSON.parse(v.stdout.toString()).payloads[0].diagnostics[0]).toMatchObject({
      code: 'UPLOAD_SIZE',
      errno: 'EINVAL',
      message: 'payload size 3221225472 is not within 1 byte … 2 MiB',
    });
    expectBoundedError(
      await runChild(['inspect', big]),
      1,
      /big\.livepatch: payload is larger than the 2097152 bytes accepted \(expected <= 2097152 bytes, found 3221225472 bytes\)/,
      'inspect',
      '3 GiB payload',
    );
    expectBoundedError(
      await runChild(['build', '--xen', xen(), '--depends', big, '--nop', 'do_domctl', '-o', join(dir, 'd.livepatch')]),
      1,
      /payload \(--depends\) is larger than the 2097152 bytes accepted/,
      'build --depends',
      '3 GiB payload',
    );
  });

  it('a FIFO, a device node and a symlink to one as -o: refused, the node left as it was', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const link = join(dir, 'link-to-null');
    execFileSync('ln', ['-s', '/dev/null', link]);
    const obj = join(dir, 'ok.o');
    writeFileSync(obj, sharedRelocations(1, 4));
    for (const dest of [fifo, '/dev/null', link]) {
      for (const args of [
        ['buildid', 'set', obj, '-o', dest],
        ['build', '--xen', xen(), '--nop', 'do_domctl', '-o', dest],
      ]) {
        const r = await runChild(args);
        expectBoundedError(
          r,
          2,
          /: is a (FIFO|character device)( \(through a symlink\))?: refusing to replace it with a file/,
          args.join(' '),
          'FIFO/device -o',
        );
      }
    }
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).filter((n) => n.includes('xsplice-tmp'))).toEqual([]);
  });

  it('/dev/stdout as -o is written through, and says so (F2: a socket stdout, as Node pipes are, could not be opened by name: ENXIO)', async () => {
    const obj = join(dir, 'ok2.o');
    writeFileSync(obj, sharedRelocations(1, 4));
    const r = await runChild(['buildid', 'set', obj, '-o', '/dev/stdout']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(r.stderr).toMatch(/\/dev\/stdout is standard output: written through \(not atomically\)/);
  });

  it('a name that is not UTF-8: refused, shown escaped', async () => {
    for (const cmd of ['elf "$(printf "bad\\377name.o")"', 'buildid set ok.o -o "$(printf "out\\300.o")"']) {
      const r = await runChild([], { shell: `cd ${dir} && exec $XS ${cmd}` });
      expectBoundedError(r, 2, /^xsplice: (bad\\xffname\.o|out\\xc0\.o): argument is not valid UTF-8/, cmd, 'non-UTF-8 name');
    }
  });

  it('stdout on a full disk (/dev/full) or a closed pipe: one line naming stdout, exit 2', async () => {
    const r = await runChild([], { shell: `exec $XS buildid ${XEN_BUILD_ID} > /dev/full` });
    expectBoundedError(
      r,
      2,
      /^xsplice: stdout: write failed \(ENOSPC: no space left on the device\)$/m,
      'buildid HEX > /dev/full',
      '/dev/full',
    );
    const r2 = await runChild([], { shell: `exec $XS elf ${xen()} --json > /dev/full` });
    expectBoundedError(r2, 2, /^xsplice: stdout: write failed \(ENOSPC/m, 'elf --json > /dev/full', '/dev/full');
    // A reader that closes the pipe early (| head): the same, for EPIPE.
    const r3 = await runChild([], { shell: `set -o pipefail; $XS elf ${xen()} | head -c 100 > /dev/null` });
    expectBoundedError(r3, 2, /^xsplice: stdout: write failed \(EPIPE: the reader closed it\)$/m, 'elf | head -c 100', 'closed pipe');
  });
});
