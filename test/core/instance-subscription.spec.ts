/**
 * Instance subscriptions through the bus (issue 14, point 11): `@Subscribe(..., { instance: true })`
 * with `createBus({ instanceId })`, on the memory transport. The promise itself (what is published
 * while the instance is away waits for it) is a transport promise, proven on every adapter by the
 * conformance suite and through connection cuts in test/reliability/instance-cuts.spec.ts.
 */
import assert from 'node:assert/strict';
import { createBus, MessageContext, silentLogger, StartupError, Subscribe, Subscriber } from '../../lib';
import type { SubscriptionSpec, Transport } from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { waitFor } from '../helpers/wait';
import { ProductPriceChanged } from './fixtures';

@Subscriber({ group: 'catalogue' })
class PriceReplica {
  readonly prices = new Map<string, number>();
  @Subscribe(ProductPriceChanged, { instance: true })
  async onPrice(e: ProductPriceChanged, _ctx: MessageContext): Promise<void> {
    this.prices.set(e.productId, e.priceCents);
  }
}

/** A transport that records the specs it was asked to subscribe. */
function recording(inner: Transport, specs: SubscriptionSpec[]): Transport {
  const subscribe = inner.subscribe.bind(inner);
  inner.subscribe = (spec, handler) => (specs.push(spec), subscribe(spec, handler));
  return inner;
}

describe('instance subscriptions (bus)', () => {
  it('the spec names the instance `<source>.<instanceId>` and the grace, and has no group (the class group does not apply)', async () => {
    const specs: SubscriptionSpec[] = [];
    const bus = createBus({ transport: recording(memoryTransport(), specs), source: 'orders', instanceId: 'order-1', instanceExpiresAfterMs: 5000, logger: silentLogger });
    bus.register(new PriceReplica());
    await bus.start();
    await bus.stop();
    assert.equal(specs.length, 1);
    assert.equal(specs[0].group, undefined);
    assert.equal(specs[0].instance, 'orders.order-1');
    assert.equal(specs[0].expiresAfterMs, 5000);
    assert.equal(specs[0].name, 'PriceReplica.onPrice');
  });

  it('start-up refuses an instance handler without instanceId, with an explicit group, or on a transport without the capability', async () => {
    @Subscriber()
    class Both {
      @Subscribe(ProductPriceChanged, { instance: true, group: 'g' })
      async on(): Promise<void> {}
    }
    const t = memoryTransport();
    Object.defineProperty(t, 'capabilities', { value: { ...t.capabilities, instanceSubscriptions: false } });
    const bus = createBus({ transport: t, source: 's', logger: silentLogger });
    bus.register(new PriceReplica(), new Both());
    const err = await bus.start().catch((e) => e);
    assert.ok(err instanceof StartupError, String(err));
    const text = err.problems.join('\n');
    for (const expected of [
      "PriceReplica.onPrice: instance needs the bus's instanceId",
      'PriceReplica.onPrice: instance needs a transport with instance subscriptions',
      'Both.on: instance and group exclude each other',
    ]) {
      assert.ok(text.includes(expected), `missing "${expected}" in:\n${text}`);
    }
  });

  it('a replica restarted with the same instanceId gets what was published while it was down', async () => {
    const broker = new MemoryBroker();
    const publisher = createBus({ transport: memoryTransport({ broker }), source: 'products', logger: silentLogger });
    await publisher.start();
    const first = new PriceReplica();
    const before = createBus({ transport: memoryTransport({ broker }), source: 'orders', instanceId: 'order-1', logger: silentLogger });
    before.register(first);
    await before.start();
    await publisher.publish(ProductPriceChanged, { productId: 'p1', priceCents: 100 });
    await waitFor(() => first.prices.size === 1, 2000, 'the first event');
    await before.stop();
    for (let i = 0; i < 10; i++) await publisher.publish(ProductPriceChanged, { productId: `p${i}`, priceCents: 200 + i });
    const second = new PriceReplica();
    const after = createBus({ transport: memoryTransport({ broker }), source: 'orders', instanceId: 'order-1', logger: silentLogger });
    after.register(second);
    await after.start();
    await waitFor(() => second.prices.size === 10, 2000, 'the 10 events published while it was down');
    assert.equal(second.prices.get('p9'), 209);
    await Promise.all([after.stop(), publisher.stop()]);
  });
});
