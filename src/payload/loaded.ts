/**
 * What a host has loaded, as `xen-livepatch list` prints it, and `verify` against it: "does this
 * payload stack on what is loaded here?" (the hypervisor's checks at upload and apply,
 * payload-format.md §2.1, §2.13; the list format §4.2).
 *
 * With the payload files of the applied entries (found by name in a directory), their upload and
 * apply is simulated first, in stack order (CHECKED ones with a file are uploaded, not applied),
 * and the new payloads follow: names, the depends chain,
 * symbols they export and functions they patch all take part, as in the hypervisor. Without a
 * file, only what the list says is checked (names; that something is applied, so a payload that
 * depends on the hypervisor itself is refused by APPLY), and what cannot be checked is said.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../errors.js';
import { makeDiagnostic, type Diagnostic } from './diagnostics.js';
import { inspectPayload } from './inspect.js';
import {
  resolveTargetRules,
  uploadName,
  verifyPayloads,
  type PayloadVerdict,
  type VerifyInput,
  type VerifyOptions,
  type VerifyResult,
  type VerifyTarget,
} from './verify.js';
import { toHex } from '../buildid/note.js';

export type LoadedState = 'CHECKED' | 'APPLIED' | 'unknown';

/** One row of `xen-livepatch list`. */
export interface LoadedEntry {
  name: string;
  state: LoadedState;
  /** The payload's rc when non-zero (a failed or pending action), e.g. -11 for EAGAIN. */
  rc: number | null;
  /** Metadata (4.14+: .modinfo with NULs shown as ';'), or null. */
  metadata: string | null;
}

/**
 * Parses `xen-livepatch list` output: the 4.14+ format (ID | status | metadata) and the older one
 * (ID | status). "Nothing to list" is an empty set. A line that is neither is a FormatError.
 */
export function parseLivepatchList(text: string, file = '-'): LoadedEntry[] {
  const out: LoadedEntry[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trim() === 'Nothing to list') continue;
    if (/^\s*ID\s+\|\s*status/.test(line) || /^-+\+-+/.test(line)) continue;
    // printf("%-40.*s| %s", …): the name is padded to 40 columns; a longer one runs to its '|'.
    const bar = line.length > 40 && line[40] === '|' ? 40 : line.indexOf('|');
    const rest = bar < 0 ? '' : line.slice(bar + 1);
    const m = /^ (CHECKED|APPLIED|unknown)(?: \((-?\d+), [^)]*\))?\s*(?:\|\s?(.*))?$/.exec(rest);
    if (bar < 0 || !m) {
      throw new FormatError('LOADED_LIST_FORMAT', `line ${i + 1} is not a row of \`xen-livepatch list\` output`, {
        file,
        expected: 'NAME | CHECKED|APPLIED [| metadata]',
        found: JSON.stringify(line.slice(0, 80)),
      });
    }
    const name = line.slice(0, bar).trimEnd();
    out.push({
      name,
      state: m[1] as LoadedState,
      rc: m[2] !== undefined ? Number(m[2]) : null,
      metadata: m[3] !== undefined && m[3] !== '' ? m[3] : null,
    });
  }
  return out;
}

/** The payload file of a loaded entry in `dir`: DIR/NAME.livepatch, else DIR/NAME (regular files only). */
export function findLoadedFile(dir: string, name: string): string | undefined {
  for (const f of [join(dir, `${name}.livepatch`), join(dir, name)]) {
    try {
      if (existsSync(f) && statSync(f).isFile()) return f;
    } catch {
      // unreadable: not found
    }
  }
  return undefined;
}

export interface LoadedInput {
  entry: LoadedEntry;
  /** The payload file, when available. */
  file?: string;
  bytes?: Uint8Array;
}

export interface LoadedReport {
  name: string;
  state: LoadedState;
  file: string | null;
  /** 'simulated': its upload (and, when APPLIED, apply) ran before the new payloads; 'listed': only its row is known. */
  used: 'simulated' | 'listed';
  buildId: string | null;
  /** When simulated: whether the simulation accepted it as well (false: the order or files disagree with the host). */
  ok: boolean | null;
}

export interface LoadedVerifyResult extends VerifyResult {
  loaded: LoadedReport[];
  /** The last applied payload on the host (what the first new payload must depend on), or null. */
  top: { name: string; buildId: string | null } | null;
}

const has = (p: PayloadVerdict, code: string): boolean => p.diagnostics.some((d) => d.code === code);

function settle(p: PayloadVerdict): void {
  for (const d of p.diagnostics) delete d.first;
  const up = p.diagnostics.filter((d) => d.stage === 'upload' && d.severity === 'error');
  const ap = p.diagnostics.filter((d) => d.stage === 'apply' && d.severity === 'error');
  const first = up[0] ?? ap[0];
  if (first) first.first = true;
  p.ok = !p.diagnostics.some((d) => d.severity === 'error');
  p.errno = first ? first.errno : null;
  p.refusedAt = up.length ? 'upload' : ap.length ? 'apply' : null;
}

/**
 * Verifies `inputs` (in load order) on a host that has `loaded` (the rows of `xen-livepatch list`,
 * with payload files where available).
 */
