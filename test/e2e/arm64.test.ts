/**
 * arm64 for real: Xen 4.17 arm64 under qemu-system-aarch64 (TCG, `virt` with virtualization and
 * GICv3, dom0 kernel and initramfs by guest-loader), a busybox dom0 with Debian's arm64
 * xen-livepatch. One boot runs everything:
 *   - the arm64 example (examples/arm64-xen-extra-version), compiled with the hypervisor's own arm64
 *     flags, built by `xsplice build`, verified against the arm64 xen-syms, uploaded, applied
 *     (/sys/hypervisor/version/extra shows its string), reverted and unloaded;
 *   - three payloads the hypervisor must refuse: a wrong xen_depends, a relocation type the arm64
 *     loader does not handle (R_AARCH64_ADR_GOT_PAGE) and an old_size below the 4 bytes the patch
 *     writes. Each refusal's errno (and the console line, where Xen prints one) is compared with
 *     what `xsplice verify` predicted for it.
 *
 * The hypervisor is Debian's Xen 4.17.5+72 source built with Debian's arm64 configuration plus
 * CONFIG_LIVEPATCH=y (scripts/setup-deps.sh arm64-livepatch): Debian's own arm64 binary is built
 * without live patching (its .config: "# CONFIG_LIVEPATCH is not set"); arm64-stock.test.ts boots
 * that one.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing, REPO } from '../helpers/debian.js';
import { ARM64_CC, arm64Livepatch, debianArm64, haveArm64 } from '../helpers/arm64.js';
import { buildXenRecipePayload, type XenRecipePayload } from '../helpers/xen-recipe.js';
import { describeStep, runSession, MAX_ATTEMPTS, type SessionResult, type Step, type StepResult } from '../../src/try/index.js';
import { loadTarget } from '../../src/payload/target.js';
import { verifyPayloads, type PayloadVerdict } from '../../src/payload/verify.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const BIN = join(REPO, 'bin', 'xsplice');
const EXAMPLE_EXTRA = '+xsplice-arm64';

describe.skipIf(missing('arm64 Xen, dom0 parts and cross gcc (scripts/setup-deps.sh arm64-livepatch)', haveArm64()))(
  'arm64: real Xen 4.17 under qemu-system-aarch64',
  () => {
    let session: SessionResult;
    let example: string;
    let badXen: XenRecipePayload;
    let got: XenRecipePayload;
    let small: XenRecipePayload;
    let repl: XenRecipePayload;
    const predicted = new Map<string, PayloadVerdict>();
    const labels = new Map<string, number>();
    const step = (label: string): StepResult => session.steps[labels.get(label)!]!;
    let xenId: string;

    beforeAll(async () => {
      const dir = await tempDir('arm64');
      const xs = arm64Livepatch.xenSyms;
      xenId = readBuildIdSync(xs);
      // The example, as its header says: cross gcc with examples/arm64-xen-cflags, then xsplice build and verify.
      const cflags = readFileSync(join(REPO, 'examples/arm64-xen-cflags'), 'utf8').trim().split(/\s+/);
      const obj = join(dir, 'xen_extra_version.o');
      await exec(ARM64_CC, [...cflags, '-c', join(REPO, 'examples/arm64-xen-extra-version/xen_extra_version.c'), '-o', obj]);
      example = join(dir, 'arm64-xen-extra-version.livepatch');
      await exec(process.execPath, [BIN, 'build', obj, '-o', example, '--xen', xs, '--patch', 'xen_extra_version']);
      const v = await exec(process.execPath, [BIN, 'verify', example, '--xen', xs]);
      expect(v.stdout).toMatch(/all 1 payload\(s\) accepted/);

      badXen = await buildXenRecipePayload({
        arch: 'arm64',
        xenSyms: xs,
        outDir: dir,
        tag: 'bad_xen_dep',
        newString: 'xs-badxen',
        xenDepends: 'wrong',
      });
      got = await buildXenRecipePayload({
        arch: 'arm64',
        xenSyms: xs,
        outDir: dir,
        tag: 'got_reloc',
        newString: 'xs-got',
        arm64Code: 'got',
      });
      small = await buildXenRecipePayload({ arch: 'arm64', xenSyms: xs, outDir: dir, tag: 'old_small', newString: 'xs-small', oldSize: 2 });
      // Like Xen's xen_replace_world: old_addr 0 (resolved by name at upload), applied with REPLACE.
      repl = await buildXenRecipePayload({
        arch: 'arm64',
        xenSyms: xs,
        outDir: dir,
        tag: 'repl',
        newString: 'xs-replace',
        oldAddr: 'zero',
      });
      const target = await loadTarget(xs);
      for (const p of [badXen, got, small]) {
        const b = readFileSync(p.file);
        const r = verifyPayloads([{ file: p.file, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength), name: p.tag }], target);
        predicted.set(p.tag, r.payloads[0]!);
      }

      const plan: [string, Step][] = [
        ['buildid', { kind: 'readBuildId', expect: xenId }],
        ['extra0', { kind: 'readExtra' }],
        ['up badxen', { kind: 'upload', name: badXen.tag, file: badXen.file }],
        ['up got', { kind: 'upload', name: got.tag, file: got.file }],
        ['up small', { kind: 'upload', name: small.tag, file: small.file }],
        ['up example', { kind: 'upload', name: 'example', file: example }],
        ['apply example', { kind: 'apply', name: 'example' }],
        ['extra applied', { kind: 'readExtra', expect: EXAMPLE_EXTRA }],
        ['list', { kind: 'list' }],
        ['revert example', { kind: 'revert', name: 'example' }],
        ['extra reverted', { kind: 'readExtra', expect: { sameAsStep: 1 } }],
        ['unload example', { kind: 'unload', name: 'example' }],
        ['up example again', { kind: 'upload', name: 'example2', file: example }],
        ['apply example again', { kind: 'apply', name: 'example2' }],
        ['up repl', { kind: 'upload', name: 'repl', file: repl.file }],
        ['replace', { kind: 'replace', name: 'repl' }],
        ['extra replaced', { kind: 'readExtra', expect: 'xs-replace' }],
        ['list replaced', { kind: 'list' }],
        ['revert repl', { kind: 'revert', name: 'repl' }],
        ['extra final', { kind: 'readExtra', expect: { sameAsStep: 1 } }],
        ['unload repl', { kind: 'unload', name: 'repl' }],
        ['unload example again', { kind: 'unload', name: 'example2' }],
      ];
      plan.forEach(([l], i) => labels.set(l, i));
      const progress: string[] = [];
      // Every attempt the 30 ms rendezvous allows: arm64 under TCG on a loaded host misses it often.
      session = await runSession({
        steps: plan.map(([, s]) => s),
        stopOnFailure: false,
        timeoutSec: 500,
        bootTimeoutSec: 300,
        busyAttempts: MAX_ATTEMPTS,
        consoleLog: join(dir, 'console.log'),
        onProgress: (m) => progress.push(m),
      });
      process.stdout.write(
        `arm64 try session: boot ${session.bootMs} ms, boot to verdict ${session.durationMs} ms (${session.arch}, ${session.accel}); console log ${session.consoleLog}\n`,
      );
      for (const s of session.steps) process.stdout.write(`  ${describeStep(s)}\n`);
      for (const m of progress) process.stdout.write(`  progress: ${m}\n`);
    }, 600_000);

    it('boots the arm64 hypervisor it was asked for: its build-id, the Debian extra version', () => {
      expect(session.arch).toBe('arm64');
      expect(session.imageBuildId).toBe(xenId);
      expect(session.xenSymsBuildId).toBe(xenId);
      expect(step('buildid')).toMatchObject({ ok: true, value: xenId });
      expect(step('extra0')).toMatchObject({ ok: true, value: '.5' });
      expect(session.hypervisor).toMatchObject({ why: 'default', buildId: xenId });
      // Debian's own arm64 binary is a different build (no live patching).
      expect(xenId).not.toBe(readBuildIdSync(debianArm64.xenSyms));
    });

    it('applies the example built by xsplice build: the extra version is its string, then reverts and unloads it', () => {
      expect(step('up example')).toMatchObject({ ok: true, outcome: 'ok' });
      const ap = step('apply example');
      expect(ap).toMatchObject({ ok: true, exitStatus: 0, toolOutput: 'Applying example... completed' });
      expect(ap.consoleLines).toEqual(
        expect.arrayContaining([
          'livepatch: example: Verifying enabled expectations for all functions',
          'livepatch: example: Applying 1 functions',
          'livepatch: example finished APPLY with rc=0',
        ]),
      );
      expect(step('extra applied')).toMatchObject({ ok: true, value: EXAMPLE_EXTRA });
      expect(step('list').toolOutput).toMatch(/^example\s+\| APPLIED/m);
      expect(step('revert example').consoleLines).toContain('livepatch: example finished REVERT with rc=0');
      expect(step('extra reverted')).toMatchObject({ ok: true, value: '.5' });
      expect(step('unload example')).toMatchObject({ ok: true });
    });

    it('replaces the applied example with a payload resolved by name (old_addr 0), reverts and unloads both', () => {
      expect(step('apply example again')).toMatchObject({ ok: true });
      expect(step('up repl')).toMatchObject({ ok: true });
      const r = step('replace');
      expect(r).toMatchObject({ ok: true, toolOutput: 'Replacing all live patches with repl... completed' });
      expect(r.consoleLines).toContain('livepatch: repl finished REPLACE with rc=0');
      expect(step('extra replaced')).toMatchObject({ ok: true, value: 'xs-replace' });
      expect(step('list replaced').toolOutput).toMatch(/^example2\s+\| CHECKED/m);
      expect(step('list replaced').toolOutput).toMatch(/^repl\s+\| APPLIED/m);
      expect(step('revert repl')).toMatchObject({ ok: true });
      expect(step('extra final')).toMatchObject({ ok: true, value: '.5' });
      expect(step('unload repl').ok && step('unload example again').ok).toBe(true);
    });

    it('retries an action only after the hypervisor said busy, and every earlier attempt shows why', () => {
      for (const r of session.steps.filter((x) => x.attempts > 1)) {
        expect(r.earlierConsoleLines).toHaveLength(r.attempts - 1);
        for (const lines of r.earlierConsoleLines!)
          expect(lines.some((l) => /Timed out on semaphore|finished \w+ with rc=-16/.test(l))).toBe(true);
      }
    });

    /** The refusal on the real hypervisor, and that verify predicted it: errno, stage, and the console line when Xen prints one. */
    function agrees(label: string, p: XenRecipePayload, errno: string, line: string | null): void {
      const r = step(label);
      const v = predicted.get(p.tag)!;
      expect(r).toMatchObject({ ok: false, outcome: 'refused', exitStatus: 1, errno: { name: errno } });
      expect(v).toMatchObject({ ok: false, refusedAt: 'upload', errno });
      const first = v.diagnostics.find((d) => d.first)!;
      const said = r.consoleLines.filter((l) => l.startsWith('livepatch'));
      if (line === null) {
        expect(said).toEqual([]);
        expect(first.printed).toBe('never');
      } else {
        expect(said).toEqual([line]);
        expect(first.printed).toBe('always');
        expect(first.message).toBe(line);
      }
    }

    it('refuses a wrong .livepatch.xen_depends at upload: EINVAL, "check against hypervisor build-id failed", as verify predicted', () => {
      agrees('up badxen', badXen, 'EINVAL', 'livepatch: bad_xen_dep: check against hypervisor build-id failed');
    });

    it('refuses R_AARCH64_ADR_GOT_PAGE at upload: EOPNOTSUPP, "Unhandled relocation 311", as verify predicted', () => {
      agrees('up got', got, 'EOPNOTSUPP', 'livepatch: got_reloc: Unhandled relocation 311');
    });

    it('refuses old_size 2 (below the 4-byte branch) at upload: EINVAL with no console line, as verify predicted', () => {
      agrees('up small', small, 'EINVAL', null);
      expect(predicted.get(small.tag)!.diagnostics.find((d) => d.first)!.code).toBe('FUNC_OLD_SIZE');
    });
  },
);

function readBuildIdSync(elf: string): string {
  const b = readFileSync(elf);
  const i = b.indexOf(Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]));
  return b.toString('hex', i + 16, i + 36);
}
