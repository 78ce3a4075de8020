/**
 * Transpiles lib/, adapters/ and bench/ to plain JavaScript under bench/.build/ once per run, so
 * that the children run on plain node: with ts-node in every child, its compiler (~100 MB)
 * would dominate the peak RSS of both sides and hide the difference the table is about. Types are
 * not checked here (`npm run typecheck` does that); the output sits inside the repository so
 * that node resolves the packages from its node_modules.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const ROOT = path.resolve(__dirname, '..');
const SOURCES = ['lib', 'adapters', 'bench'];
export const BUILD_DIR = path.join(__dirname, '.build');

export function buildChildren(): string {
  fs.rmSync(BUILD_DIR, { recursive: true, force: true });
  for (const dir of SOURCES) {
    for (const file of walk(path.join(ROOT, dir))) {
      const out = path.join(BUILD_DIR, path.relative(ROOT, file)).replace(/\.ts$/, '.js');
      const js = ts.transpileModule(fs.readFileSync(file, 'utf8'), {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.CommonJS,
          target: ts.ScriptTarget.ES2022,
          experimentalDecorators: true,
          esModuleInterop: true,
          // Profiles (--cpu-prof) then point at the TypeScript lines.
          inlineSourceMap: true,
          inlineSources: false,
        },
      }).outputText;
      fs.mkdirSync(path.dirname(out), { recursive: true });
      fs.writeFileSync(out, js);
    }
  }
  return path.join(BUILD_DIR, 'bench', 'child.js');
}

function* walk(dir: string): Generator<string> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(p);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) yield p;
  }
}
