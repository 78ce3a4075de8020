/**
 * Every path a document names exists in the repository, and no document (nor a source comment)
 * points outside it: README.md and docs/*.md are what users read, and a path into another checkout
 * (`../shared/...`) or an old location is a dead end for them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const TOP = ['lib', 'adapters', 'test', 'docs', 'samples', 'bench', 'scripts', 'bin'];
const TOP_FILES = ['README.md', 'package.json', 'tsconfig.json', '.mocharc.json'];

function documents(): string[] {
  return ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(join(ROOT, dir))) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) sources(path, out);
    else if (/\.(ts|js|md|sh|json|conf)$/.test(name)) out.push(path);
  }
  return out;
}

/**
 * The repository paths a text names: inside backticks or a Markdown link target, starting with
 * one of the top-level folders (or naming a top-level file). Globs and placeholders are skipped.
 */
export function namedPaths(text: string): string[] {
  const found = new Set<string>();
  const candidates: string[] = [];
  for (const m of text.matchAll(/`([^`\n]+)`/g)) candidates.push(m[1]);
  for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) candidates.push(m[1]);
  for (const raw of candidates) {
    const c = raw.trim().replace(/^\.\//, '').replace(/[.,:;]$/, '');
    // Build output (a dot folder such as bench/.build/) exists only after a build.
    if (/[*<>{}$ ]|\.\.\.|\\|\/\./.test(c) || /^[a-z]+:\/\//.test(c)) continue;
    const top = c.split('/')[0];
    if ((TOP.includes(top) && c.includes('/')) || TOP_FILES.includes(c)) found.add(c.replace(/:\d+(-\d+)?$/, ''));
  }
  return [...found];
}

/**
 * What the repository holds: its tracked files and their folders. A path that exists only in this
 * working tree (an untracked file) does not count; build output that .gitignore names (dist/,
 * docs/api/) does, since the documented commands make it.
 */
function inRepository(): (path: string) => boolean {
  const tracked = new Set<string>();
  for (const file of execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean)) {
    const parts = file.split('/');
    for (let i = 1; i <= parts.length; i++) tracked.add(parts.slice(0, i).join('/'));
  }
  const ignoredOutput = (p: string): boolean => {
    try {
      execFileSync('git', ['check-ignore', '-q', '--no-index', p], { cwd: ROOT });
      return true;
    } catch {
      return false;
    }
  };
  return (p) => tracked.has(p.replace(/\/$/, '')) || ignoredOutput(p);
}

describe('documents name only paths that exist in the repository', () => {
  const exists = inRepository();
  for (const doc of documents()) {
    it(`${doc}: every repository path it names exists`, () => {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      const missing = namedPaths(text).filter((p) => !exists(p));
      assert.deepEqual(missing, [], `${doc} names paths that do not exist`);
    });
  }

  it('no document or source file points outside the repository (../shared)', () => {
    const files = [...documents(), ...['lib', 'adapters', 'test', 'samples', 'bench', 'scripts'].flatMap((d) => sources(d))];
    const offenders = files.filter((f) => /\.\.\/shared\b|\/work\/shared\b/.test(readFileSync(join(ROOT, f), 'utf8')) && f !== relative(ROOT, __filename));
    assert.deepEqual(offenders, []);
  });

  it('the scanner sees backticked and linked paths, and skips globs and URLs', () => {
    assert.deepEqual(
      namedPaths('see `lib/bus.ts`, [x](docs/testing.md#y), `test/*.spec.ts`, `amqp://h/x`, `docs/` and `lib/a.ts:12`').sort(),
      ['docs/', 'docs/testing.md', 'lib/a.ts', 'lib/bus.ts'],
    );
  });
});
