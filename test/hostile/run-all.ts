/**
 * Every command's library entry on one input, as the CLI would call it: the elf view (text and
 * JSON, streamed), buildid (with --verify), buildid set, inspect, verify, the input as the
 * hypervisor argument, and build (with a spec naming `f` as the new code). Anything thrown that
 * is not the project's own error is a finding; a payload build writes must pass verify.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XspliceError } from '../../src/errors.js';
import { readElf } from '../../src/elf/reader.js';
import { streamElfView } from '../../src/elf/dump.js';
import { readBuildIdSync } from '../../src/buildid/read.js';
import { setBuildIdWithId } from '../../src/buildid/embed.js';
import { inspectPayload } from '../../src/payload/inspect.js';
import { verifyPayloads } from '../../src/payload/verify.js';
import { loadTarget } from '../../src/payload/target.js';
import { buildFiles } from '../../src/payload/build-files.js';

export const FUZZ_XEN_ID = '39a640e6f1412319235087391df9f1c5e13ae920';
const TARGET = { buildId: Buffer.from(FUZZ_XEN_ID, 'hex'), version: '4.17.5' };

export interface CommandFigures {
  commands: number;
  ok: number;
  refused: number;
  built: number;
  /** Bytes written by all commands (views, objects, payloads). */
  outputBytes: number;
  ms: number;
}

export class Finding extends Error {
  override name = 'Finding';
}

export async function runAllCommands(bytes: Uint8Array, dir: string): Promise<CommandFigures> {
  const f: CommandFigures = { commands: 0, ok: 0, refused: 0, built: 0, outputBytes: 0, ms: 0 };
  const t0 = performance.now();
  const file = join(dir, 'fuzz.o');
  writeFileSync(file, bytes);
  const attempt = async (name: string, body: () => unknown): Promise<void> => {
    f.commands++;
    try {
      await body();
      f.ok++;
    } catch (e) {
      if (e instanceof Finding) throw e;
      if (!(e instanceof XspliceError)) throw new Finding(`${name}: ${(e as Error)?.stack ?? String(e)}`);
      if (!/^[A-Z][A-Z0-9_]+$/.test(e.code) || e.message.includes('\n') || e.message.length > 2000) {
        throw new Finding(`${name}: not a one-line project error: ${e.code} ${e.message.slice(0, 300)}`);
      }
      f.refused++;
    }
  };
  await attempt('elf', () => {
    const elf = readElf(bytes, { file });
    for (const json of [false, true])
      streamElfView(elf, { json, file }, (s) => {
        f.outputBytes += s.length;
      });
  });
  await attempt('buildid --verify', () => readBuildIdSync({ bytes, name: file }, { verify: true }));
  await attempt('buildid set', () => {
    f.outputBytes += setBuildIdWithId(bytes, 'sha1', { file }).bytes.length;
  });
  await attempt('inspect', () => inspectPayload(bytes, file));
  await attempt('verify', () => verifyPayloads([{ file: 'fuzz.livepatch', bytes }], TARGET));
  await attempt('--xen', () => loadTarget(file));
  const out = join(dir, 'fuzz.livepatch');
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ patches: [{ old: 'do_domctl', new: 'f', oldAddr: '0xffff82d040200000', oldSize: 64 }] }));
  rmSync(out, { force: true });
  await attempt('build', async () => {
    const r = await buildFiles({ objects: [file], out, xen: FUZZ_XEN_ID, xenVersion: '4.17.5', spec, toolVersion: 'fuzz' });
    f.built++;
    f.outputBytes += r.bytes.length;
    // What build wrote, verify accepts against the same target.
    const written = readFileSync(out);
    const v = verifyPayloads([{ file: out, bytes: written }], TARGET);
    if (!v.ok)
      throw new Finding(
        `build wrote a payload verify refuses: ${JSON.stringify(v.payloads[0]!.diagnostics.filter((d) => d.severity === 'error'))}`,
      );
  });
  if (existsSync(out) && f.built === 0) throw new Finding('build failed but left its output');
  f.ms = performance.now() - t0;
  return f;
}
