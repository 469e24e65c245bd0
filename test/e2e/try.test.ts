/**
 * End to end against the real thing: Debian's Xen 4.17 booted under QEMU (TCG) with a minimal dom0,
 * payloads built the way Xen's own test Makefile builds them, uploaded and applied with the real
 * xen-livepatch. Three boots in all: one library session that batches every negative case and the
 * stack, one `bin/xsplice try --json` run of the good payload (exit 0) and one of a refused payload
 * (exit 1). With CI=true the boots must happen; elsewhere a missing part skips with one line.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEBIAN_ROOT,
  debianXen,
  dom0Kernel,
  haveDebianXen,
  missing,
  REPO,
  XEN_BUILD_ID,
  XEN_EXTRA,
  XEN_VERSION_STRING,
} from '../helpers/debian.js';
import { buildXenRecipePayload, readBuildId, type XenRecipePayload } from '../helpers/xen-recipe.js';
import { runSession, describeStep, type SessionResult, type Step, type StepResult } from '../../src/try/index.js';
import { have } from '../helpers/tools.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const BIN = join(REPO, 'bin', 'xsplice');
const DIST = join(REPO, 'dist', 'cli', 'xsplice.js');

/** dist/ exists and is not older than this module's sources. */
function distFresh(): boolean {
  if (!existsSync(DIST)) return false;
  const pairs: [string, string][] = [[join(REPO, 'cli/commands/try.ts'), join(REPO, 'dist/cli/commands/try.js')]];
  for (const f of readdirSync(join(REPO, 'src/try'))) {
    if (f.endsWith('.ts')) pairs.push([join(REPO, 'src/try', f), join(REPO, 'dist/src/try', f.replace(/\.ts$/, '.js'))]);
  }
  return pairs.every(([src, out]) => existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs);
}

