/**
 * Runs QEMU with Xen (x86: multiboot; arm64: the `virt` board's kernel, dom0 by guest-loader), the dom0 kernel and the initramfs; no network device, serial
 * console to a file. Every wait is bounded: the boot (until dom0's /init says READY), each step
 * (BEGIN to END), and the whole run. Only the QEMU process started here is ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access, open, stat } from 'node:fs/promises';
import { XspliceError } from '../errors.js';
import { MARK } from './initramfs.js';

export type TryArch = 'x86_64' | 'arm64';

export interface QemuOptions {
  qemu: string;
  /** x86_64: Xen booted by QEMU's multiboot loader; arm64: Xen as the -kernel of `virt`, dom0 by guest-loader. */
  arch: TryArch;
  /** x86_64: the plain ELF hypervisor; arm64: the Image. */
  xenImage: string;
  dom0Kernel: string;
  initramfs: string;
  consoleLog: string;
  accel: 'tcg' | 'kvm';
  /** Seconds until dom0 /init reports READY. */
  bootTimeoutSec: number;
  /** Seconds one step may take (BEGIN to END). */
  stepTimeoutSec: number;
  /** Seconds for the whole run. */
  timeoutSec: number;
  /** Extra Xen command line options. */
  xenCmdline?: string;
  /** Synchronous cleanup run when a signal ends the process during the run. */
  onSignalExit?: () => void;
  /** Told as the console shows each phase (called from the watcher, in order). */
  onEvent?: (e: QemuEvent) => void;
}

export type QemuEvent =
  | { kind: 'hypervisor-up'; ms: number }
  | { kind: 'dom0-up'; ms: number }
  | { kind: 'step-begin'; index: number; ms: number }
  | { kind: 'step-retry'; index: number; attempt: number; ms: number }
  | { kind: 'step-end'; index: number; status: number; ms: number; log: string }
  | { kind: 'crash'; ms: number; line: string };

export interface QemuOutcome {
  /** The serial log text. */
  log: string;
  /** Why the run ended. */
  end: 'done' | 'exited' | 'boot-timeout' | 'step-timeout' | 'timeout' | 'crash';
  exitCode: number | null;
  stderr: string;
  durationMs: number;
  /** ms from start to dom0 READY, if seen. */
  bootMs: number | null;
  /** ms from start to the first hypervisor console line, if seen. */
  hypervisorMs: number | null;
  /** Index of the step that timed out (end === 'step-timeout'), or that was running when the hypervisor crashed. */
  stuckStep: number | null;
}

/**
 * Console lines that mean the hypervisor is dying: its panic banner, a double fault, a fatal trap,
 * a BUG or a failed assertion (x86 and Arm wording).
 */
export const CRASH_RE = /Panic on CPU \d+|DOUBLE FAULT|FATAL TRAP|Xen BUG at|Assertion .* failed/;
const CRASH_LINE = CRASH_RE;
/** After the first crash line, how long the rest of the panic block may take to reach the log. */
const CRASH_GRACE_MS = 1500;

/** TCG unless KVM can run Xen: /dev/kvm usable and the CPU exposes VMX/SVM. XSPLICE_TRY_ACCEL overrides. */
export async function pickAccel(): Promise<'tcg' | 'kvm'> {
  const env = process.env.XSPLICE_TRY_ACCEL;
  if (env === 'tcg' || env === 'kvm') return env;
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
    const cpu = readFileSync('/proc/cpuinfo', 'utf8');
    if (/^flags\s*:.*\b(vmx|svm)\b/m.test(cpu)) return 'kvm';
  } catch {
    /* no KVM */
  }
  return 'tcg';
}

/** Where guest-loader puts dom0's kernel in `virt` RAM (which starts at 0x40000000). */
export const ARM64_DOM0_KERNEL_ADDR = 0x49000000;

