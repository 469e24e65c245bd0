/**
 * Step plans: what the dom0 does, in order, and how the serial log is turned back into per-step
 * results. Each step is run by /steps.sh between two marker lines, with the tool's stdout/stderr
 * echoed as marker lines after it returns; the hypervisor's own console lines that fall between
 * the BEGIN and END markers of a step belong to that step (dom0 writes its console through the
 * hypervisor, synchronously, so the serial log keeps the order).
 */
import { basename } from 'node:path';
import { XspliceError } from '../errors.js';
import { errnoName } from './errno.js';
import { MARK } from './initramfs.js';

export type StepKind = 'upload' | 'apply' | 'revert' | 'unload' | 'replace' | 'readExtra' | 'readBuildId' | 'list';

interface StepBase {
  /** Stop the plan (remaining steps are reported skipped) if this step does not succeed.
   * Default: the plan's stopOnFailure. */
  stopOnFailure?: boolean;
  /** apply/revert/replace: how many times to run the action in all while xen-livepatch exits 2
   * (its "retry" status: EBUSY/EAGAIN, e.g. the 30 ms rendezvous timed out on a loaded host).
   * Default: the plan's busyAttempts. */
  attempts?: number;
}

export type Step = StepBase &
  (
    | { kind: 'upload'; name: string; file: string }
    | { kind: 'apply'; name: string; nodeps?: boolean }
    | { kind: 'revert' | 'unload' | 'replace'; name: string }
    /** Reads /sys/hypervisor/version/extra. `expect`: the exact string, or the value read by an
     * earlier read step (its index). */
    | { kind: 'readExtra'; expect?: string | { sameAsStep: number } }
    /** Reads /sys/hypervisor/properties/buildid (hex). */
    | { kind: 'readBuildId'; expect?: string | { sameAsStep: number } }
    | { kind: 'list' }
  );

export interface StepResult {
  index: number;
  step: StepKind;
  /** Payload name for payload steps. */
  name?: string;
  /** The step succeeded (tool exit 0, and the read value matched `expect` if one was given). */
  ok: boolean;
  /** Not run because an earlier step stopped the plan. */
  skipped: boolean;
  /** Exit status of the tool in dom0 (null when skipped). */
  exitStatus: number | null;
  /** The errno the tool reported ("Error 22: Invalid argument"). */
  errno: { number: number; name: string; message: string } | null;
  /** What xen-livepatch (or cat) printed: stdout then stderr. */
  toolOutput: string;
  /** Hypervisor console lines printed during the step, without "(XEN) [timestamp]". */
  consoleLines: string[];
  /** For read steps: the value read (trimmed). */
  value?: string;
  /** For read steps with an expectation: the expected value. */
  expected?: string;
  /** How many times the action ran (more than 1 only after exit status 2, see Step.attempts). */
  attempts: number;
  /** What happened, in one word: 'ok'; 'refused' (the hypervisor or the tool said no); 'timeout'
   * (every attempt failed only because the hypervisor's 30 ms rendezvous timed out: "Timed out on
   * semaphore", a busy host, not a verdict on the payload); 'crashed' (the hypervisor died during
   * this step); 'skipped'. */
  outcome: 'ok' | 'refused' | 'timeout' | 'crashed' | 'skipped';
  /** Hypervisor lines of earlier attempts, when there were several. */
  earlierConsoleLines?: string[][];
}

const NAME_RE = /^[A-Za-z0-9_.+-]{1,127}$/;

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Where the payload of upload step `index` lives in the initramfs. */
export function payloadPath(index: number, file: string): string {
  const b = basename(file).replace(/[^A-Za-z0-9_.+-]/g, '_') || 'payload';
  return `/payloads/${index}/${b}`;
}

export function validatePlan(steps: Step[]): void {
  if (steps.length === 0) throw new XspliceError('TRY_EMPTY_PLAN', 'the step plan is empty', {}, 2);
  steps.forEach((s, i) => {
    if ('name' in s && !NAME_RE.test(s.name)) {
      throw new XspliceError(
        'TRY_BAD_NAME',
        `step ${i} (${s.kind}): payload name ${JSON.stringify(s.name)} must be 1-127 characters of [A-Za-z0-9_.+-]`,
        {},
        2,
      );
    }
    if ((s.kind === 'readExtra' || s.kind === 'readBuildId') && typeof s.expect === 'object') {
      const ref = steps[s.expect.sameAsStep];
      if (!ref || s.expect.sameAsStep >= i || ref.kind !== s.kind) {
        throw new XspliceError('TRY_BAD_PLAN', `step ${i} (${s.kind}): sameAsStep must name an earlier ${s.kind} step`, {}, 2);
      }
    }
  });
}

/** Upper bound of attempts of one action (back-off 1+2+...+2^(n-2) s stays within a step's limit). */
export const MAX_ATTEMPTS = 6;

