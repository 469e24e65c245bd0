/**
 * Output files are written atomically: a temporary file in the destination's directory, then a
 * rename over the destination. A failure leaves no partial file behind (the temporary is removed)
 * and never touches an existing destination.
 */
import { randomBytes } from 'node:crypto';
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { copyFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

export interface AtomicOptions {
  /** File mode of the new file (default 0o644). */
  mode?: number;
}

function tempPath(dest: string): string {
  const abs = resolve(dest);
  return join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

export async function writeFileAtomic(dest: string, bytes: Uint8Array, opts: AtomicOptions = {}): Promise<void> {
  const tmp = tempPath(dest);
  try {
    await writeFile(tmp, bytes, { mode: opts.mode ?? 0o644, flag: 'wx' });
    await rename(tmp, dest);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export function writeFileAtomicSync(dest: string, bytes: Uint8Array, opts: AtomicOptions = {}): void {
  const tmp = tempPath(dest);
  try {
    writeFileSync(tmp, bytes, { mode: opts.mode ?? 0o644, flag: 'wx' });
    renameSync(tmp, dest);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      /* never created, or already renamed */
    }
    throw e;
  }
}

/** Copies `src` to `dest` atomically. */
export async function copyFileAtomic(src: string, dest: string): Promise<void> {
  const tmp = tempPath(dest);
  try {
    await copyFile(src, tmp);
    await rename(tmp, dest);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
