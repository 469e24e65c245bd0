/**
 * Builds dist/ (tsc + the bundled CLI), then installs the oracles and fixtures the suite needs
 * (Debian packages: cross binutils, lld, qemu, and Debian's Xen 4.17 binaries into .cache/debian). With CI=true a failure here fails the run;
 * elsewhere the tests that need a missing part skip with a one-line reason.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  // The CLI tests run bin/xsplice, which runs dist/: build first so no test ever sees a stale dist/.
  // A type error fails the run here.
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  try {
    execFileSync('bash', [join(root, 'scripts/setup-deps.sh'), 'all'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 900_000 });
    process.env.XSPLICE_DEPS = 'ok';
  } catch (e) {
    if (process.env.CI === 'true') throw new Error(`test setup failed (scripts/setup-deps.sh): ${(e as Error).message}`);
    process.env.XSPLICE_DEPS = 'missing';
    process.stderr.write(`test setup: scripts/setup-deps.sh failed; tests needing Debian packages will skip\n`);
  }
}
