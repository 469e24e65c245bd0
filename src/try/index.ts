/**
 * `xsplice try`: boot a real Xen (Debian's 4.17 by default) under QEMU with a minimal dom0, run a
 * plan of xen-livepatch steps, and report what the hypervisor said at each step.
 *
 * A step the hypervisor refuses is a result (`ok: false` on that step and on the session); a
 * failure of the machinery (QEMU, boot, a step that hangs) throws an XspliceError (exit 2) that
 * names the console log.
 *
 * Why one file: it is `runSession` (most of the file) and `tryPayloads` on top of it (prediction,
 * hypervisor choice); the plan and the input search already live in plan.ts and locate.ts, and what
 * remains shares the boot-image and console-log helpers.
 */
import { constants, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { copyFileAtomic } from '../fsutil.js';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { XspliceError } from '../errors.js';
import { buildStaticInitramfs, writeCpio, MARK, type CpioEntry } from './initramfs.js';
import { ARCHES, isArm64Image, locateInputs, type LocateOptions, type TryArch, type TryInputs } from './locate.js';
import {
  parseLog,
  payloadPath,
  standardPlan,
  stepScript,
  validatePlan,
  DOM0_TIMEOUT_STATUS,
  MAX_ATTEMPTS,
  type Step,
  type StepResult,
} from './plan.js';
import { CRASH_RE, pickAccel, runQemu, type QemuEvent } from './qemu.js';
import { arm64LivepatchBuild, bufferBuildId, findStockBuild, payloadFacts, type StockBuild } from './stock.js';

export type { Step, StepKind, StepResult, PlanOptions } from './plan.js';
export { standardPlan, parseLog, stepScript, payloadName, RENDEZVOUS_TIMEOUT, MAX_ATTEMPTS } from './plan.js';
export { locateInputs, kernelRelease, ARCHES, type TryInputs, type LocateOptions, type TryArch } from './locate.js';
export {
  payloadFacts,
  findStockBuild,
  unpackedBuilds,
  arm64LivepatchBuild,
  imageBuildId,
  elfBuildId,
  KNOWN_DEBIAN_BUILDS,
  PINNED_DEBIAN_XEN,
  type StockBuild,
} from './stock.js';
export { CRASH_RE, qemuArgs } from './qemu.js';
export { elfDynamicNeeds } from './initramfs.js';
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
  /** Called with a progress line as each phase starts or ends, elapsed time first ("[12.3 s] dom0 up"). */
  onProgress?: (message: string) => void;
  /** How the hypervisor was chosen (set by tryPayloads); reported back in the result. */
  hypervisor?: HypervisorChoice;
}

/** Which hypervisor was booted and why. */
export interface HypervisorChoice {
  /** e.g. "Debian's Xen 4.17.5+72-g01140da4e8-1 (amd64)", or the image path given. */
  label: string;
  buildId?: string;
  /** 'xen-depends': the build the payloads' xen_depends names; 'default': the pinned build; 'given': --xen-image. */
  why: 'xen-depends' | 'default' | 'given';
  version?: string;
}

/** What the hypervisor did when it died during the run. */
export interface CrashReport {
  /** Index of the step that was running, or null (between steps). */
  step: number | null;
  /** e.g. "apply", or "boot". */
  at: string;
  name?: string;
  /** The hypervisor's console lines of the crash (panic block or double-fault report). */
  lines: string[];
}

export interface SessionResult {
  /** Every step succeeded. */
  ok: boolean;
  durationMs: number;
  /** Start of QEMU to dom0 /init ready. */
  bootMs: number | null;
  /** Start of QEMU to the hypervisor's first console line. */
  hypervisorMs: number | null;
  consoleLog: string;
  accel: 'tcg' | 'kvm';
  arch: TryArch;
  /** Build-id of xen-syms when known (hex). */
  xenSymsBuildId?: string;
  /** Build-id of the booted image (hex), when it has one. */
  imageBuildId?: string;
  hypervisor?: HypervisorChoice;
  inputs: { xenImage: string; xenSyms?: string; dom0Kernel: string; kernelRelease: string };
  /** The hypervisor crashed: where, and what it printed. */
  crash?: CrashReport;
  /** Some step failed only because the hypervisor's rendezvous timed out (a busy host). */
  timedOut: boolean;
  steps: StepResult[];
  /** Non-fatal oddities (a module that did not load, a xen-syms that does not match, ...). */
  warnings: string[];
}

