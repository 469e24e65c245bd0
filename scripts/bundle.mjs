#!/usr/bin/env node
// Bundles the CLI for bin/xsplice (tsc has type-checked it and emitted dist/src, the library, and
// dist/cli just before):
//   dist/xsplice-cli.js   the whole CLI as one CommonJS file: loading one file instead of ~40
//                         modules saves ~25 ms per call;
//   dist/xsplice.cjs      the launcher (cli/launcher.cts), which compiles the CLI bundle through
//                         vm.Script with
//   dist/xsplice-cli.cache  V8's code cache of the bundle, written by scripts/code-cache.mjs after a
//                         warm-up run of the main commands (another ~20 ms per call).
// The bundles are deterministic (same sources, same bytes); the code cache is V8's and belongs to
// this Node binary: the launcher ignores a cache V8 rejects, and each build writes a new one.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const f of ['dist/xsplice-cli.cache', 'dist/xsplice.mjs']) rmSync(join(root, f), { force: true });
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
};
await build({
  ...common,
  entryPoints: ['cli/xsplice.ts'],
  outfile: 'dist/xsplice-cli.js',
  // The sources are ES modules; their few uses of import.meta.url (locating the package,
  // createRequire) get the bundle's own URL.
  define: { 'import.meta.url': '__xsplice_bundle_url' },
  banner: { js: "const __xsplice_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
});
await build({ ...common, entryPoints: ['cli/launcher.cts'], outfile: 'dist/xsplice.cjs' });
// A fresh process with no flags of its own: V8 only takes a cache made under the same flags.
execFileSync(process.execPath, [join(root, 'scripts/code-cache.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
