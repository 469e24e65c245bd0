/**
 * The tests' one temp-directory mechanism: fresh directories under the system's temp directory,
 * named xsplice-<prefix>-XXXXXX, removed by removeTempDirs() (call it in afterAll;
 * XSPLICE_KEEP_TMP=1 keeps them for a look).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const scratch: string[] = [];

export function removeTempDirs(): void {
  if (process.env.XSPLICE_KEEP_TMP) return;
  for (const d of scratch.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function tempDirSync(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `xsplice-${prefix}-`));
  scratch.push(d);
  return d;
}

export async function tempDir(prefix: string): Promise<string> {
  return tempDirSync(prefix);
}
