/**
 * The parts of `xsplice try` that need no QEMU: the step script, the serial-log parser (on a log
 * shaped like the real one, hypervisor lines interleaved with dom0 markers), the standard plan and
 * the newc cpio writer (checked with Debian's cpio as the oracle).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missing } from '../helpers/debian.js';
import { parseLog, standardPlan, stepScript, writeCpio, type Step } from '../../src/try/index.js';

const M = '@@XSPLICE@@';

describe('try: serial log parser', () => {
  const steps: Step[] = [
    { kind: 'readExtra' },
    { kind: 'upload', name: 'p', file: '/x/p.livepatch' },
    { kind: 'apply', name: 'p' },
    { kind: 'readExtra', expect: 'new' },
    { kind: 'readExtra', expect: { sameAsStep: 0 } },
    { kind: 'unload', name: 'p' },
  ];
  const log = [
    '(XEN) [    0.000000] Xen version 4.17.7',
    `${M} INIT`,
    `${M} READY`,
    `${M} BEGIN 0`,
    `${M} OUT 0 .7`,
    `${M} END 0 0`,
    `${M} BEGIN 1`,
    '(XEN) [   12.345678] livepatch: p: Unhandled relocation 11\r',
    `${M} OUT 1 Uploading /payloads/1/p.livepatch... failed`,
    `${M} ERR 1 Error 95: Operation not supported`,
    `${M} END 1 1`,
    `(XEN) [   12.5] something after the step`,
    `${M} BEGIN 2`,
    `(XEN) [   13.0] livepatch: p: check against hypervisor build-id failed${M} OUT 2 Applying p... failed`,
    `${M} ERR 2 Error 22: Invalid argument`,
    `${M} END 2 1`,
    `${M} BEGIN 3`,
    `${M} OUT 3 new`,
    `${M} END 3 0`,
    `${M} BEGIN 4`,
    `${M} OUT 4 .8`,
    `${M} END 4 0`,
    `${M} STOP 4`,
    `${M} DONE`,
  ].join('\n');
  const p = parseLog(log, steps);

  it('sees the phases and the stop', () => {
    expect(p).toMatchObject({ init: true, ready: true, done: true, stoppedAt: 4, unfinished: null });
  });

  it('gives each step its tool output, exit status, errno and hypervisor lines', () => {
    expect(p.steps[0]).toMatchObject({ ok: true, value: '.7', exitStatus: 0, consoleLines: [] });
    expect(p.steps[1]).toMatchObject({
      ok: false, exitStatus: 1, errno: { number: 95, name: 'EOPNOTSUPP', message: 'Operation not supported' },
      toolOutput: 'Uploading /payloads/1/p.livepatch... failed\nError 95: Operation not supported',
      consoleLines: ['livepatch: p: Unhandled relocation 11'],
    });
    // A hypervisor line sharing a line with a marker still belongs to the step.
    expect(p.steps[2]).toMatchObject({ ok: false, errno: { number: 22, name: 'EINVAL' }, consoleLines: ['livepatch: p: check against hypervisor build-id failed'] });
  });

  it('checks read expectations, also against an earlier read', () => {
    expect(p.steps[3]).toMatchObject({ ok: true, value: 'new', expected: 'new' });
    expect(p.steps[4]).toMatchObject({ ok: false, value: '.8', expected: '.7' });
  });

  it('reports steps after the stop as skipped', () => {
    expect(p.steps[5]).toMatchObject({ skipped: true, ok: false, exitStatus: null });
  });

  it('keeps the last attempt of a retried action and counts attempts', () => {
    const r = parseLog([`${M} READY`, `${M} BEGIN 0`, '(XEN) livepatch: Timed out on semaphore in CPU quiesce phase 1/2',
      `${M} RETRY 0 1`, '(XEN) livepatch: p finished APPLY with rc=0', `${M} OUT 0 Applying p... completed`, `${M} END 0 0`, `${M} DONE`].join('\n'),
    [{ kind: 'apply', name: 'p' }]);
    expect(r.steps[0]).toMatchObject({ ok: true, attempts: 2, consoleLines: ['livepatch: p finished APPLY with rc=0'],
      earlierConsoleLines: [['livepatch: Timed out on semaphore in CPU quiesce phase 1/2']] });
    const s = stepScript([{ kind: 'apply', name: 'p' }, { kind: 'unload', name: 'p' }, { kind: 'revert', name: 'p', attempts: 5 }],
      { stopOnFailure: false, stepTimeoutSec: 30, busyAttempts: 3 });
    expect(s).toContain("xs_run 0 0 3 xen-livepatch apply 'p'");
    expect(s).toContain("xs_run 1 0 1 xen-livepatch unload 'p'");
    expect(s).toContain("xs_run 2 0 5 xen-livepatch revert 'p'");
  });

  it('flags a step that began and never ended', () => {
    const cut = parseLog(`${M} READY\n${M} BEGIN 0\n(XEN) x\n`, steps);
    expect(cut.unfinished).toBe(0);
    expect(cut.done).toBe(false);
  });
});

describe('try: plans and the dom0 step script', () => {
  it('standard plan: upload+apply in order, revert+unload in reverse, extra checked both ways', () => {
    const plan = standardPlan(['/a/one.livepatch', '/b/two.livepatch', '/c/one.livepatch'], { expectExtra: 'x' });
    expect(plan.map((s) => s.kind + ('name' in s ? ' ' + s.name : ''))).toEqual([
      'readBuildId', 'readExtra',
      'upload one', 'apply one', 'upload two', 'apply two', 'upload one_2', 'apply one_2',
      'readExtra',
      'revert one_2', 'unload one_2', 'revert two', 'unload two', 'revert one', 'unload one',
      'readExtra',
    ]);
    expect(plan[8]).toMatchObject({ kind: 'readExtra', expect: 'x' });
    expect(plan[15]).toMatchObject({ kind: 'readExtra', expect: { sameAsStep: 1 } });
  });

  it('quotes names and files and honours stopOnFailure per step', () => {
    const s = stepScript([
      { kind: 'upload', name: 'a', file: "/tmp/it's.livepatch" },
      { kind: 'apply', name: 'a', stopOnFailure: false, nodeps: true },
    ], { stopOnFailure: true, stepTimeoutSec: 60 });
    expect(s).toContain("xs_run 0 1 1 xen-livepatch upload 'a' '/payloads/0/it_s.livepatch'");
    expect(s).toContain("xs_run 1 0 1 xen-livepatch apply 'a' --nodeps");
    expect(s).toContain('timeout 60 "$@"');
    const sh = spawnSync('sh', ['-n'], { input: s });
    expect(sh.status).toBe(0);
  });
});

describe.skipIf(missing('cpio (Debian package cpio)', spawnSync('sh', ['-c', 'command -v cpio']).status === 0))('try: newc cpio writer', () => {
  it('writes an archive Debian cpio lists and extracts identically', () => {
    const data = Buffer.from('hello\nworld');
    const a = writeCpio([
      { type: 'dir', path: 'd' },
      { type: 'file', path: 'd/f.txt', data, mode: 0o755 },
      { type: 'symlink', path: 'd/l', target: 'f.txt' },
      { type: 'chardev', path: 'dev_console', major: 5, minor: 1 },
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'xsplice-cpio-'));
    writeFileSync(join(dir, 'a.cpio'), a);
    const list = spawnSync('cpio', ['-itv', '--quiet'], { input: a, encoding: 'utf8' });
    expect(list.status).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^drwxr-xr-x .* d$/);
    expect(lines[1]).toMatch(/^-rwxr-xr-x .* 11 .* d\/f\.txt$/);
    expect(lines[2]).toMatch(/^lrwxrwxrwx .* d\/l -> f\.txt$/);
    expect(lines[3]).toMatch(/^crw------- .* 5,\s*1 .* dev_console$/);
    const out = join(dir, 'x');
    const ex = spawnSync('sh', ['-c', `mkdir ${out} && cd ${out} && cpio -id --quiet --no-absolute-filenames < ../a.cpio d/f.txt`]);
    expect(ex.status).toBe(0);
    expect(readFileSync(join(out, 'd/f.txt'))).toEqual(data);
  });
});
