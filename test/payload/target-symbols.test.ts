/**
 * The target's symbol table is the one the running hypervisor searches (xen/tools/symbols):
 * absolute symbols (but __gp) and `_compiled.` names are not in it, so a payload that needs one is
 * refused by build and by verify alike ("Unknown symbol"), and the error names the XEN file.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTarget } from '../../src/payload/target.js';
import { readElf } from '../../src/elf/reader.js';
import { SHN } from '../../src/elf/constants.js';
import { debianXen, haveDebianXen, missing, REPO } from '../helpers/debian.js';
import { have } from '../helpers/tools.js';
import { runCli as cli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterAll(removeTempDirs);

const exec = promisify(execFile);
const CFLAGS = readFileSync(join(REPO, 'examples/xen-cflags'), 'utf8').split(/\s+/).filter(Boolean);
const XEN = debianXen.xenSyms;

describe.skipIf(missing('Debian xen-syms + gcc', haveDebianXen() && have('gcc')))('target symbol table as Xen searches it', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('tsym');
  });

  it('leaves out the absolute symbols of xen-syms (start_pa is one) but keeps the rest', async () => {
    const elf = readElf(new Uint8Array(await readFile(XEN)));
    const abs = elf.symbols().filter((s) => s.rawShndx === SHN.ABS && s.type !== 4 /* STT_FILE */ && s.name !== '');
    expect(abs.map((s) => s.name)).toContain('start_pa');
    const t = await loadTarget(XEN, {});
    for (const s of abs) expect(t.symbols!.has(s.name), s.name).toBe(false);
    expect(t.symbols!.has('xen_extra_version')).toBe(true);
    expect(t.symbols!.has('printk')).toBe(true);
  });

  it('build refuses new code that needs an absolute symbol of the target, naming the object that needs it', async () => {
    // Hidden visibility, as the hypervisor's own code is built: a PC32 reference the loader handles.
    const c = join(dir, 'abs.c');
    await writeFile(
      c,
      'extern char start_pa[] __attribute__((visibility("hidden")));\nconst char *xen_extra_version(void) { return start_pa; }\n',
    );
    const o = join(dir, 'abs.o');
    await exec('gcc', [...CFLAGS, '-c', c, '-o', o]);
    const out = join(dir, 'abs.livepatch');
    const r = await cli(['build', o, '-o', out, '--xen', XEN, '--patch', 'xen_extra_version']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `xsplice: ${o}: symbol start_pa: undefined symbol neither the objects nor the target define: start_pa; the hypervisor would refuse the upload ("Unknown symbol")\n`,
    );
    expect(existsSync(out)).toBe(false);

    // An unknown --patch name is about the target too.
    const good = join(dir, 'good.o');
    await exec('gcc', [...CFLAGS, '-c', join(REPO, 'examples/xen-extra-version/xen_extra_version.c'), '-o', good]);
    const u = await cli(['build', good, '-o', join(dir, 'u.livepatch'), '--xen', XEN, '--patch', 'no_such_function=xen_extra_version']);
    expect(u.code).toBe(1);
    expect(u.err).toBe(`xsplice: ${XEN}: symbol no_such_function: the target defines no symbol "no_such_function"\n`);
  });
});
