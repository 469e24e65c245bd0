/**
 * Which hypervisor `xsplice try` boots when the user names none: the STOCK binary whose build-id
 * the payload's `.livepatch.xen_depends` names, so a payload is tried on exactly what its users run.
 *
 * Known builds are Debian's Xen 4.17 packages: the pinned one (unpacked by scripts/setup-deps.sh)
 * and any other version apt still serves for that architecture, fetched on demand into
 * `.cache/debian-versions/VERSION_ARCH/root` (`scripts/setup-deps.sh xen-version VERSION ARCH`).
 * A build-id no known build has: the pinned hypervisor is booted, and the caller says so (the
 * hypervisor will refuse the upload, which is then the verdict).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { findBuildIdNotes } from '../buildid/elf-id.js';
import { parseBuildIdNote, toHex } from '../buildid/note.js';
import { XEN_DEPENDS_SECTION } from '../buildid/read.js';
import { SHT } from '../elf/constants.js';
import { isElf, readElf } from '../elf/reader.js';
import type { ElfFile } from '../elf/types.js';
import { archOfMachine } from '../payload/abi-rows.js';
import { ARCHES, packageRoot, runSetupScript, type TryArch } from './locate.js';

/** The Debian version unpacked by scripts/setup-deps.sh (XEN_VERSION there), for both architectures. */
export const PINNED_DEBIAN_XEN = '4.17.5+72-g01140da4e8-1';

export interface StockBuild {
  version: string;
  arch: TryArch;
  buildId: string;
  xenImage: string;
  xenSyms: string;
  /** How to name it to a user, e.g. "Debian's Xen 4.17.5+72-g01140da4e8-1 (amd64)". */
  label: string;
  /** Not Debian's binary: built here from Debian's source with CONFIG_LIVEPATCH=y (arm64). */
  rebuilt?: boolean;
}

/** Build-ids of Debian builds seen by this project (a hint: the unpacked files are what is booted). */
export const KNOWN_DEBIAN_BUILDS: readonly { version: string; arch: TryArch; buildId: string }[] = [
  { version: PINNED_DEBIAN_XEN, arch: 'x86_64', buildId: '39a640e6f1412319235087391df9f1c5e13ae920' },
  { version: PINNED_DEBIAN_XEN, arch: 'arm64', buildId: '293274c12b4f5c7da9f0fa540dc46ab5453d78ab' },
  { version: '4.17.7+13-g2445b30a44-0+deb12u1', arch: 'x86_64', buildId: '151b373fd64b321593bf987fd923cd10dabadac4' },
];

/** Facts `try` needs from a payload: its machine and xen_depends build-id. */
export interface PayloadFacts {
  arch: TryArch | 'arm32' | null;
  xenDepends: string | null;
}

/** The ELF file in `b`, or undefined when it is not one the reader accepts. */
function elfOf(b: Buffer): ElfFile | undefined {
  try {
    return readElf(b);
  } catch {
    return undefined;
  }
}

/** e_machine and the NT_GNU_BUILD_ID of `.livepatch.xen_depends`, read as the hypervisor reads it (little-endian payloads). */
export function payloadFacts(b: Buffer): PayloadFacts {
  if (b.length < 52 || !isElf(b) || b[5] !== 1) return { arch: null, xenDepends: null };
  const arch = archOfMachine(b.readUInt16LE(18)) ?? null;
  // By name, as the hypervisor finds it (objcopy-made notes are PROGBITS).
  const s = elfOf(b)?.sectionByName(XEN_DEPENDS_SECTION);
  if (!s || s.type === SHT.NOBITS) return { arch, xenDepends: null };
  let note: ReturnType<typeof parseBuildIdNote>;
  try {
    note = parseBuildIdNote(s.data());
  } catch {
    return { arch, xenDepends: null };
  }
  return { arch, xenDepends: note.ok ? toHex(note.id) : null };
}

function debArch(arch: TryArch): string {
  return ARCHES[arch].deb;
}

/** Root of an unpacked Debian Xen version: the pinned one where setup-deps.sh puts it, others under debian-versions. */
export function stockRoot(version: string, arch: TryArch): string {
  const cache = join(packageRoot(), '.cache');
  if (version === PINNED_DEBIAN_XEN) return join(cache, ARCHES[arch].cacheDir, 'root');
  return join(cache, 'debian-versions', `${version.replace(/[^A-Za-z0-9.+~-]/g, '_')}_${debArch(arch)}`, 'root');
}

/** Hex build-id from the first GNU build-id note in an ELF file. */
export function elfBuildId(b: Buffer): string | undefined {
  const elf = elfOf(b);
  const note = elf ? findBuildIdNotes(elf)[0] : undefined;
  return note ? toHex(note.id) : undefined;
}

/**
 * Build-id of a hypervisor image in memory: an ELF's note, or, in a raw arm64 Image (no section
 * headers), the bytes that follow the one GNU build-id note header in it.
 */
export function bufferBuildId(b: Buffer): string | undefined {
  if (b.length >= 4 && b.readUInt32BE(0) === 0x7f454c46) return elfBuildId(b);
  const head = Buffer.from([4, 0, 0, 0, 20, 0, 0, 0, 3, 0, 0, 0, 0x47, 0x4e, 0x55, 0]);
  const i = b.indexOf(head);
  if (i < 0 || i + 36 > b.length || b.indexOf(head, i + 1) >= 0) return undefined;
  return b.toString('hex', i + 16, i + 36);
}

