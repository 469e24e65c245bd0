/**
 * xsplice build OBJ... -o OUT --xen XEN [--xen-version X.Y.Z] [--abi NAME] [--abi-file FILE.json]
 *               [--arch x86_64|arm64|arm32] [--patch OLD[=NEW]]... [--nop OLD[:LEN]]...
 *               [--hook KIND=SYMBOL]... [--depends PAYLOAD|HEX] [--expect] [--spec FILE.json]
 *               [--old-addr address|name] [--json]
 * Makes a payload from relocatable objects (cli.md). `--abi help` lists the ABI rows.
 * Exit 1 when the hypervisor would refuse what was asked; 2 for usage and malformed input.
 */
import type { Command } from 'commander';
import { io, jsonResult, payloadName, readStdinText, resolveOutput, run } from '../common.js';
import { VERSION } from '../version.js';

interface BuildCliOptions {
  output?: string;
  xen?: string;
  xenVersion?: string;
  abi?: string;
  abiFile?: string;
  arch?: string;
  patch: string[];
  nop: string[];
  hook: string[];
  depends?: string;
  expect?: boolean;
  spec?: string;
  oldAddr?: string;
  json?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function register(program: Command, setExit: (code: number) => void): void {
  program
    .command('build')
    .description('make a live-patch payload from relocatable objects holding the new code')
    .argument('[obj...]', 'relocatable objects (.o)')
    .option('-o, --output <file>', 'payload to write (atomically); DIR/ writes DIR/<first object>.livepatch')
    .option('--xen <xen>', 'target: xen-syms, xen.gz, xen.efi, a hex build-id, a sysfs buildid file, or - for `xl info` on stdin')
    .option('--xen-version <x.y.z>', 'target release (wins over what XEN reveals)')
    .option('--abi <name>', 'payload ABI row (xsplice, L1, L2a, L2b, L2c, or a --abi-file row); "help" lists them')
    .option('--abi-file <file>', 'JSON file with vendor ABI rows')
    .option('--arch <arch>', 'x86_64, arm64 or arm32 (default: from XEN or the objects)')
    .option('--patch <old[=new]>', 'replace hypervisor function OLD (name, file#name or 0xADDR) with NEW', collect, [])
    .option('--nop <old[:len]>', 'NOP LEN bytes (default: all) of hypervisor function OLD', collect, [])
    .option('--hook <kind=symbol>', 'hook: load, unload, pre-apply, apply, post-apply, pre-revert, revert, post-revert', collect, [])
    .option('--depends <payload|hex>', 'what this payload stacks on (default: the hypervisor)')
    .option('--expect', "fill each entry's expectation block from the bytes at old_addr in XEN")
    .option('--spec <file>', 'the same options in JSON (also oldSize/newSize per entry)')
    .option('--old-addr <mode>', '"address" (from the symbol table; default with a symbol file) or "name" (0: the hypervisor resolves it)')
    .option('--json', 'one JSON document on stdout')
    .action(async (objects: string[], opts: BuildCliOptions) => {
      const inputs = [...objects, opts.xen, opts.depends, opts.spec, opts.abiFile];
      const code = await run({ json: opts.json, file: opts.output, inputs }, async () => {
        const lib = await import('../../src/payload/build-files.js');
        if (opts.abi === 'help') {
          const abi = await import('../../src/payload/abi.js');
          const extra = opts.abiFile ? await abi.loadAbiFile(opts.abiFile) : [];
          if (opts.json) io.out(jsonResult({ rows: [...abi.listAbis(), ...extra] }, true) + '\n');
          else io.out(abi.describeAbis(extra) + '\n');
          return 0;
        }
        // The output's directory first, before any work (-o DIR/ writes DIR/<first object>.livepatch).
        const out = opts.output ? await resolveOutput(opts.output, payloadName(objects[0])) : '';
        const stdinText = opts.xen === '-' ? await readStdinText() : undefined;
        const r = await lib.buildFiles({
          objects,
          out,
          xen: opts.xen ?? '',
          xenVersion: opts.xenVersion,
          abi: opts.abi,
          abiFile: opts.abiFile,
          arch: opts.arch,
          patch: opts.patch,
          nop: opts.nop,
          hook: opts.hook,
          depends: opts.depends,
          expect: opts.expect,
          spec: opts.spec,
          oldAddr: opts.oldAddr,
          stdinText,
          toolVersion: VERSION,
          onWarning: (w: string) => io.err(`xsplice: warning: ${w}\n`),
        });
        if (opts.json) {
          const { bytes: _bytes, ...rest } = r;
          io.out(jsonResult({ size: r.bytes.length, ...rest }, true) + '\n');
        } else {
          // One write: with 5,000 entries, a write per line cost ~15 ms of system calls.
          const lines = [
            `${r.buildId}  ${r.file}`,
            `  abi ${r.abi.id} (payload version ${r.abi.version}), ${r.bytes.length} bytes`,
            `  depends ${r.depends}${r.xenDepends ? `, xen_depends ${r.xenDepends}` : ''}`,
          ];
          for (const f of r.funcs) {
            lines.push(
              `  ${f.newSymbol === null ? 'nop ' : 'func'} ${f.name}${f.newSymbol ? ` -> ${f.newSymbol}` : ''} old_addr 0x${f.oldAddr.toString(16)} old_size ${f.oldSize} new_size ${f.newSize}${f.expect ? ` expect ${f.expect.len} bytes` : ''}`,
            );
          }
          for (const [k, v] of Object.entries(r.hooks)) lines.push(`  hook ${k}: ${v.join(', ')}`);
          io.out(lines.join('\n') + '\n');
        }
        return 0;
      });
      setExit(code);
    });
}
