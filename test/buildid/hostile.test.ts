/**
 * Hostile inputs: mutated ELF, gzip and PE files fed to readBuildId (with --verify) may only
 * succeed or fail with the project's own error (FormatError & co.), never crash with a
 * TypeError/RangeError or hang. Seeds are real toolchain outputs; mutations are deterministic.
 * And the CLI end to end through bin/xsplice for stdin ('-').
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { XspliceError } from '../../src/errors.js';
import { readBuildIdSync } from '../../src/buildid/index.js';
import { REPO, XEN_BUILD_ID, missing } from '../helpers/debian.js';
import { SOURCES, Workdir, have } from './toolchain.js';
import { rngU32 } from '../helpers/rng.js';

const w = new Workdir();
afterAll(() => w.cleanup());

function mutations(seed: Uint8Array, n: number, hot: number): Uint8Array[] {
  const r = rngU32(0xc0ffee ^ seed.length); // reproducible mutations
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const m = seed.slice();
    const k = 1 + (r() % 4);
    for (let j = 0; j < k; j++) {
      // Mostly in the headers (first `hot` bytes), where the offsets and counts live.
      const at = r() % 4 === 0 ? r() % m.length : r() % Math.min(hot, m.length);
      m[at] = r() % 3 === 0 ? 0xff : r() & 0xff;
    }
    if (r() % 10 === 0) out.push(m.subarray(0, r() % m.length));
    else out.push(m);
  }
  return out;
}

function expectOnlyOwnErrors(inputs: Uint8Array[], label: string): { ok: number; refused: number } {
  let ok = 0;
  let refused = 0;
  for (const [i, bytes] of inputs.entries()) {
    try {
      readBuildIdSync({ bytes, name: `${label}#${i}` }, { verify: true });
      ok++;
    } catch (e) {
      if (!(e instanceof XspliceError)) throw new Error(`${label} mutation #${i}: ${(e as Error).stack}`);
      expect(e.message).toContain(`${label}#${i}`);
      refused++;
    }
  }
  return { ok, refused };
}

describe.skipIf(missing('gcc, ld, objcopy', have('gcc') && have('ld') && have('objcopy')))('hostile inputs', () => {
  beforeAll(() => {
    w.write('a.c', SOURCES['a.c']);
    w.write('b.c', SOURCES['b.c']);
    w.run('gcc', '-O1', '-c', 'a.c', 'b.c');
    w.run('ld', '-r', '--build-id=sha1', 'a.o', 'b.o', '-o', 'r.o');
    w.run('gcc', '-Wl,--build-id=md5', 'a.o', 'b.o', '-o', 'exe');
    w.write('pe.c', 'int v = 1;\nvoid _start(void) { for (;;) v++; }\n');
    w.run('gcc', '-O1', '-fno-asynchronous-unwind-tables', '-c', 'pe.c', '-o', 'pe.o');
    w.run('objcopy', '-O', 'pe-x86-64', 'pe.o', 'pe.obj');
    w.run('ld', '-m', 'i386pep', '--build-id=sha1', '-e', '_start', 'pe.obj', '-o', 'pe.exe');
  });

  it("mutated ELF (ld -r and executable): success or the project's error only", () => {
    for (const f of ['r.o', 'exe']) {
      const res = expectOnlyOwnErrors(mutations(w.read(f), 400, 256), f);
      expect(res.ok + res.refused).toBe(400);
    }
  });
  it("mutated PE and gzip: success or the project's error only", () => {
    expectOnlyOwnErrors(mutations(w.read('pe.exe'), 400, 512), 'pe');
    expectOnlyOwnErrors(mutations(new Uint8Array(gzipSync(w.read('r.o'))), 200, 64), 'gz');
  });
  it('a section claiming more bytes than the file has is a FormatError naming the file', () => {
    const b = w.read('exe');
    // Grow sh_size of the last section past the end of the file.
    const dv = new DataView(b.buffer, b.byteOffset);
    const shoff = Number(dv.getBigUint64(40, true));
    const shnum = dv.getUint16(60, true);
    for (let i = 1; i < shnum; i++) dv.setBigUint64(shoff + i * 64 + 32, 1n << 40n, true);
    expect(() => readBuildIdSync({ bytes: b, name: 'huge' }, { verify: true })).toThrow(XspliceError);
  });
});

const BIN = join(REPO, 'bin', 'xsplice');
const built = existsSync(join(REPO, 'dist', 'cli', 'xsplice.js'));

describe.skipIf(missing('dist/ (npm run build)', built))('bin/xsplice buildid, whole process', () => {
  it("reads `xl info` text and raw sysfs bytes on stdin ('-')", () => {
    const xl = spawnSync(BIN, ['buildid', '-'], { input: `release : 6.1\nbuild_id               : ${XEN_BUILD_ID}\n`, encoding: 'utf8' });
    expect([xl.status, xl.stdout]).toEqual([0, `${XEN_BUILD_ID}  -\n`]);
    const raw = spawnSync(BIN, ['buildid', '--json', '-'], { input: Buffer.from(XEN_BUILD_ID, 'hex') });
    expect(raw.status).toBe(0);
    expect(JSON.parse(raw.stdout.toString())).toEqual([
      {
        ok: true,
        input: '-',
        buildId: XEN_BUILD_ID,
        source: 'sysfs',
        algorithm: null,
        verified: null,
        notes: [expect.stringMatching(/raw build-id bytes/)],
      },
    ]);
  });
  it('unreadable input: exit 2, one line on stderr, one JSON document with the error', () => {
    const r = spawnSync(BIN, ['buildid', '--json', '/nonexistent/xen-syms'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('xsplice: /nonexistent/xen-syms: no such file\n');
    expect(JSON.parse(r.stdout)).toEqual([
      expect.objectContaining({ input: '/nonexistent/xen-syms', error: expect.objectContaining({ code: 'IO_ENOENT' }) }),
    ]);
  });
});
