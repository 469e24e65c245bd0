/**
 * `xsplice patch`: from source fixes to a payload the running hypervisor accepts. The stages, in
 * order (each its own module):
 *
 *   1. target   read XEN (build-id, version)                              payload/target.ts
 *   2. base     the tree that built XEN: --source DIR, the cache, or the
 *               Debian source package, built and cached by build-id       debian-base.ts, cache.ts
 *   3. check    the base's xen-syms build-id equals XEN's, else refuse
 *               naming what differs                                        mismatch.ts
 *   4. patch    the fixes applied to scratch copies (+ `#line` fix)        apply.ts
 *   5. compile  the affected objects from their recorded commands         cmdfile.ts, recompile.ts
 *   6. diff → build → verify, in-process; OUT written only if verify accepts   diff/
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join, normalize, resolve } from 'node:path';
import { parseUnifiedDiff } from './unified-diff.js';
import { readBuildIdSync } from '../buildid/read.js';
import { RefusedError, UsageError } from '../errors.js';
import { loadTarget, type Target } from '../payload/target.js';
import type { DiffResult } from '../diff/types.js';
import type { VerifyResult } from '../payload/verify.js';
import { applyPatches, type PatchedFile } from './apply.js';
import { cacheRoot, lookupBuildId } from './cache.js';
import { affectedObjects, readObjectRecords, type ObjectRecord } from './cmdfile.js';
import { ensureDebianBase, type Base } from './debian-base.js';
import { explainMismatch, formatMismatch, type Mismatch } from './mismatch.js';
import { makeProgress, type Progress } from './progress.js';
import { readObject, recompileObject } from './recompile.js';
import { makePatchedTree } from './make-route.js';
import { classifyDrift, functionLines } from './drift.js';

export { ensureDebianBase, type Base } from './debian-base.js';
export { cacheRoot, lookupBuildId } from './cache.js';
export { explainMismatch, formatMismatch, type Mismatch } from './mismatch.js';

export interface PatchOptions {
  /** FIX.patch files (unified diffs, `-p1` relative to the tree root). */
  patches: string[];
  /** XEN: the running hypervisor (symbol file, image, build-id …). */
  xen: string;
  /** Payload to write (only if verify accepts it); omitted: stop after verify in memory. */
  out?: string;
  /** A Xen tree as it was built for XEN (holds xen/xen-syms and the `.o.cmd` records). */
  source?: string;
  /** Debian version of the source package (default: what XEN reveals). */
  debian?: string;
  /** klp-style `#line` fix after each hunk (default true). */
  lineFix?: boolean;
  /** Progress lines (stderr in the CLI). */
  onProgress?: (line: string) => void;
  onWarning?: (message: string) => void;
  /** Cache root (default cacheRoot()). */
  cacheDir?: string;
  /** make -j for a base build. */
  jobs?: number;
  /** Build the patched objects with make in a copy of the base (the fallback) instead of their recorded commands. */
  make?: boolean;
  /** Keep the scratch directory (its path is in the result). */
  keepScratch?: boolean;
  /** What the payload stacks on: a loaded payload's file or a hex build-id (default: XEN). */
  depends?: string;
  /**
   * Patches already live through `depends` (what that payload was made from): ORIG is the base with
   * these applied, PATCHED the base with these and then `patches`. Needs `depends`.
   */
  on?: string[];
  /** Map each changed function's source lines through the hunks to explain code-generation drift (default true). */
  explainDrift?: boolean;
  /** Payload name (default: the first patch's basename). */
  name?: string;
  toolVersion?: string;
}

export interface PatchObject {
  object: string;
  source: string;
  /** Why it was recompiled: the changed files it compiles or includes. */
  because: string[];
  seconds: number;
  /** The recompiled object differs from the base's. */
  changed: boolean;
  /** How it was rebuilt: its recorded command, or make (fallback). */
  via: 'command' | 'make';
}

export interface PatchResult {
  base: { buildId: string; source: string; cached: boolean; tree: string };
  files: PatchedFile[];
  ignored: string[];
  objects: PatchObject[];
  /** Assembly objects that include a changed header (not recompiled: not live-patchable). */
  skipped: { object: string; why: string }[];
  diff?: DiffResult;
  verify?: VerifyResult;
  /** The payload written (absent without `out`). */
  file?: string;
  buildId?: string;
  scratch?: string;
}