export function verifyAgainstLoaded(
  inputs: VerifyInput[],
  target: VerifyTarget,
  loaded: LoadedInput[],
  opts: VerifyOptions = {},
): LoadedVerifyResult {
  const { rules } = resolveTargetRules(target, opts);
  const xenId = target.buildId ? toHex(target.buildId) : null;
  // The applied ones, in stack order: each depends on the one below, the first on the hypervisor.
  const info = loaded.map((l) => {
    if (!l.bytes) return { l, buildId: null as string | null, depends: null as string | null };
    try {
      const r = inspectPayload(l.bytes, l.file ?? l.entry.name);
      return { l, buildId: r.buildId, depends: r.depends };
    } catch {
      return { l, buildId: null, depends: null };
    }
  });
  const applied = info.filter((x) => x.l.entry.state === 'APPLIED');
  const allFiles = applied.every((x) => x.l.bytes);
  const stack: typeof applied = [];
  if (allFiles) {
    const left = [...applied];
    let below = xenId;
    while (left.length) {
      const i = left.findIndex((x) => x.depends !== null && x.depends === below);
      const next = left.splice(i >= 0 ? i : 0, 1)[0]!;
      stack.push(next);
      below = next.buildId;
    }
  }
  // CHECKED payloads with a file are uploaded too (their names and exported symbols count), not applied.
  const checked = info.filter((x) => x.l.entry.state !== 'APPLIED' && x.l.bytes);
  const sim: VerifyInput[] = [
    ...stack.map((x) => ({ file: x.l.file!, bytes: x.l.bytes!, name: x.l.entry.name })),
    ...checked.map((x) => ({ file: x.l.file!, bytes: x.l.bytes!, name: x.l.entry.name, uploadOnly: true })),
  ];
  const simOrder = [...stack, ...checked];
  const res = verifyPayloads([...sim, ...inputs], target, opts);
  const simulated = res.payloads.slice(0, sim.length);
  const payloads = res.payloads.slice(sim.length);
  const note = (p: PayloadVerdict, why: string): void => {
    p.diagnostics.push(makeDiagnostic('NOTE_LOADED', rules, p.name, { why }));
  };

  const simulatedNames = new Set(simOrder.map((x) => x.l.entry.name));
  for (const [k, p] of payloads.entries()) {
    // Upload: a name the host already has (one not simulated, so the simulation did not see it).
    const clash = loaded.find((l) => l.entry.name === p.name && !simulatedNames.has(l.entry.name));
    if (clash && !has(p, 'DUPLICATE_NAME')) {
      p.diagnostics.unshift(
        makeDiagnostic('DUPLICATE_NAME', rules, p.name, { name: p.name, other: `loaded on the host, ${clash.entry.state}` }),
      );
    }
    if (k === 0 && !allFiles && applied.length && !opts.replace) {
      const top = applied[applied.length - 1]!.l.entry.name;
      const missing = applied.filter((x) => !x.l.bytes).map((x) => x.l.entry.name);
      // The simulation ran on an empty stack and compared depends with the hypervisor's id.
      const onXen = p.depends !== null && p.depends === xenId;
      p.diagnostics = p.diagnostics.filter(
        (d) => d.code !== 'DEPENDS_MISMATCH' && !(d.code === 'NOTE_REPLACE' && /depends on/.test(d.message)),
      );
      if (onXen) {
        const d = makeDiagnostic('DEPENDS_MISMATCH', rules, p.name, { against: top }, { section: '.livepatch.depends' });
        d.message += ` (it depends on the hypervisor ${xenId}; ${top} is applied on top of it${applied.length > 1 ? ', and the list order is taken as the apply order' : ''})`;
        p.diagnostics.push(d);
      } else {
        note(
          p,
          `depends on ${p.depends ?? '(none)'}, which is neither the hypervisor's build-id nor checked against ${top}, the last applied payload: no payload file for ${missing.join(', ')} (give the directory holding ${missing.map((n) => `${n}.livepatch`).join(', ')} to check it)`,
        );
      }
    }
    if (k === 0) {
      for (const l of loaded) {
        if (l.entry.rc !== null && l.entry.rc !== 0) {
          note(
            p,
            `${l.entry.name} has rc ${l.entry.rc}${l.entry.rc === -11 ? ' (an action is still in progress: any other action fails with EBUSY until it ends)' : ' (its last action failed)'}`,
          );
        }
      }
    }
    settle(p);
  }
  const reports: LoadedReport[] = info.map((x) => {
    const s = simOrder.indexOf(x);
    return {
      name: x.l.entry.name,
      state: x.l.entry.state,
      file: x.l.file ?? null,
      used: s >= 0 ? 'simulated' : 'listed',
      buildId: x.buildId,
      ok: s >= 0 ? simulated[s]!.ok : null,
    };
  });
  for (const [s, v] of simulated.entries()) {
    if (v.ok) continue;
    for (const p of payloads) {
      note(
        p,
        `the loaded payload ${simOrder[s]!.l.entry.name} (${simOrder[s]!.l.file}) does not verify in the simulated host (${v.diagnostics.find((d) => d.first)?.code ?? 'unsafe'}): the files or the order differ from what is loaded`,
      );
      settle(p);
    }
  }
  const last = allFiles ? stack[stack.length - 1] : applied[applied.length - 1];
  const top = last ? { name: last.l.entry.name, buildId: allFiles ? last.buildId : null } : null;
  return { ...res, ok: payloads.every((p) => p.ok), payloads, loaded: reports, top };
}

/** Reads the loaded set: list text, plus the payload files in `dir` (when given). */
export function loadedInputs(listText: string, listFile: string, dir?: string): LoadedInput[] {
  return parseLivepatchList(listText, listFile).map((entry) => {
    const file = dir ? findLoadedFile(dir, entry.name) : undefined;
    if (!file) return { entry };
    const b = readFileSync(file);
    return { entry, file, bytes: new Uint8Array(b.buffer, b.byteOffset, b.byteLength) };
  });
}

export type { Diagnostic };
export { uploadName };