function isGzip(b: Buffer): boolean {
  return b.length > 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Reads and checks a hypervisor image without keeping it (a usage error names what is wrong). */
async function checkBootImage(image: string, arch: TryArch): Promise<void> {
  await xenBootImage(image, null, arch);
}

/**
 * The image QEMU boots, written to `out`: on x86 the plain ELF its multiboot loader needs
 * (gunzips a Debian xen-*.gz); on arm64 the hypervisor's Image. Returns the bytes written.
 */
async function xenBootImage(image: string, out: string | null, arch: TryArch): Promise<Buffer> {
  let b = await readFile(image);
  if (isGzip(b)) {
    try {
      b = gunzipSync(b, { maxOutputLength: 256 << 20 });
    } catch (e) {
      throw new XspliceError('TRY_BAD_XEN', `cannot gunzip: ${(e as Error).message}`, { file: image }, 2);
    }
  }
  if (arch === 'arm64') {
    if (!isArm64Image(b)) {
      throw new XspliceError(
        'TRY_BAD_XEN',
        'not an arm64 hypervisor Image (no ARMd magic at 0x38; xen-syms is not bootable, use the Image `xen`)',
        { file: image },
        2,
      );
    }
  } else if (b.length < 52 || b.readUInt32BE(0) !== 0x7f454c46) {
    throw new XspliceError('TRY_BAD_XEN', 'not an ELF hypervisor image (or gzip of one)', { file: image }, 2);
  }
  if (out !== null) await writeFile(out, b);
  return b;
}

async function readable(file: string): Promise<void> {
  try {
    await access(file, constants.R_OK);
  } catch {
    throw new XspliceError('TRY_NO_INPUT', 'no such file or not readable', { file }, 2);
  }
}

function lastLines(log: string, n: number): string {
  return log
    .split('\n')
    .map((l) => l.replace(/\r/g, ''))
    .filter((l) => l.trim())
    .slice(-n)
    .join(' | ');
}

/** The hypervisor's own lines of its crash: the panic block between its rows of asterisks, or the
 * lines from the first crash line on (a double fault's report). "(XEN) [timestamp]" removed. */
export function crashLines(log: string): string[] {
  const lines = log.split('\n').map((l) => l.replace(/\r/g, ''));
  const xen = (l: string) => /\(XEN\)\s*(?:\[[^\]]*\]\s*)?(.*)$/.exec(l)?.[1]?.trimEnd();
  const first = lines.findIndex((l) => l.includes('(XEN)') && CRASH_RE.test(l));
  if (first < 0) return [];
  let from = first;
  for (let k = first - 1; k >= Math.max(0, first - 3); k--) if (/^\*{10,}$/.test(xen(lines[k]!) ?? '')) from = k;
  const out: string[] = [];
  for (let k = from; k < lines.length && out.length < 24; k++) {
    const x = xen(lines[k]!);
    if (x === undefined) continue;
    out.push(x);
    if (k > first && /^\*{10,}$/.test(x)) break;
    if (/Reboot in five seconds|Manual reset required/.test(x)) break;
  }
  return out.filter((l, i) => l !== '' || i === 0);
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

/** Seconds since t0, for progress lines. */
function elapsed(t0: number): string {
  return `[${((Date.now() - t0) / 1000).toFixed(1)} s]`;
}

/** The architecture of a session: given, else the first uploaded payload's ELF machine, else x86_64. */
async function sessionArch(steps: Step[], given?: TryArch): Promise<TryArch> {
  if (given) return given;
  for (const s of steps) {
    if (s.kind !== 'upload') continue;
    const f = payloadFacts(await readHead(s.file));
    if (f.arch === 'arm32')
      throw new XspliceError('TRY_ARCH', 'an arm32 payload: `try` boots x86_64 and arm64 hypervisors only', { file: s.file }, 2);
    if (f.arch) return f.arch;
  }
  return 'x86_64';
}

/** A payload's bytes (bounded: the hypervisor takes at most 2 MiB). */
async function readHead(file: string): Promise<Buffer> {
  const b = await readFile(file);
  return b.length > 64 << 20 ? b.subarray(0, 64 << 20) : b;
}

/** Short text of a step's end for the progress line. */
function stepLine(r: StepResult): string {
  const what = r.name ? `${r.step} ${r.name}` : r.step;
  if (r.step === 'readExtra' || r.step === 'readBuildId')
    return `${what}: ${JSON.stringify(r.value ?? '')}${r.ok ? '' : ' (not as expected)'}`;
  const tries = r.attempts > 1 ? ` after ${r.attempts} attempts` : '';
  if (r.outcome === 'ok') return `${what}: ok${tries}`;
  if (r.outcome === 'timeout') return `${what}: timed out (the hypervisor's rendezvous, "Timed out on semaphore")${tries}`;
  return `${what}: refused${r.errno ? `, ${r.errno.name}` : ` (exit ${r.exitStatus})`}${tries}`;
}

/**
 * Boots once and runs `steps` in order in dom0. Payload files are any paths on this machine.
 * Returns per-step results (a hypervisor crash during a step is a result too: `crash`); throws
 * XspliceError (exit 2) when the machinery fails.
 */
export async function runSession(opts: SessionOptions): Promise<SessionResult> {
  const t0 = Date.now();
  const say = (m: string) => opts.onProgress?.(`${elapsed(t0)} ${m}`);
  validatePlan(opts.steps);
  for (const s of opts.steps) if (s.kind === 'upload') await readable(s.file);
  const timeoutSec = opts.timeoutSec ?? 300;
  if (!(timeoutSec > 0)) throw new XspliceError('TRY_BAD_TIMEOUT', 'timeout must be a positive number of seconds', {}, 2);
  const stepTimeoutSec = Math.min(opts.stepTimeoutSec ?? 90, timeoutSec);
  const bootTimeoutSec = Math.min(opts.bootTimeoutSec ?? 180, timeoutSec);
  const arch = await sessionArch(opts.steps, opts.arch);
  let locate: LocateOptions = { ...opts, arch, onProgress: say };
  let hypervisor = opts.hypervisor;
  if (arch === 'arm64' && !opts.xenImage) {
    // Debian's arm64 binary has no live patching: default to the same source built with it.
    const lp = await arm64LivepatchBuild();
    if (lp) {
      locate = { ...locate, xenImage: lp.xenImage, xenSyms: opts.xenSyms ?? lp.xenSyms };
      hypervisor ??= { label: lp.label, buildId: lp.buildId, why: 'default', version: lp.version };
    }
  }
  const inputs: TryInputs = await locateInputs(locate);
  const accel = arch === 'arm64' ? 'tcg' : (opts.accel ?? (await pickAccel()));

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
    // Inputs: the bootable hypervisor image, and the initramfs = static part + this run's part.
    const img = join(work, 'xen.img');
    const imgBytes = await xenBootImage(inputs.xenImage, img, arch);
    const imageId = bufferBuildId(imgBytes);
    let xenSymsBuildId: string | undefined;
    if (inputs.xenSyms) {
      xenSymsBuildId = bufferBuildId(await readFile(inputs.xenSyms));
      if (xenSymsBuildId && imageId && xenSymsBuildId !== imageId) {
        warnings.push(`xen-syms build-id ${xenSymsBuildId} differs from the image's ${imageId}`);
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
      stopOnFailure: opts.stopOnFailure ?? true,
      stepTimeoutSec: Math.max(5, stepTimeoutSec - 5),
      busyAttempts: opts.busyAttempts ?? 3,
    });
    runEntries.push({ type: 'file', path: 'steps.sh', data: Buffer.from(script), mode: 0o644 });
    const initramfs = join(work, 'initramfs.cpio');
    const cpio = Buffer.concat([stat.cpio, writeCpio(runEntries)]);
    await writeFile(initramfs, cpio);
    const kernel = join(work, 'vmlinuz');
    await writeFile(kernel, await readFile(inputs.dom0Kernel));
    const hv = hypervisor?.label ?? inputs.xenImage;
    say(
      `image ready: ${hv}${imageId ? `, build-id ${imageId}` : ''}; dom0 Linux ${inputs.kernelRelease}, initramfs ${(cpio.length / 1e6).toFixed(1)} MB`,
    );
    say(`booting under ${basename(inputs.qemu)} (${accel})`);

    const onEvent = (e: QemuEvent) => {
      switch (e.kind) {
        case 'hypervisor-up':
          say('hypervisor up');
          break;
        case 'dom0-up':
          say('dom0 up');
          break;
        case 'step-retry': {
          const st = opts.steps[e.index];
          say(`${st?.kind ?? 'step'}${st && 'name' in st ? ' ' + st.name : ''}: busy (exit 2), attempt ${e.attempt}`);
          break;
        }
        case 'step-end': {
          const r = parseLog(e.log, opts.steps).steps[e.index];
          if (r) say(stepLine(r));
          break;
        }
        case 'crash':
          say(`the hypervisor is crashing: ${e.line.replace(/^.*\(XEN\)\s*(?:\[[^\]]*\]\s*)?/, '')}`);
          break;
        default:
          break;
      }
    };
    const q = await runQemu({
      qemu: inputs.qemu,
      arch,
      xenImage: img,
      dom0Kernel: kernel,
      initramfs,
      consoleLog: serialLog,
      accel,
      bootTimeoutSec,
      stepTimeoutSec,
      timeoutSec,
      xenCmdline: opts.xenCmdline,
      onEvent,
      onSignalExit: () => {
        for (const f of [img, initramfs, kernel]) rmSync(f, { force: true });
      },
    });
    const parsed = parseLog(q.log, opts.steps);
    warnings.push(...parsed.warnings);
    const where = `console log ${consoleLog}`;
    const base = {
      bootMs: q.bootMs,
      hypervisorMs: q.hypervisorMs,
      consoleLog,
      accel,
      arch,
      ...(xenSymsBuildId ? { xenSymsBuildId } : {}),
      ...(imageId ? { imageBuildId: imageId } : {}),
      ...(hypervisor ? { hypervisor } : {}),
      inputs: {
        xenImage: inputs.xenImage,
        ...(inputs.xenSyms ? { xenSyms: inputs.xenSyms } : {}),
        dom0Kernel: inputs.dom0Kernel,
        kernelRelease: inputs.kernelRelease,
      },
    };
    if (q.end === 'crash') {
      const lines = crashLines(q.log);
      const idx = q.stuckStep ?? parsed.unfinished;
      if (!parsed.ready) {
        throw new XspliceError(
          'TRY_CRASH',
          `the hypervisor crashed at boot: ${lines
            .filter((l) => l && !/^\*+$/.test(l))
            .slice(0, 4)
            .join(' / ')}; ${where}`,
          {},
          2,
        );
      }
      const st = idx !== null ? opts.steps[idx] : undefined;
      const crash: CrashReport = { step: idx, at: st?.kind ?? 'between steps', ...(st && 'name' in st ? { name: st.name } : {}), lines };
      if (idx !== null && parsed.steps[idx]) {
        const r = parsed.steps[idx]!;
        Object.assign(r, { skipped: false, ok: false, outcome: 'crashed', consoleLines: r.consoleLines.length ? r.consoleLines : lines });
      }
      say(`the hypervisor crashed at ${crash.at}${crash.name ? ' ' + crash.name : ''}`);
      return { ok: false, durationMs: Date.now() - t0, ...base, steps: parsed.steps, warnings, crash, timedOut: false };
    }
    if (q.end === 'boot-timeout') {
      throw new XspliceError('TRY_BOOT_TIMEOUT', `dom0 was not ready after ${bootTimeoutSec} s (${diagnose(q.log)}); ${where}`, {}, 2);
    }
    if (q.end === 'step-timeout') {
      throw new XspliceError(
        'TRY_STEP_TIMEOUT',
        `step ${q.stuckStep} (${opts.steps[q.stuckStep!]?.kind}) did not finish within ${stepTimeoutSec} s; ${where}`,
        {},
        2,
      );
    }
    if (q.end === 'timeout') {
      throw new XspliceError(
        'TRY_TIMEOUT',
        `the run did not finish within ${timeoutSec} s (${parsed.ready ? 'dom0 was running steps' : diagnose(q.log)}); ${where}`,
        {},
        2,
      );
    }
    if (!parsed.done) {
      const why = diagnose(q.log);
      const qerr = q.stderr.trim().split('\n').filter(Boolean).pop();
      throw new XspliceError(
        'TRY_NO_VERDICT',
        `QEMU exited (status ${q.exitCode}) before dom0 finished: ${why}${qerr ? `; qemu: ${qerr}` : ''}; last console lines: ${lastLines(q.log, 3)}; ${where}`,
        {},
        2,
      );
    }
    const hung = parsed.steps.find((s) => s.exitStatus === DOM0_TIMEOUT_STATUS);
    if (hung) {
      throw new XspliceError(
        'TRY_STEP_TIMEOUT',
        `step ${hung.index} (${hung.step}) was killed after ${Math.max(5, stepTimeoutSec - 5)} s in dom0; ${where}`,
        {},
        2,
      );
    }
    if (parsed.unfinished !== null) {
      throw new XspliceError('TRY_NO_VERDICT', `step ${parsed.unfinished} began but never ended; ${where}`, {}, 2);
    }
    if (!parsed.steps.some((s) => !s.skipped)) {
      throw new XspliceError('TRY_NO_VERDICT', `dom0 ran no step; ${where}`, {}, 2);
    }
    const ok = parsed.steps.every((s) => s.ok);
    return {
      ok,
      durationMs: Date.now() - t0,
      ...base,
      steps: parsed.steps,
      warnings,
      timedOut: parsed.steps.some((s) => s.outcome === 'timeout'),
    };
  } finally {
    // Keep only the console log; the large inputs are removed.
    if (target === undefined) {
      await Promise.all(['xen.img', 'initramfs.cpio', 'vmlinuz'].map((f) => rm(join(work, f), { force: true })));
    } else {
      // A console log that cannot be kept is not worth failing the verdict for.
      await copyFileAtomic(serialLog, target).catch(() => undefined);
      await rm(work, { recursive: true, force: true });
    }
  }
}

