/**
 * xsplice diff ORIG PATCHED [-o OUT --xen XEN] [--explain] [--json] [--include-line-only]
 *              [--allow init] [--patch-name NAME] [--depends PAYLOAD|HEX]
 * ORIG/PATCHED: two objects, or two directories of objects matched by path (cli.md). Without -o it
 * only reports (no target needed). Exit 1 when the change cannot be live-patched, naming it.
 */
import type { Command } from 'commander';
import { io, run, toJson, ExitRequest } from '../common.js';
import { VERSION } from '../version.js';

interface DiffCliOptions {
  output?: string;
  xen?: string;
  explain?: boolean;
  json?: boolean;
  includeLineOnly?: boolean;
  allow: string[];
  patchName?: string;
  emitHookSkeleton?: string;
  depends?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('diff')
    .description('compare two builds of the same objects and make the payload of what changed')
    .argument('<orig>', 'ORIG object, or directory of objects (the running build)')
    .argument('<patched>', 'PATCHED object, or directory of objects (same tree, fix applied)')
    .option('-o, --output <file>', 'payload to write (needs --xen); written only if verify accepts it')
    .option('--xen <xen>', 'the running hypervisor (xen-syms): external names are checked against it')
    .option('--explain', 'say why each function is in the payload or left out')
    .option('--json', 'one JSON document on stdout')
    .option('--include-line-only', 'also patch functions whose only change is a __LINE__')
    .option('--allow <kind>', 'turn a refusal into a listed exclusion: init', collect, [])
    .option('--patch-name <name>', 'goes into the deterministic names of new symbols')
    .option(
      '--depends <payload|hex>',
      'with -o: the loaded payload this one stacks on (default: the hypervisor); ORIG is then the running build plus that payload',
    )
    .option('--emit-hook-skeleton <file>', 'when data changed: write C load/unload hooks that set the new values')
    .action(async (orig: string, patched: string, opts: DiffCliOptions) => {
      const code = await run({ json: opts.json, file: opts.output }, async () => {
        const { diffObjects, diffPayload } = await import('../../src/diff/index.js');
        const { formatDiff } = await import('../../src/diff/explain.js');
        const { UsageError } = await import('../../src/errors.js');
        for (const a of opts.allow) if (a !== 'init') throw new UsageError('USAGE', `--allow ${a}: known kinds: init`);
        if (opts.output && !opts.xen) throw new UsageError('USAGE', '-o needs --xen XEN (the running hypervisor)');
        if (opts.depends && !opts.output) throw new UsageError('USAGE', '--depends needs -o (it is what the payload stacks on)');
        const common = {
          orig,
          patched,
          ...(opts.includeLineOnly ? { includeLineOnly: true } : {}),
          ...(opts.allow.length ? { allow: opts.allow } : {}),
          ...(opts.patchName ? { patchName: opts.patchName } : {}),
          ...(opts.emitHookSkeleton ? { hookSkeleton: true } : {}),
        };
        const warn = (w: string): void => io.err(`xsplice: warning: ${w}\n`);
        if (opts.output) {
          const r = await diffPayload({
            ...common,
            xen: opts.xen!,
            out: opts.output,
            toolVersion: VERSION,
            onWarning: warn,
            ...(opts.depends ? { depends: opts.depends } : {}),
          });
          for (const w of r.diff.warnings) warn(w);
          if (opts.json) {
            const { objects: _o, ...d } = r.diff;
            io.out(
              toJson({
                ...d,
                ok: true,
                payload: { file: r.file, buildId: r.build.buildId, size: r.build.bytes.length, funcs: r.build.funcs },
              }) + '\n',
            );
          } else {
            io.out(formatDiff(r.diff, !!opts.explain) + `${r.build.buildId}  ${r.file}\n`);
          }
          return 0;
        }
        const d = await diffObjects({ ...common, ...(opts.xen ? { xen: opts.xen } : {}) });
        for (const w of d.warnings) warn(w);
        if (opts.emitHookSkeleton && d.hookSkeleton) {
          const { writeFileAtomic } = await import('../../src/fsutil.js');
          await writeFileAtomic(opts.emitHookSkeleton, new TextEncoder().encode(d.hookSkeleton));
          warn(`hook skeleton for the changed data written to ${opts.emitHookSkeleton}`);
        }
        if (opts.json) {
          const { objects: _o, ...rest } = d;
          io.out(toJson({ ...rest, objects: d.objects.map((o) => ({ name: o.name, size: o.bytes.length })) }) + '\n');
        } else io.out(formatDiff(d, !!opts.explain));
        if (!d.ok) {
          const e = d.errors[0];
          if (e) io.err(`xsplice: ${e.object}: ${e.symbol ? `symbol ${e.symbol}: ` : ''}${e.code}: ${e.message}; ${e.suggestion}\n`);
          throw new ExitRequest(1);
        }
        return 0;
      });
      setExit(code);
    });
}
