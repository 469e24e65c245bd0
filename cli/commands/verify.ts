/**
 * xsplice verify PAYLOAD... --xen XEN [--xen-version X.Y.Z] [--abi NAME] [--arch A] [--name NAME]...
 *                [--replace] [--json]
 * Applies offline every check the target hypervisor makes at upload and apply, to each payload in
 * load order, including the stacking chain. Exit 0 accepted, 1 refused, 2 unusable input.
 * The file side (target, ABI row, payload files, the host's loaded list) is src/payload/verify/files.ts;
 * library code loads lazily.
 */
import type { Command } from 'commander';
import { io, jsonResult, readStdinText, run } from '../common.js';

interface VerifyCliOptions {
  xen?: string;
  xenVersion?: string;
  abi?: string;
  abiFile?: string;
  arch?: string;
  name?: string[];
  replace?: boolean;
  loaded?: string;
  loadedDir?: string;
  json?: boolean;
}

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('verify')
    .description("check payloads offline against the target hypervisor's loader (upload and apply), in load order")
    .argument('<payload...>', 'payload files, in the order they would be loaded and applied')
    .option('--xen <xen>', 'target: xen-syms, xen.gz, xen.efi, a hex build-id, a sysfs buildid file, or - for `xl info` on stdin')
    .option('--xen-version <version>', 'target Xen version (e.g. 4.17.7); wins over what XEN reveals')
    .option('--abi <name>', 'payload ABI row (see `xsplice build --abi help`)')
    .option(
      '--abi-file <file>',
      'vendor payload ABI rows (JSON, the shape of `xsplice build --abi help --json`); one row is used as is, several need --abi NAME',
    )
    .option('--arch <arch>', 'x86_64, arm64 or arm32 (default: from XEN, else x86_64)')
    .option(
      '--name <name>',
      'upload name of the payload at the same position (default: file name without extension)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--replace', 'apply each payload with REPLACE instead of APPLY')
    .option('--loaded <list>', 'what the host has loaded: a file holding `xen-livepatch list` output, or - for stdin')
    .option('--loaded-dir <dir>', 'where the loaded payload files are (DIR/NAME.livepatch), to simulate them before PAYLOAD')
    .option('--json', 'one JSON document on stdout')
    .action(async (payloads: string[], opts: VerifyCliOptions) => {
      const code = await run(
        { json: opts.json, file: opts.xen, inputs: [...payloads, opts.xen, opts.loaded, opts.loadedDir] },
        async () => {
          const { UsageError } = await import('../../src/errors.js');
          if (!opts.xen) throw new UsageError('USAGE', 'verify needs --xen XEN (the target hypervisor)');
          const [{ verifyFiles }, { formatVerify }] = await Promise.all([
            import('../../src/payload/verify/files.js'),
            import('../../src/payload/verify/format.js'),
          ]);
          const stdinText = opts.xen === '-' || opts.loaded === '-' ? await readStdinText() : undefined;
          const { result, refusals } = await verifyFiles({
            payloads,
            xen: opts.xen,
            ...(opts.name ? { names: opts.name } : {}),
            ...(opts.xenVersion ? { xenVersion: opts.xenVersion } : {}),
            ...(opts.arch ? { arch: opts.arch } : {}),
            ...(opts.abi ? { abi: opts.abi } : {}),
            ...(opts.abiFile ? { abiFile: opts.abiFile } : {}),
            replace: !!opts.replace,
            ...(opts.loaded !== undefined ? { loaded: opts.loaded } : {}),
            ...(opts.loadedDir ? { loadedDir: opts.loadedDir } : {}),
            ...(stdinText !== undefined ? { stdinText } : {}),
            onWarning: (w) => io.err(`xsplice: warning: ${w}\n`),
          });
          io.out(opts.json ? jsonResult(result, result.ok) + '\n' : formatVerify(result));
          for (const line of refusals) io.err(`xsplice: ${line}\n`);
          return result.ok ? 0 : 1;
        },
      );
      setExit(code);
    });
}