/** The hypervisor's words when an apply/revert/replace rendezvous did not gather every CPU in time. */
export const RENDEZVOUS_TIMEOUT = /Timed out on semaphore/;

/** The shell fragment (/steps.sh) the dom0 /init sources. */
export function stepScript(steps: Step[], opts: { stopOnFailure: boolean; stepTimeoutSec: number; busyAttempts?: number }): string {
  const t = Math.max(5, Math.floor(opts.stepTimeoutSec));
  const lines: string[] = [
    '# generated by xsplice try',
    'xs_emit() { # index tag file',
    '  while IFS= read -r l || [ -n "$l" ]; do echo "' + MARK + ' $2 $1 $l"; done < "$3"',
    '}',
    'xs_run() { # index stop attempts cmd...',
    '  i=$1; stop=$2; max=$3; shift 3',
    '  echo "' + MARK + ' BEGIN $i"',
    '  a=1; d=1',
    '  while :; do',
    `    timeout ${t} "$@" >/tmp/xs.out 2>/tmp/xs.err`,
    '    rc=$?',
    // Exit status 2 is xen-livepatch's "busy, try again" (EBUSY/EAGAIN: a rendezvous that timed
    // out on a loaded host). Back off 1, 2, 4 ... s between attempts.
    '    if [ $rc -eq 2 ] && [ $a -lt $max ]; then echo "' + MARK + ' RETRY $i $a"; sleep $d; d=$((d*2)); a=$((a+1)); continue; fi',
    '    break',
    '  done',
    '  xs_emit $i OUT /tmp/xs.out',
    '  xs_emit $i ERR /tmp/xs.err',
    '  echo "' + MARK + ' END $i $rc"',
    '  if [ $rc -ne 0 ] && [ "$stop" = 1 ]; then echo "' + MARK + ' STOP $i"; xs_finish; fi',
    '}',
  ];
  steps.forEach((s, i) => {
    const stop = (s.stopOnFailure ?? opts.stopOnFailure) ? 1 : 0;
    const retryable = s.kind === 'apply' || s.kind === 'revert' || s.kind === 'replace';
    const attempts = retryable ? Math.max(1, Math.min(MAX_ATTEMPTS, Math.floor(s.attempts ?? opts.busyAttempts ?? 1))) : 1;
    let cmd: string;
    switch (s.kind) {
      case 'upload':
        cmd = `xen-livepatch upload ${shq(s.name)} ${shq(payloadPath(i, s.file))}`;
        break;
      case 'apply':
        cmd = `xen-livepatch apply ${shq(s.name)}${s.nodeps ? ' --nodeps' : ''}`;
        break;
      case 'revert':
      case 'unload':
      case 'replace':
        cmd = `xen-livepatch ${s.kind} ${shq(s.name)}`;
        break;
      case 'list':
        cmd = 'xen-livepatch list';
        break;
      case 'readExtra':
        cmd = 'cat /sys/hypervisor/version/extra';
        break;
      case 'readBuildId':
        cmd = `sh -c ${shq('od -An -tx1 -v /sys/hypervisor/properties/buildid | tr -d " \\n"')}`;
        break;
    }
    // A read step with an expectation is checked on the host; in dom0 only the tool's status
    // can stop the plan. Mismatches still stop it there (see parse).
    lines.push(`xs_run ${i} ${stop} ${attempts} ${cmd}`);
  });
  lines.push('');
  return lines.join('\n');
}

// Busybox `timeout` ends the child with SIGTERM: exit status 143.
export const DOM0_TIMEOUT_STATUS = 143;

const XEN_LINE = /\(XEN\)\s*(?:\[[^\]]*\]\s*)?(.*)$/;
const MARK_LINE = new RegExp(MARK.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + ' (\\w+)(?: (\\d+))?(?: (.*))?$');

export interface ParsedLog {
  init: boolean;
  ready: boolean;
  done: boolean;
  /** Index of the step that stopped the plan. */
  stoppedAt: number | null;
  warnings: string[];
  steps: StepResult[];
  /** Index of a step that began but never ended (the log was cut). */
  unfinished: number | null;
}

