/** Whether a command is on PATH (the tests' one `have`; guard with `missing()` from debian.ts). */
import { spawnSync } from 'node:child_process';

const seen = new Map<string, boolean>();

export function have(cmd: string): boolean {
  let ok = seen.get(cmd);
  if (ok === undefined) {
    ok = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
    seen.set(cmd, ok);
  }
  return ok;
}
