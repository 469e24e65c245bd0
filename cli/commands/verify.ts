/**
 * xsplice verify PAYLOAD... --xen XEN [--xen-version X.Y.Z] [--abi NAME] [--arch A] [--name NAME]...
 *                [--replace] [--json]
 * Applies offline every check the target hypervisor makes at upload and apply, to each payload in
 * load order, including the stacking chain. Exit 0 accepted, 1 refused, 2 unusable input.
 * Library code loads lazily.
 */
import type { Command } from 'commander';
import { io, readStdinText, run, toJson } from '../common.js';

interface VerifyCliOptions {
  xen?: string;
  xenVersion?: string;
  abi?: string;
  abiFile?: string;
  arch?: string;
  name?: string[];
  replace?: boolean;
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
    .option('--abi-file <file>', 'vendor payload ABI rows (JSON, the shape of `xsplice build --abi help --json`); one row is used as is, several need --abi NAME')
    .option('--arch <arch>', 'x86_64, arm64 or arm32 (default: from XEN, else x86_64)')
    .option('--name <name>', 'upload name of the payload at the same position (default: file name without extension)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--replace', 'apply each payload with REPLACE instead of APPLY')
    .option('--json', 'one JSON document on stdout')
    .action(async (payloads: string[], opts: VerifyCliOptions) => {
      const code = await run({ json: opts.json, file: opts.xen }, async () => {
        const { UsageError } = await import('../../src/errors.js');
        if (!opts.xen) throw new UsageError('USAGE', 'verify needs --xen XEN (the target hypervisor)');
        const xen = opts.xen;
        if ((opts.name?.length ?? 0) > payloads.length) throw new UsageError('USAGE', 'more --name options than payloads');
        const [{ loadTarget }, verifyMod, { abiByName, loadAbiFile }, { PAYLOAD_MAX, readInputSync, statInput }] = await Promise.all([
          import('../../src/payload/target.js'), import('../../src/payload/verify.js'), import('../../src/payload/abi.js'), import('../../src/fsutil.js'),
        ]);
        const stdinText = xen === '-' ? await readStdinText() : undefined;
        const target = await loadTarget(xen, { ...(stdinText !== undefined ? { stdinText } : {}) });
        if (opts.xenVersion && target.version && target.version.split(/[+~-]/)[0] !== opts.xenVersion.split(/[+~-]/)[0]) {
          io.err(`xsplice: warning: ${xen} looks like Xen ${target.version} (${target.versionSource ?? 'image'}); using --xen-version ${opts.xenVersion}\n`);
        }
        const arch = opts.arch as 'x86_64' | 'arm64' | 'arm32' | undefined;
        if (arch && !['x86_64', 'arm64', 'arm32'].includes(arch)) throw new UsageError('USAGE', `--arch must be x86_64, arm64 or arm32 (got ${arch})`);
        const extra = opts.abiFile ? await loadAbiFile(opts.abiFile) : [];
        if (extra.length > 1 && !opts.abi) throw new UsageError('USAGE', `${opts.abiFile} holds ${extra.length} rows: pick one with --abi NAME`);
        const abi = opts.abi ? abiByName(opts.abi, arch ?? target.arch ?? extra[0]?.arch ?? 'x86_64', extra) : extra[0];
        const inputs = [];
        for (const [i, file] of payloads.entries()) {
          let bytes: Uint8Array;
          let size: number | undefined;
          try {
            // A file larger than Xen accepts is not read: the upload check reports its size.
            const st = statInput(file);
            if (st.size > PAYLOAD_MAX) {
              bytes = new Uint8Array(0);
              size = st.size;
            } else bytes = readInputSync(file, { max: PAYLOAD_MAX, what: 'payload', tooLargeIsRefusal: true });
          } catch (e) {
            (e as NodeJS.ErrnoException).path ??= file;
            throw e;
          }
          const name = opts.name?.[i];
          inputs.push({ file, bytes, ...(size !== undefined ? { size } : {}), ...(name !== undefined ? { name } : {}) });
        }
        const result = verifyMod.verifyPayloads(inputs, target, {
          ...(opts.xenVersion ? { xenVersion: opts.xenVersion } : {}),
          ...(arch ? { arch } : {}),
          ...(abi ? { abi } : {}),
          replace: !!opts.replace,
        });
        io.out(opts.json ? toJson(result) + '\n' : verifyMod.formatVerify(result));
        return result.ok ? 0 : 1;
      });
      setExit(code);
    });
}
