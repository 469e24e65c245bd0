/**
 * When the base's xen-syms is not the running hypervisor's: say what differs and the likely cause.
 * Three looks, cheapest first: the sections of the two images (size, then bytes), the compiler
 * banners they embed, and, per object of the base tree, its functions' sizes against XEN's symbol
 * table, which points at the objects whose code differs (and their recorded flags that the rest of
 * the tree does not share).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { STB, STT } from '../elf/constants.js';
import { readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import type { Target } from '../payload/target.js';
import { splitWords, type ObjectRecord } from './cmdfile.js';

export interface SectionDifference {
  name: string;
  base?: number;
  xen?: number;
  /** 'size', 'bytes', 'only-in-base', 'only-in-xen'. */
  kind: string;
}

export interface ObjectDifference {
  object: string;
  /** Functions whose size differs from XEN's, e.g. `do_xen_version 0x3a0 (XEN 0x3c0)`. */
  functions: string[];
  /** Flags of its recorded command that most other objects in the same directory do not have. */
  unusualFlags: string[];
}

export interface Mismatch {
  sections: SectionDifference[];
  compiler?: { base: string[]; xen: string[] };
  objects: ObjectDifference[];
  causes: string[];
}

function loadElf(path: string): ElfFile {
  const b = readFileSync(path);
  return readElf(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
}

function strings(data: Uint8Array, re: RegExp): string[] {
  const out = new Set<string>();
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  for (const s of text.split('\0')) if (re.test(s)) out.add(s);
  return [...out].sort();
}

const BANNER = /^(GCC: |[\w.-]*gcc \(|clang version )/;

function banners(elf: ElfFile): string[] {
  const out = new Set<string>();
  for (const s of elf.sections) {
    if (s.index === 0 || s.type === 8 /* NOBITS */ || s.size === 0n) continue;
    if (s.name === '.comment' || s.name.startsWith('.rodata')) {
      try {
        for (const b of strings(s.data(), BANNER)) out.add(b);
      } catch {
        /* unreadable section: nothing to add */
      }
    }
  }
  return [...out].sort();
}

export function compareSections(base: ElfFile, xen: ElfFile): SectionDifference[] {
  const diffs: SectionDifference[] = [];
  const xs = new Map(xen.sections.filter((s) => s.index > 0).map((s) => [s.name, s]));
  const seen = new Set<string>();
  for (const s of base.sections) {
    if (s.index === 0) continue;
    seen.add(s.name);
    const x = xs.get(s.name);
    if (!x) {
      diffs.push({ name: s.name, base: Number(s.size), kind: 'only-in-base' });
      continue;
    }
    if (s.size !== x.size) diffs.push({ name: s.name, base: Number(s.size), xen: Number(x.size), kind: 'size' });
    else if (s.type !== 8 && s.name !== '.note.gnu.build-id') {
      const a = s.data();
      const b = x.data();
      if (Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) !== 0) {
        diffs.push({ name: s.name, base: Number(s.size), xen: Number(x.size), kind: 'bytes' });
      }
    }
  }
  for (const [name, x] of xs) if (!seen.has(name)) diffs.push({ name, xen: Number(x.size), kind: 'only-in-xen' });
  return diffs;
}

/** Per object: functions whose size differs from XEN's symbol of the same Xen name. */
export function compareObjects(
  xenDir: string,
  records: Map<string, ObjectRecord>,
  target: Target,
  baseTarget: Target | undefined,
  limit = 12,
): ObjectDifference[] {
  if (!target.symbols) return [];
  const out: ObjectDifference[] = [];
  const flagsByDir = new Map<string, Map<string, number>>();
  const flagsOf = (rec: ObjectRecord): string[] => {
    try {
      return splitWords(rec.command).filter(
        (w) => w.startsWith('-') && !w.startsWith('-D__OBJECT_LABEL__') && !w.startsWith('-MF') && !w.startsWith('-MQ'),
      );
    } catch {
      return [];
    }
  };
  for (const rec of records.values()) {
    const dir = rec.object.replace(/\/[^/]*$/, '');
    let m = flagsByDir.get(dir);
    if (!m) flagsByDir.set(dir, (m = new Map()));
    for (const f of new Set(flagsOf(rec))) m.set(f, (m.get(f) ?? 0) + 1);
  }
  for (const rec of records.values()) {
    if (!rec.source.endsWith('.c')) continue;
    let elf: ElfFile;
    try {
      elf = loadElf(join(xenDir, rec.object));
    } catch {
      continue;
    }
    const fns: string[] = [];
    let file = '';
    for (const s of elf.symbols()) {
      if (s.type === STT.FILE) file = s.name;
      if (s.type !== STT.FUNC || s.shndx === 0 || s.name === '') continue;
      const name = s.bind === STB.LOCAL ? `${file}#${s.name}` : s.name;
      const hits = target.symbols.find(name);
      if (hits.length !== 1) continue;
      // Only where the base linked this object's definition (lib/ fall-backs lose to arch versions).
      const own = baseTarget?.symbols?.find(name);
      if (baseTarget && (own?.length !== 1 || own[0]!.size !== s.size)) continue;
      if (hits[0]!.size !== s.size) fns.push(`${name} 0x${s.size.toString(16)} (XEN 0x${hits[0]!.size.toString(16)})`);
    }
    if (fns.length === 0) continue;
    const dir = rec.object.replace(/\/[^/]*$/, '');
    const counts = flagsByDir.get(dir)!;
    const peers = [...records.values()].filter((r) => r.object.replace(/\/[^/]*$/, '') === dir).length;
    const unusual = peers > 2 ? [...new Set(flagsOf(rec))].filter((f) => (counts.get(f) ?? 0) <= peers / 4) : [];
    out.push({ object: rec.object, functions: fns.slice(0, 5), unusualFlags: unusual });
    if (out.length >= limit) break;
  }
  return out;
}

/** Everything that explains a build-id mismatch between the base's xen-syms and XEN. */
export function explainMismatch(
  baseSyms: string,
  xenDir: string,
  records: Map<string, ObjectRecord>,
  target: Target,
  baseTarget?: Target,
): Mismatch {
  const base = loadElf(baseSyms);
  const causes: string[] = [];
  let sections: SectionDifference[] = [];
  let compiler: Mismatch['compiler'];
  if (target.elf) {
    sections = compareSections(base, target.elf);
    const b = banners(base);
    const x = banners(target.elf);
    if (b.join('\n') !== x.join('\n')) {
      compiler = { base: b, xen: x };
      causes.push(`a different compiler: the base was built by ${b[0] ?? '?'}, XEN by ${x[0] ?? '?'}`);
    }
  }
  const objects = compareObjects(xenDir, records, target, baseTarget);
  const flagged = objects.filter((o) => o.unusualFlags.length > 0);
  if (flagged.length)
    causes.push(`compiler flags: ${flagged.map((o) => `${o.object} was built with ${o.unusualFlags.join(' ')}`).join('; ')}`);
  else if (objects.length)
    causes.push(`code generation differs in ${objects.map((o) => o.object).join(', ')} (compiler flags, configuration or source)`);
  const text = sections.filter((s) => /^\.text|^\.init\.text/.test(s.name));
  if (!objects.length && text.length && !compiler) causes.push('the code differs: configuration (.config) or source version');
  if (!causes.length && sections.length) {
    causes.push(
      `only ${sections.map((s) => s.name).join(', ')} differ: embedded strings (build date, version, compiler banner, build path)`,
    );
  }
  if (!causes.length) causes.push('the build-id note alone differs (was XEN linked with another --build-id style?)');
  return { sections, compiler, objects, causes };
}

export function formatMismatch(m: Mismatch): string {
  const lines: string[] = [];
  if (m.sections.length) {
    lines.push(
      `sections that differ: ${m.sections
        .slice(0, 12)
        .map((s) =>
          s.kind === 'size'
            ? `${s.name} (size 0x${s.base!.toString(16)} in the base, 0x${s.xen!.toString(16)} in XEN)`
            : `${s.name} (${s.kind})`,
        )
        .join(', ')}`,
    );
  }
  for (const o of m.objects.slice(0, 5))
    lines.push(`${o.object}: ${o.functions.join(', ')}${o.unusualFlags.length ? `; flags: ${o.unusualFlags.join(' ')}` : ''}`);
  lines.push(`likely cause: ${m.causes.join('; ')}`);
  return lines.join('\n');
}
