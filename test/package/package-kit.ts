/**
 * What the package specs (consumer.spec.ts, nest.spec.ts) share: running a command, fresh
 * projects installed from npm's cache, and the packed tarball — packed once per test process.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.join(__dirname, '..', '..');

/**
 * npm flags for a consumer's install: from the cache, quiet, no lock file. A registry request that
 * stalls gives up after 30 s and is tried again (npm's own default waits 5 minutes, longer than
 * the specs' set-up; a CI run lost the nest spec's whole `before`, most likely to such a stall).
 */
export const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--no-package-lock', '--loglevel=error', '--fetch-timeout=30000', '--fetch-retries=4'];

export interface Run {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to its end; rejects with its output when it fails. Bounded by `timeoutMs`: then
 * its whole process group is killed and the promise rejects at once, with what it printed so far
 * (a child it left holding the pipes cannot keep the caller waiting).
 */
export function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve({ stdout, stderr });
    };
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      finish(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (t: string) => (stdout += t));
    child.stderr!.setEncoding('utf8').on('data', (t: string) => (stderr += t));
    child.on('error', (err) => finish(err));
    child.on('close', (code, signal) => finish(code === 0 ? undefined : new Error(`exit ${code ?? signal}`)));
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
