/**
 * What every command's --help ends with (cli.md): examples, the exit codes, required options
 * marked as such, and no "(default: [])" for repeatable options. Applied to every registered
 * command by makeProgram, so a command added later gets the same help by adding a row here.
 */
import type { Command, Help, Option } from 'commander';

const XEN = '/usr/lib/debug/boot/xen-syms-4.17-amd64';

/** Examples per command path ("buildid set" for a subcommand). */
export const EXAMPLES: Record<string, string[]> = {
  elf: ['xsplice elf fix.o', "xsplice elf --json fix.o | jq '.sections[].name'"],
  buildid: [
    `xsplice buildid ${XEN} /boot/xen-4.17-amd64.gz`,
    `xsplice buildid --verify ${XEN}`,
    'xsplice buildid /sys/hypervisor/properties/buildid       # on a dom0',
    'xl info | xsplice buildid -',
  ],
  'buildid set': ['xsplice buildid set fix.o', 'xsplice buildid set fix.o --style md5 -o fix-md5.o'],
  build: [
    `xsplice build fix.o -o out/ --xen ${XEN} --patch xen_extra_version`,
    `xsplice build fix.o -o fix.livepatch --xen ${XEN} --patch 'common/kernel.c#foo' --expect`,
    `xsplice build fix2.o -o fix2.livepatch --xen ${XEN} --patch f --depends fix.livepatch`,
    'xsplice build --abi help',
  ],
  inspect: ['xsplice inspect fix.livepatch', 'xsplice inspect --json fix.livepatch | jq .funcs'],
  verify: [
    `xsplice verify fix.livepatch --xen ${XEN}`,
    `xsplice verify base.livepatch fix2.livepatch --xen ${XEN}       # a stack, in load order`,
    'xsplice verify fix.livepatch --xen /sys/hypervisor/properties/buildid --xen-version 4.17.5',
    'xen-livepatch list > loaded.txt; xsplice verify fix.livepatch --xen /sys/hypervisor/properties/buildid --loaded loaded.txt --loaded-dir /var/lib/livepatch',
  ],
  diff: ['xsplice diff orig/ patched/', `xsplice diff orig/ patched/ -o out/ --xen ${XEN} --explain`],
  patch: [`xsplice patch fix.patch --xen ${XEN} -o out/`, `xsplice patch fix.patch --xen ${XEN} -o out/ --debian 4.17.5+72-g01140da4e8-1`],
  linefix: ['xsplice linefix fix.patch > fix-lines.patch'],
  try: ['xsplice try fix.livepatch', 'xsplice try fix.livepatch --expect-extra +fix --json'],
};

/** Options a command cannot do without (marked "(required)" in its help). */
export const REQUIRED: Record<string, string[]> = {
  build: ['--output', '--xen'],
  verify: ['--xen'],
  patch: ['--xen', '--output'],
};

const EXIT_CODES = [
  'Exit status:',
  '  0  success (accepted)',
  '  1  refused: the input was understood and the hypervisor would reject it, a build-id does not verify,',
  '     or a change cannot be live-patched',
  '  2  usage error, unreadable or malformed input, I/O error',
  'Errors are one line "xsplice: <file>: <what>" on stderr; with --json, stdout holds exactly one JSON',
  'document, also on failure ({ "ok": false, "error": { "code", "message" } }).',
].join('\n');

function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Help layout shared by every command: repeatable options show no "(default: [])". */
export function helpConfig(): Partial<Help> {
  return {
    optionDescription(this: Help, option: Option): string {
      const extra: string[] = [];
      if (option.argChoices) extra.push(`choices: ${option.argChoices.map((c) => JSON.stringify(c)).join(', ')}`);
      const d = option.defaultValue as unknown;
      const empty = d === undefined || d === false || (Array.isArray(d) && d.length === 0);
      if (!empty && (option.required || option.optional)) extra.push(`default: ${option.defaultValueDescription ?? JSON.stringify(d)}`);
      if (option.envVar !== undefined) extra.push(`env: ${option.envVar}`);
      return extra.length ? `${option.description} (${extra.join(', ')})` : option.description;
    },
  };
}

/** Adds examples, exit codes and "(required)" marks to every command under `program`. */
export function finishHelp(program: Command): void {
  program.addHelpText('after', `\n${EXIT_CODES}\n`);
  const visit = (cmd: Command): void => {
    const path = commandPath(cmd);
    for (const long of REQUIRED[path] ?? []) {
      const o = cmd.options.find((x) => x.long === long);
      if (o && !o.description.endsWith('(required)')) o.description = `${o.description} (required)`;
    }
    const ex = EXAMPLES[path];
    cmd.addHelpText('after', `${ex ? `\nExamples:\n${ex.map((e) => `  ${e}`).join('\n')}\n` : ''}\n${EXIT_CODES}\n`);
    for (const sub of cmd.commands) visit(sub);
  };
  for (const c of program.commands) visit(c);
}