function runCli(
  args: string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: timeoutMs, maxBuffer: 16 << 20, env: env ?? process.env },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
        res({ code: typeof code === 'number' ? code : null, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

const haveXenStack =
  haveDebianXen() &&
  !!dom0Kernel() &&
  existsSync(debianXen.xenLivepatch) &&
  have('qemu-system-x86_64') &&
  have('gcc') &&
  have('ld') &&
  have('objcopy') &&
  existsSync('/bin/busybox');

describe.skipIf(missing('Debian Xen 4.17 + dom0 kernel + QEMU + gcc (scripts/setup-deps.sh)', haveXenStack))(
  'xsplice try: real Xen 4.17 under QEMU',
  () => {
    // ---- Boot 1: every negative case and the stack in one session ----------------------------
    let session: SessionResult;
    let steps: Step[];
    let hello: XenRecipePayload;
    let bye: XenRecipePayload;
    let repl: XenRecipePayload;
    const byLabel = new Map<string, number>();
    const step = (label: string): StepResult => {
      const i = byLabel.get(label);
      if (i === undefined) throw new Error(`no step ${label}`);
      return session.steps[i]!;
    };

    beforeAll(async () => {
      const dir = await tempDir('e2e');
      const xs = debianXen.xenSyms;
      const badXen = await buildXenRecipePayload({
        xenSyms: xs,
        outDir: dir,
        tag: 'bad_xen_dep',
        newString: 'xsplice-badxen',
        xenDepends: 'wrong',
      });
      const v1 = await buildXenRecipePayload({ xenSyms: xs, outDir: dir, tag: 'version_one', newString: 'xsplice-v1', version: 1 });
      const k32 = await buildXenRecipePayload({
        xenSyms: xs,
        outDir: dir,
        tag: 'kernel_model',
        newString: 'xsplice-32s',
        codeModel: 'kernel',
      });
      const badDep = await buildXenRecipePayload({
        xenSyms: xs,
        outDir: dir,
        tag: 'bad_dep',
        newString: 'xsplice-baddep',
        depends: 'wrong',
      });
      hello = await buildXenRecipePayload({ xenSyms: xs, outDir: dir, tag: 'hello', newString: 'xsplice-hello' });
      // Stacked on hello, patching the same function (what Xen's own xen_bye_world does).
      bye = await buildXenRecipePayload({
        xenSyms: xs,
        outDir: dir,
        tag: 'bye',
        newString: 'xsplice-bye',
        depends: { payload: hello.file },
      });
      // Like Xen's xen_replace_world: old_addr 0 (resolved by name at upload), used with REPLACE.
      repl = await buildXenRecipePayload({ xenSyms: xs, outDir: dir, tag: 'repl', newString: 'xsplice-replace', oldAddr: 'zero' });

      const plan: [string, Step][] = [
        ['buildid', { kind: 'readBuildId', expect: XEN_BUILD_ID }],
        ['extra0', { kind: 'readExtra', expect: XEN_EXTRA }],
        ['up badxen', { kind: 'upload', name: 'bad_xen_dep', file: badXen.file }],
        ['up v1', { kind: 'upload', name: 'version_one', file: v1.file }],
        ['up k32', { kind: 'upload', name: 'kernel_model', file: k32.file }],
        ['up baddep', { kind: 'upload', name: 'bad_dep', file: badDep.file }],
        ['apply baddep', { kind: 'apply', name: 'bad_dep' }],
        ['unload baddep', { kind: 'unload', name: 'bad_dep' }],
        ['up hello', { kind: 'upload', name: 'hello', file: hello.file }],
        ['up bye', { kind: 'upload', name: 'bye', file: bye.file }],
        ['apply bye first', { kind: 'apply', name: 'bye' }],
        ['extra unchanged', { kind: 'readExtra' }],
        ['apply hello', { kind: 'apply', name: 'hello' }],
        ['extra hello', { kind: 'readExtra' }],
        ['apply bye', { kind: 'apply', name: 'bye' }],
        ['extra bye', { kind: 'readExtra' }],
        ['list both', { kind: 'list' }],
        ['revert hello not top', { kind: 'revert', name: 'hello' }],
        ['revert bye', { kind: 'revert', name: 'bye' }],
        ['extra after bye', { kind: 'readExtra' }],
        ['revert hello', { kind: 'revert', name: 'hello' }],
        ['extra reverted', { kind: 'readExtra' }],
        ['unload bye', { kind: 'unload', name: 'bye' }],
        ['unload hello', { kind: 'unload', name: 'hello' }],
        ['list empty', { kind: 'list' }],
        // REPLACE: hello applied again (a fresh upload after its unload), then replaced as a whole.
        ['up hello again', { kind: 'upload', name: 'hello2', file: hello.file }],
        ['apply hello again', { kind: 'apply', name: 'hello2' }],
        ['up repl', { kind: 'upload', name: 'repl', file: repl.file }],
        ['replace', { kind: 'replace', name: 'repl' }],
        ['extra replaced', { kind: 'readExtra' }],
        ['list replaced', { kind: 'list' }],
        ['revert repl', { kind: 'revert', name: 'repl' }],
        ['extra final', { kind: 'readExtra', expect: { sameAsStep: 1 } }],
        ['unload repl', { kind: 'unload', name: 'repl' }],
        ['unload hello again', { kind: 'unload', name: 'hello2' }],
      ];
      plan.forEach(([label], i) => byLabel.set(label, i));
      steps = plan.map(([, s]) => s);
      session = await runSession({ steps, stopOnFailure: false, timeoutSec: 400, consoleLog: join(dir, 'console.log') });
      process.stdout.write(
        `xsplice try session: ${steps.length} steps, boot ${session.bootMs} ms, boot to verdict ${session.durationMs} ms (${session.accel}); console log ${session.consoleLog}\n`,
      );
      for (const s of session.steps) process.stdout.write(`  ${describeStep(s)}\n`);
    }, 480_000);

    it('boots the Debian hypervisor and reads its build-id and extra version', () => {
      expect(session.steps.every((s) => !s.skipped)).toBe(true);
      expect(step('buildid')).toMatchObject({ ok: true, value: XEN_BUILD_ID });
      expect(step('extra0')).toMatchObject({ ok: true, value: XEN_EXTRA });
    });

    it('refuses a wrong .livepatch.xen_depends at upload: EINVAL', () => {
      const r = step('up badxen');
      expect(r).toMatchObject({ ok: false, exitStatus: 1, errno: { number: 22, name: 'EINVAL' } });
      expect(r.toolOutput).toContain('failed');
      expect(r.consoleLines).toContain('livepatch: bad_xen_dep: check against hypervisor build-id failed');
    });

    it('refuses version-1 entries at upload: EOPNOTSUPP', () => {
      const r = step('up v1');
      expect(r).toMatchObject({ ok: false, exitStatus: 1, errno: { number: 95, name: 'EOPNOTSUPP' } });
      expect(r.consoleLines).toContain('livepatch: version_one: Wrong version (1). Expected 2');
    });

    it('refuses R_X86_64_32S relocations (-mcmodel=kernel -fno-pic) at upload: EOPNOTSUPP', () => {
      const r = step('up k32');
      expect(r).toMatchObject({ ok: false, exitStatus: 1, errno: { number: 95, name: 'EOPNOTSUPP' } });
      expect(r.consoleLines).toContain('livepatch: kernel_model: Unhandled relocation 11');
    });

    it('uploads a wrong .livepatch.depends but refuses it at apply: EINVAL', () => {
      const up = step('up baddep');
      expect(up).toMatchObject({ ok: true, exitStatus: 0, errno: null });
      expect(up.toolOutput).toMatch(/Uploading .*bad_dep\.livepatch\.\.\. completed/);
      expect(up.consoleLines.filter((l) => l.includes('livepatch'))).toEqual([]);
      const ap = step('apply baddep');
      expect(ap).toMatchObject({ ok: false, exitStatus: 1, errno: { number: 22, name: 'EINVAL' } });
      expect(ap.consoleLines).toContain('livepatch: bad_dep: check against hypervisor build-id failed');
      expect(step('unload baddep').ok).toBe(true);
    });

    it('refuses the second payload of a stack before the first is applied: EINVAL', () => {
      expect(step('up hello').ok).toBe(true);
      expect(step('up bye').ok).toBe(true);
      const r = step('apply bye first');
      expect(r).toMatchObject({ ok: false, exitStatus: 1, errno: { number: 22, name: 'EINVAL' } });
      expect(r.consoleLines).toContain('livepatch: bye: check against hypervisor build-id failed');
      expect(step('extra unchanged').value).toBe(XEN_EXTRA);
    });

    it('applies the good payload: the extra version becomes its string', () => {
      const r = step('apply hello');
      expect(r).toMatchObject({ ok: true, exitStatus: 0 });
      expect(r.toolOutput).toBe('Applying hello... completed');
      expect(r.consoleLines).toEqual(
        expect.arrayContaining([
          'livepatch: hello: Verifying enabled expectations for all functions',
          'livepatch: hello: Applying 1 functions',
          'livepatch: hello finished APPLY with rc=0',
        ]),
      );
      expect(step('extra hello').value).toBe(hello.newString);
    });

    it('applies the stacked payload on top, then reverts in order back to the stock extra version', () => {
      expect(step('apply bye')).toMatchObject({ ok: true });
      expect(step('apply bye').consoleLines).toContain('livepatch: bye finished APPLY with rc=0');
      expect(step('extra bye').value).toBe(bye.newString);
      expect(step('list both').ok).toBe(true);
      expect(step('list both').toolOutput).toMatch(/^hello\s+\| APPLIED/m);
      expect(step('list both').toolOutput).toMatch(/^bye\s+\| APPLIED/m);
      // Only the top of the stack can be reverted. EBUSY is xen-livepatch's "retry" status (exit 2),
      // so the session tried it 3 times, each refused.
      const notTop = step('revert hello not top');
      expect(notTop).toMatchObject({ ok: false, exitStatus: 2, errno: { number: 16, name: 'EBUSY' }, attempts: 3 });
      expect(notTop.earlierConsoleLines).toHaveLength(2);
      expect(notTop.consoleLines.join('\n')).toMatch(/hello: can't unload\. Top is bye/);
      const rb = step('revert bye');
      expect(rb).toMatchObject({ ok: true });
      expect(rb.consoleLines).toEqual(expect.arrayContaining(['livepatch: bye: Reverting', 'livepatch: bye finished REVERT with rc=0']));
      expect(step('extra after bye').value).toBe(hello.newString);
      expect(step('revert hello')).toMatchObject({ ok: true });
      expect(step('revert hello').consoleLines).toContain('livepatch: hello finished REVERT with rc=0');
      expect(step('extra reverted').value).toBe(XEN_EXTRA);
      expect(step('unload bye').ok).toBe(true);
      expect(step('unload hello').ok).toBe(true);
      expect(step('list empty')).toMatchObject({ ok: true, toolOutput: 'Nothing to list' });
    });

    it('replaces every applied payload with one resolved by name (old_addr 0)', () => {
      expect(step('up hello again').ok).toBe(true);
      expect(step('apply hello again').ok).toBe(true);
      expect(step('up repl').ok).toBe(true);
      const r = step('replace');
      expect(r).toMatchObject({ ok: true, exitStatus: 0 });
      expect(r.toolOutput).toMatch(/^Replacing all live patches with repl\.\.\. completed$/);
      expect(r.consoleLines).toContain('livepatch: repl finished REPLACE with rc=0');
      expect(step('extra replaced').value).toBe(repl.newString);
      expect(step('list replaced').toolOutput).toMatch(/^hello2\s+\| CHECKED/m);
      expect(step('list replaced').toolOutput).toMatch(/^repl\s+\| APPLIED/m);
      expect(step('revert repl').ok).toBe(true);
      expect(step('extra final')).toMatchObject({ ok: true, value: XEN_EXTRA });
      expect(step('unload repl').ok).toBe(true);
      expect(step('unload hello again').ok).toBe(true);
    });

    it('keeps the console log and reports a session that is not ok', () => {
      expect(session.ok).toBe(false);
      const log = readFileSync(session.consoleLog, 'utf8');
      expect(log).toContain('(XEN)');
      expect(log).toContain('livepatch: hello finished APPLY with rc=0');
    });
  },
);

/**
 * The Debian Xen version `try` must fetch by itself: one apt offers besides the pinned one (the
 * security pocket's, whatever it is today), else the pinned one (then nothing is fetched).
 */
function otherDebianXen(): { version: string; root: string } {
  const out = spawnSync('bash', [join(REPO, 'scripts/setup-deps.sh'), 'xen-versions', 'amd64'], { encoding: 'utf8', timeout: 300_000 });
  const versions = out.stdout
    .split('\n')
    .map((v) => v.trim())
    .filter(Boolean);
  const other = versions.find((v) => v !== XEN_VERSION_STRING);
  if (!other) return { version: XEN_VERSION_STRING, root: DEBIAN_ROOT };
  const root = join(REPO, '.cache', 'debian-versions', `${other}_amd64`, 'root');
  const got = spawnSync('bash', [join(REPO, 'scripts/setup-deps.sh'), 'xen-version', other, 'amd64', root], {
    encoding: 'utf8',
    timeout: 600_000,
  });
  if (got.status !== 0) throw new Error(`setup-deps.sh xen-version ${other}: ${got.stderr}`);
  return { version: other, root };
}

const PROGRESS = /^xsplice: try \[\d+\.\d s\] /;

describe.skipIf(missing('Debian Xen 4.17 + QEMU + a built dist/ (npx tsc)', haveXenStack && distFresh()))(
  'bin/xsplice try (real QEMU)',
  () => {
    let dir: string;
    let good: XenRecipePayload;
    let badXen: XenRecipePayload;
    let stock: { version: string; root: string };
    beforeAll(async () => {
      dir = await tempDir('e2e-cli');
      stock = otherDebianXen();
      // Built against that version's xen-syms: its xen_depends names that stock build.
      good = await buildXenRecipePayload({
        xenSyms: join(stock.root, 'usr/lib/debug/boot/xen-syms-4.17-amd64'),
        outDir: dir,
        tag: 'cli_hello',
        newString: 'xsplice-hello',
      });
      badXen = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, outDir: dir, tag: 'cli_bad_xen', xenDepends: 'wrong' });
    }, 600_000);

    it('boots the stock Debian build the payload depends on, applies and reverts it: exit 0, one JSON document, progress on stderr', async () => {
      const t = Date.now();
      const r = await runCli(['try', good.file, '--expect-extra', 'xsplice-hello', '--json', '--timeout', '300'], 330_000);
      process.stdout.write(`bin/xsplice try (boot to verdict): ${Date.now() - t} ms; Debian Xen ${stock.version}\n${r.stderr}`);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.ok).toBe(true);
      const stockId = await readBuildId(join(stock.root, 'usr/lib/debug/boot/xen-syms-4.17-amd64'));
      expect(doc.hypervisor).toMatchObject({
        why: 'xen-depends',
        version: stock.version,
        buildId: stockId,
        label: `Debian's Xen ${stock.version} (amd64)`,
      });
      expect(doc.inputs.xenImage).toBe(join(stock.root, 'boot/xen-4.17-amd64.gz'));
      expect(typeof doc.durationMs).toBe('number');
      expect(existsSync(doc.consoleLog)).toBe(true);
      const kinds = doc.steps.map((s: StepResult) => `${s.step}${s.name ? ' ' + s.name : ''}`);
      expect(kinds).toEqual([
        'readBuildId',
        'readExtra',
        'upload cli_hello',
        'apply cli_hello',
        'readExtra',
        'revert cli_hello',
        'unload cli_hello',
        'readExtra',
      ]);
      expect(doc.steps.every((s: StepResult) => s.ok && s.exitStatus === 0 && !s.skipped && s.outcome === 'ok')).toBe(true);
      expect(doc.steps[0].value).toBe(stockId);
      const extra = '.' + stock.version.split(/[.+]/)[2];
      expect(doc.steps[1].value).toBe(extra);
      expect(doc.steps[3].consoleLines).toContain('livepatch: cli_hello finished APPLY with rc=0');
      expect(doc.steps[4]).toMatchObject({ value: 'xsplice-hello', expected: 'xsplice-hello' });
      expect(doc.steps[5].consoleLines).toContain('livepatch: cli_hello finished REVERT with rc=0');
      expect(doc.steps[7]).toMatchObject({ value: extra, expected: extra });
      // verify ran first against the stock xen-syms, predicted acceptance, and the hypervisor agreed.
      expect(doc.prediction.payloads).toEqual([
        expect.objectContaining({
          name: 'cli_hello',
          agrees: true,
          predicted: { refusedAt: null, errno: null, codes: [] },
          actual: { refusedAt: null, errno: null },
        }),
      ]);
      // Progress: one line per phase with the elapsed time, in order, also with --json.
      const lines = r.stderr.trim().split('\n');
      expect(lines.every((l) => PROGRESS.test(l))).toBe(true);
      const phases = [
        "booting Debian's Xen",
        'verify predicts cli_hello: accepted',
        'image ready',
        'hypervisor up',
        'dom0 up',
        'upload cli_hello: ok',
        'apply cli_hello: ok',
        'revert cli_hello: ok',
        'unload cli_hello: ok',
      ];
      const at = phases.map((p) => lines.findIndex((l) => l.replace(PROGRESS, '').startsWith(p)));
      expect(at.every((i) => i >= 0)).toBe(true);
      expect([...at].sort((a, b) => a - b)).toEqual(at);
      const secs = lines.map((l) => Number(/\[(\d+\.\d) s\]/.exec(l)![1]));
      expect([...secs].sort((a, b) => a - b)).toEqual(secs);
    }, 340_000);

    it('reports a refused upload: exit 1, the errno and the console line; later steps skipped; verify predicted it', async () => {
      // Explicit inputs this time, the image as the plain ELF that `gunzip` gives.
      const elf = join(dir, 'xen.elf');
      writeFileSync(elf, gunzipSync(readFileSync(debianXen.xenGz)));
      const r = await runCli(
        ['try', badXen.file, '--json', '--xen-image', elf, '--xen-syms', debianXen.xenSyms, '--dom0-kernel', dom0Kernel()!],
        330_000,
      );
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.slice(0, -1).every((l) => PROGRESS.test(l))).toBe(true);
      expect(lines.at(-1)).toBe(
        `xsplice: ${badXen.file}: upload cli_bad_xen: refused, EINVAL (22: Invalid argument); Xen: livepatch: cli_bad_xen: check against hypervisor build-id failed`,
      );
      expect(lines.some((l) => l.endsWith('verify predicts cli_bad_xen: refused at upload (EINVAL: XEN_DEPENDS_MISMATCH)'))).toBe(true);
      const doc = JSON.parse(r.stdout);
      expect(doc.ok).toBe(false);
      const up = doc.steps.find((s: StepResult) => s.step === 'upload');
      expect(up).toMatchObject({ ok: false, outcome: 'refused', errno: { number: 22, name: 'EINVAL' } });
      expect(up.consoleLines).toContain('livepatch: cli_bad_xen: check against hypervisor build-id failed');
      expect(doc.steps.find((s: StepResult) => s.step === 'apply')).toMatchObject({ skipped: true, ok: false, outcome: 'skipped' });
      expect(doc.inputs).toMatchObject({ xenImage: elf, xenSyms: debianXen.xenSyms, dom0Kernel: dom0Kernel() });
      expect(doc.hypervisor).toMatchObject({ why: 'given', label: elf });
      expect(doc.prediction.payloads[0]).toMatchObject({
        agrees: true,
        predicted: { refusedAt: 'upload', errno: 'EINVAL' },
        actual: { refusedAt: 'upload', errno: 'EINVAL' },
      });
      expect(doc.warnings).toEqual([]);
    }, 340_000);
  },
);

