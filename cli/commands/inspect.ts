/**
 * xsplice inspect PAYLOAD [--json]
 * What a payload is: ABI, build-id, depends, funcs entries, hooks, special sections, undefined
 * symbols. Library code loads lazily.
 */
import type { Command } from 'commander';
import { io, jsonResult, run } from '../common.js';

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('inspect')
    .description('show what a live-patch payload contains (ABI, build-ids, funcs, hooks, sections)')
    .argument('<payload>', 'payload file')
    .option('--abi-file <file>', 'vendor payload ABI rows (JSON): a payload built for one is recognised as such')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string, opts: { json?: boolean; abiFile?: string }) => {
      const code = await run({ json: opts.json, file }, async () => {
        const [{ inspectPayload, formatInspect }, { PAYLOAD_MAX, readInput }] = await Promise.all([
          import('../../src/payload/inspect.js'),
          import('../../src/fsutil.js'),
        ]);
        const abis = opts.abiFile ? await (await import('../../src/payload/abi.js')).loadAbiFile(opts.abiFile) : [];
        // Xen takes at most 2 MiB in one upload: a bigger file is refused before it is read whole.
        const bytes = await readInput(file, { max: PAYLOAD_MAX, what: 'payload', tooLargeIsRefusal: true });
        const r = inspectPayload(bytes, file, { abis });
        io.out(opts.json ? jsonResult(r, true) + '\n' : formatInspect(r));
        return 0;
      });
      setExit(code);
    });
}
