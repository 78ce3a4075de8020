import assert from 'node:assert/strict';
import {
  Bus,
  createBus,
  MessageContext,
  PayloadValidationError,
  Publish,
  Publisher,
  RemoteHandlerError,
  RejectMessageError,
  RequestTimeoutError,
  Subscribe,
  Subscriber,
  silentLogger,
  Headers,
  BusStoppedError,
  Delivery,
} from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { GetProduct, OrderCancelled, OrderLineAdded, OrderPlaced, ProductPriceChanged, ProductView } from './fixtures';
import { sleep, waitFor } from '../helpers/wait';

function newBus(broker = new MemoryBroker(), source = 'test-service') {
  return createBus({ transport: memoryTransport({ broker }), source, logger: silentLogger });
}

describe('bus: decorated publishers and subscribers', () => {
  it('a @Publish method validates and publishes its return value; a @Subscribe method gets the instance', async () => {
    const seen: Array<{ event: ProductPriceChanged; ctx: MessageContext }> = [];
    @Subscriber({ group: 'replica' })
    class Replica {
      @Subscribe(ProductPriceChanged)
      async onPrice(event: ProductPriceChanged, ctx: MessageContext) {
        seen.push({ event, ctx });
      }
    }
    @Publisher()
    class Catalog {
      stored = new Map<string, number>();
      @Publish(ProductPriceChanged)
      async changePrice(productId: string, priceCents: number) {
        this.stored.set(productId, priceCents);
        return { productId, priceCents };
      }
    }
    const bus = newBus(undefined, 'catalog-service');
    const catalog = new Catalog();
    bus.register(new Replica(), catalog);
    await bus.start();
    const returned = await catalog.changePrice('p1', 999);
    assert.deepEqual(returned, { productId: 'p1', priceCents: 999 });
    await waitFor(() => seen.length === 1, 2000, 'the event');
    assert.ok(seen[0].event instanceof ProductPriceChanged);
    assert.equal(seen[0].event.priceCents, 999);
    const env = seen[0].ctx.envelope;
    assert.equal(env.type, 'product.price-changed');
    assert.equal(env.source, 'catalog-service');
    assert.equal(env.specversion, '1.0');
    assert.equal(env.attempt, 1);
    assert.equal(env.correlationId, env.id);
    assert.ok(!Number.isNaN(Date.parse(env.time)));
    await bus.stop();
  });

  it('publishing an invalid payload rejects with every violation and sends nothing', async () => {
    let got = 0;
    @Subscriber()
    class Sink {
      @Subscribe(ProductPriceChanged)
      async on() {
        got++;
      }
    }
    @Publisher()
    class Catalog {
      @Publish(ProductPriceChanged)
      async changePrice(productId: unknown, priceCents: unknown) {
        return { productId, priceCents } as never;
      }
    }
    const bus = newBus();
    const catalog = new Catalog();
    bus.register(new Sink(), catalog);
    await bus.start();
    const err = await catalog.changePrice(42, -1).catch((e) => e);
    assert.ok(err instanceof PayloadValidationError);
    assert.deepEqual(err.violations.map((v: { property: string }) => v.property).sort(), ['priceCents', 'productId']);
    await assert.rejects(bus.publish(ProductPriceChanged, { productId: 'p', priceCents: 1, extra: true } as never), PayloadValidationError);
    await sleep(50);
    assert.equal(got, 0);
    await bus.stop();
  });

  it('messages published inside a handler carry the correlation id, causation id and traceparent', async () => {
    const received: MessageContext[] = [];
    @Subscriber({ group: 'g' })
    class Chain {
      constructor(private readonly bus: Bus) {}
      @Subscribe(OrderPlaced)
      async onPlaced(e: OrderPlaced) {
        await this.bus.publish(OrderCancelled, { orderId: e.orderId });
      }
      @Subscribe(OrderCancelled)
      async onCancelled(_: OrderCancelled, ctx: MessageContext) {
        received.push(ctx);
      }
    }
    const bus = newBus();
    bus.register(new Chain(bus));
    await bus.start();
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const id = await bus.publish(OrderPlaced, { orderId: 'o1' }, { correlationId: 'saga-1', headers: { traceparent: tp } });
    await waitFor(() => received.length === 1, 2000, 'the caused message');
    assert.equal(received[0].envelope.correlationId, 'saga-1');
    assert.equal(received[0].envelope.causationId, id);
    assert.equal(received[0].envelope.traceparent, tp);
    await bus.stop();
  });

  it('with asyncContext false, ctx.publish() links the caused message; bus.publish() does not', async () => {
    const received: MessageContext[] = [];
    @Subscriber({ group: 'explicit' })
    class Chain {
      constructor(private readonly bus: Bus) {}
      @Subscribe(OrderPlaced)
      async onPlaced(e: OrderPlaced, ctx: MessageContext) {
        await ctx.publish(OrderCancelled, { orderId: `${e.orderId}-linked` });
        await this.bus.publish(OrderCancelled, { orderId: `${e.orderId}-unlinked` });
      }
      @Subscribe(OrderCancelled)
      async onCancelled(_: OrderCancelled, ctx: MessageContext) {
        received.push(ctx);
      }
    }
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger, asyncContext: false });
    bus.register(new Chain(bus));
    await bus.start();
    const id = await bus.publish(OrderPlaced, { orderId: 'o' }, { correlationId: 'saga-2' });
    await waitFor(() => received.length === 2, 2000, 'both caused messages');
    const byId = Object.fromEntries(received.map((c) => [c.id, c.envelope]));
    const linked = Object.values(byId).find((e) => e.causationId === id);
    assert.ok(linked, 'ctx.publish sets the causation id');
    assert.equal(linked!.correlationId, 'saga-2');
    assert.equal(Object.values(byId).filter((e) => e.causationId === undefined).length, 1, 'bus.publish alone is unlinked');
    await bus.stop();
  });

  it('patterns with several payload classes, and a regular-expression filter', async () => {
    const all: string[] = [];
    const filtered: string[] = [];
    @Subscriber({ group: 'p' })
    class Orders {
      @Subscribe([OrderPlaced, OrderCancelled, OrderLineAdded], { pattern: 'order.#' })
      async any(_: unknown, ctx: MessageContext) {
        all.push(ctx.type);
      }
      @Subscribe([OrderPlaced, OrderCancelled], { pattern: 'order.*', filter: /cancel/ })
      async cancels(_: unknown, ctx: MessageContext) {
        filtered.push(ctx.type);
      }
    }
    const bus = newBus();
    bus.register(new Orders());
    await bus.start();
    await bus.publish(OrderPlaced, { orderId: '1' });
    await bus.publish(OrderCancelled, { orderId: '1' });
    await bus.publish(OrderLineAdded, { orderId: '1' });
    await waitFor(() => all.length === 3 && filtered.length === 1, 2000, 'pattern deliveries');
    assert.deepEqual(all.sort(), ['order.cancelled', 'order.line.added', 'order.placed']);
    assert.deepEqual(filtered, ['order.cancelled']);
    await bus.stop();
  });

  it('same group: competing consumers; different groups: each gets every message', async () => {
    const broker = new MemoryBroker();
    const counts: Record<string, number> = {};
    function subscriberFor(name: string, group: string) {
      @Subscriber({ group })
      class S {
        @Subscribe(OrderPlaced)
        async on() {
          counts[name] = (counts[name] ?? 0) + 1;
          await sleep(1);
        }
      }
      return new S();
    }
    const buses = [
      newBus(broker, 'a').register(subscriberFor('a1', 'A')),
      newBus(broker, 'a').register(subscriberFor('a2', 'A')),
      newBus(broker, 'b').register(subscriberFor('b1', 'B')),
    ];
    for (const b of buses) await b.start();
    for (let i = 0; i < 100; i++) await buses[0].publish(OrderPlaced, { orderId: String(i) });
    await waitFor(() => (counts.a1 ?? 0) + (counts.a2 ?? 0) === 100 && counts.b1 === 100, 3000, 'all deliveries');
    assert.ok(counts.a1 > 0 && counts.a2 > 0, JSON.stringify(counts));
    for (const b of buses) await b.stop();
  });
});

