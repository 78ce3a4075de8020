/**
 * Runs the built `courier` command (bin/courier.js -> dist/, built by `npm ci` / `node scripts/build.js`)
 * as a child process, as a user would: bounded by a timeout, its output collected.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');
export const ROOT = path.join(__dirname, '..', '..');

export interface Ran {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A running command: its output so far, and its exit. */
export interface Running {
  readonly proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Lines of stdout parsed as JSON (the complete ones). */
  json<T = Record<string, unknown>>(): T[];
  readonly exit: Promise<Ran>;
}

/** Starts `node <script> args` (default: the courier command). */
export function start(args: readonly string[], options: { env?: NodeJS.ProcessEnv; script?: string; nodeArgs?: string[]; timeoutMs?: number } = {}): Running {
  const proc = spawn(process.execPath, [...(options.nodeArgs ?? []), options.script ?? BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, COURIER_URL: '', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b));
  proc.stderr!.on('data', (b: Buffer) => (err += b));
  const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  const exit = new Promise<Ran>((resolve) =>
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: out, stderr: err });
    }),
  );
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    json: <T>() =>
      out
        .split('\n')
        .slice(0, -1)
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as T),
    exit,
  };
}

/** Runs `courier args` to its end. */
export function courier(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Ran> {
  return start(args, options).exit;
}

/** The JSON lines of a finished run's stdout. */
export function jsonLines<T = Record<string, unknown>>(r: Ran): T[] {
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}
