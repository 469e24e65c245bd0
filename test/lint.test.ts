/**
 * The tree is formatted (prettier, .prettierrc.json) and lint-clean (eslint, eslint.config.mjs):
 * `npm run lint`, run by the tests so that a finding fails them. The last test feeds eslint a
 * probe with one defect per chosen rule, so a config that silently stopped applying (a wrong glob,
 * a lost parser) fails too.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/debian.js';

const PRETTIER = join(REPO, 'node_modules', 'prettier', 'bin', 'prettier.cjs');
const ESLINT = join(REPO, 'node_modules', 'eslint', 'bin', 'eslint.js');

function tool(bin: string, args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: REPO, encoding: 'utf8', input, maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('formatter and linter', () => {
  it('prettier --check finds every file formatted', () => {
    const r = tool(PRETTIER, ['--check', '.']);
    expect(r.out.trim().split('\n').slice(-1)[0], r.out).toBe('All matched files use Prettier code style!');
    expect(r.status, r.out).toBe(0);
  });

  it('eslint reports nothing', () => {
    const r = tool(ESLINT, ['--max-warnings', '0', '.']);
    expect(r.out, r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(['src/errors.ts', 'test/lint.test.ts'])('the lint config applies its rules, type-aware, to %s', (file) => {
    const probe = [
      "import { expect } from 'vitest';",
      'export function probe(a: number, b: string): boolean {',
      '  const unused = 1;',
      '  expect(Promise.resolve(a)).resolves.toBe(1);',
      '  return a == Number(b);',
      '}',
      '',
    ].join('\n');
    // An existing file, so the type-aware parser finds it in its tsconfig; the text comes from stdin.
    const r = tool(ESLINT, ['--format', 'json', '--stdin', '--stdin-filename', file], probe);
    expect(r.status, r.out).toBe(1);
    const [result] = JSON.parse(r.out) as { messages: { ruleId: string; line: number }[] }[];
    const found = result!.messages.map((m) => `${m.line}:${m.ruleId}`).sort();
    expect(found).toEqual(['3:@typescript-eslint/no-unused-vars', '4:@typescript-eslint/no-floating-promises', '5:eqeqeq']);
  });
});
