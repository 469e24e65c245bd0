/**
 * Pairing objects (§1.1): two files, two directories of `*.o` matched by path, or objects in
 * memory. Identical bytes are skipped without parsing; an object only in ORIG is an error.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { UsageError } from '../errors.js';
import type { DiffObjectInput, DiffSide } from './types.js';

export interface ObjectPair {
  path: string;
  /** Where each side came from, for messages (single-file mode: the paths given). */
  origFile?: string;
  patchedFile?: string;
  orig?: Uint8Array;
  patched?: Uint8Array;
}

async function walk(root: string, rel: string, out: string[]): Promise<void> {
  const ents = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of ents) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) await walk(root, r, out);
    else if (e.isFile() && e.name.endsWith('.o')) out.push(r);
  }
}

/**
 * Objects of a Xen tree that are not compiled translation units: the partial links
 * (`built_in.o`, `prelink*.o`, `*.xen-syms.*.o`, hidden temporaries), the host tools, and `X.o`
 * when `X.init.o` exists (objcopy made the linked `.init.o` from it, with every section renamed
 * `.init.*`; diffing the intermediate would take init code for runtime code).
 */
export function linkOnly(rel: string, have: Set<string>): boolean {
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  if (/^(built_in(_bin)?|prelink(-efi)?)\.o$/.test(base) || base.startsWith('.') || /\.xen-syms\.\d+\.o$/.test(base)) return true;
  if (rel.startsWith('tools/')) return true;
  return !base.endsWith('.init.o') && have.has(rel.replace(/\.o$/, '.init.o'));
}

interface Side {
  single: boolean;
  file?: string;
  /** Relative path → loader. */
  files: Map<string, () => Promise<Uint8Array>>;
}

async function load(side: DiffSide, what: string): Promise<Side> {
  if (Array.isArray(side)) {
    const files = new Map<string, () => Promise<Uint8Array>>();
    for (const o of side as DiffObjectInput[]) files.set(o.path, async () => o.bytes);
    return { single: false, files };
  }
  let st;
  try {
    st = await stat(side);
  } catch {
    throw new UsageError('DIFF_INPUT', `${what} not found`, { file: side });
  }
  const read = (p: string) => async (): Promise<Uint8Array> => {
    const b = await readFile(p);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  };
  if (st.isDirectory()) {
    const all: string[] = [];
    await walk(side, '', all);
    const have = new Set(all);
    const list = all.filter((r) => !linkOnly(r, have)).sort();
    return { single: false, files: new Map(list.map((r) => [r, read(join(side, r))])) };
  }
  return { single: true, file: side, files: new Map([[basename(side), read(side)]]) };
}

const same = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
};

export async function pairObjects(
  orig: DiffSide,
  patched: DiffSide,
): Promise<{ pairs: ObjectPair[]; identical: string[]; removed: string[] }> {
  const o = await load(orig, 'ORIG');
  const p = await load(patched, 'PATCHED');
  if (o.single !== p.single) throw new UsageError('USAGE', 'ORIG and PATCHED must both be objects or both directories');
  if (o.single) {
    const [, of] = [...o.files][0]!;
    const [pn, pf] = [...p.files][0]!;
    const ob = await of();
    const pb = await pf();
    const path = pn;
    return same(ob, pb)
      ? { pairs: [], identical: [path], removed: [] }
      : { pairs: [{ path, orig: ob, patched: pb, origFile: o.file!, patchedFile: p.file! }], identical: [], removed: [] };
  }
  const pairs: ObjectPair[] = [];
  const identical: string[] = [];
  const removed: string[] = [];
  const paths = [...new Set([...o.files.keys(), ...p.files.keys()])].sort();
  for (const path of paths) {
    const ol = o.files.get(path);
    const pl = p.files.get(path);
    if (!pl) {
      removed.push(path);
      continue;
    }
    const pb = await pl();
    if (!ol) {
      pairs.push({ path, patched: pb });
      continue;
    }
    const ob = await ol();
    if (same(ob, pb)) identical.push(path);
    else pairs.push({ path, orig: ob, patched: pb });
  }
  return { pairs, identical, removed };
}
