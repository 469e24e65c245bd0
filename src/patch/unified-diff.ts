/**
 * Unified diffs as `patch -p1` reads them (plain `diff -u`, `git diff`, `git format-patch` mails):
 * parsed into files and hunks, applied to file contents with an offset search (no fuzz), and the
 * failing hunk named when one does not apply.
 */
import { FormatError, RefusedError } from '../errors.js';

export interface HunkLine {
  kind: ' ' | '+' | '-';
  text: string;
}

export interface Hunk {
  /** The `@@ -a,b +c,d @@ …` line as written. */
  header: string;
  /** 1-based index among the file's hunks. */
  index: number;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: HunkLine[];
  /** The last old / new line lacks a final newline (`\ No newline at end of file`). */
  oldNoEol: boolean;
  newNoEol: boolean;
}

export interface FilePatch {
  /** Path with the first component stripped (`-p1`); null for /dev/null. */
  oldPath: string | null;
  newPath: string | null;
  hunks: Hunk[];
  /** Patch file the entry came from (for messages). */
  from: string;
}

function stripP1(raw: string): string | null {
  const p = raw
    .split('\t')[0]!
    .trim()
    .replace(/^"(.*)"$/, '$1');
  if (p === '/dev/null') return null;
  const slash = p.indexOf('/');
  return slash < 0 ? p : p.slice(slash + 1);
}

/** Parses every file of a unified diff. */
export function parseUnifiedDiff(text: string, from: string): FilePatch[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const files: FilePatch[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith('--- ') && i + 1 < lines.length && lines[i + 1]!.startsWith('+++ ')) {
      const fp: FilePatch = { oldPath: stripP1(line.slice(4)), newPath: stripP1(lines[i + 1]!.slice(4)), hunks: [], from };
      i += 2;
      while (i < lines.length && lines[i]!.startsWith('@@')) {
        const header = lines[i]!;
        const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(header);
        if (!m) throw new FormatError('PATCH_BAD_DIFF', `malformed hunk header ${JSON.stringify(header)}`, { file: from });
        const h: Hunk = {
          header,
          index: fp.hunks.length + 1,
          oldStart: Number(m[1]),
          oldLines: m[2] === undefined ? 1 : Number(m[2]),
          newStart: Number(m[3]),
          newLines: m[4] === undefined ? 1 : Number(m[4]),
          lines: [],
          oldNoEol: false,
          newNoEol: false,
        };
        i++;
        let oldLeft = h.oldLines;
        let newLeft = h.newLines;
        while (i < lines.length && (oldLeft > 0 || newLeft > 0 || lines[i]!.startsWith('\\'))) {
          const l = lines[i]!;
          if (l.startsWith('\\')) {
            const prev = h.lines[h.lines.length - 1];
            if (prev?.kind !== '+') h.oldNoEol = true;
            if (prev?.kind !== '-') h.newNoEol = true;
            i++;
            continue;
          }
          const kind = (l === '' ? ' ' : l[0]) as HunkLine['kind'];
          if (kind !== ' ' && kind !== '+' && kind !== '-') break;
          if (kind !== '+') oldLeft--;
          if (kind !== '-') newLeft--;
          h.lines.push({ kind, text: l.slice(1) });
          i++;
        }
        if (oldLeft !== 0 || newLeft !== 0) {
          throw new FormatError(
            'PATCH_BAD_DIFF',
            `${fp.newPath ?? fp.oldPath}: hunk #${h.index} (${header}) is truncated: its line counts do not match its body`,
            { file: from },
          );
        }
        fp.hunks.push(h);
      }
      files.push(fp);
      continue;
    }
    i++;
  }
  if (files.length === 0) throw new FormatError('PATCH_BAD_DIFF', 'no unified diff in this file (no ---/+++ pair)', { file: from });
  return files;
}

export interface AppliedHunk {
  hunk: Hunk;
  /** 0-based index in the old file where the hunk's old text was found. */
  at: number;
  /** Offset from where the header said. */
  offset: number;
}

/** A place after a group of changed lines where a `#line` directive can restore the old numbering. */
export interface LineMark {
  /** 0-based index in the new file of the context line that follows the group. */
  newIndex: number;
  /** 1-based line number of that context line in the old file. */
  oldLine: number;
  /** (new line number − old line number) of that context line, counting every change above it. */
  delta: number;
}

