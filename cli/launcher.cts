/**
 * The CLI's start-up path, bundled by scripts/bundle.mjs into dist/xsplice.cjs (what bin/xsplice
 * runs). A CommonJS entry, because Node starts a CommonJS main module ~5 ms sooner than an ES
 * module. The CLI itself (dist/xsplice-cli.js, one CommonJS bundle) is compiled through
 * `vm.Script` with the V8 code cache that `npm run build` leaves next to it
 * (dist/xsplice-cli.cache, written after a warm-up run of the commands, so it holds the bytecode
 * of the functions a build, verify or inspect runs). Measured on `xsplice build` of 100 functions:
 * 78 -> 58 ms per process. A cache that V8 rejects (another Node, other V8 flags) or that belongs
 * to another bundle is ignored: the CLI is then compiled as usual, a little slower, never wrong.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Script } from 'node:vm';
import { VERSION } from './version.js';

// vm, crypto and module are required when the CLI is loaded, not for --version.
const sha1 = (b: Uint8Array): Buffer => (require('node:crypto') as typeof import('node:crypto')).createHash('sha1').update(b).digest();

export interface CliModule {
  main(argv: string[], io?: { out: (s: string) => void; err: (s: string) => void }): Promise<number>;
}

export interface LoadedCli {
  cli: CliModule;
  script: Script;
  /** true: V8 took the code cache; false: it rejected it; null: there was none to offer. */
  cacheAccepted: boolean | null;
}

export const BUNDLE = join(__dirname, 'xsplice-cli.js');
export const CODE_CACHE = join(__dirname, 'xsplice-cli.cache');

// Cache file: MAGIC, the bundle's size and mtime (so a cache never outlives its bundle), the SHA-1
// of V8's data, then the data. V8 checks its own version, flags and the source length, but it does
// not check the data itself in a release build: a damaged cache crashed Node (SIGSEGV) in a test,
// so the launcher offers V8 only data whose digest matches (~1 ms).
const MAGIC = 'xsplice-code-cache-2\n';
const DIGEST = MAGIC.length + 16;
const HEADER = DIGEST + 20;

function bundleStamp(): { size: number; mtimeMs: number } {
  const st = statSync(BUNDLE);
  return { size: st.size, mtimeMs: st.mtimeMs };
}

function readCodeCache(): Buffer | undefined {
  let c: Buffer;
  try {
    c = readFileSync(CODE_CACHE);
  } catch {
    return undefined;
  }
  if (c.length <= HEADER || c.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined;
  const st = bundleStamp();
  if (c.readDoubleLE(MAGIC.length) !== st.size || c.readDoubleLE(MAGIC.length + 8) !== st.mtimeMs) return undefined;
  const data = c.subarray(HEADER);
  if (!sha1(data).equals(c.subarray(DIGEST, HEADER))) return undefined;
  return data;
}

/** Compiles and runs the CLI bundle (with the code cache when there is a matching one). */
export function loadCli(): LoadedCli {
  const source = readFileSync(BUNDLE, 'utf8');
  const cachedData = readCodeCache();
  // The same wrapper Node gives a CommonJS module.
  const { Script } = require('node:vm') as typeof import('node:vm');
  const { createRequire } = require('node:module') as typeof import('node:module');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: BUNDLE, cachedData });
  const mod = { exports: {} as CliModule };
  script.runInThisContext()(mod.exports, createRequire(BUNDLE), mod, BUNDLE, __dirname);
  return { cli: mod.exports, script, cacheAccepted: cachedData ? !script.cachedDataRejected : null };
}

/** Writes the code cache of a loaded CLI (after it ran its warm-up), atomically. */
export function writeCodeCache(loaded: LoadedCli): number {
  const data = loaded.script.createCachedData();
  const st = bundleStamp();
  const head = Buffer.alloc(HEADER);
  head.write(MAGIC, 0, 'latin1');
  head.writeDoubleLE(st.size, MAGIC.length);
  head.writeDoubleLE(st.mtimeMs, MAGIC.length + 8);
  sha1(data).copy(head, DIGEST);
  const tmp = `${CODE_CACHE}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, head);
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, CODE_CACHE);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing to remove
    }
    throw e;
  }
  return HEADER + data.length;
}

/** bin/xsplice's whole job. */
export async function start(argv: string[]): Promise<void> {
  // bin/xsplice, run as a program, starts Node without NODE_EXTRA_CA_CERTS: Node 20 parses that
  // certificate bundle at start-up (~35 ms here), and xsplice makes no TLS connection. The value
  // is put back for whatever the CLI starts (QEMU, apt-get).
  const env = process.env;
  const saved = env.XSPLICE_NODE_EXTRA_CA_CERTS;
  if (saved !== undefined) {
    env.NODE_EXTRA_CA_CERTS = saved;
    delete env.XSPLICE_NODE_EXTRA_CA_CERTS;
  }
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  let cli: CliModule;
  try {
    cli = loadCli().cli;
  } catch (e) {
    process.stderr.write(`xsplice: cannot load ${BUNDLE} (run 'npm run build' first): ${(e as Error).message}\n`);
    process.exitCode = 2;
    return;
  }
  process.exitCode = await cli.main(argv);
}

if (require.main === module) void start(process.argv.slice(2));
