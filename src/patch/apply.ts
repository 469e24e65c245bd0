/**
 * Stage "patch": the FIX.patch files applied to scratch copies of the files they touch (never to
 * the base tree), with the `#line` fix after each hunk of a C file unless turned off. What the
 * patches touch is classified here: C sources and headers go on; assembly, build files and files
 * outside the hypervisor are refused or set aside with the reason.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { RefusedError } from '../errors.js';
import { directivesFromOrigin, touchedFromOrigin } from './linefix.js';
import { applyHunks, fromLines, parseUnifiedDiff, toLines, type FilePatch } from './unified-diff.js';

export interface PatchedFile {
  /** Relative to the source tree root (`xen/common/kernel.c`). */
  path: string;
  /** Relative to xen/ (`common/kernel.c`). */
  xenPath: string;
  hunks: number;
  /** `#line` directives inserted (0 with the fix off). */
  lineDirectives: number;
  /** Hunks found away from where their header said (line offset). */
  offsets: number[];
}

export interface ApplyOutcome {
  files: PatchedFile[];
  /** Files outside xen/ that the patches touch (tools, docs): not part of the hypervisor. */
  ignored: string[];
  /**
   * Per file relative to xen/: the base's lines the hunks remove or insert next to (drift.ts), over
   * every patch applied to it.
   */
  touched: Map<string, Set<number> | null>;
}

const C_FILE = /\.(c|h)$/;
const ASM_FILE = /\.(S|s|inc)$/;

/** Parses, classifies and applies the patches to copies under `overlay` (a mirror of xen/). */
export function applyPatches(patchFiles: readonly string[], tree: string, overlay: string, lineFix: boolean): ApplyOutcome {
  const entries: FilePatch[] = [];
  for (const f of patchFiles) entries.push(...parseUnifiedDiff(readFileSync(f, 'utf8'), f));
  const ignored = new Set<string>();
  const state = new Map<string, { lines: string[]; noEol: boolean; info: PatchedFile; origin: (number | null)[]; baseLength: number }>();
  const touched = new Map<string, Set<number> | null>();
  for (const fp of entries) {
    const path = normalize(fp.newPath ?? fp.oldPath ?? '');
    if (fp.newPath === null)
      throw new RefusedError('PATCH_REMOVES_FILE', `${fp.oldPath}: the patch deletes this file; a live patch cannot remove an object`, {
        file: fp.from,
      });
    if (path.startsWith('..') || path.startsWith('/'))
      throw new RefusedError('PATCH_BAD_PATH', `${path}: outside the source tree`, { file: fp.from });
    if (!path.startsWith('xen/')) {
      ignored.add(path);
      continue;
    }
    const xenPath = path.slice(4);
    if (ASM_FILE.test(path)) {
      throw new RefusedError(
        'PATCH_ASSEMBLY',
        `${path}: the patch changes assembly; a live patch replaces C functions, and assembly (entry points, stubs) cannot be live-patched`,
        { file: fp.from },
      );
    }
    if (!C_FILE.test(path)) {
      throw new RefusedError(
        'PATCH_BUILD_FILES',
        `${path}: the patch changes a build or configuration file, not C code; such a change needs a rebuilt hypervisor, not a live patch`,
        { file: fp.from },
      );
    }
    let st = state.get(path);
    if (!st) {
      const orig = join(tree, path);
      if (fp.oldPath === null) {
        if (existsSync(orig))
          throw new RefusedError('PATCH_HUNK_FAILED', `${path}: the patch creates this file, but it exists in the base`, { file: fp.from });
        st = { lines: [], noEol: false, info: { path, xenPath, hunks: 0, lineDirectives: 0, offsets: [] }, origin: [], baseLength: 0 };
      } else {
        if (!existsSync(orig))
          throw new RefusedError('PATCH_HUNK_FAILED', `${path}: no such file in the base tree ${tree}`, { file: fp.from });
        const { lines, noEol } = toLines(readFileSync(orig, 'utf8'));
        st = {
          lines,
          noEol,
          info: { path, xenPath, hunks: 0, lineDirectives: 0, offsets: [] },
          origin: lines.map((_, k) => k + 1),
          baseLength: lines.length,
        };
      }
      state.set(path, st);
    }
    // Hunks apply to the text without directives; the directives are placed once per file at the
    // end, from each line's origin in the base, so patches applied one after another compose.
    const r = applyHunks(st.lines, st.noEol, fp, st.origin);
    st.lines = r.lines;
    st.origin = r.origin;
    st.noEol = r.noEol;
    st.info.hunks += r.applied.length;
    for (const a of r.applied) if (a.offset !== 0) st.info.offsets.push(a.offset);
  }
  for (const st of state.values()) {
    const { noEol, info } = st;
    let lines = st.lines;
    touched.set(info.xenPath, touchedFromOrigin(st.origin, st.baseLength));
    if (lineFix) {
      const fixed = directivesFromOrigin(st.lines, st.origin);
      lines = fixed.lines;
      info.lineDirectives = fixed.inserted.length;
    }
    const dest = join(overlay, info.xenPath);
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, fromLines(lines, noEol));
  }
  const files = [...state.values()].map((s) => s.info);
  if (files.length === 0) {
    throw new RefusedError(
      'PATCH_NOT_HYPERVISOR',
      `the patches touch no hypervisor file (only ${[...ignored].slice(0, 5).join(', ')}${ignored.size > 5 ? ', …' : ''}); paths are relative to the Xen tree's root (xen/…)`,
    );
  }
  return { files, ignored: [...ignored].sort(), touched };
}
