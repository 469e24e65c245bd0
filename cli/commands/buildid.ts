/**
 * xsplice buildid INPUT... [--verify] [--json] [--xen-syms FILE]
 * xsplice buildid set FILE [--style sha1|md5|uuid|0xHEX] [-o OUT] [--json]
 *
 * INPUT is any XEN form of cli.md: an ELF/xen.gz/PE path, a hex id, a sysfs buildid file, or `-`
 * (stdin: `xl info` text or raw sysfs bytes). Library code loads lazily.
 */
import type { Command } from 'commander';
import { errorMessage, ExitRequest, io, jsonResult, readStdinBytes, resolveOutput, run } from '../common.js';
import * as nodeFs from 'node:fs';

interface Opts {
  verify?: boolean;
  json?: boolean;
  style?: string;
  output?: string;
  xenSyms?: string;
}

export function register(program: Command, setExit: (code: number) => void): void {
  const cmd = program
    .command('buildid')
    .description("print (and with --verify recompute) build-ids; 'buildid set FILE' embeds one into an object")
    .argument('<input...>', "ELF, xen.gz, xen.efi, hex id, sysfs buildid file, or '-' (stdin)")
    .option(
      '--verify',
      'recompute each id with the algorithm of the linker that made the file; exit 1 on mismatch or when it cannot be recomputed',
    )
    .option('--json', 'one JSON document on stdout')
    .option('--xen-syms <file>', 'xen-syms to check a boot image (xen.gz) against and recompute its id from')
    .action(async (inputs: string[], opts: Opts) => {
      setExit(await showCommand(inputs, opts));
    });
  cmd
    .command('set')
    .description("add or replace an ELF object's .note.gnu.build-id (GNU ld's algorithm for sha1/md5, so --verify passes)")
    .argument('<file>', 'ELF object to give a build-id')
    .option('--style <style>', 'sha1 | md5 | uuid | 0xHEX (default: sha1)')
    .option('-o, --output <out>', 'output file, or DIR/ for DIR/<file name> (default: FILE, rewritten atomically)')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string, opts: Opts) => {
      // `buildid set FILE --json`: the parent command parses --json too (it has the same option).
      setExit(await setCommand([file], { ...opts, json: opts.json || (cmd.opts() as Opts).json }));
    });
}

async function showCommand(inputs: string[], opts: Opts): Promise<number> {
  return run({ json: opts.json }, async () => {
    const [{ readBuildId, compareBuildIds }, { isHexId }] = await Promise.all([
      import('../../src/buildid/read.js'),
      import('../../src/buildid/note.js'),
    ]);
    const { existsSync } = nodeFs;
    type R = Awaited<ReturnType<typeof readBuildId>>;
    const results: (R | { input: string; error: { code: string; message: string } })[] = [];
    let worst = 0;
    let stdinUsed = false;
    for (const arg of inputs) {
      try {
        let r: R;
        if (arg === '-') {
          if (stdinUsed) {
            const { UsageError } = await import('../../src/errors.js');
            throw new UsageError('USAGE', "stdin ('-') can be read only once");
          }
          stdinUsed = true;
          r = await readBuildId({ bytes: await readStdinBytes(), name: '-' }, { verify: opts.verify, xenSyms: opts.xenSyms });
        } else if (!existsSync(arg) && isHexId(arg)) {
          r = await readBuildId({ text: arg }, { verify: opts.verify });
        } else {
          r = await readBuildId({ path: arg }, { verify: opts.verify, xenSyms: opts.xenSyms, stream: true });
        }
        results.push(r);
      } catch (e) {
        const m = errorMessage(e, arg);
        results.push({ input: arg, error: { code: m.code, message: m.message } });
        io.err(`xsplice: ${m.message}\n`);
        worst = 2;
      }
    }
    const ok = results.filter((r): r is R => !('error' in r));

    // A boot image given together with its xen-syms: check the one against the other.
    if (opts.verify && !opts.xenSyms) {
      for (let i = 0; i < results.length; i++) {
        const r = results[i]!;
        if ('error' in r || !r.bootImage || r.verified !== null || r.input === '-') continue;
        const syms = ok.find((s) => s !== r && s.source === 'elf' && !s.bootImage && s.elf && s.buildId === r.buildId);
        if (syms) results[i] = await readBuildId({ path: r.input }, { verify: true, xenSyms: syms.elf });
      }
    }

    // Warn about comparing an EFI-booted hypervisor's id with xen-syms'.
    const warnings: string[] = [];
    for (let i = 0; i < ok.length; i++) {
      for (let j = i + 1; j < ok.length; j++) {
        const c = compareBuildIds(ok[i]!, ok[j]!);
        if (c.warning && !warnings.includes(c.warning)) warnings.push(c.warning);
      }
    }

    // With --verify, an id that does not verify and one that cannot be recomputed (a boot image
    // alone, a hex id, a sysfs file) are both refusals: --verify promises a recomputed id.
    let refused = false;
    for (const r of results) if (!('error' in r) && opts.verify && r.verified !== true) refused = true;
    // A stripped file keeps the id its linker computed over the unstripped one: say so.
    const stripped = new Set<R>();
    for (const r of results) {
      if ('error' in r || r.verified !== false || r.source !== 'elf' || r.input === '-') continue;
      try {
        const elf = r.elf ?? (await import('../../src/elf/index.js')).readElfFile(r.input);
        if (!elf.sections.some((s) => s.name === '.symtab')) stripped.add(r);
      } catch {
        // not readable as a whole ELF file: no hint
      }
    }
    const strippedHint = (r: R): string | undefined =>
      stripped.has(r)
        ? 'the file has no .symtab: stripping (or objcopy) after linking changes the bytes the linker hashed; verify the unstripped file'
        : undefined;
    if (opts.json) {
      const doc = results.map((r) => {
        if ('error' in r) return { input: r.input, buildId: null, source: null, algorithm: null, verified: null, error: r.error };
        const o: Record<string, unknown> = {
          input: r.input,
          buildId: r.buildId,
          source: r.source,
          algorithm: r.algorithm,
          verified: r.verified,
        };
        if (r.linker) o.linker = r.linker;
        if (r.guidOrder) o.guidOrder = r.guidOrder;
        if (r.depends !== undefined) o.depends = r.depends;
        if (r.xenDepends !== undefined) o.xenDepends = r.xenDepends;
        const hint = strippedHint(r);
        if (r.notes.length || hint) o.notes = [...r.notes, ...(hint ? [hint] : [])];
        if (opts.verify && r.verified !== true)
          o.reason = r.reason ?? (r.verified === null ? 'nothing to recompute the id from' : 'no algorithm reproduces it');
        return o;
      });
      io.out(jsonResult(doc, !refused && worst === 0, (o) => !('error' in o) && (!opts.verify || o.verified === true)) + '\n');
    } else {
      for (const r of results) {
        if ('error' in r) continue;
        io.out(`${r.buildId}  ${r.input}\n`);
      }
    }
    for (const r of results) {
      if ('error' in r || !opts.verify) continue;
      if (r.verified === false) {
        io.err(`xsplice: ${r.input}: build-id does not verify: ${r.reason ?? 'no algorithm reproduces it'}\n`);
        const hint = strippedHint(r);
        if (hint) io.err(`xsplice: hint: ${hint}\n`);
      } else if (r.verified === null)
        io.err(`xsplice: ${r.input}: cannot verify: the id cannot be recomputed: ${r.reason ?? 'nothing to recompute it from'}\n`);
      else if (r.verified && !opts.json) io.err(`${r.input}: verified (${r.algorithm})\n`);
    }
    for (const w of warnings) io.err(`xsplice: warning: ${w}\n`);
    if (worst === 2) throw new ExitRequest(2);
    return refused ? 1 : 0;
  });
}

