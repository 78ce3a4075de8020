/**
 * Entry of every benchmark child process: `child.ts <role> <params as JSON>`. Talks to run.ts over
 * the IPC channel: sends `ready` once connected (and, for a consumer, consuming), waits for `go`
 * (producers) or `stop` (open-ended consumers), sends `result` with its peak RSS and its CPU time
 * (user + system) from `ready` on, connection and set-up excluded, then exits.
 */
import 'reflect-metadata';
import { finish as finishDiagnostics, onNewPeak } from './diagnostics';
import { roles } from './roles';

export interface ChildIo {
  readonly params: Record<string, any>;
  /** Connected and ready: run.ts may start the producer. */
  ready(): void;
  /** Resolves on run.ts's `go`. */
  readonly go: Promise<void>;
  /** Resolves on run.ts's `stop`. */
  readonly stop: Promise<void>;
}

export type Role = (io: ChildIo) => Promise<Record<string, unknown>>;

let peakRss = process.memoryUsage.rss();
const sample = () => {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) {
    peakRss = rss;
    onNewPeak();
  }
};
setInterval(sample, 20).unref();

function send(message: object): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function main(): Promise<void> {
  const [name, json] = process.argv.slice(2);
  const role = roles[name];
  if (!role) throw new Error(`unknown role ${name}`);
  let onGo!: () => void;
  let onStop!: () => void;
  const go = new Promise<void>((r) => (onGo = r));
  const stop = new Promise<void>((r) => (onStop = r));
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'go') onGo();
    if (m?.type === 'stop') onStop();
  });
  let cpuAtReady: NodeJS.CpuUsage | undefined;
  const ready = () => {
    cpuAtReady = process.cpuUsage();
    void send({ type: 'ready' });
  };
  const io: ChildIo = { params: JSON.parse(json), ready, go, stop };
  const result = await role(io);
  const cpu = process.cpuUsage(cpuAtReady);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  sample();
  await finishDiagnostics(name);
  await send({ type: 'result', result: { ...result, peakRssMb: peakRss / 1024 / 1024, cpuMs } });
  process.disconnect();
  // Whatever a client library left open must not keep the process (and the run) alive.
  setTimeout(() => process.exit(0), 200).unref();
}

main().catch(async (err) => {
  await send({ type: 'error', error: String(err?.stack ?? err) }).catch(() => undefined);
  process.exit(1);
});
