/**
 * No import circles under src/ and cli/. Every relative `import … from`, `export … from`,
 * `import type …`, `import('…')` and `import('…').Type` of a .ts/.cts file is an edge (type-only imports too: a circle
 * of types is still two modules that cannot be read one after the other); the strongly connected
 * components of that graph are the circles.
 *
 * KNOWN_CIRCLES is the explicit allow-list: circles in files other sessions are changing, kept
 * here by name (with the way out) until they go. The test prints it on every run; a listed circle that no longer
 * exists is reported so it can be struck from the list.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/debian.js';

interface KnownCircle {
  /** Why it is there and how it goes. */
  name: string;
  /** A circle is this one when it contains `anchor` and all its files match `files`. */
  anchor: string;
  files: RegExp;
}

const KNOWN_CIRCLES: KnownCircle[] = [];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.c?ts$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/**
 * Relative module specifiers of one file, read by TypeScript's own parser (a regex over the text
 * trips on `/*` inside strings, and ts.preProcessFile skips `export * as x from`).
 */
export function importSpecifiers(text: string, fileName = 'x.ts'): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, false);
  const specs: string[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node) && node.text.startsWith('.')) specs.push(node.text);
  };
  const walk = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, walk);
  };
  walk(source);
  return specs;
}

/** The graph: repo-relative file → repo-relative files it imports. */
function importGraph(): Map<string, string[]> {
  const files = [...sourceFiles(join(REPO, 'src')), ...sourceFiles(join(REPO, 'cli'))];
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const edges: string[] = [];
    for (const spec of importSpecifiers(readFileSync(f, 'utf8'), f)) {
      const target = resolve(dirname(f), spec);
      const candidates = [
        target.replace(/\.c?js$/, '.ts'),
        target.replace(/\.cjs$/, '.cts'),
        target,
        `${target}.ts`,
        join(target, 'index.ts'),
      ];
      const hit = candidates.find((c) => known.has(c));
      if (hit) edges.push(relative(REPO, hit));
    }
    graph.set(relative(REPO, f), [...new Set(edges)]);
  }
  return graph;
}

/** Strongly connected components with more than one file, or a file importing itself (Tarjan). */
function circles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

describe('import graph of src/ and cli/', () => {
  it('parses the import forms the project uses', () => {
    expect(
      importSpecifiers(
        [
          "import { a } from './a.js';",
          "import type { B } from '../b.js';",
          "export * as c from './c/index.js';",
          "export { d, type D } from './d.js';",
          "import './side-effect.js';",
          "const e = await import('./e.js');",
          "let f: import('./f.js').F;",
          "const glob = 'src/**/*.ts'; import { g } from './g.js';",
          "// import { no } from './commented.js';",
          "/* export * from './also-commented.js'; */",
          "import { readFileSync } from 'node:fs';",
        ].join('\n'),
      ),
    ).toEqual(['./a.js', '../b.js', './c/index.js', './d.js', './side-effect.js', './e.js', './f.js', './g.js']);
  });

  it('finds a circle in a graph that has one (the check can fail)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
      ['e', ['e']],
    ]);
    expect(circles(g)).toEqual([['a', 'b', 'c'], ['e']]);
  });

  it('has no import circle besides the named, allow-listed ones', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(50);
    const found = circles(graph);
    const known = (c: string[]) => KNOWN_CIRCLES.find((k) => c.includes(k.anchor) && c.every((f) => k.files.test(f)));
    process.stdout.write(
      `import circles allowed by name (${KNOWN_CIRCLES.length}):\n${KNOWN_CIRCLES.map((k) => `  ${k.anchor} (${k.files.source}): ${k.name}\n`).join('')}`,
    );
    for (const c of found) if (known(c)) process.stdout.write(`  present: ${c.join(' <-> ')}\n`);
    const gone = KNOWN_CIRCLES.filter((k) => !found.some((c) => known(c) === k));
    if (gone.length)
      process.stdout.write(
        `allow-listed circles no longer present (strike them from KNOWN_CIRCLES): ${gone.map((k) => k.anchor).join('; ')}\n`,
      );
    expect(found.filter((c) => !known(c)).map((c) => c.join(' <-> '))).toEqual([]);
  });
});
