import assert from 'node:assert/strict';
import Redis from 'ioredis';
import {
  ClaimResult,
  createBus,
  DedupeStore,
  MemoryDedupeStore,
  OutgoingMessage,
  PublishOptions,
  RedisDedupeStore,
  silentLogger,
  Subscribe,
  Subscriber,
  TransportWrapper,
} from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { OrderPlaced } from './fixtures';
import { sleep, uniq, waitFor } from '../helpers/wait';

const REDIS_URL = process.env.COURIER_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function connectRedis(): Promise<Redis> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
  await redis.connect().catch((err) => {
    throw new Error(`Redis does not answer at ${REDIS_URL}: ${err.message}`);
  });
  return redis;
}

async function dropKeys(redis: Redis, prefix: string): Promise<void> {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
}

/** Publishes every message twice, the same envelope (id included): a publisher that re-sent after a lost confirm. */
class DuplicatingTransport extends TransportWrapper {
  readonly sent: OutgoingMessage[] = [];
  override async publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    this.sent.push(message);
    await Promise.all([super.publish(message, options), super.publish(message, options)]);
  }
}

interface Outcome {
  /** Handler runs per order id (failed ones included). */
  readonly calls: Map<string, number>;
  /** Handler runs that succeeded, per order id. */
  readonly handled: Map<string, number>;
  /** Runs of one id's handler seen at the same time, at most. */
  readonly overlap: number;
  /** What a plain consumer of the group found left in the queue afterwards. */
  readonly leftOver: number;
  readonly deadLetters: number;
}

/**
 * `ids` orders, each published twice at once (the same envelope), to the idempotent handler of
 * one bus per store (one group, prefetch 10), which takes 50 ms; `failFirst`: each id's first
 * run throws. Then a plain consumer of the group collects what is left.
 */
async function duplicates(stores: DedupeStore[], options: { ids: number; failFirst?: boolean; again?: boolean }): Promise<Outcome> {
  const broker = new MemoryBroker();
  const group = uniq('dedupe-');
  const calls = new Map<string, number>();
  const handled = new Map<string, number>();
  let deadLetters = 0;
  const running = new Map<string, number>();
  let overlap = 0;
  @Subscriber({ group })
  class Worker {
    @Subscribe(OrderPlaced, { prefetch: 10, idempotent: true, retry: { attempts: 3, initialDelayMs: 30 } })
    async on(e: OrderPlaced) {
      const n = (calls.get(e.orderId) ?? 0) + 1;
      calls.set(e.orderId, n);
      const now = (running.get(e.orderId) ?? 0) + 1;
      running.set(e.orderId, now);
      overlap = Math.max(overlap, now);
      await sleep(50);
      running.set(e.orderId, running.get(e.orderId)! - 1);
      if (options.failFirst && n === 1) throw new Error('first run fails');
      handled.set(e.orderId, (handled.get(e.orderId) ?? 0) + 1);
    }
  }
  const workers = stores.map((store) => {
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'dedupe-test', logger: silentLogger, idempotency: { store } });
    bus.register(new Worker());
    bus.on('deadLetter', () => deadLetters++);
    return bus;
  });
  const publisherTransport = new DuplicatingTransport(memoryTransport({ broker }));
  const publisher = createBus({ transport: publisherTransport, source: 'dedupe-test', logger: silentLogger });
  try {
    for (const w of workers) await w.start();
    await publisher.start();
    for (let i = 0; i < options.ids; i++) await publisher.publish(OrderPlaced, { orderId: `o${i}` });
    await waitFor(() => handled.size === options.ids, 10_000, 'every order handled');
    if (options.again) {
      // A later redelivery of the same envelopes (a copy the broker kept, a re-publish): skipped.
      await sleep(100);
      for (const m of [...publisherTransport.sent]) await publisherTransport.inner.publish(m);
    }
    // Time for the second copies (and retries) to settle.
    await sleep(500);
  } finally {
    for (const w of workers) await w.stop();
  }
  let leftOver = 0;
  @Subscriber({ group })
  class Collector {
    @Subscribe(OrderPlaced)
    async on() {
      leftOver++;
    }
  }
  const collector = createBus({ transport: memoryTransport({ broker }), source: 'dedupe-test', logger: silentLogger });
  collector.register(new Collector());
  await collector.start();
  await sleep(200);
  await collector.stop();
  await publisher.stop();
  return { calls, handled, overlap, leftOver, deadLetters };
}

function assertOnce(o: Outcome, ids: number, callsPerId: number): void {
  assert.equal(o.handled.size, ids);
  assert.equal(o.overlap, 1, 'never two runs of one id at once');
  const twice = [...o.handled].filter(([, n]) => n !== 1);
  assert.deepEqual(twice, [], 'each order handled once');
  const runs = [...o.calls].filter(([, n]) => n !== callsPerId);
  assert.deepEqual(runs, [], `each order's handler ran ${callsPerId} time(s)`);
  assert.equal(o.leftOver, 0, 'both copies were settled (none left in the queue)');
  assert.equal(o.deadLetters, 0);
}