export interface ApplyResult {
  lines: string[];
  /** The new file ends without a newline. */
  noEol: boolean;
  applied: AppliedHunk[];
  marks: LineMark[];
  /** Per new line, its line number in the first file of the chain (`oldOrigin`, else the old file); null for added lines. */
  origin: (number | null)[];
}

function matchesAt(old: string[], at: number, want: string[]): boolean {
  if (at < 0 || at + want.length > old.length) return false;
  for (let k = 0; k < want.length; k++) if (old[at + k] !== want[k]) return false;
  return true;
}

/** Applies one file's hunks to its old contents (as lines); throws PATCH_HUNK_FAILED naming the hunk. */
export function applyHunks(oldLines: string[], oldNoEol: boolean, fp: FilePatch, oldOrigin?: readonly (number | null)[]): ApplyResult {
  const from = oldOrigin ?? oldLines.map((_, k) => k + 1);
  const origin: (number | null)[] = [];
  const name = fp.newPath ?? fp.oldPath ?? '?';
  const out: string[] = [];
  const applied: AppliedHunk[] = [];
  const marks: LineMark[] = [];
  let pos = 0; // next unconsumed old line
  let drift = 0; // offset found so far (patch(1) carries it to later hunks)
  let noEol = oldNoEol;
  for (const h of fp.hunks) {
    const want = h.lines.filter((l) => l.kind !== '+').map((l) => l.text);
    const expected = Math.max(0, (h.oldLines === 0 ? h.oldStart : h.oldStart - 1) + drift);
    let at = -1;
    for (let d = 0; at < 0 && d <= oldLines.length; d++) {
      if (expected + d >= pos && matchesAt(oldLines, expected + d, want)) at = expected + d;
      else if (d > 0 && expected - d >= pos && matchesAt(oldLines, expected - d, want)) at = expected - d;
      if (expected + d > oldLines.length && expected - d < pos) break;
    }
    if (at < 0) {
      let why = '';
      for (let k = 0; k < want.length; k++) {
        const got = oldLines[expected + k];
        if (got !== want[k]) {
          why = `: line ${expected + k + 1} is ${got === undefined ? 'past the end of the file' : JSON.stringify(got.slice(0, 80))}, the patch expects ${JSON.stringify(want[k]!.slice(0, 80))}`;
          break;
        }
      }
      throw new RefusedError('PATCH_HUNK_FAILED', `${name}: hunk #${h.index} (${h.header}) does not apply${why}`, { file: fp.from });
    }
    for (; pos < at; pos++) {
      out.push(oldLines[pos]!);
      origin.push(from[pos] ?? null);
    }
    let oldNo = at + 1;
    let changed = false;
    for (const l of h.lines) {
      if (l.kind === ' ') {
        if (changed) marks.push({ newIndex: out.length, oldLine: oldNo, delta: out.length + 1 - oldNo });
        changed = false;
        out.push(oldLines[pos]!);
        origin.push(from[pos] ?? null);
        pos++;
        oldNo++;
      } else if (l.kind === '-') {
        pos++;
        oldNo++;
        changed = true;
      } else {
        out.push(l.text);
        origin.push(null);
        changed = true;
      }
    }
    if (pos >= oldLines.length) noEol = h.newNoEol;
    applied.push({ hunk: h, at, offset: at - (h.oldStart - 1) });
    drift = at - (h.oldStart - 1);
  }
  for (; pos < oldLines.length; pos++) {
    out.push(oldLines[pos]!);
    origin.push(from[pos] ?? null);
  }
  // Marks after the last hunk only count if a later context line exists (they always do: newIndex < out.length).
  return { lines: out, noEol, applied, marks: marks.filter((m) => m.newIndex < out.length), origin };
}

/** Splits file text into lines (without newlines) and whether the last line lacked one. */
export function toLines(text: string): { lines: string[]; noEol: boolean } {
  if (text === '') return { lines: [], noEol: false };
  const noEol = !text.endsWith('\n');
  const lines = text.split('\n');
  if (!noEol) lines.pop();
  return { lines, noEol };
}

export function fromLines(lines: string[], noEol: boolean): string {
  return lines.join('\n') + (noEol || lines.length === 0 ? '' : '\n');
}
