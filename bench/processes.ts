/** Starting benchmark children (bench/child.ts) and talking to them. */
import { ChildProcess, fork } from 'node:child_process';

export interface ChildResult extends Record<string, any> {
  readonly peakRssMb: number;
  /** The child's CPU time (user + system, ms) from its `ready` to its result. */
  readonly cpuMs: number;
}

export class Child {
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly result: Promise<ChildResult>;

  /** `entry`: the transpiled bench/child.js (bench/build.ts). */
  constructor(entry: string, readonly role: string, params: object, cpuProfDir?: string) {
    const execArgv: string[] = [];
    if (cpuProfDir) execArgv.push('--cpu-prof', '--cpu-prof-dir', cpuProfDir, '--cpu-prof-name', `${role}-${Date.now()}.cpuprofile`);
    // The child's stdout goes to our stderr: our stdout is the table or the JSON.
    this.proc = fork(entry, [role, JSON.stringify(params)], { execArgv, stdio: ['ignore', 2, 'inherit', 'ipc'] });
    let onReady!: () => void;
    let onResult!: (r: ChildResult) => void;
    let onError!: (e: Error) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      this.proc.once('exit', (code) => reject(new Error(`${role} exited (${code}) before it was ready`)));
    });
    this.result = new Promise<ChildResult>((resolve, reject) => {
      onResult = resolve;
      onError = reject;
      this.proc.once('exit', (code, signal) => reject(new Error(`${role} exited (${code ?? signal}) without a result`)));
    });
    // Rejections nobody awaited yet must not end the run: run.ts awaits them in order.
    this.ready.catch(() => undefined);
    this.result.catch(() => undefined);
    this.proc.on('message', (m: { type: string; result?: ChildResult; error?: string }) => {
      if (m.type === 'ready') onReady();
      else if (m.type === 'result') onResult(m.result!);
      else if (m.type === 'error') onError(new Error(`${role}: ${m.error}`));
    });
  }

  send(type: 'go' | 'stop'): void {
    if (this.proc.connected) this.proc.send({ type });
  }

  /** Lets it exit by itself (a --cpu-prof profile is written on exit), else ends it by its PID. */
  async end(graceMs = 5000): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise((r) => this.proc.once('exit', r)),
        new Promise((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
    }
    this.kill();
  }

  /** Ends the process by its PID if it is still running. */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null && this.proc.pid) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}
