/**
 * The README's main job, exactly as a user runs it, then on the real hypervisor: `npm run example`
 * (scripts/example.mjs) builds out/xen-extra-version.livepatch from examples/xen-extra-version
 * against Debian's Xen 4.17, and `bin/xsplice try` applies it under QEMU (the reported extra
 * version becomes "+xsplice-demo") and reverts it (back to the stock extra version).
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { debianXen, dom0Kernel, haveDebianXen, missing, REPO, XEN_BUILD_ID, XEN_EXTRA } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';

const exec = promisify(execFile);
const ready =
  haveDebianXen() &&
  !!dom0Kernel() &&
  existsSync(debianXen.xenLivepatch) &&
  have('qemu-system-x86_64') &&
  have('gcc') &&
  existsSync('/bin/busybox');

describe.skipIf(missing('Debian Xen 4.17 + dom0 kernel + QEMU + gcc (scripts/setup-deps.sh)', ready))(
  'README example on the real hypervisor',
  () => {
    it('npm run example builds the payload; xsplice try applies it (+xsplice-demo) and reverts it (.7)', async () => {
      const payload = join(REPO, 'out/xen-extra-version.livepatch');
      const ex = await exec(process.execPath, [join(REPO, 'scripts/example.mjs')], { cwd: REPO });
      expect(ex.stdout).toMatch(/^build-id\s+[0-9a-f]{40}$/m);
      expect(ex.stdout).toMatch(new RegExp(`^depends\\s+${XEN_BUILD_ID} \\(the hypervisor\\)$`, 'm'));
      expect(statSync(payload).size).toBeGreaterThan(1000);

      const t = Date.now();
      let code = 0;
      let stdout = '';
      try {
        stdout = (
          await exec(
            process.execPath,
            [join(REPO, 'bin/xsplice'), 'try', payload, '--expect-extra', '+xsplice-demo', '--json', '--timeout', '300'],
            { timeout: 330_000, maxBuffer: 16 << 20 },
          )
        ).stdout;
      } catch (e) {
        code = (e as { code: number }).code;
        stdout = String((e as { stdout: string }).stdout);
      }
      process.stdout.write(`README example: bin/xsplice try (boot to verdict): ${Date.now() - t} ms\n`);
      const doc = JSON.parse(stdout);
      expect(code).toBe(0);
      expect(doc.ok).toBe(true);
      const extras = doc.steps.filter((s: { step: string }) => s.step === 'readExtra').map((s: { value: string }) => s.value);
      expect(extras).toEqual([XEN_EXTRA, '+xsplice-demo', XEN_EXTRA]);
      const lines = doc.steps.flatMap((s: { consoleLines: string[] }) => s.consoleLines);
      expect(lines).toContain('livepatch: xen-extra-version finished APPLY with rc=0');
      expect(lines).toContain('livepatch: xen-extra-version finished REVERT with rc=0');
    }, 400_000);
  },
);

describe('xsplice try --expect-extra longer than Xen can report', () => {
  it('is a usage error before anything boots: exit 2, one line', async () => {
    let code = 0;
    let stderr = '';
    const t = Date.now();
    try {
      await exec(process.execPath, [join(REPO, 'bin/xsplice'), 'try', join(REPO, 'package.json'), '--expect-extra', '+sixteen-chars-x'], {
        timeout: 30_000,
      });
    } catch (e) {
      code = (e as { code: number }).code;
      stderr = String((e as { stderr: string }).stderr);
    }
    expect(code).toBe(2);
    expect(stderr).toBe(
      'xsplice: --expect-extra "+sixteen-chars-x" can never match: the hypervisor reports at most 15 characters of its extra version (XENVER_extraversion is 16 bytes); a longer string in the payload shows cut short\n',
    );
    expect(Date.now() - t).toBeLessThan(10_000);
  });
});