describe('bus: request/reply', () => {
  @Subscriber({ group: 'catalog' })
  class Catalog {
    @Subscribe(GetProduct)
    async get(q: GetProduct): Promise<ProductView> {
      if (q.productId === 'boom') throw new RangeError('no such shelf');
      if (q.productId === 'bad') return { productId: 'bad', priceCents: 'x' } as never;
      return { productId: q.productId, priceCents: 100 };
    }
  }

  it('resolves to the validated reply; many in flight', async () => {
    const bus = newBus();
    bus.register(new Catalog());
    await bus.start();
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => bus.request(GetProduct, { productId: `p${i}` }, { timeoutMs: 2000 })),
    );
    assert.ok(replies[7] instanceof ProductView);
    assert.deepEqual(replies.map((r) => (r as ProductView).productId), Array.from({ length: 100 }, (_, i) => `p${i}`));
    await bus.stop();
  });

  it('rejects with RemoteHandlerError when the handler threw or returned an invalid reply', async () => {
    const bus = newBus();
    bus.register(new Catalog());
    await bus.start();
    const err = await bus.request(GetProduct, { productId: 'boom' }).catch((e) => e);
    assert.ok(err instanceof RemoteHandlerError, String(err));
    assert.equal(err.remoteName, 'RangeError');
    assert.equal(err.remoteMessage, 'no such shelf');
    const invalid = await bus.request(GetProduct, { productId: 'bad' }).catch((e) => e);
    assert.ok(invalid instanceof RemoteHandlerError);
    assert.equal(invalid.remoteName, 'PayloadValidationError');
    await bus.stop();
  });

  it('rejects with RequestTimeoutError when nobody answers', async () => {
    const bus = newBus();
    await bus.start();
    const started = Date.now();
    const err = await bus.request(GetProduct, { productId: 'x' }, { timeoutMs: 200 }).catch((e) => e);
    assert.ok(err instanceof RequestTimeoutError);
    assert.equal(err.timeoutMs, 200);
    assert.ok(Date.now() - started >= 190);
    await bus.stop();
  });
});

