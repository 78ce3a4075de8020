/**
 * Issue 7, points 3, 7 and 9 for AMQP, with a consumer in a child process (fixtures/amqp-worker.ts):
 *   3/9. SIGKILL while it holds unacked messages: every one is redelivered to the next consumer;
 *        with the idempotency option (a RedisDedupeStore both share) and an effect keyed by the
 *        envelope id, each effect is applied exactly once;
 *   7.   SIGTERM with handlers in flight (stopOnSignals): they finish and are acked, exit code 0,
 *        nothing lost, what did not finish within the shutdown timeout is redelivered.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import { ClaimResult, DedupeStore, Headers, RedisDedupeStore } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { amqpBus, bounded, CaseBus, counterClass, tickClass, deleteListedQueues } from './amqp-harness';
import { Effects } from './fixtures/effects';
import { Ledger } from './ledger';

const REDIS_URL = process.env.COURIER_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = path.resolve(__dirname, '..', '..');

interface Worker {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWorker(env: Record<string, string>): Worker {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'amqp-worker.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve();
    });
    void exited.then(({ code }) => reject(new Error(`worker exited (${code}) before ready: ${stderr}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

/** Counts the store's "already handled" answers: redeliveries the bus skipped without the handler. */
class CountingStore implements DedupeStore {
  hits = 0;
  constructor(private readonly inner: DedupeStore) {}
  /** Keys found claimed (by the killed worker: its lease had not run out). */
  readonly busy = new Set<string>();
  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const r = await this.inner.claim(key, leaseMs);
    if (r === 'done') this.hits++;
    if (r === 'busy') this.busy.add(key);
    return r;
  }
  complete(key: string, ttlMs: number): Promise<void> {
    return this.inner.complete(key, ttlMs);
  }
  release(key: string): Promise<void> {
    return this.inner.release(key);
  }
}

