/**
 * xsplice elf FILE [--json]
 * A readelf-like view of an ELF file: header, sections, symbols, relocations, notes. The JSON
 * shape is the one of cli.md; the text is readelf-style tables. Library code loads lazily.
 */
import type { Command } from 'commander';
import { io, run } from '../common.js';

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('elf')
    .description('readelf-like view of an ELF file (sections, symbols, relocations, notes)')
    .argument('<file>', 'ELF file')
    .option('--json', 'one JSON document on stdout')
    .action(async (file: string, opts: { json?: boolean }) => {
      const code = await run({ json: opts.json, file }, async () => {
        const [{ readElfFile }, dump] = await Promise.all([import('../../src/elf/index.js'), import('../../src/elf/dump.js')]);
        // Written as it is made: the document is never held whole.
        dump.streamElfView(readElfFile(file), { json: !!opts.json, file }, io.out);
        return 0;
      });
      setExit(code);
    });
}
