/**
 * A directory lock for the base cache: `mkdir` is atomic, the owner's pid is written inside, and a
 * lock whose owner no longer runs is taken over (an interrupted build never blocks the next one).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XspliceError } from '../errors.js';
import { processAlive } from '../fsutil.js';

export interface Lock {
  release(): void;
}

/** Waits (polling, up to `timeoutMs`) for the lock at `dir`; `onWait` is told once who holds it. */
export async function acquireLock(dir: string, timeoutMs = 3_600_000, onWait?: (pid: number) => void): Promise<Lock> {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return { release: () => rmSync(dir, { recursive: true, force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
    } catch {
      /* being created or removed */
    }
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid)) {
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (!told && Number.isInteger(pid)) {
      onWait?.(pid);
      told = true;
    }
    if (Date.now() - t0 > timeoutMs) throw new XspliceError('PATCH_LOCKED', `${dir}: held by process ${pid} for too long`);
    await new Promise((r) => setTimeout(r, 500));
  }
}