/** Build-id of a hypervisor image file (gzip, ELF or arm64 Image). */
export async function imageBuildId(file: string, _arch?: TryArch): Promise<string | undefined> {
  let b: Buffer;
  try {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (st.size > 64 << 20) return undefined;
      b = Buffer.alloc(st.size);
      await fh.read(b, 0, st.size, 0);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  try {
    if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b, { maxOutputLength: 128 << 20 });
  } catch {
    return undefined;
  }
  return bufferBuildId(b);
}

function stockBuildAt(version: string, arch: TryArch, root: string, buildId: string): StockBuild {
  return {
    version,
    arch,
    buildId,
    xenImage: join(root, ARCHES[arch].xenImage),
    xenSyms: join(root, ARCHES[arch].xenSyms),
    label: `Debian's Xen ${version} (${debArch(arch)})`,
  };
}

/**
 * Debian 12's arm64 hypervisor has no live patching ("# CONFIG_LIVEPATCH is not set"); this is the
 * same source package cross-built with Debian's arm64 configuration plus CONFIG_LIVEPATCH=y by
 * `scripts/setup-deps.sh arm64-livepatch`.
 */
export function arm64LivepatchDir(): string {
  return join(packageRoot(), '.cache', 'debian-arm64', 'livepatch');
}

export async function arm64LivepatchBuild(): Promise<StockBuild | undefined> {
  const dir = arm64LivepatchDir();
  if (!existsSync(join(dir, `.complete-${PINNED_DEBIAN_XEN}`))) return undefined;
  const id = await imageBuildId(join(dir, 'xen'));
  if (!id) return undefined;
  return {
    version: PINNED_DEBIAN_XEN,
    arch: 'arm64',
    buildId: id,
    xenImage: join(dir, 'xen'),
    xenSyms: join(dir, 'xen-syms'),
    rebuilt: true,
    label: `Xen ${PINNED_DEBIAN_XEN} (arm64) built from Debian's source with CONFIG_LIVEPATCH=y`,
  };
}

/** Builds already unpacked (or built) on this machine, with the build-id read from each image. */
export async function unpackedBuilds(arch: TryArch): Promise<StockBuild[]> {
  const out: StockBuild[] = [];
  const cands: { version: string; root: string }[] = [{ version: PINNED_DEBIAN_XEN, root: stockRoot(PINNED_DEBIAN_XEN, arch) }];
  const dir = join(packageRoot(), '.cache', 'debian-versions');
  if (existsSync(dir)) {
    for (const d of readdirSync(dir).sort().reverse()) {
      const m = new RegExp(`^(.+)_${debArch(arch)}$`).exec(d);
      const done = join(dir, d, 'root', '.complete');
      if (m && existsSync(done)) cands.push({ version: readFileSync(done, 'utf8').trim() || m[1]!, root: join(dir, d, 'root') });
    }
  }
  for (const c of cands) {
    const id = await imageBuildId(join(c.root, ARCHES[arch].xenImage));
    if (id) out.push(stockBuildAt(c.version, arch, c.root, id));
  }
  if (arch === 'arm64') {
    const lp = await arm64LivepatchBuild();
    if (lp) out.push(lp);
  }
  return out;
}

export interface StockChoice {
  build: StockBuild;
  /** How it was found: already unpacked, or fetched now. */
  how: 'unpacked' | 'fetched';
}

/**
 * Finds (fetching if needed) the Debian build whose image has `buildId`. Tries what is unpacked,
 * then the known table, then every version apt offers for the architecture. Undefined when none.
 */
export async function findStockBuild(
  buildId: string,
  arch: TryArch,
  progress?: (m: string) => void,
  fetch = true,
): Promise<StockChoice | undefined> {
  const have = await unpackedBuilds(arch);
  const hit = have.find((b) => b.buildId === buildId);
  if (hit) return { build: hit, how: 'unpacked' };
  if (!fetch) return undefined;
  const tried = new Set(have.map((b) => b.version));
  const known = KNOWN_DEBIAN_BUILDS.filter((k) => k.arch === arch && k.buildId === buildId).map((k) => k.version);
  let offered: string[] = [];
  try {
    offered = (await runSetupScript(['xen-versions', debArch(arch)]))
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean);
  } catch {
    offered = [];
  }
  // Known first (one fetch), then the rest apt offers, newest first as apt lists them.
  for (const version of [...known.filter((v) => offered.includes(v)), ...offered.filter((v) => !known.includes(v))]) {
    if (tried.has(version)) continue;
    tried.add(version);
    const root = stockRoot(version, arch);
    progress?.(`fetching Debian's Xen ${version} (${debArch(arch)}) to look for build-id ${buildId.slice(0, 12)}…`);
    try {
      await runSetupScript(['xen-version', version, debArch(arch), root]);
    } catch {
      continue;
    }
    const id = await imageBuildId(join(root, ARCHES[arch].xenImage));
    if (id === buildId) return { build: stockBuildAt(version, arch, root, id), how: 'fetched' };
  }
  return undefined;
}
