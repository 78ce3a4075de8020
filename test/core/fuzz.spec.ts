/**
 * Fuzzing the receive path: random and mutated messages (bytes, headers, JSON with __proto__ and
 * constructor) never crash the consumer, never reach a handler unvalidated, each one ends handled
 * or dead-lettered, and Object.prototype stays untouched.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBus, Delivery, Headers, silentLogger, Subscribe, Subscriber } from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { OrderCancelled, OrderPlaced } from './fixtures';
import { waitFor } from '../helpers/wait';

const valid = { orderId: 'o-1', quantity: 2 };

const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
  fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.record({ orderId: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), quantity: fc.oneof(fc.integer(), fc.string()) }).map((v) => Buffer.from(JSON.stringify(v))),
  fc.constantFrom(
    '{"orderId":"x","__proto__":{"polluted":1}}',
    '{"orderId":"x","constructor":{"prototype":{"polluted":1}}}',
    '{"__proto__":{"orderId":"x"}}',
    '{"orderId":"x","nested":{"__proto__":{"polluted":1}}}',
    '{"orderId":{"toString":"x"}}',
    '\uFEFF{"orderId":"x"}',
    '{"orderId":"x"',
  ).map((s) => Buffer.from(s)),
  // Mutations of a valid body: flip one byte, truncate.
  fc.tuple(fc.nat(40), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
    const buf = Buffer.from(JSON.stringify(valid));
    buf[i % buf.length] = b;
    return buf;
  }),
  fc.nat(30).map((n) => Buffer.from(JSON.stringify(valid)).subarray(0, n)),
);

const randomHeaders = fc.record(
  {
    [Headers.id]: fc.oneof(fc.uuid(), fc.string(), fc.constant('')),
    [Headers.type]: fc.constantFrom('order.placed', 'order.cancelled', 'order.unknown', '', '__proto__'),
    [Headers.datacontenttype]: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/cloudevents+json', '', 'application/xml'),
    [Headers.specversion]: fc.constantFrom('1.0', '0.3', ''),
    [Headers.attempt]: fc.oneof(fc.constant('1'), fc.string()),
    __proto__: fc.string(),
    constructor: fc.string(),
  },
  { requiredKeys: [] },
);
const goodHeaders = fc.uuid().map((id) => ({ [Headers.id]: id, [Headers.type]: 'order.placed', [Headers.datacontenttype]: 'application/json' }));
const headers = fc.oneof(randomHeaders, goodHeaders);

describe('fuzzing the receive path', function () {
  this.timeout(60_000);

  it('3,000 random and mutated messages: no crash, nothing unvalidated, each handled or dead-lettered', async () => {
    const broker = new MemoryBroker();
    let handled = 0;
    let unvalidated = 0;
    @Subscriber({ group: 'fuzz' })
    class Target {
      @Subscribe([OrderPlaced, OrderCancelled], { pattern: 'order.*', retry: { attempts: 1 } })
      async on(event: OrderPlaced | OrderCancelled) {
        handled++;
        if (!(event instanceof OrderPlaced || event instanceof OrderCancelled) || typeof event.orderId !== 'string') unvalidated++;
      }
    }
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'fuzz', logger: silentLogger });
    bus.register(new Target());
    await bus.start();
    let dead = 0;
    const dl = memoryTransport({ broker });
    await dl.subscribeDeadLetters({ pattern: 'order.*', group: 'fuzz', name: 'Target.on', prefetch: 100 }, async (d: Delivery) => {
      dead++;
      await d.ack();
    });
    await dl.connect();
    const raw = memoryTransport({ broker });
    await raw.connect();
    const samples = fc.sample(fc.tuple(bodies, headers, fc.constantFrom('order.placed', 'order.cancelled', 'order.unknown')), { numRuns: 3000, seed: 42 });
    for (const [body, h, topic] of samples) {
      await raw.publish({ topic, body, headers: h as Record<string, string> });
    }
    await waitFor(() => handled + dead === samples.length, 30_000, 'every message handled or dead-lettered');
    assert.equal(unvalidated, 0);
    assert.ok(handled > 0 && dead > 0, `both paths exercised: ${handled} handled, ${dead} dead`);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getOwnPropertyNames(Object.prototype).includes('polluted'), false);
    console.log(`      fuzz: ${samples.length} messages, ${handled} handled, ${dead} dead-lettered`);
    await Promise.all([raw.close(), dl.close(), bus.stop()]);
  });
});
