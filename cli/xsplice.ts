/**
 * The xsplice command line: parses, calls the library, reports. Each command lives in
 * cli/commands/<name>.ts and loads its library code lazily, so start-up stays cheap. The parts of
 * the contract (cli.md) that hold for every command live here and in cli/common.ts and
 * cli/help.ts: usage errors as JSON with --json, help with examples and exit codes, and the
 * option names of livepatch-build-tools.
 */
import { Command, CommanderError, Option } from 'commander';
import { io, nonUtf8Argument, settleStdio, setIo, toJson, wantsJson, type Io } from './common.js';
import { finishHelp, helpConfig } from './help.js';
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

/**
 * Options users of livepatch-build-tools type. `alias`: taken as the xsplice option named (only by
 * commands that have that option and not one of this name). `hint`: the answer to an unknown option.
 */
export const LIVEPATCH_BUILD_OPTIONS: Record<string, { alias?: string; hint: string }> = {
  '--xen-syms': { alias: 'xen', hint: "livepatch-build's --xen-syms FILE is --xen FILE here" },
  '--depends': { hint: "livepatch-build's --depends ID is `xsplice build --depends PAYLOAD|HEX`" },
  '--xen-depends': { hint: 'xsplice takes xen_depends from --xen XEN (its build-id); there is no --xen-depends' },
  '--srcdir': { hint: 'the source tree is `xsplice patch FIX.patch --source DIR`' },
  '--config': { hint: 'xsplice builds against an existing hypervisor: give it with --xen (and --source DIR to `xsplice patch`)' },
  '--prelink': { hint: 'xsplice links the payload itself; give the objects to `xsplice build`' },
  '--cpus': { hint: 'xsplice has no --cpus option' },
  '--skip': { hint: 'xsplice has no --skip option: `xsplice patch` caches the built base by build-id' },
  '--xen-debug': { hint: 'xsplice has no --xen-debug option: give the debug build as --xen' },
};

function unknownOptionHint(message: string): string | undefined {
  const m = /unknown option '([^'=]+)/.exec(message);
  return m ? LIVEPATCH_BUILD_OPTIONS[m[1]!]?.hint : undefined;
}

/** Hidden aliases for livepatch-build's option names, on every command that has the option aliased. */
function addAliases(cmd: Command): void {
  for (const [flag, { alias }] of Object.entries(LIVEPATCH_BUILD_OPTIONS)) {
    if (!alias) continue;
    const own = cmd.options.some((o) => o.long === flag);
    const target = cmd.options.find((o) => o.attributeName() === alias);
    if (own || !target) continue;
    const opt = new Option(`${flag} <${alias}>`, `same as --${target.long!.slice(2)}`).hideHelp();
    cmd.addOption(opt);
    cmd.on(`option:${flag.slice(2)}`, (v: string) => cmd.setOptionValue(alias, v));
  }
  for (const sub of cmd.commands) addAliases(sub);
}

export function makeProgram(setExit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('xsplice')
    .description('Build and check Xen live-patch payloads')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureHelp(helpConfig())
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s, write) => {
        const line = s.startsWith('error:') ? `xsplice: ${s.slice(7)}` : s;
        const hint = unknownOptionHint(s);
        write(hint ? `${line.replace(/\n$/, '')}\nxsplice: hint: ${hint}\n` : line);
      },
    });
  for (const reg of [
    registerElf,
    registerBuildid,
    registerBuild,
    registerInspect,
    registerVerify,
    registerDiff,
    registerPatch,
    registerTry,
  ]) {
    reg(program, setExit);
  }
  for (const c of program.commands) addAliases(c);
  finishHelp(program);
  return program;
}

/** Runs the CLI in-process; returns the exit status. Tests pass their own Io. */
export async function main(argv: string[], customIo?: Io): Promise<number> {
  const prev = io;
  if (customIo) setIo(customIo);
  let code = 0;
  if (!customIo) {
    // A file name that is not UTF-8 reaches Node as U+FFFD: it would name another file.
    const bad = nonUtf8Argument();
    if (bad !== null) {
      io.err(`xsplice: ${bad}: argument is not valid UTF-8 (file names must be UTF-8 to be opened by name)\n`);
      return settleStdio(2);
    }
  }
  try {
    const program = makeProgram((c) => {
      code = c;
    });
    await program.parseAsync(argv, { from: 'user' });
    return customIo ? code : await settleStdio(code);
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      // Commander has written the one stderr line; with --json the document says the same.
      if (wantsJson(argv)) {
        const message = e.message.replace(/^error: /, '');
        const hint = unknownOptionHint(e.message);
        io.out(toJson({ ok: false, error: { code: 'USAGE', commander: e.code, message, ...(hint ? { hint } : {}) } }) + '\n');
      }
      return 2;
    }
    throw e;
  } finally {
    if (customIo) setIo(prev);
  }
}
