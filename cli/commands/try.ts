/**
 * xsplice try PAYLOAD... [--xen-image FILE] [--xen-syms FILE] [--dom0-kernel FILE] [--expect-extra STR]
 *                        [--timeout SECONDS] [--json]
 * Boots the hypervisor under QEMU with a minimal dom0, uploads and applies the payloads in order,
 * reverts and unloads them, and reports what the hypervisor said at each step. Exit 0 only if every
 * step succeeded, 1 if the hypervisor refused something, 2 if the tool or QEMU failed.
 */
import type { Command } from 'commander';
import { io, run, toJson } from '../common.js';
import { UsageError } from '../../src/errors.js';

/** The PAYLOAD argument uploaded by step `index` of the standard plan (uploads are in argument order). */
function payloadOf(payloads: string[], steps: { step: string }[], index: number): string | undefined {
  const nth = steps.slice(0, index).filter((st) => st.step === 'upload').length;
  return payloads[nth];
}

interface TryCliOptions {
  xenImage?: string;
  xenSyms?: string;
  dom0Kernel?: string;
  expectExtra?: string;
  timeout?: string;
  consoleLog?: string;
  json?: boolean;
}

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('try')
    .description('boot the hypervisor under QEMU and upload/apply/revert/unload the payloads with xen-livepatch')
    .argument('<payload...>', 'payload files, applied in this order')
    .option('--xen-image <file>', 'hypervisor image (xen.gz or plain ELF); default Debian Xen 4.17')
    .option('--xen-syms <file>', 'xen-syms of the same build (checked against the image)')
    .option('--dom0-kernel <file>', 'dom0 Linux kernel (its Xen modules are taken from lib/modules beside it)')
    .option('--expect-extra <str>', 'string /sys/hypervisor/version/extra must show while the payloads are applied')
    .option('--timeout <seconds>', 'bound for the whole run', '300')
    .option('--console-log <file>', 'where to keep the serial console log (default: a new directory under the temp dir)')
    .option('--json', 'one JSON document on stdout')
    .action(async (payloads: string[], opts: TryCliOptions) => {
      const code = await run({ json: opts.json }, async () => {
        const timeoutSec = Number(opts.timeout ?? '300');
        if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
          throw new UsageError('USAGE', `--timeout: expected a positive number of seconds, got ${JSON.stringify(opts.timeout)}`);
        }
        const lib = await import('../../src/try/index.js');
        const r = await lib.tryPayloads(payloads, {
          xenImage: opts.xenImage, xenSyms: opts.xenSyms, dom0Kernel: opts.dom0Kernel,
          expectExtra: opts.expectExtra, timeoutSec, consoleLog: opts.consoleLog,
          onProgress: opts.json ? undefined : (m: string) => io.err(`xsplice: ${m}...\n`),
        });
        if (opts.json) {
          io.out(toJson({
            ok: r.ok, durationMs: r.durationMs, bootMs: r.bootMs, consoleLog: r.consoleLog, accel: r.accel,
            inputs: r.inputs, warnings: r.warnings, steps: r.steps,
          }) + '\n');
        } else {
          for (const s of r.steps) io.out(lib.describeStep(s) + '\n');
          for (const w of r.warnings) io.err(`xsplice: warning: ${w}\n`);
          const secs = (ms: number | null) => (ms === null ? '?' : (ms / 1000).toFixed(1));
          io.out(`${r.ok ? 'ok' : 'FAIL'}: ${payloads.length} payload(s) in ${secs(r.durationMs)} s `
            + `(boot ${secs(r.bootMs)} s, ${r.accel}); console log ${r.consoleLog}\n`);
        }
        if (!r.ok) {
          // The one stderr line of a failure: the first step that did not succeed.
          const bad = r.steps.find((st) => !st.ok && !st.skipped);
          if (bad) {
            const up = bad.name ? r.steps.findIndex((st) => st.step === 'upload' && st.name === bad.name) : -1;
            const file = up >= 0 ? payloadOf(payloads, r.steps, up) : undefined;
            io.err(`xsplice: ${file ? file + ': ' : ''}${lib.describeStep(bad)}\n`);
          }
        }
        return r.ok ? 0 : 1;
      });
      setExit(code);
    });
}
