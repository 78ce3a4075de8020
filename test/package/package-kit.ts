/**
 * What the package specs (consumer.spec.ts, nest.spec.ts) share: running a command, fresh
 * projects installed from npm's cache, and the packed tarball — packed once per test process.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..');

/** npm flags for a consumer's install: from the cache, quiet, no lock file. */
export const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error'];

export interface Run {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (bounded by `timeoutMs`); rejects with its output when it fails. */
export function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** The version of a package this repository installed, so that consumers get it from npm's cache. */
export function locked(name: string): string {
  return `${name}@${(JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version}`;
}

/** A fresh project in `dir` of module `type`, with the files of `appDir` and `packages` installed. */
export async function project(dir: string, type: 'commonjs' | 'module', appDir: string, packages: readonly string[]): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: path.basename(dir), private: true, type }, null, 2));
  for (const f of fs.readdirSync(appDir)) fs.copyFileSync(path.join(appDir, f), path.join(dir, f));
  if (packages.length > 0) await run('npm', ['install', ...NPM_FLAGS, ...packages], dir);
  return dir;
}

let packing: Promise<string> | undefined;

/**
 * The tarball `npm pack` makes of this repository (prepack builds dist/ first: what `npm publish`
 * would upload), made once per process in a folder of its own that is removed at exit.
 */
export function packedTarball(): Promise<string> {
  if (!packing) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-pack-'));
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    // npm runs prepack and prepare, each a full build: up to 5 minutes on a loaded machine.
    packing = run('npm', ['pack', '--json', '--pack-destination', dir, '--loglevel=error'], ROOT, {}, 300_000).then(
      (r) => path.join(dir, (JSON.parse(r.stdout) as { filename: string }[])[0]!.filename),
    );
    packing.catch(() => (packing = undefined));
  }
  return packing;
}
