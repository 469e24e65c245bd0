/**
 * `bin/xsplice try` of the arm64 example, as a user runs it (one boot): the architecture comes from
 * the payload's ELF machine, the hypervisor from its xen_depends (the arm64 build with live
 * patching), verify predicts before the boot, progress lines name each phase, and the example
 * applies (+xsplice-arm64) and reverts.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { missing, REPO } from '../helpers/debian.js';
import { ARM64_CC, arm64Livepatch, haveArm64 } from '../helpers/arm64.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const BIN = join(REPO, 'bin', 'xsplice');
const PROGRESS = /^xsplice: try \[\d+\.\d s\] /;

describe.skipIf(missing('arm64 Xen, dom0 parts and cross gcc (scripts/setup-deps.sh arm64-livepatch)', haveArm64()))(
  'bin/xsplice try: the arm64 example',
  () => {
    it('boots arm64 Xen by itself, applies the example and reverts it: exit 0', async () => {
      const dir = await tempDir('arm64-cli');
      const cflags = readFileSync(join(REPO, 'examples/arm64-xen-cflags'), 'utf8').trim().split(/\s+/);
      const obj = join(dir, 'a.o');
      await exec(ARM64_CC, [...cflags, '-c', join(REPO, 'examples/arm64-xen-extra-version/xen_extra_version.c'), '-o', obj]);
      const payload = join(dir, 'arm64-xen-extra-version.livepatch');
      await exec(process.execPath, [BIN, 'build', obj, '-o', payload, '--xen', arm64Livepatch.xenSyms, '--patch', 'xen_extra_version']);
      const t = Date.now();
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        execFile(
          process.execPath,
          [BIN, 'try', payload, '--expect-extra', '+xsplice-arm64', '--json', '--timeout', '400'],
          { timeout: 430_000, maxBuffer: 16 << 20 },
          (err, stdout, stderr) =>
            res({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: String(stdout), stderr: String(stderr) }),
        );
      });
      process.stdout.write(`bin/xsplice try (arm64, boot to verdict): ${Date.now() - t} ms\n${r.stderr}`);
      expect(r.code).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc).toMatchObject({ ok: true, arch: 'arm64', accel: 'tcg', crash: null, timedOut: false });
      expect(doc.hypervisor).toMatchObject({ why: 'xen-depends', label: expect.stringContaining('CONFIG_LIVEPATCH=y') });
      expect(doc.inputs.xenImage).toBe(arm64Livepatch.image);
      expect(doc.inputs.kernelRelease).toMatch(/-arm64$/);
      const extras = doc.steps.filter((s: { step: string }) => s.step === 'readExtra').map((s: { value: string }) => s.value);
      expect(extras).toEqual(['.5', '+xsplice-arm64', '.5']);
      expect(doc.steps.every((s: { ok: boolean; outcome: string }) => s.ok && s.outcome === 'ok')).toBe(true);
      expect(doc.prediction.payloads[0]).toMatchObject({ agrees: true, predicted: { refusedAt: null }, actual: { refusedAt: null } });
      const lines = r.stderr.trim().split('\n');
      expect(lines.every((l) => PROGRESS.test(l))).toBe(true);
      for (const p of [
        'verify predicts arm64-xen-extra-version: accepted',
        'image ready',
        'booting under qemu-system-aarch64 (tcg)',
        'hypervisor up',
        'dom0 up',
        'apply arm64-xen-extra-version: ok',
        'revert arm64-xen-extra-version: ok',
        'unload arm64-xen-extra-version: ok',
      ]) {
        expect(
          lines.some((l) => l.replace(PROGRESS, '').startsWith(p)),
          p,
        ).toBe(true);
      }
    }, 460_000);
  },
);