describe('bus: failure policy', () => {
  async function deadLetters(broker: MemoryBroker, group: string, name: string, pattern: string) {
    const dead: Delivery[] = [];
    const t = memoryTransport({ broker });
    await t.subscribeDeadLetters({ pattern, group, name, prefetch: 10 }, async (d) => {
      dead.push(d);
      await d.ack();
    });
    await t.connect();
    return { dead, close: () => t.close() };
  }

  it('a handler that throws is retried with backoff, then dead-lettered with class, message and attempts', async () => {
    const broker = new MemoryBroker();
    const attempts: Array<{ attempt: number; at: number }> = [];
    @Subscriber({ group: 'fail' })
    class Failing {
      @Subscribe(OrderPlaced, { retry: { attempts: 4, initialDelayMs: 40, factor: 2 } })
      async on(_: OrderPlaced, ctx: MessageContext) {
        attempts.push({ attempt: ctx.attempt, at: Date.now() });
        throw new TypeError('cannot read stock of amqp://u:hunter2@db');
      }
    }
    const bus = newBus(broker);
    bus.register(new Failing());
    await bus.start();
    const dl = await deadLetters(broker, 'fail', 'Failing.on', 'order.placed');
    await bus.publish(OrderPlaced, { orderId: 'o' });
    await waitFor(() => dl.dead.length === 1, 3000, 'the dead letter');
    assert.deepEqual(attempts.map((a) => a.attempt), [1, 2, 3, 4]);
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i].at);
    assert.ok(gaps[0] >= 18 && gaps[2] >= 75, `backoff grows: ${gaps.join(', ')} ms`);
    const h = dl.dead[0].headers;
    assert.equal(h[Headers.deadReason], 'exhausted');
    assert.equal(h[Headers.deadError], 'TypeError');
    assert.equal(h[Headers.deadMessage], 'cannot read stock of amqp://u:***@db');
    assert.equal(h[Headers.attempt], '4');
    assert.equal(bus.metrics().handlers['fail.Failing.on'].deadLettered, 1);
    await dl.close();
    await bus.stop();
  });

  it('RejectMessageError dead-letters at once; malformed, invalid and unknown types never reach the handler', async () => {
    const broker = new MemoryBroker();
    const handled: string[] = [];
    @Subscriber({ group: 'strict' })
    class Strict {
      @Subscribe([OrderPlaced, OrderCancelled], { pattern: 'order.*', retry: { attempts: 5 } })
      async on(e: OrderPlaced) {
        if (e.orderId === 'reject') throw new RejectMessageError('not for us');
        handled.push(e.orderId);
      }
    }
    const bus = newBus(broker);
    bus.register(new Strict());
    await bus.start();
    const dl = await deadLetters(broker, 'strict', 'Strict.on', 'order.*');
    const raw = memoryTransport({ broker });
    await raw.connect();
    const base = { [Headers.specversion]: '1.0', [Headers.source]: 'raw', [Headers.datacontenttype]: 'application/json' };
    const send = (id: string, type: string, body: string, extra: Record<string, string> = {}) =>
      raw.publish({ topic: type, body: Buffer.from(body), headers: { ...base, [Headers.id]: id, [Headers.type]: type, ...extra } });
    await send('notjson', 'order.placed', '{nope');
    await send('invalid', 'order.placed', JSON.stringify({ orderId: 5 }));
    await send('unknownprop', 'order.placed', JSON.stringify({ orderId: 'x', admin: true }));
    await send('proto', 'order.placed', '{"orderId":"x","__proto__":{"polluted":true}}');
    await send('ctype', 'order.placed', JSON.stringify({ orderId: 'x' }), { [Headers.datacontenttype]: 'text/plain' });
    await send('unknown', 'order.shipped', JSON.stringify({ orderId: 'x' }));
    await send('big', 'order.placed', JSON.stringify({ orderId: 'x'.repeat(2 * 1024 * 1024) }));
    await send('rejected', 'order.placed', JSON.stringify({ orderId: 'reject' }));
    await send('good', 'order.placed', JSON.stringify({ orderId: 'good' }));
    await waitFor(() => dl.dead.length === 8 && handled.length === 1, 3000, '8 dead letters and the good one');
    const reasons = Object.fromEntries(dl.dead.map((d) => [d.headers[Headers.id], d.headers[Headers.deadReason]]));
    assert.deepEqual(reasons, {
      notjson: 'malformed',
      invalid: 'invalid',
      unknownprop: 'invalid',
      proto: 'malformed',
      ctype: 'malformed',
      unknown: 'unknown-type',
      big: 'malformed',
      rejected: 'rejected',
    });
    assert.deepEqual(handled, ['good']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    for (const d of dl.dead) assert.equal(d.headers[Headers.attempt] ?? '1', '1', 'dead-lettered on the first attempt');
    await raw.close();
    await dl.close();
    await bus.stop();
  });

  it('structured-mode CloudEvents are accepted on input', async () => {
    const got: OrderPlaced[] = [];
    @Subscriber({ group: 'structured' })
    class S {
      @Subscribe(OrderPlaced)
      async on(e: OrderPlaced) {
        got.push(e);
      }
    }
    const broker = new MemoryBroker();
    const bus = newBus(broker);
    bus.register(new S());
    await bus.start();
    const raw = memoryTransport({ broker });
    await raw.connect();
    const event = { specversion: '1.0', id: 'e1', source: 'go-service', type: 'order.placed', datacontenttype: 'application/json', data: { orderId: 'from-go' } };
    await raw.publish({ topic: 'order.placed', body: Buffer.from(JSON.stringify(event)), headers: { [Headers.datacontenttype]: 'application/cloudevents+json' } });
    await waitFor(() => got.length === 1, 2000, 'the structured event');
    assert.equal(got[0].orderId, 'from-go');
    await raw.close();
    await bus.stop();
  });

  it('idempotency: a duplicated event is handled once', async () => {
    let effects = 0;
    @Subscriber({ group: 'idem' })
    class S {
      @Subscribe(OrderPlaced)
      async on() {
        effects++;
      }
    }
    const broker = new MemoryBroker();
    const bus = createBus({ transport: memoryTransport({ broker }), source: 's', logger: silentLogger, idempotency: {} });
    bus.register(new S());
    await bus.start();
    const raw = memoryTransport({ broker });
    await raw.connect();
    const msg = {
      topic: 'order.placed',
      body: Buffer.from(JSON.stringify({ orderId: 'dup' })),
      headers: { [Headers.id]: 'same-id', [Headers.type]: 'order.placed', [Headers.datacontenttype]: 'application/json' },
    };
    await raw.publish(msg);
    await raw.publish(msg);
    await raw.publish({ ...msg, headers: { ...msg.headers, [Headers.id]: 'other-id' } });
    await waitFor(() => bus.metrics().handlers['idem.S.on']?.consumed === 3, 2000, 'three deliveries');
    assert.equal(effects, 2);
    await raw.close();
    await bus.stop();
  });
});