export interface TryOptions extends Omit<SessionOptions, 'steps' | 'hypervisor'> {
  /** String /sys/hypervisor/version/extra must show while all payloads are applied. */
  expectExtra?: string;
  /** Apply with REPLACE (see PlanOptions.replace). */
  replace?: boolean;
  /** Apply with --nodeps. */
  nodeps?: boolean;
  /** Extra attempts of an apply/revert/replace the hypervisor answered "busy" (its rendezvous timed
   * out), with back-off 1, 2, 4 ... s. Default 2 (x86_64), 4 (arm64). */
  retries?: number;
  /** Look for (and fetch) the stock build the payloads' xen_depends names when no image is given. Default true. */
  stock?: boolean;
  /** Run the offline verify first and compare (default true). */
  predict?: boolean;
}

/**
 * The extra version reaches dom0 through XENVER_extraversion, a 16-byte xen_extraversion_t: at most
 * 15 characters survive, so a longer expectation could never be met.
 */
export const MAX_EXTRA_VERSION = 15;

/** Default extra attempts of a busy action. */
export const DEFAULT_RETRIES = 2;
export const DEFAULT_RETRIES_ARM64 = 4;

/** What the offline verify predicted for one payload, and what the hypervisor did. */
export interface PredictionEntry {
  file: string;
  name: string;
  predicted: { refusedAt: 'upload' | 'apply' | null; errno: string | null; codes: string[] };
  /** null when the payload's steps did not run (an earlier step stopped the plan). */
  actual: { refusedAt: 'upload' | 'apply' | null; errno: string | null } | null;
  /** predicted and actual agree (null when there is no actual). */
  agrees: boolean | null;
}

