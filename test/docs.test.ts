/**
 * docs/ is what a user's clone has instead of the project's shared notes: the rule list verify's
 * diagnostics cite (one anchor per code, regenerated from the table), the CLI contract (every
 * command), the environment variables the code reads, and the CI example's pin.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIAGNOSTICS } from '../src/payload/diagnostics.js';
import { ruleAnchor, ruleRef } from '../src/payload/rules.js';
import { makeProgram } from '../cli/xsplice.js';
import { REPO } from './helpers/debian.js';

const read = (f: string): string => readFileSync(join(REPO, f), 'utf8');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(REPO, dir))) {
    const p = join(dir, e);
    if (statSync(join(REPO, p)).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(e)) out.push(p);
  }
  return out;
}

describe('docs/', () => {
  it('rules.md has an anchor for every diagnostic code, and is what scripts/rules-doc.mjs writes now', () => {
    const rules = read('docs/rules.md');
    for (const code of Object.keys(DIAGNOSTICS)) {
      expect(rules, code).toContain(`<a id="${ruleAnchor(code)}"></a>\n### ${code}\n`);
      expect(ruleRef(code)).toBe(`docs/rules.md#${code.toLowerCase()}`);
    }
    const r = spawnSync(process.execPath, [join(REPO, 'scripts/rules-doc.mjs'), '--check']);
    expect(String(r.stderr)).toBe('');
    expect(r.status).toBe(0);
  });

  it('cli.md documents every command the CLI has', () => {
    const cli = read('docs/cli.md');
    const names = makeProgram(() => undefined).commands.map((c) => c.name());
    expect(names.length).toBeGreaterThan(5);
    for (const n of names) expect(cli, n).toMatch(new RegExp('\\n```\\nxsplice ' + n + ' '));
  });

  it('environment.md lists every XSPLICE_ variable the code reads', () => {
    const env = read('docs/environment.md');
    const used = new Set<string>();
    for (const f of [...sources('src'), ...sources('cli')]) {
      for (const m of read(f).matchAll(/process\.env\.(XSPLICE_[A-Z0-9_]+)|process\.env\[['"](XSPLICE_[A-Z0-9_]+)['"]\]/g))
        used.add(m[1] ?? m[2]!);
    }
    expect(used.size).toBeGreaterThan(0);
    for (const v of used) expect(env, v).toContain(`\`${v}\``);
  });

  it('the CI example pins the hypervisor the project pins, and fails the job on a refusal', () => {
    const wf = read('docs/ci/github-actions.yml');
    const pin = /^XEN_VERSION=(\S+)$/m.exec(read('scripts/setup-deps.sh'))![1]!;
    expect(wf).toContain(`XEN_DEB_VERSION: ${pin}`);
    expect(wf).toMatch(/run: npx xsplice verify out\/fix\.livepatch --xen "\$XEN_SYMS"/);
    // The commands it runs exist with these options (their --help parses them).
    for (const sub of ['build', 'verify']) {
      const help = execFileSync(process.execPath, [join(REPO, 'bin/xsplice'), sub, '--help']).toString();
      expect(help).toMatch(/--xen <xen>/);
    }
  });
});