describe('bus: graceful shutdown', () => {
  it('stop() waits for handlers in flight, takes nothing new, and is safe twice', async () => {
    const broker = new MemoryBroker();
    let finished = 0;
    let started = 0;
    @Subscriber({ group: 'slow' })
    class Slow {
      @Subscribe(OrderPlaced, { prefetch: 2 })
      async on() {
        started++;
        await sleep(200);
        finished++;
      }
    }
    const bus = newBus(broker);
    bus.register(new Slow());
    await bus.start();
    for (let i = 0; i < 5; i++) await bus.publish(OrderPlaced, { orderId: String(i) });
    await waitFor(() => started === 2, 2000, 'two handlers in flight');
    await Promise.all([bus.stop(), bus.stop()]);
    assert.equal(finished, 2, 'the two in flight finished');
    assert.equal(started, 2, 'nothing new was taken');
    await assert.rejects(bus.publish(OrderPlaced, { orderId: 'late' }), BusStoppedError);
    // The three not taken are still there for the next instance of the group.
    let next = 0;
    @Subscriber({ group: 'slow' })
    class Slow2 {
      @Subscribe(OrderPlaced)
      async on() {
        next++;
      }
    }
    const bus2 = newBus(broker);
    // Same group and handler name as Slow.on, so the same queue.
    Object.defineProperty(Slow2, 'name', { value: 'Slow' });
    bus2.register(new Slow2());
    await bus2.start();
    await waitFor(() => next === 3, 2000, 'the rest at the next instance');
    await bus2.stop();
  });
});
