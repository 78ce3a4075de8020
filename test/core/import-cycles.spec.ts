// lib/ reads bottom-up (issue 18 point 4): no import cycle among its modules, type-only imports
// included. The graph comes from the TypeScript compiler's own parser (every import, `import type`,
// `export ... from` and `import('...')` type), so it cannot miss an edge a regex would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const root = path.join(__dirname, '..', '..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The relative module specifiers `file` imports, in any form. */
function specifiers(file: string): string[] {
  const src = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    } else if (ts.isCallExpression(node) && node.arguments.length === 1 && ts.isStringLiteral(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(src);
  return out.filter((s) => s.startsWith('.'));
}

function resolve(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [base, `${base}.ts`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/** The module graph of `dir` (edges to files outside it are left out). */
export function importGraph(dir: string): Map<string, string[]> {
  const files = sourceFiles(dir);
  const inDir = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    graph.set(f, specifiers(f).map((s) => resolve(f, s)).filter((t): t is string => t !== undefined && inDir.has(t)));
  }
  return graph;
}

/** Every cycle found by a depth-first search, each as the files around it. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const to of graph.get(f) ?? []) {
      if (state.get(to) === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to]);
      else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...graph.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}

describe('lib/ has no import cycle', () => {
  it('finds a cycle where there is one (the checker works)', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    assert.deepEqual(findCycles(g), [['a', 'b', 'c', 'a']]);
    assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', []]])), []);
    const self = importGraph(path.join(root, 'test', 'core'));
    assert.ok([...self.values()].some((to) => to.some((t) => t.endsWith('fixtures.ts'))), 'the graph sees imports');
  });

  it('no module of lib/ imports itself back, type-only imports included', () => {
    const cycles = findCycles(importGraph(path.join(root, 'lib')));
    const names = cycles.map((c) => c.map((f) => path.relative(root, f)).join(' -> '));
    assert.deepEqual(names, [], `import cycles in lib/:\n${names.join('\n')}`);
  });
});
