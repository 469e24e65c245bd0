import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyFileAtomic, writeFileAtomic, writeFileAtomicSync } from '../src/fsutil.js';

describe('atomic output files', () => {
  it('replace the destination whole and leave no temporary behind', async () => {
    const d = mkdtempSync(join(tmpdir(), 'xs-fsutil-'));
    writeFileSync(join(d, 'out'), 'old contents');
    await writeFileAtomic(join(d, 'out'), new TextEncoder().encode('new'));
    writeFileAtomicSync(join(d, 'out2'), new Uint8Array([1, 2, 3]), { mode: 0o600 });
    await copyFileAtomic(join(d, 'out'), join(d, 'out3'));
    expect(readFileSync(join(d, 'out'), 'utf8')).toBe('new');
    expect([...readFileSync(join(d, 'out2'))]).toEqual([1, 2, 3]);
    expect(statSync(join(d, 'out2')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(d, 'out3'), 'utf8')).toBe('new');
    expect(readdirSync(d).sort()).toEqual(['out', 'out2', 'out3']);
  });

  it('on failure, throw and leave neither a partial file nor a temporary', async () => {
    const d = mkdtempSync(join(tmpdir(), 'xs-fsutil-'));
    // A directory is refused before anything is written.
    const dest = join(d, 'dir');
    writeFileSync(join(d, 'keep'), 'x');
    mkdirSync(join(dest, 'inner'), { recursive: true });
    await expect(writeFileAtomic(dest, new Uint8Array(8))).rejects.toMatchObject({ code: 'OUT_NOT_REGULAR', exitCode: 2 });
    expect(() => writeFileAtomicSync(dest, new Uint8Array(8))).toThrow(/is a directory/);
    await expect(copyFileAtomic(join(d, 'keep'), dest)).rejects.toBeTruthy();
    expect(readdirSync(d).sort()).toEqual(['dir', 'keep']);
  });
});
