/**
 * The xsplice command line: parses, calls the library, reports. Each command lives in
 * cli/commands/<name>.ts and loads its library code lazily, so start-up stays cheap.
 */
import { Command, CommanderError } from 'commander';
import { io, setIo, type Io } from './common.js';
import { register as registerElf } from './commands/elf.js';
import { register as registerBuildid } from './commands/buildid.js';
import { register as registerBuild } from './commands/build.js';
import { register as registerInspect } from './commands/inspect.js';
import { register as registerVerify } from './commands/verify.js';
import { register as registerDiff } from './commands/diff.js';
import { register as registerTry } from './commands/try.js';
import { register as registerPatch } from './commands/patch.js';

import { VERSION } from './version.js';

export { VERSION };

export function makeProgram(setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('xsplice')
    .description('Build and check Xen live-patch payloads')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => write(s.startsWith('error:') ? `xsplice: ${s.slice(7)}` : s),
    });
  for (const reg of [registerElf, registerBuildid, registerBuild, registerInspect, registerVerify, registerDiff, registerPatch, registerTry]) {
    reg(program, setExit);
  }
  return program;
}

/** Runs the CLI in-process; returns the exit status. Tests pass their own Io. */
export async function main(argv: string[], customIo?: Io): Promise<number> {
  const prev = io;
  if (customIo) setIo(customIo);
  let code = 0;
  try {
    const program = makeProgram((c) => {
      code = c;
    });
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    throw e;
  } finally {
    if (customIo) setIo(prev);
  }
}