export interface TryResult extends SessionResult {
  /** The offline verify's prediction, or why there is none. */
  prediction: { payloads: PredictionEntry[] } | { error: string };
}

async function predict(files: string[], names: string[], xenSyms: string | undefined, opts: TryOptions): Promise<TryResult['prediction']> {
  if (!xenSyms) return { error: 'no xen-syms for the hypervisor (give --xen-syms)' };
  try {
    const [{ loadTarget }, { verifyPayloads }] = await Promise.all([import('../payload/target.js'), import('../payload/verify.js')]);
    const target = await loadTarget(xenSyms);
    const inputs = [];
    for (const [i, file] of files.entries()) {
      const b = await readFile(file);
      inputs.push({ file, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), name: names[i]! });
    }
    const r = verifyPayloads(inputs, target, { replace: !!opts.replace });
    return {
      payloads: r.payloads.map((p, i) => ({
        file: files[i]!,
        name: names[i]!,
        actual: null,
        agrees: null,
        predicted: {
          refusedAt: p.refusedAt,
          errno: p.errno,
          codes: p.diagnostics.filter((d) => d.severity === 'error').map((d) => d.code),
        },
      })),
    };
  } catch (e) {
    return { error: (e as Error).message.split('\n')[0]! };
  }
}

function predictionLine(p: PredictionEntry): string {
  const v = p.predicted.refusedAt
    ? `refused at ${p.predicted.refusedAt} (${p.predicted.errno}${p.predicted.codes.length ? `: ${p.predicted.codes.join(', ')}` : ''})`
    : 'accepted';
  return `verify predicts ${p.name}: ${v}`;
}

