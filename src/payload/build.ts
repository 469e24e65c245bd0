/**
 * `xsplice build`: assembles a live-patch payload for one target ABI row from relocatable objects.
 * `buildPayload` is the list of stages; each stage is a module of src/payload/build/:
 *
 * 1. read.ts     the objects, refused when they cannot go into a payload for this row;
 * 2. merge.ts    their sections, symbols and relocations merged into one model (undefined references
 *                bound between objects; two strong definitions of a global refused);
 * 3. checks.ts   what the target hypervisor would refuse in the carried sections, and undefined
 *                symbols the target does not define;
 * 4. entries.ts  the funcs entries (one per --patch / --nop) and the hook arrays;
 * 5. checks.ts   new symbols that collide with the hypervisor's;
 * 6. emit.ts     the payload written: merged model, generated sections, its own build-id (GNU ld's
 *                algorithm over the final bytes);
 * 7. written.ts  the written payload against the hypervisor's limits and verify's shared checks.
 *
 * Refusals are RefusedError (exit status 1). Same inputs → same bytes: nothing reads the clock, the
 * locale, the environment or the paths (only base names of inputs go into `.modinfo`).
 */
import { UsageError } from '../errors.js';
import { toHex } from '../buildid/note.js';
import { checkNewSymbols, checkSections, checkUndefined, exportedSymbols } from './build/checks.js';
import { emitPayload } from './build/emit.js';
import { funcEntries, hookArrays, newSymbolFinder } from './build/entries.js';
import { mergeObjects } from './build/merge.js';
import { readObjects } from './build/read.js';
import type { BuildOptions, BuildResult } from './build/types.js';
import { checkWritten } from './build/written.js';

export * from './build/types.js';

export async function buildPayload(opts: BuildOptions): Promise<BuildResult> {
  const { abi, target, objects } = opts;
  const warnings: string[] = [];
  const warn = (w: string): void => {
    warnings.push(w);
    opts.onWarning?.(w);
  };
  const hooks = opts.hooks ?? [];
  checkRequests(opts);
  for (const h of abi.hooks) if (h.note && hooks.some((r) => r.kind === h.kind)) warn(`${h.section}: ${h.note}`);

  const { elves, littleEndian } = readObjects(objects, abi);
  const merged = mergeObjects(abi, objects, elves, hooks, warn);
  checkSections(abi, merged, objects);
  const depPayloadSyms = opts.depends?.payload ? exportedSymbols(opts.depends.payload) : new Set<string>();
  const undefinedNames = checkUndefined(merged, target, depPayloadSyms, opts.depends?.payload !== undefined, objects, warn);
  const findNew = newSymbolFinder(merged, objects);
  const entries = funcEntries(opts, merged, findNew, warn);
  const hookSyms = hookArrays(abi, hooks, target, findNew);
  checkNewSymbols(abi, merged, entries, target, depPayloadSyms, objects);
  const out = emitPayload({ opts, merged, entries, hooks: hookSyms, littleEndian, inputFlags: elves[0]?.header.flags ?? 0 });
  checkWritten(opts, out.bytes, out.id, entries, littleEndian, warn);

  const hookTargets = [...hookSyms.values()].flatMap((h) => h.syms.filter((x) => typeof x.sym === 'string').map((x) => x.name));
  return {
    bytes: out.bytes,
    buildId: toHex(out.id),
    depends: toHex(out.depId),
    xenDepends: abi.sections.xenDepends ? toHex(target.buildId) : null,
    abi: { id: abi.id, name: abi.name, arch: abi.arch, version: abi.funcEntry.version },
    funcs: entries.map((e) => ({
      name: e.name,
      newSymbol: e.newSym === null ? null : merged.syms[merged.resolve(e.newSym)]!.name,
      oldAddr: e.oldAddr,
      newSize: e.newSize,
      oldSize: e.oldSize,
      version: abi.funcEntry.version,
      ...(e.expect ? { expect: { len: e.expect.len, data: toHex(e.expect.data.subarray(0, e.expect.len)) } } : {}),
    })),
    hooks: out.hooks,
    sections: out.sections,
    undefinedSymbols: [...new Set([...undefinedNames, ...hookTargets])].sort(),
    warnings,
  };
}

/** Usage errors of the request itself, before any object is read. */
function checkRequests(opts: BuildOptions): void {
  const patches = opts.patches?.length ?? 0;
  const nops = opts.nops?.length ?? 0;
  const hooks = opts.hooks?.length ?? 0;
  if (opts.objects.length === 0 && patches + hooks > 0)
    throw new UsageError('BUILD_NO_OBJECTS', 'no input objects (only --nop needs none)');
  if (patches + nops + hooks === 0) throw new UsageError('BUILD_NOTHING', 'nothing to patch: give at least one --patch, --nop or --hook');
}
