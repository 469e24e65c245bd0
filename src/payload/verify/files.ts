/**
 * Verify's file side: the target loaded from XEN, the ABI row (built in, or a vendor's --abi-file),
 * the payload files read (a file larger than Xen accepts is not read whole: the upload check
 * reports its size), the host's loaded payloads (`xen-livepatch list` output), then
 * `verifyPayloads` (or `verifyAgainstLoaded`). The CLI (cli/commands/verify.ts) only parses
 * arguments and prints what this returns.
 */
import { UsageError } from '../../errors.js';
import { PAYLOAD_MAX, readInputSync, readInputText, statInput } from '../../fsutil.js';
import type { Arch } from '../abi-types.js';
import { abiByName, loadAbiFile } from '../abi.js';
import { inspectPayload } from '../inspect.js';
import { loadedInputs, verifyAgainstLoaded } from '../loaded.js';
import { loadTarget, type Target } from '../target.js';
import { verifyPayloads } from '../verify.js';
import type { PayloadVerdict, VerifyInput, VerifyOptions, VerifyResult } from './types.js';

const ARCHES: readonly Arch[] = ['x86_64', 'arm64', 'arm32'];

export interface VerifyFilesOptions {
  /** Payload files, in load order. */
  payloads: string[];
  /** The target: xen-syms, xen.gz, xen.efi, a hex build-id, a sysfs buildid file, or '-' (`xl info` in `stdinText`). */
  xen: string;
  /** Upload names of the payloads at the same positions. */
  names?: string[];
  xenVersion?: string;
  arch?: string;
  /** ABI row by name (built in, or from `abiFile`). */
  abi?: string;
  abiFile?: string;
  replace?: boolean;
  /** `xen-livepatch list` output: a file, or '-' (in `loadedText`). */
  loaded?: string;
  loadedDir?: string;
  /** What '-' reads: `xl info` for --xen -, or the list for --loaded -. */
  stdinText?: string;
  /** Called with each warning (also collected in the result). */
  onWarning?: (message: string) => void;
}

export type VerifyFilesResult = VerifyResult & {
  loaded?: unknown;
  top?: { name: string; buildId: string | null } | null;
};

export interface VerifyFilesOutcome {
  result: VerifyFilesResult;
  target: Target;
  warnings: string[];
  /** One line per payload the hypervisor would refuse (or that verify calls unsafe). */
  refusals: string[];
}

export async function verifyFiles(opts: VerifyFilesOptions): Promise<VerifyFilesOutcome> {
  const { xen, payloads } = opts;
  const warnings: string[] = [];
  const warn = (w: string): void => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  if ((opts.names?.length ?? 0) > payloads.length) throw new UsageError('USAGE', 'more --name options than payloads');
  if (xen === '-' && opts.loaded === '-') throw new UsageError('USAGE', '--xen - and --loaded - cannot both read stdin');
  if (opts.loadedDir && !opts.loaded) throw new UsageError('USAGE', '--loaded-dir needs --loaded (the `xen-livepatch list` output)');
  const target = await loadTarget(xen, xen === '-' && opts.stdinText !== undefined ? { stdinText: opts.stdinText } : {});
  if (opts.xenVersion && target.version && target.version.split(/[+~-]/)[0] !== opts.xenVersion.split(/[+~-]/)[0]) {
    warn(`${xen} looks like Xen ${target.version} (${target.versionSource ?? 'image'}); using --xen-version ${opts.xenVersion}`);
  }
  const arch = opts.arch as Arch | undefined;
  if (arch && !ARCHES.includes(arch)) throw new UsageError('USAGE', `--arch must be x86_64, arm64 or arm32 (got ${arch})`);
  const extra = opts.abiFile ? await loadAbiFile(opts.abiFile) : [];
  if (extra.length > 1 && !opts.abi) throw new UsageError('USAGE', `${opts.abiFile} holds ${extra.length} rows: pick one with --abi NAME`);
  const abi = opts.abi ? abiByName(opts.abi, arch ?? target.arch ?? extra[0]?.arch ?? 'x86_64', extra) : extra[0];
  const inputs = payloads.map((file, i) => readPayload(file, opts.names?.[i]));
  const vopts: VerifyOptions = {
    ...(opts.xenVersion ? { xenVersion: opts.xenVersion } : {}),
    ...(arch ? { arch } : {}),
    ...(abi ? { abi } : {}),
    replace: !!opts.replace,
  };
  let result: VerifyFilesResult;
  if (opts.loaded !== undefined) {
    const listText =
      opts.loaded === '-' ? (opts.stdinText ?? '') : await readInputText(opts.loaded, { max: 1 << 20, what: 'xen-livepatch list output' });
    result = verifyAgainstLoaded(inputs, target, loadedInputs(listText, opts.loaded, opts.loadedDir), vopts);
  } else {
    result = verifyPayloads(inputs, target, vopts);
  }
  const xenDependsOf = (file: string): string | null => {
    try {
      return inspectPayload(inputs.find((x) => x.file === file)!.bytes, file).xenDepends;
    } catch {
      return null;
    }
  };
  return { result, target, warnings, refusals: refusalLines(result, target, !!opts.replace, xenDependsOf) };
}

function readPayload(file: string, name: string | undefined): VerifyInput {
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
  return { file, bytes, ...(size !== undefined ? { size } : {}), ...(name !== undefined ? { name } : {}) };
}

/**
 * One line per payload the hypervisor would refuse (or that verify calls unsafe): where, the errno,
 * the first diagnostic, and what was expected against what was found.
 */
export function refusalLines(
  result: { target: { buildId: string | null }; payloads: PayloadVerdict[]; top?: { name: string; buildId: string | null } | null },
  target: { source: string; buildIdHex: string },
  replace = false,
  xenDependsOf: (file: string) => string | null = () => null,
): string[] {
  const lines: string[] = [];
  // What the first payload stacks on: the host's last applied payload (--loaded), else the hypervisor.
  let top: { name: string; buildId: string | null } | undefined = result.top ?? undefined;
  for (const p of result.payloads) {
    const d = p.diagnostics.find((x) => x.first) ?? p.diagnostics.find((x) => x.severity === 'error');
    if (!p.ok && d) {
      const what = p.refusedAt ? `refused at ${p.refusedAt}${p.errno ? ` (${p.errno})` : ''}` : 'accepted by the hypervisor but unsafe';
      let detail = `${d.code}: ${d.message
        .split('\n')
        .pop()!
        .replace(/^\(XEN\) /, '')}`;
      if (d.code === 'DEPENDS_MISMATCH') {
        const against = replace || !top ? { name: 'the hypervisor', id: result.target.buildId } : { name: top.name, id: top.buildId };
        detail += `; expected depends ${against.id ?? '(the build-id of that payload)'} (${against.name}), found ${p.depends ?? '(none)'}`;
      }
      if (d.code === 'XEN_DEPENDS_MISMATCH')
        detail += `; expected xen_depends ${result.target.buildId ?? '(none)'} (the hypervisor), found ${xenDependsOf(p.file) ?? '(none)'}`;
      if ((d.code === 'DEPENDS_MISMATCH' || d.code === 'XEN_DEPENDS_MISMATCH') && target.source === 'pe') {
        detail += `; XEN is an EFI image: its build-id ${target.buildIdHex} (what a hypervisor booted from xen.efi reports) differs by design from the ELF id of xen-syms and xen.gz; verify against xen-syms when the host boots xen.gz, against xen.efi only when it boots xen.efi`;
      }
      lines.push(`${p.file}: ${what}: ${detail}`);
    }
    if (p.refusedAt === null) top = p;
  }
  return lines;
}
