/**
 * Neutralising line churn the klp-build way (diff.md §3.2, klp scripts/livepatch/fix-patch-lines):
 * after each group of changed lines, a `#line <old number>` directive puts the rest of the file
 * back on its old numbering, so `__LINE__` (bug frames, `domain_crash`) and code generation of the
 * untouched functions stay as in the base. A directive is only placed at the start of a line that
 * is not inside a comment, a string or a macro continuation; a place that is not safe is skipped
 * and the next one corrects the accumulated shift.
 */
import { parseUnifiedDiff, type LineMark } from './unified-diff.js';

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

export interface PatchLineFix {
  /** The rewritten patch. */
  text: string;
  /** Directives inserted: file (new path), and the old line number each names. */
  inserted: { file: string; oldLine: number }[];
  /** Places skipped because the hunk shows them inside a comment, string or continued line. */
  skipped: number;
}

/**
 * `xsplice linefix` (diff.md §8.7): the same `#line` fix on the patch text itself, klp-build's
 * fix-patch-lines: in each hunk of a C file, before the context line that follows a group of
 * changed lines, `+#line <its old number>` when the lines shift there; hunk headers recounted.
 * Everything else of the patch (mail headers, other files) is kept byte for byte. Only what the
 * hunks show is known: a place inside a comment that opened before the hunk is not seen (the
 * `patch` command, which reads the whole file, is the reference).
 */
export function fixPatchLines(text: string, from: string): PatchLineFix {
  parseUnifiedDiff(text, from); // validates (malformed or truncated hunks are refused, naming the hunk)
  const lines = text.split('\n');
  const out: string[] = [];
  const inserted: PatchLineFix['inserted'] = [];
  let skipped = 0;
  let file = '';
  let isC = false;
  let extra = 0; // directives inserted in earlier hunks of this file
  let delta = 0; // net lines added since the last directive (carried across hunks)
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      file = lines[i + 1]!.slice(4)
        .split('\t')[0]!
        .trim()
        .replace(/^[^/]*\//, '');
      isC = /\.[ch]$/.test(file);
      extra = 0;
      delta = 0;
      out.push(line, lines[i + 1]!);
      i += 2;
      continue;
    }
    const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$/.exec(line);
    if (!m || !file) {
      out.push(line);
      i++;
      continue;
    }
    const oldStart = Number(m[1]);
    const oldCount = m[2] === undefined ? 1 : Number(m[2]);
    const newStart = Number(m[3]);
    const newCount = m[4] === undefined ? 1 : Number(m[4]);
    i++;
    const body: string[] = [];
    let oldLeft = oldCount;
    let newLeft = newCount;
    while (i < lines.length && (oldLeft > 0 || newLeft > 0 || lines[i]!.startsWith('\\'))) {
      const l = lines[i]!;
      if (!l.startsWith('\\')) {
        const k = l === '' ? ' ' : l[0];
        if (k !== '+') oldLeft--;
        if (k !== '-') newLeft--;
      }
      body.push(l);
      i++;
    }
    // Safety of a line start, from what the hunk shows of the new file (context and added lines).
    const shown = body.filter((l) => !l.startsWith('-') && !l.startsWith('\\')).map((l) => l.slice(1));
    const unsafe = unsafeLineStarts(shown);
    const nb: string[] = [];
    let added = 0;
    let oldNo = oldCount === 0 ? oldStart + 1 : oldStart;
    let changed = false;
    let shownIdx = 0;
    for (const l of body) {
      const k = l.startsWith('\\') ? '\\' : l === '' ? ' ' : l[0];
      if (k === ' ') {
        if (isC && changed && delta !== 0) {
          if (unsafe[shownIdx]) skipped++;
          else {
            nb.push(`+#line ${oldNo}`);
            inserted.push({ file, oldLine: oldNo });
            added++;
            delta = 0;
          }
        }
        changed = false;
        oldNo++;
        shownIdx++;
      } else if (k === '-') {
        oldNo++;
        delta--;
        changed = true;
      } else if (k === '+') {
        delta++;
        changed = true;
        shownIdx++;
      }
      nb.push(l);
    }
    const ns = newCount === 0 && newStart === 0 ? 0 : newStart + extra;
    out.push(`@@ -${m[1]}${m[2] === undefined ? '' : `,${m[2]}`} +${ns},${newCount + added} @@${m[5]}`);
    out.push(...nb);
    extra += added;
  }
  return { text: out.join('\n'), inserted, skipped };
}

/**
 * `#line` directives from each line's origin (its number in the base file; null for added lines):
 * before every line whose origin is known but is not the number the compiler would give it, at the
 * first place that is safe. Patches applied one after another compose: the origins still name
 * the base's lines, so the rest of the file stays on the base's numbering.
 */
export function directivesFromOrigin(lines: readonly string[], origin: readonly (number | null)[]): LineFixResult {
  const unsafe = unsafeLineStarts(lines);
  const out: string[] = [];
  const inserted: { at: number; oldLine: number }[] = [];
  let skipped = 0;
  let cur = 1;
  for (let n = 0; n < lines.length; n++) {
    const b = origin[n] ?? null;
    if (b !== null && b !== cur) {
      if (unsafe[n]) skipped++;
      else {
        inserted.push({ at: out.length, oldLine: b });
        out.push(`#line ${b}`);
        cur = b;
      }
    }
    out.push(lines[n]!);
    cur++;
  }
  return { lines: out, inserted, skipped };
}

/** Base lines a chain of patches touched: those gone, and both neighbours of every run of added lines. */
export function touchedFromOrigin(origin: readonly (number | null)[], baseLength: number): Set<number> {
  const t = new Set<number>();
  const present = new Set<number>();
  for (const o of origin) if (o !== null) present.add(o);
  for (let b = 1; b <= baseLength; b++) if (!present.has(b)) t.add(b);
  let prev: number | null = 0;
  for (let n = 0; n < origin.length; n++) {
    const o = origin[n]!;
    if (o === null) {
      if (prev !== null && prev > 0) t.add(prev);
      let k = n;
      while (k < origin.length && origin[k] === null) k++;
      const next = k < origin.length ? origin[k]! : null;
      if (next !== null) t.add(next);
      n = k - 1;
      prev = null;
      continue;
    }
    prev = o;
  }
  return t;
}
