/**
 * xsplice verify PAYLOAD... --xen XEN [--xen-version X.Y.Z] [--abi NAME] [--arch A] [--name NAME]...
 *                [--replace] [--json]
 * Applies offline every check the target hypervisor makes at upload and apply, to each payload in
 * load order, including the stacking chain. Exit 0 accepted, 1 refused, 2 unusable input.
 * Library code loads lazily.
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
    .option('--abi-file <file>', 'vendor payload ABI rows (JSON, the shape of `xsplice build --abi help --json`); one row is used as is, several need --abi NAME')
    .option('--arch <arch>', 'x86_64, arm64 or arm32 (default: from XEN, else x86_64)')
    .option('--name <name>', 'upload name of the payload at the same position (default: file name without extension)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--replace', 'apply each payload with REPLACE instead of APPLY')
    .option('--loaded <list>', "what the host has loaded: a file holding `xen-livepatch list` output, or - for stdin")
    .option('--loaded-dir <dir>', 'where the loaded payload files are (DIR/NAME.livepatch), to simulate them before PAYLOAD')
    .option('--json', 'one JSON document on stdout')
    .action(async (payloads: string[], opts: VerifyCliOptions) => {
      const code = await run({ json: opts.json, file: opts.xen, inputs: [...payloads, opts.xen, opts.loaded, opts.loadedDir] }, async () => {
        const { UsageError } = await import('../../src/errors.js');
        if (!opts.xen) throw new UsageError('USAGE', 'verify needs --xen XEN (the target hypervisor)');
        const xen = opts.xen;
        if ((opts.name?.length ?? 0) > payloads.length) throw new UsageError('USAGE', 'more --name options than payloads');
        const [{ loadTarget }, verifyMod, { abiByName, loadAbiFile }, { PAYLOAD_MAX, readInputSync, statInput }] = await Promise.all([
          import('../../src/payload/target.js'), import('../../src/payload/verify.js'), import('../../src/payload/abi.js'), import('../../src/fsutil.js'),
        ]);
        if (xen === '-' && opts.loaded === '-') throw new UsageError('USAGE', "--xen - and --loaded - cannot both read stdin");
        if (opts.loadedDir && !opts.loaded) throw new UsageError('USAGE', '--loaded-dir needs --loaded (the `xen-livepatch list` output)');
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
        const inputs: { file: string; bytes: Uint8Array; name?: string; size?: number }[] = [];
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
        const vopts = {
          ...(opts.xenVersion ? { xenVersion: opts.xenVersion } : {}),
          ...(arch ? { arch } : {}),
          ...(abi ? { abi } : {}),
          replace: !!opts.replace,
        };
        let result: import('../../src/payload/verify.js').VerifyResult & { loaded?: unknown; top?: { name: string; buildId: string | null } | null };
        if (opts.loaded !== undefined) {
          const loadedMod = await import('../../src/payload/loaded.js');
          const listText = opts.loaded === '-' ? await readStdinText() : await (await import('../../src/fsutil.js')).readInputText(opts.loaded, { max: 1 << 20, what: 'xen-livepatch list output' });
          result = loadedMod.verifyAgainstLoaded(inputs, target, loadedMod.loadedInputs(listText, opts.loaded, opts.loadedDir), vopts);
        } else {
          result = verifyMod.verifyPayloads(inputs, target, vopts);
        }
        const { ruleRef } = await import('../../src/payload/rules.js');
        for (const p of result.payloads) for (const d of p.diagnostics) (d as { rule?: string }).rule = ruleRef(d.code);
        io.out(opts.json ? jsonResult(result, result.ok) + '\n' : verifyMod.formatVerify(result));
        const { inspectPayload } = await import('../../src/payload/inspect.js');
        const xenDependsOf = (file: string): string | null => {
          try {
            return inspectPayload(inputs.find((x) => x.file === file)!.bytes, file).xenDepends;
          } catch {
            return null;
          }
        };
        for (const line of refusalLines(result, target, !!opts.replace, xenDependsOf)) io.err(`xsplice: ${line}\n`);
        return result.ok ? 0 : 1;
      });
      setExit(code);
    });
}

type Verdict = import('../../src/payload/verify.js').PayloadVerdict;

/**
 * One stderr line per payload the hypervisor would refuse (or that verify calls unsafe): where,
 * the errno, the first diagnostic, and what was expected against what was found.
 */
export function refusalLines(
  result: { target: { buildId: string | null }; payloads: Verdict[]; top?: { name: string; buildId: string | null } | null },
  target: { source: string; buildIdHex: string }, replace = false,
  xenDependsOf: (file: string) => string | null = () => null,
): string[] {
  const lines: string[] = [];
  // What the first payload stacks on: the host's last applied payload (--loaded), else the hypervisor.
  let top: { name: string; buildId: string | null } | undefined = result.top ?? undefined;
  for (const p of result.payloads) {
    const d = p.diagnostics.find((x) => x.first) ?? p.diagnostics.find((x) => x.severity === 'error');
    if (!p.ok && d) {
      const what = p.refusedAt ? `refused at ${p.refusedAt}${p.errno ? ` (${p.errno})` : ''}` : 'accepted by the hypervisor but unsafe';
      let detail = `${d.code}: ${d.message.split('\n').pop()!.replace(/^\(XEN\) /, '')}`;
      if (d.code === 'DEPENDS_MISMATCH') {
        const against = replace || !top ? { name: 'the hypervisor', id: result.target.buildId } : { name: top.name, id: top.buildId };
        detail += `; expected depends ${against.id ?? '(the build-id of that payload)'} (${against.name}), found ${p.depends ?? '(none)'}`;
      }
      if (d.code === 'XEN_DEPENDS_MISMATCH') detail += `; expected xen_depends ${result.target.buildId ?? '(none)'} (the hypervisor), found ${xenDependsOf(p.file) ?? '(none)'}`;
      if ((d.code === 'DEPENDS_MISMATCH' || d.code === 'XEN_DEPENDS_MISMATCH') && target.source === 'pe') {
        detail += `; XEN is an EFI image: its build-id ${target.buildIdHex} (what a hypervisor booted from xen.efi reports) differs by design from the ELF id of xen-syms and xen.gz; verify against xen-syms when the host boots xen.gz, against xen.efi only when it boots xen.efi`;
      }
      lines.push(`${p.file}: ${what}: ${detail}`);
    }
    if (p.refusedAt === null) top = p;
  }
  return lines;
}