/** The base that built XEN: from --source, the cache (by XEN's build-id), or the Debian source package. */
export async function resolveBase(o: PatchOptions, target: Target, progress: Progress): Promise<Base> {
  const root = o.cacheDir ?? cacheRoot();
  if (o.source) {
    const dir = resolve(o.source);
    const tree = existsSync(join(dir, 'xen', 'Makefile'))
      ? dir
      : existsSync(join(dir, 'Makefile')) && basename(dir) === 'xen'
        ? resolve(dir, '..')
        : dir;
    const syms = join(tree, 'xen', 'xen-syms');
    if (!existsSync(join(tree, 'xen'))) throw new UsageError('PATCH_SOURCE_DIR', `${o.source}: not a Xen tree (no xen/ directory)`);
    if (!existsSync(syms))
      throw new UsageError(
        'PATCH_SOURCE_UNBUILT',
        `${o.source}: the tree is not built (no xen/xen-syms); build it as the running hypervisor was built, then retry`,
      );
    const buildId = readBuildIdSync({ path: syms }).buildId;
    progress.say(`base: ${tree} (xen-syms build-id ${buildId})`);
    return { buildId, source: `dir:${tree}`, tree, completed: '', cached: true };
  }
  if (!o.debian) {
    const hit = lookupBuildId(target.buildIdHex, root);
    if (hit) {
      progress.say(`base: cache hit for build-id ${hit.buildId} (${hit.source}, ${hit.tree})`);
      return { ...hit, cached: true };
    }
  }
  const version =
    o.debian ?? (target.versionSource === 'xen_compile_system_version()' && /-/.test(target.version ?? '') ? target.version : undefined);
  if (!version) {
    throw new UsageError(
      'PATCH_NO_BASE',
      `XEN reveals no Debian version${target.version ? ` (only ${target.version})` : ''} and no cached base has its build-id ${target.buildIdHex}: give --source DIR (the tree that built it) or --debian VERSION`,
    );
  }
  const base = await ensureDebianBase(version, { progress, root, jobs: o.jobs, expectBuildId: target.buildIdHex });
  progress.say(
    base.cached
      ? `base: cache hit, Debian xen ${version}, build-id ${base.buildId}`
      : `base: built Debian xen ${version} in ${base.buildSeconds}s, build-id ${base.buildId}`,
  );
  return base;
}

/** Refuses (exit 1) when the base is not XEN, naming what differs. */
export async function checkBase(base: Base, target: Target, records: () => Map<string, ObjectRecord>): Promise<void> {
  if (base.buildId === target.buildIdHex) return;
  let detail = '';
  let m: Mismatch | undefined;
  try {
    const syms = join(base.tree, 'xen', 'xen-syms');
    m = explainMismatch(syms, join(base.tree, 'xen'), records(), target, await loadTarget(syms));
    detail = '\n' + formatMismatch(m);
  } catch (e) {
    detail = `\n(could not compare further: ${(e as Error).message})`;
  }
  const err = new RefusedError(
    'PATCH_BASE_MISMATCH',
    `the base (${base.source}) is not the running hypervisor: its xen-syms build-id is ${base.buildId}, XEN's is ${target.buildIdHex}${detail}`,
  );
  (err as RefusedError & { mismatch?: Mismatch }).mismatch = m;
  throw err;
}

/**
 * §3.2 rule 4: each included changed function whose ORIG source lines (from a `-g` recompile of its
 * object; inlined callees included) miss every touched line is explained as `codegen-drift`. It
 * stays in the payload. Objects without a recorded command are left unexplained.
 */
export async function explainDrift(
  diff: DiffResult,
  touched: ReadonlyMap<string, ReadonlySet<number> | null>,
  records: ReadonlyMap<string, ObjectRecord>,
  o: { xenDir: string; scratch: string; env?: NodeJS.ProcessEnv; overlay?: string },
): Promise<void> {
  const byObject = new Map<string, DiffResult['functions']>();
  for (const f of diff.functions) {
    if (!f.included || f.status !== 'changed') continue;
    const l = byObject.get(f.object);
    if (l) l.push(f);
    else byObject.set(f.object, [f]);
  }
  for (const [object, fns] of byObject) {
    const rec = records.get(object);
    if (!rec || !rec.source.endsWith('.c')) continue;
    const g = await recompileObject(rec, {
      xenDir: o.xenDir,
      overlay: o.overlay ?? join(o.scratch, 'orig-g'),
      outDir: join(o.scratch, 'orig-g-out'),
      env: o.env,
      extraFlags: ['-g'],
    });
    const ex = diff.explain.objects.find((x) => x.object === object);
    for (const f of fns) {
      const v = classifyDrift(await functionLines(g, f.origName ?? f.name, o.xenDir, o.env), touched);
      if (!v.drift) continue;
      f.codegenDrift = v.lines;
      const where = v.lines.map((x) => `${x.file}:${x.first}-${x.last}`).join(', ');
      f.reason = `codegen-drift: no source line of this function changed, nor of what is inlined into it (${where}): it changed through a macro, type or declaration the patch touches, or by the compiler's own choices; ${f.reason}`;
      f.rule = '§3.2';
      if (ex) (ex.drift ??= []).push({ name: f.xenName ?? f.name, lines: v.lines });
    }
  }
}

