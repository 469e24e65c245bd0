/**
 * The parts of `xsplice try` that need no QEMU: the step script, the serial-log parser (on a log
 * shaped like the real one, hypervisor lines interleaved with dom0 markers), the standard plan and
 * the newc cpio writer (checked with Debian's cpio as the oracle).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/debian.js';
import {
  crashLines,
  describeStep,
  parseLog,
  payloadFacts,
  qemuArgs,
  standardPlan,
  stepScript,
  writeCpio,
  CRASH_RE,
  MAX_ATTEMPTS,
  type Step,
} from '../../src/try/index.js';
import { removeTempDirs, tempDirSync } from '../helpers/tmp.js';
import { have } from '../helpers/tools.js';

afterAll(removeTempDirs);

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
      ok: false,
      exitStatus: 1,
      errno: { number: 95, name: 'EOPNOTSUPP', message: 'Operation not supported' },
      toolOutput: 'Uploading /payloads/1/p.livepatch... failed\nError 95: Operation not supported',
      consoleLines: ['livepatch: p: Unhandled relocation 11'],
    });
    // A hypervisor line sharing a line with a marker still belongs to the step.
    expect(p.steps[2]).toMatchObject({
      ok: false,
      errno: { number: 22, name: 'EINVAL' },
      consoleLines: ['livepatch: p: check against hypervisor build-id failed'],
    });
  });

  it('checks read expectations, also against an earlier read', () => {
    expect(p.steps[3]).toMatchObject({ ok: true, value: 'new', expected: 'new' });
    expect(p.steps[4]).toMatchObject({ ok: false, value: '.8', expected: '.7' });
  });

  it('reports steps after the stop as skipped', () => {
    expect(p.steps[5]).toMatchObject({ skipped: true, ok: false, exitStatus: null });
  });

  it('keeps the last attempt of a retried action and counts attempts', () => {
    const r = parseLog(
      [
        `${M} READY`,
        `${M} BEGIN 0`,
        '(XEN) livepatch: Timed out on semaphore in CPU quiesce phase 1/2',
        `${M} RETRY 0 1`,
        '(XEN) livepatch: p finished APPLY with rc=0',
        `${M} OUT 0 Applying p... completed`,
        `${M} END 0 0`,
        `${M} DONE`,
      ].join('\n'),
      [{ kind: 'apply', name: 'p' }],
    );
    expect(r.steps[0]).toMatchObject({
      ok: true,
      attempts: 2,
      consoleLines: ['livepatch: p finished APPLY with rc=0'],
      earlierConsoleLines: [['livepatch: Timed out on semaphore in CPU quiesce phase 1/2']],
    });
    const s = stepScript(
      [
        { kind: 'apply', name: 'p' },
        { kind: 'unload', name: 'p' },
        { kind: 'revert', name: 'p', attempts: 5 },
      ],
      { stopOnFailure: false, stepTimeoutSec: 30, busyAttempts: 3 },
    );
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
      'readBuildId',
      'readExtra',
      'upload one',
      'apply one',
      'upload two',
      'apply two',
      'upload one_2',
      'apply one_2',
      'readExtra',
      'revert one_2',
      'unload one_2',
      'revert two',
      'unload two',
      'revert one',
      'unload one',
      'readExtra',
    ]);
    expect(plan[8]).toMatchObject({ kind: 'readExtra', expect: 'x' });
    expect(plan[15]).toMatchObject({ kind: 'readExtra', expect: { sameAsStep: 1 } });
  });

  it('quotes names and files and honours stopOnFailure per step', () => {
    const s = stepScript(
      [
        { kind: 'upload', name: 'a', file: "/tmp/it's.livepatch" },
        { kind: 'apply', name: 'a', stopOnFailure: false, nodeps: true },
      ],
      { stopOnFailure: true, stepTimeoutSec: 60 },
    );
    expect(s).toContain("xs_run 0 1 1 xen-livepatch upload 'a' '/payloads/0/it_s.livepatch'");
    expect(s).toContain("xs_run 1 0 1 xen-livepatch apply 'a' --nodeps");
    expect(s).toContain('timeout 60 "$@"');
    const sh = spawnSync('sh', ['-n'], { input: s });
    expect(sh.status).toBe(0);
  });
});

describe.skipIf(missing('cpio (Debian package cpio)', spawnSync('sh', ['-c', 'command -v cpio']).status === 0))(
  'try: newc cpio writer',
  () => {
    it('writes an archive Debian cpio lists and extracts identically', () => {
      const data = Buffer.from('hello\nworld');
      const a = writeCpio([
        { type: 'dir', path: 'd' },
        { type: 'file', path: 'd/f.txt', data, mode: 0o755 },
        { type: 'symlink', path: 'd/l', target: 'f.txt' },
        { type: 'chardev', path: 'dev_console', major: 5, minor: 1 },
      ]);
      const dir = tempDirSync('cpio');
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
  },
);

describe('try: busy retries, rendezvous timeouts and the REPLACE / --nodeps plans', () => {
  it('backs off between attempts of a busy action (1, 2, 4 ... s) and bounds the attempts', () => {
    const s = stepScript([{ kind: 'apply', name: 'p', attempts: 99 }], { stopOnFailure: true, stepTimeoutSec: 30 });
    expect(s).toContain(`xs_run 0 1 ${MAX_ATTEMPTS} xen-livepatch apply 'p'`);
    expect(s).toContain('sleep $d; d=$((d*2))');
    // The retry loop runs in busybox sh: check it as a shell would, with a stand-in tool that is
    // busy twice and then succeeds.
    const dir = tempDirSync('steps');
    const tool = join(dir, 'xen-livepatch');
    writeFileSync(
      tool,
      `#!/bin/sh\nn=$(cat ${dir}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/n\n[ $n -ge 3 ] && { echo "Applying p... completed"; exit 0; }\necho "Applying p... failed" ; echo "Error 16: Device or resource busy" >&2; exit 2\n`,
      { mode: 0o755 },
    );
    const script = stepScript([{ kind: 'apply', name: 'p' }], { stopOnFailure: true, stepTimeoutSec: 30, busyAttempts: 3 }).replace(
      /sleep \$d/,
      'sleep 0',
    );
    const run = spawnSync('sh', ['-c', `xs_finish() { echo "${M} DONE"; exit 0; }\nPATH=${dir}:$PATH\nmkdir -p /tmp\n${script}`], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    const r = parseLog(run.stdout, [{ kind: 'apply', name: 'p' }]);
    expect(r.steps[0]).toMatchObject({ ok: true, attempts: 3, outcome: 'ok', exitStatus: 0 });
  });

  it('reports a step whose every attempt hit "Timed out on semaphore" as a timeout, not a refusal', () => {
    const log = [
      `${M} READY`,
      `${M} BEGIN 0`,
      '(XEN) [   20.1] livepatch: p: Timed out on semaphore in CPU quiesce phase 1/2',
      `${M} RETRY 0 1`,
      '(XEN) [   21.2] livepatch: p: Timed out on semaphore in CPU quiesce phase 1/2',
      `${M} RETRY 0 2`,
      '(XEN) [   23.3] livepatch: p: Timed out on semaphore in CPU quiesce phase 1/2',
      `${M} OUT 0 Applying p... failed`,
      `${M} ERR 0 Error 16: Device or resource busy`,
      `${M} END 0 2`,
      `${M} DONE`,
    ].join('\n');
    const r = parseLog(log, [{ kind: 'apply', name: 'p' }]).steps[0]!;
    expect(r).toMatchObject({ ok: false, outcome: 'timeout', attempts: 3, errno: { name: 'EBUSY' } });
    expect(r.earlierConsoleLines).toHaveLength(2);
    expect(describeStep(r)).toMatch(/^apply p: timed out: the hypervisor's 30 ms rendezvous timed out on each of 3 attempt/);
    // EBUSY for another reason ("Top is ...") stays a refusal.
    const top = parseLog(
      [
        `${M} READY`,
        `${M} BEGIN 0`,
        "(XEN) livepatch: p: can't unload. Top is q",
        `${M} ERR 0 Error 16: Device or resource busy`,
        `${M} END 0 2`,
        `${M} DONE`,
      ].join('\n'),
      [{ kind: 'revert', name: 'p' }],
    ).steps[0]!;
    expect(top).toMatchObject({ ok: false, outcome: 'refused' });
  });

  it('REPLACE plan: each payload replaces, only the last is reverted; --nodeps reaches the apply command', () => {
    const plan = standardPlan(['/a/one.livepatch', '/b/two.livepatch'], { replace: true });
    expect(plan.map((s) => s.kind + ('name' in s ? ' ' + s.name : ''))).toEqual([
      'readBuildId',
      'readExtra',
      'upload one',
      'replace one',
      'upload two',
      'replace two',
      'readExtra',
      'revert two',
      'unload two',
      'unload one',
      'readExtra',
    ]);
    const nd = standardPlan(['/a/one.livepatch'], { nodeps: true });
    expect(nd[3]).toEqual({ kind: 'apply', name: 'one', nodeps: true });
    expect(stepScript(nd, { stopOnFailure: true, stepTimeoutSec: 30 })).toContain("xen-livepatch apply 'one' --nodeps");
  });
});

describe('try: hypervisor crashes on the console', () => {
  const panic = [
    `${M} BEGIN 3`,
    '(XEN) [   31.000000] livepatch: boom: Applying 1 functions',
    '(XEN) [   31.100000] ----[ Xen-4.17.5  x86_64  debug=n  Not tainted ]----',
    '(XEN) [   31.100001] Xen call trace:',
    '(XEN) [   31.200000] ****************************************',
    '(XEN) [   31.200001] Panic on CPU 0:',
    '(XEN) [   31.200002] FATAL PAGE FAULT',
    '(XEN) [   31.200003] [error_code=0002]',
    '(XEN) [   31.200004] Faulting linear address: 0000000000000000',
    '(XEN) [   31.200005] ****************************************',
    '(XEN) [   31.200006] ',
    '(XEN) [   31.200007] Reboot in five seconds...',
  ].join('\n');

  it('takes the panic block between its rows of asterisks', () => {
    expect(crashLines(panic)).toEqual([
      '****************************************',
      'Panic on CPU 0:',
      'FATAL PAGE FAULT',
      '[error_code=0002]',
      'Faulting linear address: 0000000000000000',
      '****************************************',
    ]);
  });

  it('recognises a panic, a double fault and an Arm BUG, and not dom0 text', () => {
    for (const l of [
      '(XEN) Panic on CPU 1:',
      '(XEN) *** DOUBLE FAULT ***',
      '(XEN) Xen BUG at common/livepatch.c:1234',
      "(XEN) Assertion 'x' failed at livepatch.c:1",
    ]) {
      expect(CRASH_RE.test(l)).toBe(true);
    }
    expect(crashLines('[ 3.0] Kernel panic - not syncing: Attempted to kill init!\n')).toEqual([]);
    expect(crashLines('(XEN) *** DOUBLE FAULT ***\n(XEN) ----[ Xen-4.17 ]----\n(XEN) CPU:    0\n')).toEqual([
      '*** DOUBLE FAULT ***',
      '----[ Xen-4.17 ]----',
      'CPU:    0',
    ]);
  });
});

describe('try: arm64 boot command and payload facts', () => {
  it('boots arm64 Xen on virt with virtualization and GICv3, dom0 by two guest-loader devices', () => {
    const a = qemuArgs(
      {
        qemu: 'q',
        arch: 'arm64',
        xenImage: '/w/xen.img',
        dom0Kernel: '/w/vmlinuz',
        initramfs: '/w/initramfs.cpio',
        consoleLog: '/w/c.log',
        accel: 'tcg',
        bootTimeoutSec: 1,
        stepTimeoutSec: 1,
        timeoutSec: 1,
      },
      { kernel: 30 << 20 },
    );
    expect(a.slice(a.indexOf('-machine'), a.indexOf('-machine') + 2)).toEqual(['-machine', 'virt,virtualization=on,gic-version=3']);
    const dev = a.filter((_, i) => a[i - 1] === '-device');
    expect(dev[0]).toBe('guest-loader,addr=0x49000000,kernel=/w/vmlinuz,bootargs=console=hvc0 earlycon=xen');
    // The initramfs goes above the kernel, 2 MiB aligned with a 2 MiB gap: 0x49000000 + 30 MiB -> 0x4ae00000 -> 0x4b000000.
    expect(dev[1]).toBe('guest-loader,addr=0x4b000000,initrd=/w/initramfs.cpio');
    expect(a[a.indexOf('-kernel') + 1]).toBe('/w/xen.img');
    expect(() =>
      qemuArgs({
        qemu: 'q',
        arch: 'arm64',
        xenImage: 'x',
        dom0Kernel: '/a,b',
        initramfs: '/i',
        consoleLog: 'c',
        accel: 'tcg',
        bootTimeoutSec: 1,
        stepTimeoutSec: 1,
        timeoutSec: 1,
      }),
    ).toThrow(/commas/);
  });

  it('reads a payload ELF machine and its .livepatch.xen_depends build-id (gcc and objcopy as the oracle)', () => {
    if (missing('gcc and objcopy', ['gcc', 'objcopy'].every(have))) return;
    const dir = tempDirSync('facts');
    writeFileSync(join(dir, 'a.c'), 'int f(void) { return 1; }\n');
    expect(spawnSync('gcc', ['-c', '-o', join(dir, 'a.o'), join(dir, 'a.c')]).status).toBe(0);
    const id = '00112233445566778899aabbccddeeff01234567';
    const note = Buffer.concat([Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0]), Buffer.from('GNU\0'), Buffer.from(id, 'hex')]);
    writeFileSync(join(dir, 'note'), note);
    expect(
      spawnSync('objcopy', [
        '--add-section',
        `.livepatch.xen_depends=${join(dir, 'note')}`,
        '--set-section-flags',
        '.livepatch.xen_depends=alloc,readonly',
        join(dir, 'a.o'),
        join(dir, 'b.o'),
      ]).status,
    ).toBe(0);
    // objcopy adds it as PROGBITS; Xen's payloads carry it as a note: retype it in place.
    const b = readFileSync(join(dir, 'b.o'));
    const shoff = Number(b.readBigUInt64LE(0x28));
    const shnum = b.readUInt16LE(0x3c);
    const strs = shoff + b.readUInt16LE(0x3e) * 64;
    const strOff = Number(b.readBigUInt64LE(strs + 0x18));
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * 64;
      const n = b.readUInt32LE(o);
      if (b.toString('latin1', strOff + n, b.indexOf(0, strOff + n)) === '.livepatch.xen_depends') b.writeUInt32LE(7, o + 4);
    }
    expect(payloadFacts(b)).toEqual({ arch: 'x86_64', xenDepends: id });
    expect(payloadFacts(readFileSync(join(dir, 'a.o')))).toEqual({ arch: 'x86_64', xenDepends: null });
    expect(payloadFacts(Buffer.from('not an elf'))).toEqual({ arch: null, xenDepends: null });
  });
});
