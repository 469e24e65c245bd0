/**
 * The build-id of a live-patch payload is its `.note.gnu.build-id` (what Xen compares, what
 * `readelf -n` shows in that section), never the `.livepatch.depends` / `.livepatch.xen_depends`
 * notes that precede it. Oracle: readelf -n. Fixtures: gcc + `xsplice build` against Debian's
 * xen-syms 4.17 (the pinned target).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBuildId } from '../../src/buildid/read.js';
import { debianXen, haveDebianXen, missing, REPO, XEN_BUILD_ID } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';
import { runCli as cli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const EXAMPLE_C = join(REPO, 'examples/xen-extra-version/xen_extra_version.c');

/** readelf -n: the id in each note section, by section name. */
async function readelfNotes(file: string): Promise<Map<string, string>> {
  const { stdout } = await exec('readelf', ['-nW', file]);
  const out = new Map<string, string>();
  let section = '';
  for (const line of stdout.split('\n')) {
    const s = /Displaying notes found in: (\S+)/.exec(line);
    if (s) section = s[1]!;
    const id = /Build ID: ([0-9a-f]+)/.exec(line);
    if (id && !out.has(section)) out.set(section, id[1]!);
  }
  return out;
}

const ready = haveDebianXen() && have('gcc') && have('readelf');

describe.skipIf(missing('Debian xen-syms + gcc/binutils (scripts/setup-deps.sh)', ready))("a payload's own build-id", () => {
  let dir: string;
  let base: string;
  let topObj: string;

  beforeAll(async () => {
    dir = await tempDir('own-id');
    const o1 = join(dir, 'base.o');
    const o2 = join(dir, 'top.o');
    await exec('gcc', [...CFLAGS, '-DEXTRA="+base"', '-c', EXAMPLE_C, '-o', o1]);
    await exec('gcc', [...CFLAGS, '-DEXTRA="+top"', '-c', EXAMPLE_C, '-o', o2]);
    topObj = o2;
    base = join(dir, 'base.livepatch');
    const r = await cli(['build', o1, '-o', base, '--xen', debianXen.xenSyms, '--patch', 'xen_extra_version']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });

  it('xsplice buildid PAYLOAD prints what readelf -n shows for .note.gnu.build-id, with and without --verify', async () => {
    const notes = await readelfNotes(base);
    const own = notes.get('.note.gnu.build-id')!;
    expect(own).toMatch(/^[0-9a-f]{40}$/);
    expect(notes.get('.livepatch.depends')).toBe(XEN_BUILD_ID);
    expect(own).not.toBe(XEN_BUILD_ID);
    const plain = await cli(['buildid', base]);
    expect(plain).toEqual({ code: 0, out: `${own}  ${base}\n`, err: '' });
    const verified = await cli(['buildid', '--verify', base]);
    expect(verified.code).toBe(0);
    expect(verified.out).toBe(`${own}  ${base}\n`);
    const lib = await readBuildId({ path: base });
    expect(lib.buildId).toBe(own);
  });

  it('--json reports depends and xenDepends as separate keys', async () => {
    const own = (await readelfNotes(base)).get('.note.gnu.build-id')!;
    const r = await cli(['buildid', '--json', base]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual([
      expect.objectContaining({ input: base, buildId: own, source: 'elf', depends: XEN_BUILD_ID, xenDepends: XEN_BUILD_ID }),
    ]);
  });

  it('--depends $(xsplice buildid base) and --depends base give byte-identical payloads', async () => {
    const id = (await cli(['buildid', base])).out.split(/\s+/)[0]!;
    const a = join(dir, 'top-hex.livepatch');
    const b = join(dir, 'top-file.livepatch');
    const ra = await cli(['build', topObj, '-o', a, '--xen', debianXen.xenSyms, '--patch', 'xen_extra_version', '--depends', id]);
    const rb = await cli(['build', topObj, '-o', b, '--xen', debianXen.xenSyms, '--patch', 'xen_extra_version', '--depends', base]);
    expect([ra.code, ra.err, rb.code, rb.err]).toEqual([0, '', 0, '']);
    const [ba, bb] = await Promise.all([readFile(a), readFile(b)]);
    expect(Buffer.compare(ba, bb)).toBe(0);
    expect((await readelfNotes(b)).get('.livepatch.depends')).toBe(id);
    // And verify accepts the stack in load order.
    const v = await cli(['verify', '--xen', debianXen.xenSyms, base, b]);
    expect(v.code).toBe(0);
  });
});
