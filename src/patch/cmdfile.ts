/**
 * Xen 4.17's build records, for every object, the command that compiled it and every file it
 * depended on in `dir/.name.o.cmd` (a make fragment written by fixdep):
 *
 *   cmd_common/kernel.o := x86_64-linux-gnu-gcc … -c common/kernel.c -o common/.kernel.o.tmp -MQ common/kernel.o
 *   source_common/kernel.o := common/kernel.c
 *   deps_common/kernel.o := \
 *     $(wildcard include/config/….h) \
 *     include/xen/config.h \
 *   …
 *
 * Paths are relative to the hypervisor directory (`xen/`), where the commands run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { FormatError } from '../errors.js';

export interface ObjectRecord {
  /** The object, relative to xen/ (e.g. `common/kernel.o`). */
  object: string;
  /** The recorded command, as make records it (after `$$` → `$`). */
  command: string;
  /** The main source (`common/kernel.c`), normalised, relative to xen/. */
  source: string;
  /** Every file it depended on (normalised, relative to xen/; `$(wildcard …)` entries left out). */
  deps: string[];
  /** The .cmd file. */
  cmdFile: string;
}

/** Splits a recorded command into words (POSIX shell quoting); refuses shell syntax beyond quoting. */
export function splitWords(cmd: string, file = ''): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (c === "'") {
      const end = cmd.indexOf("'", i + 1);
      if (end < 0) throw new FormatError('PATCH_CMD_SYNTAX', 'unterminated single quote in a recorded command', { file });
      cur += cmd.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < cmd.length && cmd[j] !== '"'; j++) {
        if (cmd[j] === '\\' && j + 1 < cmd.length && '"\\$`'.includes(cmd[j + 1]!)) j++;
        else if (cmd[j] === '$' || cmd[j] === '`')
          throw new FormatError('PATCH_CMD_SYNTAX', 'shell expansion in a recorded command', { file });
        cur += cmd[j];
      }
      if (j >= cmd.length) throw new FormatError('PATCH_CMD_SYNTAX', 'unterminated double quote in a recorded command', { file });
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < cmd.length) {
      cur += cmd[++i];
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else if (';|&<>`$()'.includes(c)) {
      throw new FormatError('PATCH_CMD_SYNTAX', `shell syntax ${JSON.stringify(c)} in a recorded command`, { file });
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** Parses one `.<obj>.cmd` file (make's `$$` unescaped). */
export function parseCmdFile(text: string, cmdFile: string): ObjectRecord | undefined {
  const cmd = /^cmd_(\S+) := (.*)$/m.exec(text);
  if (!cmd) return undefined;
  const object = cmd[1]!;
  const src = new RegExp(`^source_${object.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} := (.*)$`, 'm').exec(text);
  const depsStart = text.indexOf(`deps_${object} := `);
  const deps: string[] = [];
  if (depsStart >= 0) {
    const lines = text.slice(depsStart).split('\n');
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '') break;
      const dep = line.replace(/\\$/, '').trim();
      if (dep === '' || dep.startsWith('$(wildcard')) continue;
      deps.push(normalize(dep));
    }
  }
  const source = src ? normalize(src[1]!.trim()) : '';
  return { object, command: cmd[2]!.replace(/\$\$/g, '$'), source, deps, cmdFile };
}

/** Every object record under `xenDir` (the hypervisor objects, not tools/ helpers). */
export function readObjectRecords(xenDir: string): Map<string, ObjectRecord> {
  const out = new Map<string, ObjectRecord>();
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(xenDir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (rel === '' && e.name === 'tools') continue; // kconfig and other host helpers
        walk(r);
      } else if (e.name.startsWith('.') && e.name.endsWith('.o.cmd')) {
        const file = join(xenDir, r);
        const rec = parseCmdFile(readFileSync(file, 'utf8'), file);
        if (rec && rec.source) out.set(rec.object, rec);
      }
    }
  };
  walk('');
  return out;
}

/** The C objects a changed file affects: those compiled from it or depending on it. */
export function affectedObjects(records: Map<string, ObjectRecord>, changed: readonly string[]): ObjectRecord[] {
  const want = new Set(changed.map((f) => normalize(f)));
  const hit: ObjectRecord[] = [];
  for (const rec of records.values()) {
    if (want.has(rec.source) || rec.deps.some((d) => want.has(d))) hit.push(rec);
  }
  return hit.sort((a, b) => (a.object < b.object ? -1 : a.object > b.object ? 1 : 0));
}
