/**
 * The tests' one in-process CLI runner: `main` from cli/xsplice.ts with captured stdout and stderr.
 * `stdin`, when given, is what the command reads for `-` (fed through a replaced process.stdin).
 */
import { main } from '../../cli/xsplice.js';

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

export async function runCli(argv: string[], stdin?: string): Promise<CliRun> {
  let out = '';
  let err = '';
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s) };
  if (stdin === undefined) return { code: await main(argv, io), out, err };
  const { Readable } = await import('node:stream');
  const orig = Object.getOwnPropertyDescriptor(process, 'stdin')!;
  Object.defineProperty(process, 'stdin', { value: Readable.from([Buffer.from(stdin)]), configurable: true });
  try {
    return { code: await main(argv, io), out, err };
  } finally {
    Object.defineProperty(process, 'stdin', orig);
  }
}
