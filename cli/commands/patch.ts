/**
 * xsplice patch FIX.patch... --xen XEN -o OUT [--source DIR | --debian VERSION] [--no-line-fix]
 *               [--make] [--jobs N] [--explain FILE.json] [--json] [--depends PAYLOAD|HEX]
 * From a source fix to a payload the running hypervisor accepts (cli.md). Progress on stderr, one
 * line per phase; OUT is written only if verify accepts the payload.
 */
import type { Command } from 'commander';
import { io, run, toJson } from '../common.js';
import { VERSION } from '../version.js';

interface PatchCliOptions {
  xen?: string;
  output?: string;
  source?: string;
  debian?: string;
  lineFix: boolean;
  make?: boolean;
  jobs?: string;
  explain?: string;
  name?: string;
  quiet?: boolean;
  json?: boolean;
  depends?: string;
  on: string[];
}

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('patch')
    .description('build a payload from source fixes against the running hypervisor (base rebuilt, cached by build-id)')
    .argument('[fix...]', 'unified diffs relative to the root of the Xen tree (patch -p1)')
    .requiredOption('--xen <xen>', 'the running hypervisor: xen-syms (best), xen.gz, xen.efi or a build-id')
    .option('-o, --output <file>', 'payload to write (only if verify accepts it)')
    .option('--source <dir>', 'the Xen tree that built XEN (built, with its .o.cmd records)')
    .option('--debian <version>', 'rebuild this Debian source package version as the base (default: what XEN reveals)')
    .option('--no-line-fix', 'do not insert #line directives after each hunk')
    .option('--make', 'build the patched objects with make in a copy of the base instead of their recorded commands')
    .option('--jobs <n>', 'parallel jobs for a base build (default: CPUs)')
    .option('--depends <payload|hex>', 'the loaded payload this one stacks on (default: the hypervisor)')
    .option(
      '--on <fix>',
      'a patch already live through --depends (what that payload was made from); repeatable',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--name <name>', 'payload name (default: from the first patch file name)')
    .option('--explain <file>', 'write the diff explanation (JSON) to FILE')
    .option('-q, --quiet', 'no progress lines')
    .option('--json', 'one JSON document on stdout')
    .action(async (fixes: string[], opts: PatchCliOptions) => {
      const code = await run({ json: opts.json }, async () => {
        const { UsageError } = await import('../../src/errors.js');
        if (fixes.length === 0) throw new UsageError('PATCH_USAGE', 'give at least one FIX.patch');
        if (!opts.output && !opts.json) throw new UsageError('PATCH_USAGE', '-o OUT is required (or --json to only report)');
        const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
        if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1 || jobs > 256))
          throw new UsageError('PATCH_USAGE', `--jobs: not a count: ${opts.jobs}`);
        const lib = await import('../../src/patch/index.js');
        const r = await lib.patchXen({
          patches: fixes,
          xen: opts.xen!,
          out: opts.output,
          source: opts.source,
          debian: opts.debian,
          lineFix: opts.lineFix,
          make: opts.make,
          jobs,
          name: opts.name,
          toolVersion: VERSION,
          depends: opts.depends,
          on: opts.on,
          onProgress: opts.quiet ? undefined : (l) => io.err(l),
          onWarning: (w) => io.err(`xsplice: warning: ${w}\n`),
        });
        if (opts.explain && r.diff) {
          const { writeFileAtomic } = await import('../../src/fsutil.js');
          await writeFileAtomic(opts.explain, new TextEncoder().encode(toJson(r.diff.explain) + '\n'));
        }
        if (opts.json) {
          const d = r.diff;
          io.out(
            toJson({
              ok: true,
              functions: d?.functions ?? [],
              data: d?.data ?? [],
              errors: d?.errors ?? [],
              warnings: d?.warnings ?? [],
              base: r.base,
              files: r.files,
              objects: r.objects,
              skipped: r.skipped,
              ignored: r.ignored,
              verify: r.verify,
              file: r.file ?? null,
              buildId: r.buildId ?? null,
            }) + '\n',
          );
        } else {
          const fns = (r.diff?.functions ?? []).filter((f) => f.included);
          const lines = [`${r.buildId ?? '-'}  ${r.file ?? '(not written)'}`];
          for (const f of fns) lines.push(`  ${f.status} ${f.xenName ?? f.name}: ${f.reason}`);
          io.out(lines.join('\n') + '\n');
        }
        return 0;
      });
      setExit(code);
    });

  program
    .command('linefix')
    .description('print a patch with klp-style #line directives after each change group, so __LINE__ below it keeps its old value')
    .argument('<patch>', 'unified diff (patch -p1 at the Xen tree root)')
    .option('-o, --output <file>', 'write the rewritten patch here instead of stdout')
    .option('--json', 'one JSON document on stdout: { ok, inserted, skipped, text }')
    .action(async (patch: string, opts: { output?: string; json?: boolean }) => {
      const code = await run({ json: opts.json, file: patch }, async () => {
        const { readInputText, writeFileAtomic } = await import('../../src/fsutil.js');
        const { fixPatchLines } = await import('../../src/patch/linefix.js');
        const r = fixPatchLines(await readInputText(patch, { what: 'patch' }), patch);
        if (opts.output) await writeFileAtomic(opts.output, new TextEncoder().encode(r.text));
        if (opts.json)
          io.out(
            toJson({ ok: true, inserted: r.inserted, skipped: r.skipped, ...(opts.output ? { file: opts.output } : { text: r.text }) }) +
              '\n',
          );
        else if (!opts.output) io.out(r.text);
        return 0;
      });
      setExit(code);
    });
}
