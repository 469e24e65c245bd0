/**
 * Runs QEMU with Xen (multiboot), the dom0 kernel and the initramfs; no network device, serial
 * console to a file. Every wait is bounded: the boot (until dom0's /init says READY), each step
 * (BEGIN to END), and the whole run. Only the QEMU process started here is ever signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access, open } from 'node:fs/promises';
import { XspliceError } from '../errors.js';
import { MARK } from './initramfs.js';

export interface QemuOptions {
  qemu: string;
  xenElf: string;
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
}

export interface QemuOutcome {
  /** The serial log text. */
  log: string;
  /** Why the run ended. */
  end: 'done' | 'exited' | 'boot-timeout' | 'step-timeout' | 'timeout';
  exitCode: number | null;
  stderr: string;
  durationMs: number;
  /** ms from start to dom0 READY, if seen. */
  bootMs: number | null;
  /** Index of the step that timed out (end === 'step-timeout'). */
  stuckStep: number | null;
}

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

export function qemuArgs(o: QemuOptions): string[] {
  for (const p of [o.dom0Kernel, o.initramfs]) {
    if (/[,\s]/.test(p)) throw new XspliceError('TRY_BAD_PATH', 'path must not contain commas or spaces (QEMU splits -initrd there)', { file: p }, 2);
  }
  const xen = ['console=com1', 'com1=115200,8n1', 'console_timestamps=boot', 'dom0_mem=1024M,max:1024M', 'dom0_max_vcpus=2',
    'loglvl=all', 'guest_loglvl=all', ...(o.xenCmdline ? [o.xenCmdline] : [])].join(' ');
  const accel = o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host,smap=off'] : ['-accel', 'tcg,thread=multi', '-cpu', 'max,smap=off'];
  return [
    ...accel, '-machine', 'pc', '-smp', '2', '-m', '3072', '-display', 'none', '-monitor', 'none', '-nic', 'none',
    '-no-reboot', '-serial', `file:${o.consoleLog}`, '-kernel', o.xenElf, '-append', xen,
    '-initrd', `${o.dom0Kernel} console=hvc0 earlyprintk=xen,${o.initramfs}`,
  ];
}

/** A wait that never keeps the process alive by itself. */
function nap(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

const BEGIN_RE = new RegExp(`${MARK} (?:BEGIN|RETRY) (\\d+)`, 'g');
const END_RE = new RegExp(`${MARK} END (\\d+)`, 'g');

/** Boots and waits; always leaves the QEMU it started dead. */
export async function runQemu(o: QemuOptions): Promise<QemuOutcome> {
  const start = Date.now();
  const args = qemuArgs(o);
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
  const sigs: [NodeJS.Signals, number][] = [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]];
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
  let end: QemuOutcome['end'] = 'exited';
  let stuckStep: number | null = null;
  let doneAt: number | null = null;
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
  try {
    let stepStart = { progress: -1, at: 0 };
    while (!exited) {
      await Promise.race([exitP, nap(250)]);
      await readLog();
      const now = Date.now();
      if (bootMs === null && log.includes(`${MARK} READY`)) bootMs = now - start;
      if (doneAt === null && log.includes(`${MARK} DONE`)) doneAt = now;
      // step watchdog: the last BEGIN without its END
      // (a RETRY of the step restarts its clock)
      let lastBegin = -1;
      let progress = 0;
      for (const m of log.matchAll(BEGIN_RE)) {
        lastBegin = Number(m[1]);
        progress++;
      }
      let lastEnd = -1;
      for (const m of log.matchAll(END_RE)) lastEnd = Number(m[1]);
      if (lastBegin >= 0 && lastBegin !== lastEnd) {
        if (stepStart.progress !== progress) stepStart = { progress, at: now };
        else if (now - stepStart.at > o.stepTimeoutSec * 1000) {
          end = 'step-timeout';
          stuckStep = lastBegin;
          break;
        }
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
  if (spawnError) throw new XspliceError('TRY_QEMU', `cannot start ${o.qemu}: ${(spawnError as Error).message}`, {}, 2);
  if (end === 'exited' && log.includes(`${MARK} DONE`)) end = 'done';
  if (bootMs === null && log.includes(`${MARK} READY`)) bootMs = Date.now() - start;
  return { log, end, exitCode, stderr, durationMs: Date.now() - start, bootMs, stuckStep };
}