describe('reliability, AMQP: consumer processes killed and stopped', function () {
  this.timeout(60_000);
  let redis: Redis;
  const buses: CaseBus[] = [];
  const groups: string[] = [];
  const workers: Worker[] = [];
  const runs: Effects[] = [];

  before(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    await redis.ping();
  });

  after(async function () {
    this.timeout(30_000);
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    for (const e of runs) await e.clear().catch(() => undefined);
    await redis?.quit().catch(() => undefined);
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  it('SIGKILL with unacked messages: all redelivered; with the idempotency option each effect applied exactly once', async () => {
    const { url } = await amqpBroker();
    const run = uniq('courier:rel:kill:');
    const effects = new Effects(redis, run);
    runs.push(effects);
    const type = uniq('rel.kill.');
    const group = uniq('relkill');
    groups.push(group);
    const Tick = tickClass(type);
    const total = 3000;
    const ledger = new Ledger('amqp: consumer SIGKILL with unacked (idempotency, Redis)');

    const worker = spawnWorker({
      REL_MODE: 'kill',
      REL_RUN: run,
      REL_URL: url,
      REL_TYPE: type,
      REL_GROUP: group,
      REL_PREFETCH: '100',
      REL_DELAY_MS: '50',
      REL_REDIS_URL: REDIS_URL,
    });
    workers.push(worker);
    await bounded(worker.ready, 30_000, 'the worker to start');
    const publisher = amqpBus(url, { ledger });
    buses.push(publisher);
    await publisher.bus.start();
    await bounded(Promise.all(Array.from({ length: total }, (_, i) => publisher.bus.publish(Tick, { n: i }))), 20_000, 'the publishes');

    const deadline = Date.now() + 20_000;
    while ((await redis.hlen(effects.key('applied'))) < 600) {
      if (Date.now() > deadline) throw new Error('the worker applied fewer than 600 effects in 20 s');
      await sleep(10);
    }
    worker.child.kill('SIGKILL');
    const exit = await bounded(worker.exited, 5000, 'the killed worker to exit');
    assert.equal(exit.signal, 'SIGKILL');
    const atKill = await effects.snapshot();

    // The next consumer: same group, same dedupe store, same effect.
    const store = new CountingStore(new RedisDedupeStore(redis, `${run}:dedupe:`));
    const redelivered = new Set<string>();
    const next = amqpBus(url, {
      onDelivery: (d) => {
        if (d.redelivered) redelivered.add(d.headers[Headers.id]);
      },
      bus: { idempotency: { store, leaseMs: 2000 } },
    });
    buses.push(next);
    next.bus.register(new (counterClass(Tick, undefined, { group, prefetch: 100, work: async (t, ctx) => void (await effects.applyOnce(ctx.id, t.n + 1, 'next')) }))());
    await next.bus.start();
    const until = Date.now() + 20_000;
    while ((await redis.hlen(effects.key('applied'))) < total) {
      if (Date.now() > until) break;
      await sleep(20);
    }
    await sleep(300);
    const end = await effects.snapshot();
    for (const [id, n] of end.calls) for (let i = 0; i < n; i++) ledger.received(id);
    const f = ledger.report();
    const expectedBalance = (total * (total + 1)) / 2;
    const reRuns = [...end.calls.values()].reduce((a, n) => a + n - 1, 0);
    console.log(
      `      worker applied ${atKill.applied.size} before SIGKILL; redelivered to the next consumer: ${redelivered.size} ` +
        `(skipped by the dedupe store: ${store.hits}, handled again: ${redelivered.size - store.hits}, found claimed by the killed worker and waited for its lease: ${store.busy.size}); ` +
        `handler runs after the effect was applied (crash between effect and dedupe mark), refused by the effect's own key: ${end.guarded}; ` +
        `balance ${end.balance} (expected ${expectedBalance})`,
    );
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.ok(redelivered.size > 0, 'the worker held unacked messages');
    assert.equal(end.applied.size, total, 'every effect applied');
    assert.equal(end.balance, expectedBalance, 'each effect applied exactly once');
    assert.equal(reRuns, end.guarded, 'every second handler run was refused by the effect key');
    // Every message the worker took and did not finish came back (its effect is there, by 'next').
    for (const id of redelivered) assert.ok(end.applied.has(id), id);
  });

  it('SIGTERM with handlers in flight: they finish and are acked, exit 0, nothing lost, the unfinished redelivered', async () => {
    const { url } = await amqpBroker();
    const run = uniq('courier:rel:term:');
    const effects = new Effects(redis, run);
    runs.push(effects);
    const type = uniq('rel.term.');
    const group = uniq('relterm');
    groups.push(group);
    const Tick = tickClass(type);
    const total = 2000;
    const SLOW_EVERY = 50;
    const ledger = new Ledger('amqp: SIGTERM with handlers in flight (stopOnSignals)');

    const worker = spawnWorker({
      REL_MODE: 'term',
      REL_RUN: run,
      REL_URL: url,
      REL_TYPE: type,
      REL_GROUP: group,
      REL_PREFETCH: '20',
      REL_DELAY_MS: '100',
      REL_SLOW_EVERY: String(SLOW_EVERY),
      REL_SLOW_MS: '60000',
      REL_SHUTDOWN_MS: '1500',
      REL_REDIS_URL: REDIS_URL,
    });
    workers.push(worker);
    await bounded(worker.ready, 30_000, 'the worker to start');
    const publisher = amqpBus(url, { ledger });
    buses.push(publisher);
    await publisher.bus.start();
    await bounded(Promise.all(Array.from({ length: total }, (_, i) => publisher.bus.publish(Tick, { n: i }))), 20_000, 'the publishes');
    const deadline = Date.now() + 20_000;
    while ((await redis.scard(effects.key('finished'))) < 150) {
      if (Date.now() > deadline) throw new Error('the worker finished fewer than 150 handlers in 20 s');
      await sleep(10);
    }
    const before = await effects.snapshot();
    const termAt = Date.now();
    worker.child.kill('SIGTERM');
    const exit = await bounded(worker.exited, 10_000, 'the worker to exit after SIGTERM');
    const exitMs = Date.now() - termAt;
    const after = await effects.snapshot();
    const inFlight = [...before.started].filter((id) => !before.finished.has(id));
    const unfinished = [...after.started].filter((id) => !after.finished.has(id));
    for (const id of after.finished) ledger.received(id);

    const nextSeen = new Map<string, { n: number; redelivered: boolean }>();
    const next = amqpBus(url);
    buses.push(next);
    next.bus.register(
      new (counterClass(Tick, ledger, {
        group,
        prefetch: 200,
        work: (t, ctx) => void nextSeen.set(ctx.id, { n: t.n, redelivered: ctx.redelivered }),
      }))(),
    );
    await next.bus.start();
    await waitFor(() => ledger.complete, 20_000, 'every confirmed id');
    await sleep(300);
    const f = ledger.report();
    const finishedInFlight = inFlight.filter((id) => after.finished.has(id)).length;
    console.log(
      `      SIGTERM: exit code ${exit.code} after ${exitMs} ms; in flight at the signal: ${inFlight.length} (+ started since), ` +
        `finished and acked: ${finishedInFlight}; unfinished (slower than the 1.5 s shutdown timeout): ${unfinished.length}, ` +
        `redelivered: ${unfinished.filter((id) => nextSeen.get(id)?.redelivered).length}`,
    );
    assert.equal(exit.code, 0);
    assert.equal(exit.signal, null);
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.ok(inFlight.length > 0, 'handlers were in flight');
    for (const id of after.finished) assert.ok(!nextSeen.has(id), `${id} finished in the worker and was acked, yet delivered again`);
    for (const id of unfinished) {
      const seen = nextSeen.get(id);
      assert.ok(seen?.redelivered, `${id} did not finish and must be redelivered`);
      assert.equal(seen.n % SLOW_EVERY, 0, `only the slow handlers may be cut off (${id} had n=${seen.n})`);
    }
    assert.equal(f.duplicates, 0);
  });
});