/** Processes whose command line mentions `needle` (read from /proc; nothing is signalled). */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1').includes(needle)) pids.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return pids;
}

describe.skipIf(missing('Debian Xen 4.17 + QEMU + a built dist/ (npx tsc)', haveXenStack && distFresh()))(
  'bin/xsplice try: tool errors (exit 2)',
  () => {
    it('bad --dom0-kernel or --xen-image: exit 2 before QEMU starts, one line', async () => {
      const k = await runCli(['try', BIN, '--dom0-kernel', BIN], 60_000);
      expect(k.code).toBe(2);
      expect(k.stderr).toBe(`xsplice: ${BIN}: not a Linux bzImage (no HdrS setup header)\n`);
      const x = await runCli(['try', BIN, '--xen-image', BIN], 60_000);
      expect(x.code).toBe(2);
      expect(x.stderr).toBe(`xsplice: ${BIN}: not an ELF hypervisor image (or gzip of one)\n`);
    });

    it('a run that cannot finish in --timeout: exit 2 naming the console log, and its QEMU is gone', async () => {
      const dir = await tempDir('e2e-timeout');
      const payload = await buildXenRecipePayload({ xenSyms: debianXen.xenSyms, outDir: dir, tag: 'never' });
      const log = join(dir, 'console.log');
      // QEMU's command line names its work directory, which lives under this TMPDIR.
      const tmp = await tempDir('e2e-tmpdir');
      const t = Date.now();
      const running = runCli(['try', payload.file, '--timeout', '3', '--console-log', log, '--json'], 60_000, {
        ...process.env,
        TMPDIR: tmp,
      });
      // While it runs, its QEMU is visible (so the check after the run can see a leftover one).
      let seen = false;
      for (let i = 0; i < 100 && !seen; i++) {
        seen = processesMentioning(tmp).some((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'latin1').includes('qemu-system-x86_64');
          } catch {
            return false;
          }
        });
        if (!seen) await new Promise((r) => setTimeout(r, 50));
      }
      const r = await running;
      expect(seen).toBe(true);
      process.stdout.write(`bin/xsplice try --timeout 3: gave up after ${Date.now() - t} ms\n`);
      expect(Date.now() - t).toBeLessThan(20_000);
      expect(r.code).toBe(2);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ ok: false, error: { code: 'TRY_BOOT_TIMEOUT' } });
      expect(doc.error.message).toContain('dom0 was not ready after 3 s');
      expect(doc.error.message).toContain(`console log ${log}`);
      const lines = r.stderr.trim().split('\n');
      expect(lines.slice(0, -1).every((l) => PROGRESS.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/^xsplice: dom0 was not ready after 3 s/);
      expect(readFileSync(log, 'utf8')).toContain('(XEN)');
      expect(readdirSync(tmp)).toEqual([]); // work directory removed
      expect(processesMentioning(tmp)).toEqual([]);
    }, 60_000);
  },
);

describe.skipIf(missing('a built dist/ (npx tsc)', distFresh()))('bin/xsplice try: errors that need no QEMU', () => {
  it('a missing payload file: exit 2, one line on stderr', async () => {
    const r = await runCli(['try', '/nonexistent/x.livepatch'], 30_000);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('xsplice: /nonexistent/x.livepatch: no such file or not readable\n');
  });

  it('a missing payload file with --json: exit 2 and the error in the JSON document', async () => {
    const r = await runCli(['try', '/nonexistent/x.livepatch', '--json'], 30_000);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ ok: false, error: { code: 'TRY_NO_INPUT' } });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('no payload, or a bad --timeout, or a missing --xen-image: exit 2, one line', async () => {
    const none = await runCli(['try'], 30_000);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await runCli(['try', BIN, '--timeout', 'soon'], 30_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('xsplice: --timeout: expected a positive number of seconds, got "soon"\n');
    const img = await runCli(['try', BIN, '--xen-image', '/nonexistent/xen.gz'], 30_000);
    expect(img.code).toBe(2);
    expect(img.stderr).toBe('xsplice: /nonexistent/xen.gz: --xen-image: no such file or not readable\n');
  });
});