async function setCommand(args: string[], opts: Opts): Promise<number> {
  const file = args[0];
  return run({ json: opts.json, file }, async () => {
    const { UsageError } = await import('../../src/errors.js');
    if (args.length !== 1 || file === undefined)
      throw new UsageError('USAGE', 'usage: xsplice buildid set FILE [--style sha1|md5|uuid|0xHEX] [-o OUT]');
    const [{ setBuildIdWithId }, { parseHexId, toHex }, { checkOutput, readInputSync, writeFileAtomicSync }] = await Promise.all([
      import('../../src/buildid/embed.js'),
      import('../../src/buildid/note.js'),
      import('../../src/fsutil.js'),
    ]);
    const fs = nodeFs;
    const styleText = opts.style ?? 'sha1';
    let style: 'sha1' | 'md5' | 'uuid' | { hex: Uint8Array };
    if (styleText === 'sha1' || styleText === 'md5' || styleText === 'uuid') style = styleText;
    else if (/^0x/i.test(styleText)) {
      try {
        style = { hex: parseHexId(styleText) };
      } catch (e) {
        throw new UsageError('USAGE', `--style ${styleText}: ${(e as Error).message.replace(/^.*?: /, '')}`);
      }
    } else throw new UsageError('USAGE', `--style must be sha1, md5, uuid or 0xHEX (found ${JSON.stringify(styleText)})`);

    const out = opts.output === undefined ? file : await resolveOutput(opts.output, file);
    if (out !== file) checkOutput(out);
    const input = readInputSync(file);
    const { bytes, id } = setBuildIdWithId(input, style, { file });
    // An existing output keeps its owner and mode (a symlink's target is rewritten, the link kept);
    // a new one gets the input's mode.
    writeFileAtomicSync(out, bytes, { mode: fs.statSync(file).mode & 0o7777, onNote: (m) => io.err(`xsplice: note: ${m}\n`) });
    const hex = toHex(id);
    const styleName = typeof style === 'string' ? style : '0xHEX';
    if (opts.json) {
      io.out(
        jsonResult(
          {
            input: file,
            output: out,
            buildId: hex,
            style: styleName,
            algorithm: style === 'sha1' || style === 'md5' ? `gnu-ld-${style}` : null,
          },
          true,
        ) + '\n',
      );
    } else {
      io.out(`${hex}  ${out}\n`);
    }
    return 0;
  });
}