/** Parses the serial log into per-step results. */
export function parseLog(log: string, steps: Step[]): ParsedLog {
  const res: ParsedLog = { init: false, ready: false, done: false, stoppedAt: null, warnings: [], steps: [], unfinished: null };
  const out = steps.map((s, i): StepResult => ({
    index: i,
    step: s.kind,
    ...('name' in s ? { name: s.name } : {}),
    ok: false,
    skipped: true,
    exitStatus: null,
    errno: null,
    toolOutput: '',
    consoleLines: [],
    attempts: 1,
    outcome: 'skipped',
  }));
  const stdout = steps.map(() => [] as string[]);
  const stderr = steps.map(() => [] as string[]);
  let cur: number | null = null;
  for (const raw of log.split('\n')) {
    const line = raw.replace(/\r/g, '');
    const mm = MARK_LINE.exec(line);
    if (mm) {
      const [, tag, idxS, rest] = mm;
      const idx = idxS !== undefined ? Number(idxS) : -1;
      const r = out[idx];
      switch (tag) {
        case 'INIT':
          res.init = true;
          break;
        case 'READY':
          res.ready = true;
          break;
        case 'DONE':
          res.done = true;
          break;
        case 'WARN':
          res.warnings.push([idxS, rest].filter((x) => x !== undefined).join(' '));
          break;
        case 'BEGIN':
          if (r) {
            cur = idx;
            r.skipped = false;
          }
          break;
        case 'OUT':
          if (r) stdout[idx]!.push(rest ?? '');
          break;
        case 'ERR':
          if (r) stderr[idx]!.push(rest ?? '');
          break;
        case 'END':
          if (r) {
            r.exitStatus = Number(rest);
            cur = null;
          }
          break;
        case 'STOP':
          res.stoppedAt = idx;
          break;
        case 'RETRY':
          if (r) {
            (r.earlierConsoleLines ??= []).push(r.consoleLines);
            r.consoleLines = [];
            r.attempts++;
          }
          break;
      }
      // A marker can share a line with hypervisor output printed in the middle of it.
      const before = line.slice(0, mm.index);
      const xm = XEN_LINE.exec(before);
      if (xm && cur !== null && tag !== 'BEGIN') out[cur]!.consoleLines.push(xm[1]!.trim());
      continue;
    }
    const xm = XEN_LINE.exec(line);
    if (xm && cur !== null) out[cur]!.consoleLines.push(xm[1]!.trim());
  }
  for (const r of out) {
    if (r.skipped) continue;
    const i = r.index;
    r.toolOutput = [...stdout[i]!, ...stderr[i]!].join('\n');
    if (r.exitStatus === null) {
      res.unfinished = i;
      continue;
    }
    const em = /Error (\d+): (.*)/.exec(r.toolOutput);
    if (em) r.errno = { number: Number(em[1]), name: errnoName(Number(em[1])), message: em[2]!.trim() };
    r.ok = r.exitStatus === 0;
    r.outcome = r.ok ? 'ok' : 'refused';
    if (!r.ok && r.consoleLines.some((l) => RENDEZVOUS_TIMEOUT.test(l))) r.outcome = 'timeout';
    const s = steps[i]!;
    if (s.kind === 'readExtra' || s.kind === 'readBuildId') {
      r.value = stdout[i]!.join('\n').trim();
      if (s.expect !== undefined) {
        const exp = typeof s.expect === 'string' ? s.expect : out[s.expect.sameAsStep]?.value;
        if (exp !== undefined) r.expected = exp;
        r.ok = r.ok && exp !== undefined && r.value === exp;
        r.outcome = r.ok ? 'ok' : 'refused';
      }
    }
  }
  res.steps = out;
  return res;
}

/** Payload name used for a file in the standard plan: basename without extension, sanitised. */
export function payloadName(file: string, taken: Set<string>): string {
  const base =
    basename(file)
      .replace(/\.[^.]*$/, '')
      .replace(/[^A-Za-z0-9_.+-]/g, '_')
      .slice(0, 100) || 'payload';
  let n = base;
  for (let k = 2; taken.has(n); k++) n = `${base}_${k}`;
  taken.add(n);
  return n;
}

/**
 * The standard `xsplice try` plan: read the build-id and the extra version, upload and apply each
 * payload in order, read the extra version (checked against `expectExtra`), then revert and unload
 * in reverse order and check the extra version is back to what it was.
 */
export interface PlanOptions {
  expectExtra?: string;
  /** Apply each payload with REPLACE (it reverts every applied payload and applies itself
   * atomically): only the last one is left applied, so only it is reverted. */
  replace?: boolean;
  /** Apply with --nodeps (the hypervisor skips the .livepatch.depends check). */
  nodeps?: boolean;
}

export function standardPlan(files: string[], opts: PlanOptions = {}): Step[] {
  const taken = new Set<string>();
  const names = files.map((f) => payloadName(f, taken));
  const steps: Step[] = [{ kind: 'readBuildId' }, { kind: 'readExtra' }];
  files.forEach((f, i) => {
    steps.push({ kind: 'upload', name: names[i]!, file: f });
    if (opts.replace) steps.push({ kind: 'replace', name: names[i]! });
    else steps.push({ kind: 'apply', name: names[i]!, ...(opts.nodeps ? { nodeps: true } : {}) });
  });
  steps.push(opts.expectExtra !== undefined ? { kind: 'readExtra', expect: opts.expectExtra } : { kind: 'readExtra' });
  for (let i = files.length - 1; i >= 0; i--) {
    if (!opts.replace || i === files.length - 1) steps.push({ kind: 'revert', name: names[i]! });
    steps.push({ kind: 'unload', name: names[i]! });
  }
  steps.push({ kind: 'readExtra', expect: { sameAsStep: 1 } });
  return steps;
}