export function qemuArgs(o: QemuOptions, sizes: { kernel: number } = { kernel: 64 << 20 }): string[] {
  if (o.arch === 'arm64') {
    for (const p of [o.dom0Kernel, o.initramfs]) {
      if (/[,\s"]/.test(p))
        throw new XspliceError(
          'TRY_BAD_PATH',
          'path must not contain commas, spaces or quotes (QEMU splits -device options there)',
          { file: p },
          2,
        );
    }
    const xen = [
      'console_timestamps=boot',
      'dom0_mem=768M,max:768M',
      'dom0_max_vcpus=2',
      'loglvl=all',
      'guest_loglvl=all',
      ...(o.xenCmdline ? [o.xenCmdline] : []),
    ].join(' ');
    const mb2 = 2 << 20;
    const initrdAddr = Math.ceil((ARM64_DOM0_KERNEL_ADDR + sizes.kernel) / mb2) * mb2 + mb2;
    return [
      '-accel',
      'tcg,thread=multi',
      '-machine',
      'virt,virtualization=on,gic-version=3',
      '-cpu',
      'max',
      '-smp',
      '2',
      '-m',
      '2048',
      '-display',
      'none',
      '-monitor',
      'none',
      '-nic',
      'none',
      '-no-reboot',
      '-serial',
      `file:${o.consoleLog}`,
      '-kernel',
      o.xenImage,
      '-append',
      xen,
      '-device',
      `guest-loader,addr=0x${ARM64_DOM0_KERNEL_ADDR.toString(16)},kernel=${o.dom0Kernel},bootargs=console=hvc0 earlycon=xen`,
      '-device',
      `guest-loader,addr=0x${initrdAddr.toString(16)},initrd=${o.initramfs}`,
    ];
  }
  for (const p of [o.dom0Kernel, o.initramfs]) {
    if (/[,\s]/.test(p))
      throw new XspliceError('TRY_BAD_PATH', 'path must not contain commas or spaces (QEMU splits -initrd there)', { file: p }, 2);
  }
  const xen = [
    'console=com1',
    'com1=115200,8n1',
    'console_timestamps=boot',
    'dom0_mem=1024M,max:1024M',
    'dom0_max_vcpus=2',
    'loglvl=all',
    'guest_loglvl=all',
    ...(o.xenCmdline ? [o.xenCmdline] : []),
  ].join(' ');
  const accel = o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,smap=off'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max,smap=off'];
  return [
    ...accel,
    '-machine',
    'pc',
    '-smp',
    '2',
    '-m',
    '3072',
    '-display',
    'none',
    '-monitor',
    'none',
    '-nic',
    'none',
    '-no-reboot',
    '-serial',
    `file:${o.consoleLog}`,
    '-kernel',
    o.xenImage,
    '-append',
    xen,
    '-initrd',
    `${o.dom0Kernel} console=hvc0 earlyprintk=xen,${o.initramfs}`,
  ];
}

/** A wait that never keeps the process alive by itself. */
function nap(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

const MARK_RE = new RegExp(`${MARK} (BEGIN|RETRY|END|READY|DONE)(?: (\\d+))?(?: (\\d+))?`);

/** Boots and waits; always leaves the QEMU it started dead. */
export async function runQemu(o: QemuOptions): Promise<QemuOutcome> {
  const start = Date.now();
  const args = qemuArgs(o, { kernel: (await stat(o.dom0Kernel)).size });
  // The log file is created by QEMU; make sure a stale one does not confuse the watcher.
  const fh0 = await open(o.consoleLog, 'w');
  await fh0.close();
  let child: ChildProcess;
  try {
    child = spawn(o.qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    throw new XspliceError('TRY_QEMU', `cannot start ${o.qemu}: ${(e as Error).message}`, {}, 2);
  }
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 16384) stderr += d.toString();
  });
  let exited = false;
  let exitCode: number | null = null;
  let spawnError: Error | null = null;
  const exitP = new Promise<void>((res) => {
    child.on('exit', (code) => {
      exited = true;
      exitCode = code;
      res();
    });
    child.on('error', (e) => {
      spawnError = e;
      exited = true;
      res();
    });
  });
  const killer = () => {
    if (!exited && child.pid) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  };
  process.on('exit', killer);
  // If nobody else handles these signals, a signal to us must not orphan QEMU: kill it, then exit
  // with the conventional status, as the default action would have.
  const sigs: [NodeJS.Signals, number][] = [
    ['SIGINT', 2],
    ['SIGTERM', 15],
    ['SIGHUP', 1],
  ];
  const sigHandlers: [NodeJS.Signals, () => void][] = [];
  for (const [sig, no] of sigs) {
    if (process.listenerCount(sig) > 0) continue;
    const h = () => {
      killer();
      try {
        o.onSignalExit?.();
      } catch {
        /* best effort */
      }
      process.exit(128 + no);
    };
    process.once(sig, h);
    sigHandlers.push([sig, h]);
  }

  let log = '';
  let bootMs: number | null = null;
  let hypervisorMs: number | null = null;
  let end: QemuOutcome['end'] = 'exited';
  let stuckStep: number | null = null;
  let doneAt: number | null = null;
  let crashAt: number | null = null;
  const readLog = async () => {
    try {
      const fh = await open(o.consoleLog, 'r');
      try {
        const st = await fh.stat();
        if (st.size > Buffer.byteLength(log)) {
          const buf = Buffer.alloc(st.size);
          await fh.read(buf, 0, st.size, 0);
          log = buf.toString('utf8');
        }
      } finally {
        await fh.close();
      }
    } catch {
      /* not there yet */
    }
  };
  // The watcher reads complete lines once each, in order.
  let scanned = 0;
  let running: number | null = null;
  let stepSince = 0;
  const emit = (e: QemuEvent) => {
    try {
      o.onEvent?.(e);
    } catch {
      /* a progress printer must not stop the run */
    }
  };
  const scan = (now: number) => {
    const upto = log.lastIndexOf('\n') + 1;
    if (upto <= scanned) return;
    const chunk = log.slice(scanned, upto);
    scanned = upto;
    for (const line of chunk.split('\n')) {
      if (hypervisorMs === null && line.includes('(XEN)')) {
        hypervisorMs = now - start;
        emit({ kind: 'hypervisor-up', ms: hypervisorMs });
      }
      if (crashAt === null && line.includes('(XEN)') && CRASH_LINE.test(line)) {
        crashAt = now;
        emit({ kind: 'crash', ms: now - start, line: line.replace(/\r/g, '') });
      }
      const m = MARK_RE.exec(line);
      if (!m) continue;
      const idx = m[2] !== undefined ? Number(m[2]) : -1;
      switch (m[1]) {
        case 'READY':
          if (bootMs === null) {
            bootMs = now - start;
            emit({ kind: 'dom0-up', ms: bootMs });
          }
          break;
        case 'DONE':
          doneAt ??= now;
          break;
        case 'BEGIN':
          running = idx;
          stepSince = now;
          emit({ kind: 'step-begin', index: idx, ms: now - start });
          break;
        case 'RETRY':
          // A retry of the step restarts its clock.
          stepSince = now;
          emit({ kind: 'step-retry', index: idx, attempt: Number(m[3] ?? 1) + 1, ms: now - start });
          break;
        case 'END':
          running = null;
          emit({ kind: 'step-end', index: idx, status: Number(m[3]), ms: now - start, log: log.slice(0, scanned) });
          break;
      }
    }
  };
  try {
    while (!exited) {
      await Promise.race([exitP, nap(250)]);
      await readLog();
      const now = Date.now();
      scan(now);
      if (crashAt !== null) {
        // Let the panic block finish reaching the log, then stop at once: a dead hypervisor will
        // not answer the step.
        if (now - crashAt > CRASH_GRACE_MS || /Reboot in five seconds|Manual reset required/.test(log.slice(-2000))) {
          end = 'crash';
          stuckStep = running;
          break;
        }
        continue;
      }
      // step watchdog: the running step (BEGIN without its END)
      if (running !== null && now - stepSince > o.stepTimeoutSec * 1000) {
        end = 'step-timeout';
        stuckStep = running;
        break;
      }
      if (exited) break;
      if (doneAt !== null && now - doneAt > 20_000) {
        end = 'done';
        break;
      }
      if (bootMs === null && now - start > o.bootTimeoutSec * 1000) {
        end = 'boot-timeout';
        break;
      }
      if (now - start > o.timeoutSec * 1000) {
        end = 'timeout';
        break;
      }
    }
  } finally {
    if (!exited) {
      try {
        child.kill('SIGTERM');
      } catch {
        /* gone */
      }
      await Promise.race([exitP, nap(3000)]);
      killer();
      await Promise.race([exitP, nap(5000)]);
    }
    process.removeListener('exit', killer);
    for (const [sig, h] of sigHandlers) process.removeListener(sig, h);
  }
  await readLog();
  scan(Date.now());
  if (crashAt !== null && end === 'exited' && !log.includes(`${MARK} DONE`)) {
    end = 'crash';
    stuckStep = running;
  }
  if (spawnError) throw new XspliceError('TRY_QEMU', `cannot start ${o.qemu}: ${(spawnError as Error).message}`, {}, 2);
  if (end === 'exited' && log.includes(`${MARK} DONE`)) end = 'done';
  return { log, end, exitCode, stderr, durationMs: Date.now() - start, bootMs, hypervisorMs, stuckStep };
}
