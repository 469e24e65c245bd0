#!/usr/bin/env node
// Bundles the CLI for bin/xsplice after tsc has type-checked it and emitted dist/src (the library)
// and dist/cli: dist/xsplice-cli.cjs is the whole CLI as one CommonJS file, so a command loads one
// file instead of ~40 modules (see the README's start-up figures). The bundle is deterministic
// (same sources, same bytes). commander and @noble/hashes are small and go into the bundle;
// iced-x86 (2.3 MB, with WebAssembly beside its JavaScript) stays in node_modules and is loaded
// only by the commands that decode instructions.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Left by earlier builds (a launcher and a V8 code cache that no longer exist).
for (const f of [
  'dist/xsplice-cli.js',
  'dist/xsplice-cli.cache',
  'dist/xsplice.cjs',
  'dist/xsplice.mjs',
  'dist/cli/launcher.cjs',
  'dist/cli/launcher.d.cts',
]) {
  rmSync(join(root, f), { force: true });
}
await build({
  absWorkingDir: root,
  entryPoints: ['cli/xsplice.ts'],
  outfile: 'dist/xsplice-cli.cjs',
  bundle: true,
  external: ['iced-x86'],
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  legalComments: 'none',
  logLevel: 'warning',
  // The sources are ES modules; their few uses of import.meta.url (locating the package,
  // createRequire) get the bundle's own URL.
  define: { 'import.meta.url': '__xsplice_bundle_url' },
  banner: { js: "const __xsplice_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
});
