/**
 * Rebuilding one object from its recorded command without touching the base tree (diff.md §6.2):
 * the patched files live in an overlay directory that mirrors xen/; the object's main source is
 * compiled from the overlay with the recorded command, the overlay's include directories searched
 * before the tree's, `-ffile-prefix-map` mapping the overlay back to the paths the base build saw
 * (so `__FILE__` strings and the object are what `make` would produce), then the STT_FILE symbol
 * is renamed as Xen's Rules.mk does (`objcopy --redefine-sym name.c=dir/name.c`).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RefusedError, XspliceError } from '../errors.js';
import { splitWords, type ObjectRecord } from './cmdfile.js';
import { lastLines, runProgram } from './exec.js';

export interface RecompileOptions {
  /** The base tree's hypervisor directory (cwd of the recorded commands). */
  xenDir: string;
  /** Overlay root mirroring xen/ (patched files at their relative paths). */
  overlay: string;
  /** Where the new object goes (`<outDir>/<object>`). */
  outDir: string;
  /** Environment (PATH with the base's compiler). */
  env?: NodeJS.ProcessEnv;
  /** Flags added to the recorded command (e.g. `-g` for the line table of drift.ts). */
  extraFlags?: string[];
}

/** Compile-only and dependency-file flags dropped from the recorded command. */
const DROP_WITH_ARG = new Set(['-MF', '-MQ', '-MT', '-o']);
const DROP = new Set(['-MMD', '-MD', '-MP']);

/**
 * The argv that compiles `rec`'s source from the overlay into `tmp` (exported for tests: the
 * rewriting is the part that has to leave a byte-identical object).
 */
export function overlayCommand(rec: ObjectRecord, overlay: string, tmp: string, extraFlags: readonly string[] = []): string[] {
  const argv = splitWords(rec.command, rec.cmdFile);
  const out: string[] = [];
  let sawC = false;
  let firstInclude = true;
  const srcDir = dirname(rec.source);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (DROP.has(a)) continue;
    if (DROP_WITH_ARG.has(a)) {
      i++;
      continue;
    }
    if (i > 0 && a === rec.source) continue; // re-added below, from the overlay
    if (a.startsWith('-I') && firstInclude) {
      // The overlay's include directories first, spelled `<overlay>/./include` so that, once the
      // overlay prefix is mapped away, `__FILE__` reads `./include/…` exactly as in the base build.
      for (let j = i; j < argv.length; j++) {
        const inc = argv[j]!;
        if (!inc.startsWith('-I') || inc.length === 2) continue;
        const dir = inc.slice(2);
        if (!dir.startsWith('/') && existsSync(join(overlay, dir))) out.push(`-I${overlay}/${dir.startsWith('./') ? dir : `./${dir}`}`);
      }
      firstInclude = false;
    }
    if (a === '-c') sawC = true;
    out.push(a);
  }
  if (!sawC)
    throw new XspliceError('PATCH_CMD_UNEXPECTED', `the recorded command of ${rec.object} does not compile (-c missing)`, {
      file: rec.cmdFile,
    });
  // Quoted includes not in the overlay resolve against the source's own directory in the tree.
  out.push(...extraFlags, `-iquote`, srcDir || '.', `-ffile-prefix-map=${overlay}/=`, `-o`, tmp, join(overlay, rec.source));
  return out;
}

/** Recompiles `rec` with the overlay; returns the path of the new object. */
export async function recompileObject(rec: ObjectRecord, opts: RecompileOptions): Promise<string> {
  if (!/\.c$/.test(rec.source)) {
    throw new RefusedError(
      'PATCH_ASSEMBLY',
      `${rec.object} is built from ${rec.source}, not from C: a live patch replaces C functions; assembly changes cannot be live-patched`,
    );
  }
  const ovSrc = join(opts.overlay, rec.source);
  if (!existsSync(ovSrc)) {
    mkdirSync(dirname(ovSrc), { recursive: true });
    copyFileSync(join(opts.xenDir, rec.source), ovSrc);
  }
  const out = join(opts.outDir, rec.object);
  mkdirSync(dirname(out), { recursive: true });
  const tmp = `${out}.tmp`;
  rmSync(tmp, { force: true });
  const argv = overlayCommand(rec, opts.overlay, tmp, opts.extraFlags);
  const cc = await runProgram(argv[0]!, argv.slice(1), { cwd: opts.xenDir, env: opts.env });
  if (cc.code !== 0) {
    throw new RefusedError(
      'PATCH_COMPILE',
      `compiling ${rec.source} for ${rec.object} failed with the patch applied\n${lastLines(cc.stderr || cc.stdout, 12)}`,
    );
  }
  // Rules.mk: objcopy --redefine-sym $(<F)=<path relative to xen/>
  const oc = await runProgram('objcopy', ['--redefine-sym', `${basename(rec.source)}=${rec.source}`, tmp, out], {
    cwd: opts.xenDir,
    env: opts.env,
  });
  rmSync(tmp, { force: true });
  if (oc.code !== 0) throw new XspliceError('PATCH_OBJCOPY', `objcopy --redefine-sym for ${rec.object} failed\n${lastLines(oc.stderr)}`);
  return out;
}

/** Reads an object as bytes. */
export function readObject(path: string): Uint8Array {
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
