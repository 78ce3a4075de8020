/**
 * What the per-key order and replay specs share: worker processes (real child processes, spawned
 * with ts-node), their output lines, the order check, and the deletion of what a run declared.
 */
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import assert from 'node:assert/strict';
import { memoryTransport } from '../../adapters/memory';
import { mqttTransport } from '../../adapters/mqtt';
import { createBus, silentLogger, StartupError } from '../../lib';
import { rawConnection } from '../adapters/amqp/amqp-fixture';
import { Handling, parseHandling } from './fixtures/steps';

const ROOT = path.resolve(__dirname, '..', '..');

export interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Every output line but `ready`. */
  readonly lines: string[];
}

export function spawnWorker(fixture: string, name: string, env: Record<string, string>, onLine?: (line: string) => void): Worker {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', fixture)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const lines: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line === 'ready') return resolve();
      lines.push(line);
      onLine?.(line);
    });
    void exited.then(({ code }) => reject(new Error(`worker ${name} exited (${code}) before ready: ${stderr}`)));
  });
  ready.catch(() => undefined);
  return { name, child, ready, exited, lines };
}

export interface OrderReport {
  readonly handlings: number;
  readonly lost: number;
  readonly unexpected: number;
  /** Handlings of a (key, seq) handled before. */
  readonly duplicates: number;
  /** First handlings of a seq that start after the first handling of a later seq of its key. */
  readonly inversions: number;
  /** First handlings of seq n+1 that start before the first handling of seq n ended. */
  readonly overlaps: number;
  readonly perWorker: Record<string, number>;
}

/**
 * The order check, per key: its handlings sorted by start time (one monotonic clock for every
 * process). A redelivery of what was handled already (the message in flight when its consumer was
 * killed) is a duplicate, allowed; the first handlings must come in publish (seq) order, one after
 * the other: seq n+1 starts only after seq n's first handling ended.
 */
export function checkOrder(all: readonly Handling[], keys: readonly string[], seqs: number): OrderReport {
  const byKey = new Map<string, Handling[]>();
  const perWorker: Record<string, number> = {};
  let unexpected = 0;
  for (const h of all) {
    perWorker[h.worker] = (perWorker[h.worker] ?? 0) + 1;
    if (!keys.includes(h.key) || h.seq >= seqs) {
      unexpected++;
      continue;
    }
    let list = byKey.get(h.key);
    if (!list) byKey.set(h.key, (list = []));
    list.push(h);
  }
  let lost = 0;
  let duplicates = 0;
  let inversions = 0;
  let overlaps = 0;
  for (const key of keys) {
    const list = (byKey.get(key) ?? []).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    const first = new Map<number, Handling>();
    let highest = -1;
    for (const h of list) {
      if (first.has(h.seq)) {
        duplicates++;
        continue;
      }
      first.set(h.seq, h);
      if (h.seq < highest) inversions++;
      highest = Math.max(highest, h.seq);
    }
    for (let s = 0; s < seqs; s++) {
      const h = first.get(s);
      if (!h) lost++;
      const next = first.get(s + 1);
      if (h && next && next.start < h.end) overlaps++;
    }
  }
  return { handlings: all.length, lost, unexpected, duplicates, inversions, overlaps, perWorker };
}

export function handlingsOf(workers: readonly Worker[]): Handling[] {
  return workers.flatMap((w) => w.lines.map(parseHandling).filter((h): h is Handling => h !== undefined));
}

/** Deletes queues and exchanges by name, a channel each (a missing one closes its channel). */
export async function deleteAll(queues: readonly string[], exchanges: readonly string[]): Promise<void> {
  const conn = await rawConnection();
  try {
    for (const [kind, name] of [...queues.map((q) => ['q', q] as const), ...exchanges.map((e) => ['e', e] as const)]) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await (kind === 'q' ? ch.deleteQueue(name) : ch.deleteExchange(name)).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * Registers one case per transport without the capability (memory, MQTT): a bus with `subscriber`
 * is refused at start with a StartupError whose message matches `refusal`, before connecting.
 */
export function refusedWithoutCapability(subscriber: () => object, refusal: RegExp): void {
  for (const [name, make] of [
    ['memory', () => memoryTransport()],
    ['MQTT', () => mqttTransport({ url: 'mqtt://127.0.0.1:1' })],
  ] as const) {
    it(`${name}: refused at start with a clear error, before connecting`, async () => {
      const bus = createBus({ transport: make(), source: 'refused', logger: silentLogger });
      bus.register(subscriber());
      await assert.rejects(bus.start(), (err: unknown) => err instanceof StartupError && refusal.test(err.message));
    });
  }
}