/** The hypervisor to boot for these payloads when none is given (issue: try on what users run). */
async function chooseHypervisor(
  files: string[],
  arch: TryArch,
  opts: TryOptions,
  say: (m: string) => void,
): Promise<{ image?: string; syms?: string; choice?: HypervisorChoice; warning?: string }> {
  if (opts.xenImage) return { choice: { label: opts.xenImage, why: 'given' } };
  const ids = new Set<string>();
  for (const f of files) {
    const id = payloadFacts(await readHead(f)).xenDepends;
    if (id) ids.add(id);
  }
  if (ids.size !== 1 || opts.stock === false) return {};
  const [id] = [...ids];
  const c = await findStockBuild(id!, arch, say, opts.allowSetup ?? true).catch(() => undefined);
  if (!c) {
    return {
      warning: `no known ${ARCHES[arch].deb} Xen build has build-id ${id} (the payloads' xen_depends); booting the default hypervisor`,
    };
  }
  const b: StockBuild = c.build;
  return {
    image: b.xenImage,
    syms: opts.xenSyms ?? b.xenSyms,
    choice: { label: b.label, buildId: b.buildId, why: 'xen-depends', version: b.version },
  };
}

/** The standard plan for `xsplice try PAYLOAD...` (see standardPlan), with the offline prediction. */
export async function tryPayloads(files: string[], opts: TryOptions = {}): Promise<TryResult> {
  const t0 = Date.now();
  const say = (m: string) => opts.onProgress?.(`${elapsed(t0)} ${m}`);
  if (files.length === 0) throw new XspliceError('TRY_NO_PAYLOAD', 'no payload given', {}, 2);
  for (const f of files) await readable(f);
  if (opts.expectExtra !== undefined && Buffer.byteLength(opts.expectExtra) > MAX_EXTRA_VERSION) {
    throw new XspliceError(
      'TRY_EXPECT_EXTRA_TOO_LONG',
      `--expect-extra "${opts.expectExtra}" can never match: the hypervisor reports at most ${MAX_EXTRA_VERSION} characters of its extra version (XENVER_extraversion is 16 bytes); a longer string in the payload shows cut short`,
      {},
      2,
    );
  }
  const abs = files.map((f) => resolve(f));
  const steps = standardPlan(abs, { expectExtra: opts.expectExtra, replace: opts.replace, nodeps: opts.nodeps });
  const names = steps.filter((s): s is Extract<Step, { kind: 'upload' }> => s.kind === 'upload').map((s) => s.name);
  const arch = await sessionArch(steps, opts.arch);
  // arm64 under TCG misses the 30 ms rendezvous far more often than x86 on a loaded host (seen:
  // three timeouts in a row), so it gets more attempts by default.
  const retries = opts.retries ?? (arch === 'arm64' ? DEFAULT_RETRIES_ARM64 : DEFAULT_RETRIES);
  if (!Number.isInteger(retries) || retries < 0 || retries > MAX_ATTEMPTS - 1) {
    throw new XspliceError('TRY_BAD_RETRIES', `retries must be an integer from 0 to ${MAX_ATTEMPTS - 1}`, {}, 2);
  }
  const chosen = await chooseHypervisor(abs, arch, opts, say);
  if (chosen.choice?.why === 'xen-depends')
    say(`booting ${chosen.choice.label}: its build-id ${chosen.choice.buildId} is the payloads' xen_depends`);
  if (chosen.warning) say(chosen.warning);
  // Every input is found and checked before anything slow runs (a bad kernel or image is a usage
  // error at once); the arm64 default is the build with live patching (see runSession).
  let image = chosen.image ?? opts.xenImage;
  let syms = chosen.syms ?? opts.xenSyms;
  if (arch === 'arm64' && !image) {
    const lp = await arm64LivepatchBuild();
    if (lp) {
      image = lp.xenImage;
      syms ??= lp.xenSyms;
    }
  }
  const found = await locateInputs({ ...opts, arch, xenImage: image, xenSyms: syms, onProgress: say });
  await checkBootImage(found.xenImage, arch);
  syms = found.xenSyms;
  const prediction = opts.predict === false ? { error: 'not asked' } : await predict(abs, names, syms, opts);
  if ('payloads' in prediction) for (const p of prediction.payloads) say(predictionLine(p));
  else if (opts.predict !== false) say(`verify cannot predict: ${prediction.error}`);
  const r = await runSession({
    ...opts,
    steps,
    arch,
    busyAttempts: retries + 1,
    ...(chosen.image ? { xenImage: chosen.image, xenSyms: syms } : {}),
    ...(chosen.choice ? { hypervisor: chosen.choice } : {}),
    onProgress: opts.onProgress ? (m: string) => opts.onProgress!(m.replace(/^\[[\d.]+ s\]/, elapsed(t0))) : undefined,
  });
  if (chosen.warning) r.warnings.unshift(chosen.warning);
  if ('payloads' in prediction) {
    for (const p of prediction.payloads) {
      const up = r.steps.find((s) => s.step === 'upload' && s.name === p.name);
      const ap = r.steps.find((s) => (s.step === 'apply' || s.step === 'replace') && s.name === p.name);
      if (!up || up.skipped || up.outcome === 'crashed' || up.outcome === 'timeout') continue;
      if (!up.ok) p.actual = { refusedAt: 'upload', errno: up.errno?.name ?? null };
      else if (!ap || ap.skipped || ap.outcome === 'crashed' || ap.outcome === 'timeout') continue;
      else p.actual = ap.ok ? { refusedAt: null, errno: null } : { refusedAt: 'apply', errno: ap.errno?.name ?? null };
      p.agrees = p.actual.refusedAt === p.predicted.refusedAt && p.actual.errno === p.predicted.errno;
      if (!p.agrees) {
        const a = p.actual.refusedAt ? `refused it at ${p.actual.refusedAt} (${p.actual.errno})` : 'accepted it';
        r.warnings.push(
          `verify predicted ${p.name} ${p.predicted.refusedAt ? `refused at ${p.predicted.refusedAt} (${p.predicted.errno})` : 'accepted'}, but the hypervisor ${a}`,
        );
      }
    }
  }
  return { ...r, durationMs: Date.now() - t0, prediction };
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
  if (r.outcome === 'crashed')
    return `${what}: the hypervisor crashed: ${r.consoleLines
      .filter((l) => l && !/^\*+$/.test(l))
      .slice(0, 4)
      .join(' / ')}`;
  if (r.outcome === 'timeout') {
    return `${what}: timed out: the hypervisor's 30 ms rendezvous timed out on each of ${r.attempts} attempt(s) (a busy host, not a verdict on the payload)${xen.length ? `; Xen: ${xen.join(' / ')}` : ''}`;
  }
  const err = r.errno
    ? `${r.errno.name} (${r.errno.number}: ${r.errno.message})`
    : `exit ${r.exitStatus}: ${r.toolOutput.split('\n').filter(Boolean).pop() ?? ''}`;
  return `${what}: refused, ${err}${said}`;
}
