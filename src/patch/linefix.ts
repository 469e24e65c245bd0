/**
 * Neutralising line churn the klp-build way (diff.md §3.2, klp scripts/livepatch/fix-patch-lines):
 * after each group of changed lines, a `#line <old number>` directive puts the rest of the file
 * back on its old numbering, so `__LINE__` (bug frames, `domain_crash`) and code generation of the
 * untouched functions stay as in the base. A directive is only placed at the start of a line that
 * is not inside a comment, a string or a macro continuation; a place that is not safe is skipped
 * and the next one corrects the accumulated shift.
 */
import type { LineMark } from './unified-diff.js';

/** For each line, whether it starts in the middle of a comment, string or continued line. */
export function unsafeLineStarts(lines: readonly string[]): boolean[] {
  const unsafe: boolean[] = new Array(lines.length).fill(false);
  let inComment = false;
  let continued = false;
  for (let n = 0; n < lines.length; n++) {
    unsafe[n] = inComment || continued;
    const s = lines[n]!;
    let inStr: string | null = null;
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (inComment) {
        if (c === '*' && s[i + 1] === '/') {
          inComment = false;
          i++;
        }
      } else if (inStr) {
        if (c === '\\') i++;
        else if (c === inStr) inStr = null;
      } else if (c === '/' && s[i + 1] === '*') {
        inComment = true;
        i++;
      } else if (c === '/' && s[i + 1] === '/') {
        break;
      } else if (c === '"' || c === "'") {
        inStr = c;
      }
    }
    continued = s.endsWith('\\');
  }
  return unsafe;
}

export interface LineFixResult {
  lines: string[];
  /** Directives inserted: [new line index where inserted, old line number]. */
  inserted: { at: number; oldLine: number }[];
  /** Places skipped because they were not safe. */
  skipped: number;
}

/** Inserts `#line` directives at the marks whose accumulated shift is not zero. */
export function insertLineDirectives(lines: readonly string[], marks: readonly LineMark[]): LineFixResult {
  const unsafe = unsafeLineStarts(lines);
  const out: string[] = [];
  const inserted: { at: number; oldLine: number }[] = [];
  let corrected = 0;
  let skipped = 0;
  let next = 0;
  const sorted = [...marks].sort((a, b) => a.newIndex - b.newIndex);
  for (let n = 0; n < lines.length; n++) {
    while (next < sorted.length && sorted[next]!.newIndex === n) {
      const m = sorted[next++]!;
      if (m.delta - corrected === 0) continue;
      if (unsafe[n]) {
        skipped++;
        continue;
      }
      inserted.push({ at: out.length, oldLine: m.oldLine });
      out.push(`#line ${m.oldLine}`);
      corrected = m.delta;
    }
    out.push(lines[n]!);
  }
  return { lines: out, inserted, skipped };
}
