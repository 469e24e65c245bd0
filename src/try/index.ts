/**
 * `xsplice try`: boot a real Xen (Debian's 4.17 by default) under QEMU with a minimal dom0, run a
 * plan of xen-livepatch steps, and report what the hypervisor said at each step.
 *
 * A step the hypervisor refuses is a result (`ok: false` on that step and on the session); a
 * failure of the machinery (QEMU, boot, a step that hangs) throws an XspliceError (exit 2) that
 * names the console log.
 */
import { constants, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { copyFileAtomic } from '../fsutil.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XspliceError } from '../errors.js';
import { buildStaticInitramfs, writeCpio, MARK, type CpioEntry } from './initramfs.js';
import { locateInputs, type LocateOptions, type TryInputs } from './locate.js';
import { parseLog, payloadPath, standardPlan, stepScript, validatePlan, DOM0_TIMEOUT_STATUS, type Step, type StepResult } from './plan.js';
import { pickAccel, runQemu } from './qemu.js';

export type { Step, StepKind, StepResult } from './plan.js';
export { standardPlan, parseLog, stepScript, payloadName } from './plan.js';
export { locateInputs, kernelRelease, type TryInputs, type LocateOptions } from './locate.js';
export { writeCpio, buildStaticInitramfs, type CpioEntry } from './initramfs.js';
export { errnoName } from './errno.js';

export interface SessionOptions extends LocateOptions {
  steps: Step[];
  /** Default for steps without their own stopOnFailure. Default true. */
  stopOnFailure?: boolean;
  /** Default for steps without their own `attempts`: apply/revert/replace are run again (up to this
   * many times in all) while xen-livepatch exits 2 (EBUSY/EAGAIN). Default 3; 1 disables. */
  busyAttempts?: number;
  /** Whole run, seconds (default 300). */
  timeoutSec?: number;
  /** Boot until dom0 is ready, seconds (default min(180, timeoutSec)). */
  bootTimeoutSec?: number;
  /** One step, seconds (default 90). */
  stepTimeoutSec?: number;
  /** Where to keep the serial console log. Default: a new directory under the OS temp dir. */
  consoleLog?: string;
  /** 'tcg' | 'kvm'; default detected (see pickAccel). */
  accel?: 'tcg' | 'kvm';
  /** Extra Xen command-line options. */
  xenCmdline?: string;
  /** Called with a short message when a slow phase starts (e.g. "booting Xen under QEMU (tcg)"). */
  onProgress?: (message: string) => void;
}

export interface SessionResult {
  /** Every step succeeded. */
  ok: boolean;
  durationMs: number;
  /** Start of QEMU to dom0 /init ready. */
  bootMs: number | null;
  consoleLog: string;
  accel: 'tcg' | 'kvm';
  /** Build-id of xen-syms when known (hex). */
  xenSymsBuildId?: string;
  inputs: { xenImage: string; xenSyms?: string; dom0Kernel: string; kernelRelease: string };
  steps: StepResult[];
  /** Non-fatal oddities (a module that did not load, a xen-syms that does not match, ...). */
  warnings: string[];
}

function isGzip(b: Buffer): boolean {
  return b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** The plain ELF image QEMU's multiboot loader needs (gunzips a Debian xen-*.gz). */
async function xenElf(image: string, out: string): Promise<void> {
  let b = await readFile(image);
  if (isGzip(b)) {
    try {
      b = gunzipSync(b);
    } catch (e) {
      throw new XspliceError('TRY_BAD_XEN', `cannot gunzip: ${(e as Error).message}`, { file: image }, 2);
    }
  }
  if (b.length < 52 || b.readUInt32BE(0) !== 0x7f454c46) {
    throw new XspliceError('TRY_BAD_XEN', 'not an ELF hypervisor image (or gzip of one)', { file: image }, 2);
  }
  await writeFile(out, b);
}

/** Hex build-id from the first NT_GNU_BUILD_ID note in an ELF64/ELF32 file's sections. */
export function elfBuildId(b: Buffer): string | undefined {
  if (b.length < 52 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = b[4] === 2;
  const shoff = is64 ? Number(b.readBigUInt64LE(0x28)) : b.readUInt32LE(0x20);
  const shentsize = b.readUInt16LE(is64 ? 0x3a : 0x2e);
  const shnum = b.readUInt16LE(is64 ? 0x3c : 0x30);
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    if (o + shentsize > b.length) return undefined;
    if (b.readUInt32LE(o + 4) !== 7) continue; // SHT_NOTE
    const off = is64 ? Number(b.readBigUInt64LE(o + 0x18)) : b.readUInt32LE(o + 0x10);
    const size = is64 ? Number(b.readBigUInt64LE(o + 0x20)) : b.readUInt32LE(o + 0x14);
    let p = off;
    while (p + 12 <= off + size && p + 12 <= b.length) {
      const namesz = b.readUInt32LE(p);
      const descsz = b.readUInt32LE(p + 4);
      const type = b.readUInt32LE(p + 8);
      const nameOff = p + 12;
      const descOff = nameOff + ((namesz + 3) & ~3);
      if (descOff + descsz > b.length) break;
      if (type === 3 && b.toString('latin1', nameOff, nameOff + namesz).replace(/\0+$/, '') === 'GNU') {
        return b.toString('hex', descOff, descOff + descsz);
      }
      p = descOff + ((descsz + 3) & ~3);
    }
  }
  return undefined;
}

async function readable(file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch {
    throw new XspliceError('TRY_NO_INPUT', 'no such file or not readable', { file }, 2);
  }
}

function lastLines(log: string, n: number): string {
  return log.split('\n').map((l) => l.replace(/\r/g, '')).filter((l) => l.trim()).slice(-n).join(' | ');
}

function diagnose(log: string): string {
  if (!log.includes('(XEN)')) return 'the hypervisor printed nothing';
  const pats: [RegExp, string][] = [
    [/Panic on CPU/, 'the hypervisor panicked'],
    [/Hardware Dom0 crashed|Domain 0 crashed/, 'dom0 crashed'],
    [/Kernel panic/, 'the dom0 kernel panicked'],
    [/Unable to open an initial console|Failed to execute \/init/i, 'dom0 could not start /init'],
  ];
  for (const [re, why] of pats) if (re.test(log)) return why;
  if (log.includes(`${MARK} READY`)) return 'dom0 did not finish its steps';
  if (log.includes(`${MARK} INIT`)) return 'dom0 /init was still setting up';
  if (/Run \/init as init process/.test(log)) return 'dom0 /init did not start';
  if (/Linux version/.test(log)) return 'the dom0 kernel was still booting';
  return 'the hypervisor had not started the dom0 kernel';
}

/**
 * Boots once and runs `steps` in order in dom0. Payload files are any paths on this machine.
 * Returns per-step results; throws XspliceError (exit 2) when the machinery fails.
 */
export async function runSession(opts: SessionOptions): Promise<SessionResult> {
  const t0 = Date.now();
  validatePlan(opts.steps);
  for (const s of opts.steps) if (s.kind === 'upload') await readable(s.file);
  const timeoutSec = opts.timeoutSec ?? 300;
  if (!(timeoutSec > 0)) throw new XspliceError('TRY_BAD_TIMEOUT', 'timeout must be a positive number of seconds', {}, 2);
  const stepTimeoutSec = Math.min(opts.stepTimeoutSec ?? 90, timeoutSec);
  const bootTimeoutSec = Math.min(opts.bootTimeoutSec ?? 180, timeoutSec);
  const inputs: TryInputs = await locateInputs(opts);
  const accel = opts.accel ?? (await pickAccel());

  // QEMU writes the serial log into the work directory. A log the caller placed is copied to its
  // place at the end (temp file + rename, never over an input); otherwise the work directory is
  // kept with only console.log in it.
  let target: string | undefined;
  if (opts.consoleLog !== undefined) {
    target = resolve(opts.consoleLog);
    const ins = [inputs.xenImage, inputs.xenSyms, inputs.dom0Kernel, ...opts.steps.map((s) => (s.kind === 'upload' ? s.file : undefined))];
    if (ins.some((f) => f !== undefined && resolve(f) === target)) {
      throw new XspliceError('TRY_BAD_LOG', 'the console log would overwrite an input', { file: opts.consoleLog }, 2);
    }
    await mkdir(dirname(target), { recursive: true });
  }
  const work = await mkdtemp(join(tmpdir(), 'xsplice-try-'));
  const serialLog = join(work, 'console.log');
  const consoleLog = target ?? serialLog;
  try {
    const warnings: string[] = [];
    // Inputs: the plain hypervisor ELF, and the initramfs = static part + this run's part.
    const elf = join(work, 'xen.elf');
    await xenElf(inputs.xenImage, elf);
    let xenSymsBuildId: string | undefined;
    if (inputs.xenSyms) {
      xenSymsBuildId = elfBuildId(await readFile(inputs.xenSyms));
      const imgId = elfBuildId(await readFile(elf));
      if (xenSymsBuildId && imgId && xenSymsBuildId !== imgId) {
        warnings.push(`xen-syms build-id ${xenSymsBuildId} differs from the image's ${imgId}`);
      }
    }
    const stat = await buildStaticInitramfs(inputs);
    const runEntries: CpioEntry[] = [{ type: 'dir', path: 'payloads' }];
    for (const [i, s] of opts.steps.entries()) {
      if (s.kind !== 'upload') continue;
      const p = payloadPath(i, s.file);
      runEntries.push({ type: 'dir', path: dirname(p) });
      runEntries.push({ type: 'file', path: p, data: await readFile(s.file) });
    }
    const script = stepScript(opts.steps, {
      stopOnFailure: opts.stopOnFailure ?? true, stepTimeoutSec: Math.max(5, stepTimeoutSec - 5), busyAttempts: opts.busyAttempts ?? 3,
    });
    runEntries.push({ type: 'file', path: 'steps.sh', data: Buffer.from(script), mode: 0o644 });
    const initramfs = join(work, 'initramfs.cpio');
    await writeFile(initramfs, Buffer.concat([stat.cpio, writeCpio(runEntries)]));
    const kernel = join(work, 'vmlinuz');
    await writeFile(kernel, await readFile(inputs.dom0Kernel));

    opts.onProgress?.(`booting the hypervisor under QEMU (${accel})`);
    const q = await runQemu({
      qemu: inputs.qemu, xenElf: elf, dom0Kernel: kernel, initramfs, consoleLog: serialLog, accel,
      bootTimeoutSec, stepTimeoutSec, timeoutSec, xenCmdline: opts.xenCmdline,
      onSignalExit: () => {
        for (const f of [elf, initramfs, kernel]) rmSync(f, { force: true });
      },
    });
    const parsed = parseLog(q.log, opts.steps);
    warnings.push(...parsed.warnings);
    const where = `console log ${consoleLog}`;
    if (q.end === 'boot-timeout') {
      throw new XspliceError('TRY_BOOT_TIMEOUT', `dom0 was not ready after ${bootTimeoutSec} s (${diagnose(q.log)}); ${where}`, {}, 2);
    }
    if (q.end === 'step-timeout') {
      throw new XspliceError('TRY_STEP_TIMEOUT', `step ${q.stuckStep} (${opts.steps[q.stuckStep!]?.kind}) did not finish within ${stepTimeoutSec} s; ${where}`, {}, 2);
    }
    if (q.end === 'timeout') {
      throw new XspliceError('TRY_TIMEOUT', `the run did not finish within ${timeoutSec} s (${parsed.ready ? 'dom0 was running steps' : diagnose(q.log)}); ${where}`, {}, 2);
    }
    if (!parsed.done) {
      const why = parsed.ready ? diagnose(q.log) : diagnose(q.log);
      const qerr = q.stderr.trim().split('\n').filter(Boolean).pop();
      throw new XspliceError('TRY_NO_VERDICT', `QEMU exited (status ${q.exitCode}) before dom0 finished: ${why}${qerr ? `; qemu: ${qerr}` : ''}; last console lines: ${lastLines(q.log, 3)}; ${where}`, {}, 2);
    }
    const hung = parsed.steps.find((s) => s.exitStatus === DOM0_TIMEOUT_STATUS);
    if (hung) {
      throw new XspliceError('TRY_STEP_TIMEOUT', `step ${hung.index} (${hung.step}) was killed after ${Math.max(5, stepTimeoutSec - 5)} s in dom0; ${where}`, {}, 2);
    }
    if (parsed.unfinished !== null) {
      throw new XspliceError('TRY_NO_VERDICT', `step ${parsed.unfinished} began but never ended; ${where}`, {}, 2);
    }
    if (!parsed.steps.some((s) => !s.skipped)) {
      throw new XspliceError('TRY_NO_VERDICT', `dom0 ran no step; ${where}`, {}, 2);
    }
    const ok = parsed.steps.every((s) => s.ok);
    return {
      ok, durationMs: Date.now() - t0, bootMs: q.bootMs, consoleLog, accel,
      ...(xenSymsBuildId ? { xenSymsBuildId } : {}),
      inputs: { xenImage: inputs.xenImage, ...(inputs.xenSyms ? { xenSyms: inputs.xenSyms } : {}), dom0Kernel: inputs.dom0Kernel, kernelRelease: inputs.kernelRelease },
      steps: parsed.steps, warnings,
    };
  } finally {
    // Keep only the console log; the large inputs are removed.
    if (target === undefined) {
      await Promise.all(['xen.elf', 'initramfs.cpio', 'vmlinuz'].map((f) => rm(join(work, f), { force: true })));
    } else {
      // A console log that cannot be kept is not worth failing the verdict for.
      await copyFileAtomic(serialLog, target).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    }
  }
}

export interface TryOptions extends Omit<SessionOptions, 'steps'> {
  /** String /sys/hypervisor/version/extra must show while all payloads are applied. */
  expectExtra?: string;
}

/**
 * The extra version reaches dom0 through XENVER_extraversion, a 16-byte xen_extraversion_t: at most
 * 15 characters survive, so a longer expectation could never be met.
 */
export const MAX_EXTRA_VERSION = 15;

/** The standard plan for `xsplice try PAYLOAD...` (see standardPlan). */
export async function tryPayloads(files: string[], opts: TryOptions = {}): Promise<SessionResult> {
  if (files.length === 0) throw new XspliceError('TRY_NO_PAYLOAD', 'no payload given', {}, 2);
  for (const f of files) await readable(f);
  if (opts.expectExtra !== undefined && Buffer.byteLength(opts.expectExtra) > MAX_EXTRA_VERSION) {
    throw new XspliceError('TRY_EXPECT_EXTRA_TOO_LONG', `--expect-extra "${opts.expectExtra}" can never match: the hypervisor reports at most ${MAX_EXTRA_VERSION} characters of its extra version (XENVER_extraversion is 16 bytes); a longer string in the payload shows cut short`, {}, 2);
  }
  const steps = standardPlan(files.map((f) => resolve(f)), { expectExtra: opts.expectExtra });
  return runSession({ ...opts, steps });
}

/** One line per step for humans: what ran and what the hypervisor said. */
export function describeStep(r: StepResult): string {
  const what = r.name ? `${r.step} ${r.name}` : r.step;
  if (r.skipped) return `${what}: skipped`;
  if (r.step === 'readExtra' || r.step === 'readBuildId') {
    const v = `${r.step === 'readExtra' ? 'extra version' : 'build-id'} ${JSON.stringify(r.value ?? '')}`;
    if (r.expected !== undefined && r.value !== r.expected) return `${what}: ${v}, expected ${JSON.stringify(r.expected)}`;
    return r.ok ? `${what}: ${v}` : `${what}: failed (exit ${r.exitStatus}) ${r.toolOutput.split('\n').pop() ?? ''}`;
  }
  const xen = r.consoleLines.filter((l) => /livepatch/.test(l));
  const said = (xen.length ? `; Xen: ${xen.join(' / ')}` : '') + (r.attempts > 1 ? ` (attempt ${r.attempts})` : '');
  if (r.ok) return `${what}: ok${said}`;
  const err = r.errno ? `${r.errno.name} (${r.errno.number}: ${r.errno.message})` : `exit ${r.exitStatus}: ${r.toolOutput.split('\n').filter(Boolean).pop() ?? ''}`;
  return `${what}: refused, ${err}${said}`;
}
