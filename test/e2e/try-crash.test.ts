/**
 * A payload that kills the hypervisor: its pre-apply hook writes to address 0x18, so Xen takes a
 * page fault in its own context and panics during `xen-livepatch apply`. `xsplice try` must say so
 * at once, with the hypervisor's own panic lines, and exit 1 ("the hypervisor crashed at apply"),
 * not wait out the step's time limit. One boot (bin/xsplice try, real Xen 4.17 under QEMU).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { debianXen, dom0Kernel, haveDebianXen, missing, REPO } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const BIN = join(REPO, 'bin', 'xsplice');
const ready =
  haveDebianXen() &&
  !!dom0Kernel() &&
  existsSync(debianXen.xenLivepatch) &&
  have('qemu-system-x86_64') &&
  have('gcc') &&
  existsSync('/bin/busybox') &&
  existsSync(join(REPO, 'dist/cli/xsplice.js'));

describe.skipIf(missing('Debian Xen 4.17 + dom0 kernel + QEMU + gcc + dist/', ready))(
  'xsplice try: a hypervisor crash during a step',
  () => {
    it('reports "the hypervisor crashed at apply" with the panic lines as soon as it happens: exit 1', async () => {
      const dir = await tempDir('crash');
      await writeFile(
        join(dir, 'crash.c'),
        [
          'static const char xs_crash_str[] = "xs-crash";',
          'const char *xen_extra_version(void);',
          'const char *xen_extra_version(void) { return xs_crash_str; }',
          'struct livepatch_payload;',
          'int xs_crash_pre_apply(struct livepatch_payload *p);',
          'int xs_crash_pre_apply(struct livepatch_payload *p) { (void)p; *(volatile unsigned long *)0x18 = 1; return 0; }',
          '',
        ].join('\n'),
      );
      const cflags = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').trim().split(/\s+/);
      await exec('gcc', [...cflags, '-c', join(dir, 'crash.c'), '-o', join(dir, 'crash.o')]);
      const payload = join(dir, 'crash.livepatch');
      await exec(process.execPath, [
        BIN,
        'build',
        join(dir, 'crash.o'),
        '-o',
        payload,
        '--xen',
        debianXen.xenSyms,
        '--patch',
        'xen_extra_version',
        '--hook',
        'pre-apply=xs_crash_pre_apply',
      ]);

      const t = Date.now();
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
        execFile(
          process.execPath,
          [BIN, 'try', payload, '--json', '--timeout', '300'],
          { timeout: 330_000, maxBuffer: 16 << 20 },
          (err, stdout, stderr) => {
            res({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout: String(stdout), stderr: String(stderr) });
          },
        );
      });
      const ms = Date.now() - t;
      process.stdout.write(`bin/xsplice try of a crashing payload: verdict after ${ms} ms\n${r.stderr}`);
      expect(r.code).toBe(1);
      const doc = JSON.parse(r.stdout);
      expect(doc.ok).toBe(false);
      expect(doc.crash).toMatchObject({ at: 'apply', name: 'crash' });
      expect(doc.crash.lines).toContain('FATAL PAGE FAULT');
      expect(doc.crash.lines.some((l: string) => /^Panic on CPU \d+:$/.test(l))).toBe(true);
      expect(doc.crash.lines.some((l: string) => /^Faulting linear address: 0+18$/.test(l))).toBe(true);
      const ap = doc.steps.find((s: { step: string }) => s.step === 'apply');
      expect(ap).toMatchObject({ ok: false, outcome: 'crashed', skipped: false });
      expect(doc.steps.filter((s: { skipped: boolean }) => s.skipped).map((s: { step: string }) => s.step)).toEqual([
        'readExtra',
        'revert',
        'unload',
        'readExtra',
      ]);
      const last = r.stderr
        .trim()
        .split('\n')
        .find((l) => l.startsWith(`xsplice: ${payload}: `));
      expect(last).toMatch(
        new RegExp(
          `^xsplice: ${payload.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the hypervisor crashed at apply crash: Panic on CPU \\d+: / FATAL PAGE FAULT`,
        ),
      );
      expect(r.stderr).toMatch(/\] the hypervisor is crashing: /);
      // Said at once: well within the 90 s a step may take, and the crash line is the last progress.
      const crashAt = Number(/\[(\d+\.\d) s\] the hypervisor crashed at apply/.exec(r.stderr)![1]);
      const uploadAt = Number(/\[(\d+\.\d) s\] upload crash: ok/.exec(r.stderr)![1]);
      expect(crashAt - uploadAt).toBeLessThan(15);
      expect(readFileSync(doc.consoleLog, 'utf8')).toContain('FATAL PAGE FAULT');
    }, 400_000);
  },
);
