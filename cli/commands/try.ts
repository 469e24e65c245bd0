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
  arch?: string;
  replace?: boolean;
  nodeps?: boolean;
  retries?: string;
  stock?: boolean;
  json?: boolean;
}

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('try')
    .description('boot the hypervisor under QEMU and upload/apply/revert/unload the payloads with xen-livepatch')
    .argument('<payload...>', 'payload files, applied in this order')
    .option(
      '--xen-image <file>',
      "hypervisor image (x86: xen.gz or plain ELF; arm64: the Image); default: the stock build the payload's xen_depends names, else Debian Xen 4.17",
    )
    .option('--xen-syms <file>', 'xen-syms of the same build (checked against the image; verify predicts with it)')
    .option('--dom0-kernel <file>', 'dom0 Linux kernel (its Xen modules are taken from lib/modules beside it)')
    .option('--arch <arch>', "x86_64 or arm64 (default: the payload's ELF machine)")
    .option('--expect-extra <str>', 'string /sys/hypervisor/version/extra must show while the payloads are applied')
    .option('--replace', 'apply each payload with REPLACE (reverts what is applied, atomically); only the last is reverted at the end')
    .option('--nodeps', 'apply with --nodeps (the hypervisor skips the .livepatch.depends check)')
    .option(
      '--retries <n>',
      'extra attempts (0-5) of an apply/revert the hypervisor answered busy (its 30 ms rendezvous timed out), with back-off 1, 2, 4 ... s; default 2 on x86_64, 4 on arm64',
    )
    .option('--no-stock', "do not look for (or fetch) the stock build the payload's xen_depends names")
    .option('--timeout <seconds>', 'bound for the whole run', '300')
    .option('--console-log <file>', 'where to keep the serial console log (default: a new directory under the temp dir)')
    .option('--json', 'one JSON document on stdout (progress lines still go to stderr)')
    .addHelpText(
      'after',
      `
Progress lines with the elapsed time go to stderr as each phase passes (verify's prediction, image
ready, hypervisor up, dom0 up, each step), also with --json.

Exit status: 0 every step succeeded; 1 the hypervisor refused a step, or crashed ("the hypervisor
crashed at apply"); 2 usage, a missing part, QEMU or the boot failed, or a step only timed out
(the hypervisor's rendezvous, on a busy host: not a verdict on the payload).

Examples:
  xsplice try out/fix.livepatch --expect-extra +fix
  xsplice try first.livepatch second.livepatch --replace --json
  xsplice try arm64-fix.livepatch          # boots arm64 Xen under qemu-system-aarch64`,
    )
    .action(async (payloads: string[], opts: TryCliOptions) => {
      const code = await run({ json: opts.json }, async () => {
        const timeoutSec = Number(opts.timeout ?? '300');
        if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
          throw new UsageError('USAGE', `--timeout: expected a positive number of seconds, got ${JSON.stringify(opts.timeout)}`);
        }
        const retries = opts.retries === undefined ? undefined : Number(opts.retries);
        if (retries !== undefined && (!Number.isInteger(retries) || retries < 0 || retries > 5)) {
          throw new UsageError('USAGE', `--retries: expected an integer from 0 to 5, got ${JSON.stringify(opts.retries)}`);
        }
        if (opts.arch !== undefined && opts.arch !== 'x86_64' && opts.arch !== 'arm64') {
          throw new UsageError('USAGE', `--arch must be x86_64 or arm64 (got ${opts.arch})`);
        }
        if (opts.replace && opts.nodeps)
          throw new UsageError('USAGE', '--nodeps applies to APPLY; REPLACE has no such flag in xen-livepatch');
        const lib = await import('../../src/try/index.js');
        const r = await lib.tryPayloads(payloads, {
          xenImage: opts.xenImage,
          xenSyms: opts.xenSyms,
          dom0Kernel: opts.dom0Kernel,
          expectExtra: opts.expectExtra,
          timeoutSec,
          consoleLog: opts.consoleLog,
          ...(retries !== undefined ? { retries } : {}),
          ...(opts.arch ? { arch: opts.arch as 'x86_64' | 'arm64' } : {}),
          replace: !!opts.replace,
          nodeps: !!opts.nodeps,
          stock: opts.stock !== false,
          onProgress: (m: string) => io.err(`xsplice: try ${m}\n`),
        });
        if (opts.json) {
          io.out(
            toJson({
              ok: r.ok,
              durationMs: r.durationMs,
              bootMs: r.bootMs,
              hypervisorMs: r.hypervisorMs,
              consoleLog: r.consoleLog,
              accel: r.accel,
              arch: r.arch,
              hypervisor: r.hypervisor ?? null,
              imageBuildId: r.imageBuildId ?? null,
              inputs: r.inputs,
              warnings: r.warnings,
              prediction: r.prediction,
              timedOut: r.timedOut,
              crash: r.crash ?? null,
              steps: r.steps,
            }) + '\n',
          );
        } else {
          for (const s of r.steps) io.out(lib.describeStep(s) + '\n');
          for (const w of r.warnings) io.err(`xsplice: warning: ${w}\n`);
          const secs = (ms: number | null) => (ms === null ? '?' : (ms / 1000).toFixed(1));
          io.out(
            `${r.ok ? 'ok' : 'FAIL'}: ${payloads.length} payload(s) in ${secs(r.durationMs)} s ` +
              `(boot ${secs(r.bootMs)} s, ${r.arch}, ${r.accel}); console log ${r.consoleLog}\n`,
          );
        }
        const fileOf = (name: string | undefined) => {
          const up = name ? r.steps.findIndex((st) => st.step === 'upload' && st.name === name) : -1;
          return up >= 0 ? payloadOf(payloads, r.steps, up) : undefined;
        };
        if (r.crash) {
          const c = r.crash;
          const file = fileOf(c.name);
          const said = c.lines.filter((l) => l && !/^\*+$/.test(l));
          io.err(
            `xsplice: ${file ? file + ': ' : ''}the hypervisor crashed at ${c.at}${c.name ? ' ' + c.name : ''}: ${said.slice(0, 4).join(' / ')}\n`,
          );
          for (const l of said.slice(4)) io.err(`  ${l}\n`);
          return 1;
        }
        if (!r.ok) {
          // The one stderr line of a failure: the first step that did not succeed.
          const bad = r.steps.find((st) => !st.ok && !st.skipped);
          if (bad) {
            const file = fileOf(bad.name);
            io.err(`xsplice: ${file ? file + ': ' : ''}${lib.describeStep(bad)}\n`);
            if (bad.outcome === 'timeout') return 2;
          }
        }
        return r.ok ? 0 : 1;
      });
      setExit(code);
    });
}
