/**
 * Payloads made by `xsplice patch` applied and reverted by `xsplice try` on the stock Debian
 * 4.17.5+72 hypervisor (the default image of `try` is that package's xen.gz): the visible
 * xen_extra_version() change is read back from dom0 while applied and after the revert.
 * The static-function fix is applied and reverted the same way. One boot per payload (each depends on the hypervisor itself). With CI=true nothing skips.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debianXen, dom0Kernel, haveDebianXen, missing, REPO, XEN_BUILD_ID, XEN_EXTRA } from '../helpers/debian.js';
import { ensureDebianBase } from '../helpers/xen-base.js';
import { staticFix, visibleFix, VISIBLE_EXTRA, type Fix } from './fixes.js';

const BIN = join(REPO, 'bin', 'xsplice');

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number | string }).code as number | null) : 0;
      res({ code: typeof code === 'number' ? code : null, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const haveStack =
  haveDebianXen() && !!dom0Kernel() && existsSync(debianXen.xenLivepatch) && have('qemu-system-x86_64') && existsSync('/bin/busybox');

interface Step {
  step: string;
  name?: string;
  ok: boolean;
  value?: string;
  consoleLines?: string[];
}

describe.skipIf(missing('Debian Xen 4.17 + dom0 kernel + QEMU (scripts/setup-deps.sh)', haveStack))(
  'patch payloads on the stock hypervisor (xsplice try)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'xsplice-patch-try-'));
    const made = new Map<string, string>();
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    beforeAll(async () => {
      await ensureDebianBase();
      for (const fix of [visibleFix, staticFix]) {
        const p = join(dir, `${fix.name}.patch`);
        writeFileSync(p, fix.text);
        const out = join(dir, `${fix.name}.livepatch`);
        const r = await runCli(['patch', p, '--xen', debianXen.xenSyms, '-o', out, '-q'], 300_000);
        if (r.code !== 0) throw new Error(`patch ${fix.name}: ${r.stderr}`);
        made.set(fix.name, out);
      }
    }, 1_800_000);

    const tryOne = async (fix: Fix, extra: string): Promise<Step[]> => {
      const r = await runCli(['try', made.get(fix.name)!, '--expect-extra', extra, '--json', '--timeout', '300'], 330_000);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout) as { ok: boolean; steps: Step[] };
      expect(doc.ok).toBe(true);
      expect(doc.steps.map((s) => `${s.step}${s.name ? ' ' + s.name : ''}`)).toEqual([
        'readBuildId',
        'readExtra',
        `upload ${fix.name}`,
        `apply ${fix.name}`,
        'readExtra',
        `revert ${fix.name}`,
        `unload ${fix.name}`,
        'readExtra',
      ]);
      expect(doc.steps.every((s) => s.ok)).toBe(true);
      expect(doc.steps[0]!.value).toBe(XEN_BUILD_ID); // the stock binary
      expect(doc.steps[3]!.consoleLines).toContain(`livepatch: ${fix.name} finished APPLY with rc=0`);
      expect(doc.steps[5]!.consoleLines).toContain(`livepatch: ${fix.name} finished REVERT with rc=0`);
      return doc.steps;
    };

    it('the visible fix: dom0 reads the new extra version while applied, the old one after the revert', async () => {
      const steps = await tryOne(visibleFix, VISIBLE_EXTRA);
      expect(steps[1]!.value).toBe(XEN_EXTRA);
      expect(steps[4]!.value).toBe(VISIBLE_EXTRA);
      expect(steps[7]!.value).toBe(XEN_EXTRA);
    }, 340_000);

    it('the static-function fix (new strings, a new domain_crash) applies and reverts', async () => {
      const steps = await tryOne(staticFix, XEN_EXTRA);
      expect(steps[4]!.value).toBe(XEN_EXTRA);
    }, 340_000);
  },
);
