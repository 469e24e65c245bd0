/**
 * xsplice inspect PAYLOAD [--json]
 * What a payload is: ABI, build-id, depends, funcs entries, hooks, special sections, undefined
 * symbols. Library code loads lazily.
 */
import type { Command } from 'commander';
import { io, jsonResult, run } from '../common.js';
import * as fsPromises from 'node:fs/promises';

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('inspect')
    .description('show what a live-patch payload contains (ABI, build-ids, funcs, hooks, sections)')
    .argument('<payload>', 'payload file')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string, opts: { json?: boolean }) => {
      const code = await run({ json: opts.json, file }, async () => {
        const [{ inspectPayload, formatInspect }, { readFile }] = await Promise.all([
          import('../../src/payload/inspect.js'), fsPromises,
        ]);
        const b = await readFile(file);
        const r = inspectPayload(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), file);
        io.out(opts.json ? jsonResult(r, true) + '\n' : formatInspect(r));
        return 0;
      });
      setExit(code);
    });
}
