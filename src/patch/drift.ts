/**
 * Code-generation drift (diff.md §3.2 rule 4): a function whose bytes changed although none of its
 * source lines did (measured: `p2m_change_altp2m_gfn` on XSA-480). It stays in the payload; only
 * its explanation changes. The function's source lines come from a `-g` recompile of ORIG's object
 * (gcc's code does not depend on -g), read with `objdump -dl`, which also names the lines of every
 * function inlined into it; they are mapped through the lines the patch's hunks remove or insert
 * next to. A function is called drift only when its lines are known and no touched line lies in
 * the span of any file's lines (so an insertion between two lines without code still counts).
 */
import { existsSync } from 'node:fs';
import { join, normalize } from 'node:path';
import type { Hunk } from './unified-diff.js';
import { runProgram } from './exec.js';

/**
 * Old-file line numbers (1-based) a hunk found at 0-based `at` removes, or inserts between (both
 * neighbours of an insertion count: a line added at the top or bottom of a function touches it).
 */
export function touchedOldLines(h: Hunk, at: number): number[] {
  const out: number[] = [];
  let oldNo = at + 1;
  for (const l of h.lines) {
    if (l.kind === ' ') oldNo++;
    else if (l.kind === '-') out.push(oldNo++);
    else out.push(oldNo - 1, oldNo);
  }
  return [...new Set(out)].filter((n) => n > 0).sort((a, b) => a - b);
}

/** `file:line` pairs of `objdump -dl --disassemble=SYM` output, the file relative to xen/ when it lies there. */
export function parseObjdumpLines(text: string, xenDir: string): { file: string; line: number }[] {
  const out: { file: string; line: number }[] = [];
  const seen = new Set<string>();
  const prefix = normalize(xenDir).replace(/\/$/, '') + '/';
  for (const raw of text.split('\n')) {
    const m = /^(\S+):(\d+)(?: \(discriminator \d+\))?$/.exec(raw.trimEnd());
    if (!m) continue;
    let file = normalize(m[1]!);
    if (file.startsWith(prefix)) file = file.slice(prefix.length);
    file = file.replace(/^(\.\/)+/, '');
    // Xen's own -ffile-prefix-map leaves paths relative to the tree's root (`xen/common/…`).
    if (file.startsWith('xen/') && !existsSync(join(xenDir, file)) && existsSync(join(xenDir, file.slice(4)))) file = file.slice(4);
    const key = `${file}:${m[2]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ file, line: Number(m[2]) });
  }
  return out;
}

/** The source lines of `symbol` in a `-g` object (empty when objdump knows none). */
export async function functionLines(
  object: string,
  symbol: string,
  xenDir: string,
  env?: NodeJS.ProcessEnv,
): Promise<{ file: string; line: number }[]> {
  const r = await runProgram('objdump', ['-dl', '--no-show-raw-insn', `--disassemble=${symbol}`, object], { env });
  if (r.code !== 0) return [];
  return parseObjdumpLines(r.stdout, xenDir);
}

export type DriftVerdict =
  | { drift: true; lines: { file: string; first: number; last: number }[] }
  | { drift: false; why: 'touched' | 'unknown'; line?: { file: string; line: number } };

/**
 * `touched`: per file relative to xen/, the old lines the patches touch, or null when they cannot be
 * told (a file patched by more than one patch file: later hunks are numbered against earlier ones).
 */
export function classifyDrift(
  lines: readonly { file: string; line: number }[],
  touched: ReadonlyMap<string, ReadonlySet<number> | null>,
): DriftVerdict {
  if (lines.length === 0) return { drift: false, why: 'unknown' };
  // Per file, the span from the first to the last line with code: an insertion between two lines
  // without code (blank, comment, brace) still lies inside it.
  const ranges = new Map<string, { file: string; first: number; last: number }>();
  for (const l of lines) {
    const r = ranges.get(l.file);
    if (!r) ranges.set(l.file, { file: l.file, first: l.line, last: l.line });
    else {
      r.first = Math.min(r.first, l.line);
      r.last = Math.max(r.last, l.line);
    }
  }
  for (const r of ranges.values()) {
    if (!touched.has(r.file)) continue;
    const t = touched.get(r.file);
    if (t === null || t === undefined) return { drift: false, why: 'unknown', line: { file: r.file, line: r.first } };
    for (const n of t) if (n >= r.first && n <= r.last) return { drift: false, why: 'touched', line: { file: r.file, line: n } };
  }
  return { drift: true, lines: [...ranges.values()] };
}