/** Runs the whole pipeline. */
export async function patchXen(o: PatchOptions): Promise<PatchResult> {
  if (o.patches.length === 0) throw new UsageError('PATCH_USAGE', 'no FIX.patch given');
  if (o.source && o.debian) throw new UsageError('PATCH_USAGE', '--source and --debian exclude each other');
  for (const p of o.patches) if (!existsSync(p)) throw new UsageError('IO_ENOENT', `${p}: no such file`);
  // Read first: a bad --depends is a usage error before any base is built.
  const { readDepends } = await import('../payload/build-files.js');
  if (o.depends) await readDepends(o.depends, '.note.gnu.build-id');
  const on = o.on ?? [];
  for (const p of on) if (!existsSync(p)) throw new UsageError('IO_ENOENT', `${p}: no such file`);
  if (on.length && !o.depends)
    throw new UsageError('PATCH_USAGE', '--on names the patches a loaded payload was made from: give that payload with --depends');
  if (on.length && o.make) throw new UsageError('PATCH_USAGE', '--on works with the recorded commands, not with --make');
  const progress = makeProgress(o.onProgress);
  const target = await progress.step('read XEN', () => loadTarget(o.xen));
  progress.say(`XEN build-id ${target.buildIdHex}${target.version ? `, version ${target.version}` : ''}`);
  const base = await resolveBase(o, target, progress);
  const xenDir = join(base.tree, 'xen');
  let records: Map<string, ObjectRecord> | undefined;
  const getRecords = (): Map<string, ObjectRecord> => (records ??= readObjectRecords(xenDir));
  await checkBase(base, target, getRecords);

  const scratch = mkdtempSync(join(tmpdir(), 'xsplice-patch-'));
  try {
    const overlay = join(scratch, 'overlay');
    const overlayOrig = join(scratch, 'overlay-orig');
    const applied = await progress.step(
      `apply ${o.patches.length} patch file${o.patches.length > 1 ? 's' : ''}${on.length ? ` on ${on.length} already live` : ''}${o.lineFix === false ? '' : ' (+ #line fix)'}`,
      async () => {
        if (on.length) applyPatches(on, base.tree, overlayOrig, o.lineFix !== false);
        return applyPatches([...on, ...o.patches], base.tree, overlay, o.lineFix !== false);
      },
    );
    for (const f of applied.ignored) o.onWarning?.(`${f}: not part of the hypervisor; ignored`);
    // With --on, only the files the new patches touch make PATCHED differ from ORIG.
    const fixFiles = on.length
      ? new Set(
          o.patches
            .flatMap((p) => parseUnifiedDiff(readFileSync(p, 'utf8'), p))
            .map((fp) => fp.newPath ?? '')
            .filter((x) => x.startsWith('xen/'))
            .map((x) => normalize(x).slice(4)),
        )
      : null;
    const changed = applied.files.map((f) => f.xenPath).filter((x) => !fixFiles || fixFiles.has(x));
    const affected = affectedObjects(getRecords(), changed);
    const skipped: PatchResult['skipped'] = [];
    const toBuild = affected.filter((r) => {
      if (r.object.startsWith('arch/x86/boot/')) {
        skipped.push({
          object: r.object,
          why: '32-bit boot code, linked into the image as a blob and run once at boot; not live-patchable',
        });
        return false;
      }
      if (r.source.endsWith('.c')) return true;
      skipped.push({ object: r.object, why: `built from ${r.source} (assembly); it includes a changed header but cannot be live-patched` });
      return false;
    });
    if (toBuild.length === 0 && !o.make && !changed.some((c) => c.endsWith('.c') && existsSync(join(xenDir, c.replace(/\.c$/, '.o'))))) {
      throw new RefusedError(
        'PATCH_NO_OBJECT',
        `no C object of the base compiles or includes ${changed.join(', ')}${skipped.length ? ` (only assembly: ${skipped.map((s) => s.object).join(', ')})` : ''}: nothing to live-patch in this configuration`,
      );
    }
    // Patched C files no record knows (no `.o.cmd` beside their object): only make can build them.
    const unknown = changed.filter((c) => c.endsWith('.c') && !affected.some((r) => r.source === c || r.deps.includes(c)));
    const viaMake = o.make === true || unknown.some((c) => existsSync(join(xenDir, c.replace(/\.c$/, '.o'))));
    const env = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}` };
    const objects: PatchObject[] = [];
    const orig: { path: string; bytes: Uint8Array }[] = [];
    const patched: { path: string; bytes: Uint8Array }[] = [];
    const take = async (
      object: string,
      source: string,
      deps: readonly string[],
      file: string,
      t0: number,
      via: 'command' | 'make',
    ): Promise<void> => {
      const rec = on.length ? getRecords().get(object) : undefined;
      const a = readObject(
        rec ? await recompileObject(rec, { xenDir, overlay: overlayOrig, outDir: join(scratch, 'orig'), env }) : join(xenDir, object),
      );
      const b = readObject(file);
      const differs = Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0;
      objects.push({
        object,
        source,
        seconds: (Date.now() - t0) / 1000,
        changed: differs,
        via,
        because: changed.filter((c) => c === source || deps.includes(c)),
      });
      if (differs) {
        orig.push({ path: object, bytes: a });
        patched.push({ path: object, bytes: b });
      }
    };
    if (viaMake) {
      if (!o.make) progress.say(`no recorded command for ${unknown.join(', ')}: building with make instead`);
      const t0 = Date.now();
      const made = await makePatchedTree(base, overlay, changed, scratch, o.jobs ?? availableParallelism(), progress);
      const extra = unknown
        .map((c) => ({ object: c.replace(/\.c$/, '.o'), source: c, deps: [] as string[] }))
        .filter((x) => existsSync(join(xenDir, x.object)));
      for (const r of [...toBuild, ...extra]) await take(r.object, r.source, r.deps, join(made, r.object), t0, 'make');
    } else {
      await progress.step(
        `recompile ${toBuild.length} object${toBuild.length > 1 ? 's' : ''} from their recorded commands`,
        async () => {
          for (const rec of toBuild) {
            const t0 = Date.now();
            const file = await recompileObject(rec, { xenDir, overlay, outDir: join(scratch, 'patched'), env });
            await take(rec.object, rec.source, rec.deps, file, t0, 'command');
          }
        },
        () => `${objects.length}/${toBuild.length}`,
      );
    }
    progress.say(
      `${patched.length} of ${objects.length} recompiled objects differ from the base: ${patched.map((p) => p.path).join(', ') || 'none'}`,
    );
    const result: PatchResult = {
      base: { buildId: base.buildId, source: base.source, cached: base.cached, tree: base.tree },
      files: applied.files,
      ignored: applied.ignored,
      objects,
      skipped,
      scratch: o.keepScratch ? scratch : undefined,
    };
    if (patched.length === 0) {
      throw new RefusedError(
        'PATCH_NO_CODE_CHANGE',
        `the patches change no object code (${objects.map((x) => x.object).join(', ')} recompile identical to the base): comments, whitespace, or code compiled out in this configuration`,
      );
    }
    const { diffPayload } = await import('../diff/index.js');
    const name =
      o.name ??
      basename(o.patches[0]!)
        .replace(/\.(patch|diff)$/, '')
        .replace(/[^A-Za-z0-9_]/g, '_')
        .slice(0, 40);
    const r = await progress.step('diff, build and verify', () =>
      diffPayload({
        orig,
        patched,
        xen: target,
        out: o.out,
        patchName: name,
        ...(o.depends ? { depends: o.depends } : {}),
        toolVersion: o.toolVersion,
        onWarning: o.onWarning,
      }),
    );
    if (o.explainDrift !== false) {
      await progress.step(
        'map changed functions through the hunks (-g recompile)',
        () => explainDrift(r.diff, applied.touched, getRecords(), { xenDir, scratch, env, ...(on.length ? { overlay: overlayOrig } : {}) }),
        () => '',
      );
    }
    result.diff = r.diff;
    result.verify = r.verify;
    result.file = r.file;
    result.buildId = r.build.buildId;
    progress.say(r.file ? `payload written: ${r.file}` : 'payload verified (not written: no -o)');
    return result;
  } finally {
    if (!o.keepScratch) rmSync(scratch, { recursive: true, force: true });
  }
}
