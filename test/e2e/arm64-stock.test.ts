/**
 * Debian 12's own arm64 hypervisor, as users of that package run it (one boot): it is built
 * without CONFIG_LIVEPATCH. A payload whose xen_depends is that build's id makes `xsplice try`
 * boot exactly that binary (chosen by build-id), and the upload is refused with ENOSYS, which
 * `xsplice verify` predicts from the symbol table (no livepatch_op).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missing, REPO } from '../helpers/debian.js';
import { debianArm64, haveArm64 } from '../helpers/arm64.js';
import { buildXenRecipePayload } from '../helpers/xen-recipe.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const BIN = join(REPO, 'bin', 'xsplice');

describe.skipIf(missing('arm64 Xen, dom0 parts and cross gcc (scripts/setup-deps.sh arm64-livepatch)', haveArm64()))(
  "Debian's stock arm64 Xen 4.17",
  () => {
    it('has no live patching: its config says so, verify predicts ENOSYS, and the booted stock binary answers ENOSYS', async () => {
      expect(readFileSync(debianArm64.config, 'utf8')).toMatch(/^# CONFIG_LIVEPATCH is not set$/m);
      const dir = await tempDir('arm64-stock');
      const p = await buildXenRecipePayload({
        arch: 'arm64',
        xenSyms: debianArm64.xenSyms,
        outDir: dir,
        tag: 'stock_hello',
        newString: 'xs-stock',
      });
      const run = (args: string[], ms: number) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
          execFile(process.execPath, [BIN, ...args], { timeout: ms, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
            res({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: String(stdout), stderr: String(stderr) }),
          );
        });
      const v = await run(['verify', p.file, '--xen', debianArm64.xenSyms, '--json'], 60_000);
      expect(v.code).toBe(1);
      const vdoc = JSON.parse(v.stdout);
      expect(vdoc.payloads[0]).toMatchObject({
        refusedAt: 'upload',
        errno: 'ENOSYS',
        diagnostics: [expect.objectContaining({ code: 'NO_LIVEPATCH', printed: 'never' })],
      });

      const t = Date.now();
      const r = await run(['try', p.file, '--json', '--timeout', '400'], 430_000);
      process.stdout.write(`bin/xsplice try (stock Debian arm64): ${Date.now() - t} ms\n${r.stderr}`);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.hypervisor).toMatchObject({ why: 'xen-depends', label: "Debian's Xen 4.17.5+72-g01140da4e8-1 (arm64)" });
      expect(doc.inputs.xenImage).toBe(debianArm64.image);
      const up = doc.steps.find((s: { step: string }) => s.step === 'upload');
      expect(up).toMatchObject({ ok: false, outcome: 'refused', errno: { number: 38, name: 'ENOSYS' } });
      expect(up.consoleLines.filter((l: string) => l.startsWith('livepatch'))).toEqual([]);
      expect(doc.prediction.payloads[0]).toMatchObject({
        agrees: true,
        predicted: { refusedAt: 'upload', errno: 'ENOSYS' },
        actual: { refusedAt: 'upload', errno: 'ENOSYS' },
      });
      expect(r.stderr.trim().split('\n').at(-1)).toBe(
        `xsplice: ${p.file}: upload stock_hello: refused, ENOSYS (38: Function not implemented)`,
      );
    }, 460_000);
  },
);