describe('dedupe stores', () => {
  it('memory: claim, then done or released; a claim expires with its lease; bounded, oldest first', async () => {
    let now = 0;
    const store = new MemoryDedupeStore(3, () => now);
    assert.equal(await store.claim('a', 100), 'claimed');
    assert.equal(await store.claim('a', 100), 'busy');
    await store.release('a');
    assert.equal(await store.claim('a', 100), 'claimed', 'released: claimable again');
    await store.complete('a', 1000);
    assert.equal(await store.claim('a', 100), 'done');
    await store.release('a');
    assert.equal(await store.claim('a', 100), 'done', 'release leaves a done key');
    assert.equal(await store.claim('b', 100), 'claimed');
    now = 101;
    assert.equal(await store.claim('b', 100), 'claimed', 'the lease expired');
    for (const k of ['c', 'd', 'e']) await store.complete(k, 1000);
    assert.equal(store.size, 3);
    assert.equal(await store.claim('e', 100), 'done');
    now = 1200;
    assert.equal(await store.claim('e', 100), 'claimed', 'done expired');
  });

  it('redis (127.0.0.1:6379, or COURIER_REDIS_URL): shared between instances, leases and TTLs expire, release only drops its own claim', async () => {
    const redis = await connectRedis();
    const prefix = `${uniq('courier-test:')}:`;
    try {
      const a = new RedisDedupeStore(redis, prefix);
      const b = new RedisDedupeStore(redis, prefix);
      assert.equal(await a.claim('id-1', 5000), 'claimed');
      assert.equal(await b.claim('id-1', 5000), 'busy', 'claimed by another instance');
      await b.release('id-1');
      assert.equal(await b.claim('id-1', 5000), 'busy', "b's release did not drop a's claim");
      await a.release('id-1');
      assert.equal(await b.claim('id-1', 5000), 'claimed', 'released by its holder');
      await b.complete('id-1', 200);
      assert.equal(await a.claim('id-1', 5000), 'done', 'seen by another instance');
      await sleep(300);
      assert.equal(await a.claim('id-1', 100), 'claimed', 'done expired');
      await sleep(200);
      assert.equal(await b.claim('id-1', 5000), 'claimed', 'the lease expired (a holder that died)');
      await a.release('id-1');
      assert.equal(await a.claim('id-1', 5000), 'busy', "a's expired claim's release did not drop b's claim");
      await redis.set(`${prefix}legacy`, '1', 'PX', 5000);
      assert.equal(await a.claim('legacy', 5000), 'done', 'a key of the has/add version counts as done');
    } finally {
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });
});

describe('bus: idempotent handlers and duplicates in flight at once', function () {
  this.timeout(30_000);

  it('memory store: two copies of each of 20 envelopes in flight at once (prefetch 10) are handled once, both acked', async () => {
    assertOnce(await duplicates([new MemoryDedupeStore()], { ids: 20 }), 20, 1);
  });

  it('redis store, two instances of the group: the two copies, one at each, are handled once', async () => {
    const redis = await connectRedis();
    const prefix = `${uniq('courier-test:')}:`;
    try {
      const o = await duplicates([new RedisDedupeStore(redis, prefix), new RedisDedupeStore(redis, prefix)], { ids: 20 });
      assertOnce(o, 20, 1);
    } finally {
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });

  it('a failing run releases its claim: the copy or the retry that comes next handles it, once', async () => {
    const o = await duplicates([new MemoryDedupeStore()], { ids: 10, failFirst: true });
    assertOnce(o, 10, 2);
  });

  it('redis: a failing run releases its claim; a later redelivery after success is still skipped', async () => {
    const redis = await connectRedis();
    const prefix = `${uniq('courier-test:')}:`;
    try {
      const o = await duplicates([new RedisDedupeStore(redis, prefix), new RedisDedupeStore(redis, prefix)], { ids: 10, failFirst: true, again: true });
      assertOnce(o, 10, 2);
    } finally {
      await dropKeys(redis, prefix);
      redis.disconnect();
    }
  });

  it('a copy whose id a holder claimed and never finished (it died) waits for the lease, then is handled: never acked blindly', async () => {
    const inner = new MemoryDedupeStore();
    const results: ClaimResult[] = [];
    /** Before each key's first claim, a "dead holder" claims it for 300 ms and never completes. */
    const store: DedupeStore = {
      async claim(key, leaseMs) {
        if (!results.length) await inner.claim(key, 300);
        const r = await inner.claim(key, leaseMs);
        results.push(r);
        return r;
      },
      complete: (key, ttlMs) => inner.complete(key, ttlMs),
      release: (key) => inner.release(key),
    };
    const broker = new MemoryBroker();
    const handled: string[] = [];
    @Subscriber({ group: uniq('dead-holder-') })
    class Worker {
      @Subscribe(OrderPlaced, { idempotent: true })
      async on(e: OrderPlaced) {
        handled.push(e.orderId);
      }
    }
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'dedupe-test', logger: silentLogger, idempotency: { store } });
    bus.register(new Worker());
    await bus.start();
    try {
      await bus.publish(OrderPlaced, { orderId: 'held' });
      await waitFor(() => handled.length === 1, 5000, 'handled after the lease');
      assert.equal(results[0], 'busy');
      assert.equal(results.at(-1), 'claimed');
      assert.deepEqual(handled, ['held']);
    } finally {
      await bus.stop();
    }
  });
});
