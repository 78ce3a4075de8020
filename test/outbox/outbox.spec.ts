/**
 * Issue 16, points 1-4 and 6(b), on PostgreSQL and on SQLite files, over the memory transport:
 * publish joins the caller's transaction (a rollback publishes nothing; the negative control
 * publishes before the rollback and announces what never existed), the same envelope and
 * validation as bus.publish, @Publish through within(), per-key order with a failing row holding
 * back only its own key, the dead state, leases, two relays on one table, stop, purge, the commit
 * wake-up, the inbox (a redelivered copy and two copies at once apply once), the meter.
 */
import assert from 'node:assert/strict';
import 'reflect-metadata';
import { IsInt, IsString } from 'class-validator';
import { memoryTransport } from '../../adapters/memory';
import {
  Bus,
  BusNotStartedError,
  createBus,
  Headers,
  Message,
  MessageContext,
  OutgoingMessage,
  PayloadValidationError,
  Publish,
  Publisher,
  PublishOptions,
  silentLogger,
  StartupError,
  Subscribe,
  Subscriber,
  Transport,
  TransportWrapper,
} from '../../lib';
import { createOutbox, Outbox, OutboxRelay } from '../../lib/outbox';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { DbKind, DbKit, openKit } from './db-kit';

function orderClass(type: string) {
  @Message(type)
  class OrderPlaced {
    @IsString() orderId!: string;
    @IsInt() n!: number;
  }
  return OrderPlaced;
}

/** A transport whose publish fails while `fail(message)` says so, optionally slowly. */
class FlakyTransport extends TransportWrapper {
  fail: (m: OutgoingMessage) => boolean = () => false;
  delayMs = 0;
  publishes = 0;
  override async publish(m: OutgoingMessage, o?: PublishOptions): Promise<void> {
    this.publishes++;
    if (this.delayMs) await sleep(this.delayMs);
    if (this.fail(m)) throw new Error(`broker says no to ${m.headers[Headers.id]}`);
    return this.inner.publish(m, o);
  }
}

/** Polls an async condition every 20 ms, up to 5 s. */
async function eventually(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (const until = Date.now() + 5000; !(await condition()); await sleep(20)) {
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
  }
}

describe('outbox and inbox: start-up checks', () => {
  it('an inbox option that is not an InboxStore is a StartupError naming the handler', async () => {
    const Type = orderClass(uniq('order.bad'));
    @Subscriber()
    class Bad {
      @Subscribe(Type, { inbox: {} as never })
      on() {}
    }
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    bus.register(new Bad());
    await assert.rejects(bus.start(), (e: Error) => e instanceof StartupError && /Bad\.on: inbox must be an InboxStore/.test(e.message));
  });

  it('an inbox given as a function of the instance: resolved per registered instance, undefined for none', async () => {
    const Type = orderClass(uniq('order.fn'));
    @Subscriber()
    class Handlers {
      seen = 0;
      constructor(readonly inbox: unknown) {}
      @Subscribe(Type, { inbox: (h: Handlers) => h.inbox as never })
      on() {
        this.seen++;
      }
    }
    const bad = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    bad.register(new Handlers({}));
    await assert.rejects(bad.start(), (e: Error) => e instanceof StartupError && /Handlers\.on: inbox must be an InboxStore/.test(e.message));
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    const none = new Handlers(undefined);
    bus.register(none);
    await bus.start();
    await bus.publish(Type, { orderId: 'o-1', n: 1 });
    await eventually(async () => none.seen === 1, 'the handler without an inbox');
    await bus.stop();
  });

  it('attach() and createOutbox() after start() throw', async () => {
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    await bus.start();
    const store = {} as never;
    assert.throws(() => createOutbox(bus, store), /attach\(\) must be called before start\(\)/);
    await bus.stop();
  });
});

for (const kind of ['postgres', 'sqlite'] as DbKind[]) {
  describe(`outbox and inbox on ${kind}`, function () {
    this.timeout(20_000);
    let kit: DbKit;
    const cleanups: (() => Promise<void>)[] = [];
    let Order: ReturnType<typeof orderClass>;
    let received: { id: string; n: number; orderId: string }[];

    beforeEach(async () => {
      kit = await openKit(kind);
      Order = orderClass(uniq('order.placed'));
      received = [];
    });
    afterEach(async function () {
      this.timeout(20_000);
      const t0 = Date.now();
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
      await kit.close();
      if (Date.now() - t0 > 500) console.log(`      clean-up took ${Date.now() - t0} ms`);
    });

    function newBus(transport: Transport, instances: object[] = []): Bus {
      const bus = createBus({ transport, source: 'orders', logger: silentLogger });
      bus.register(...instances);
      cleanups.push(() => bus.stop());
      return bus;
    }
    function collector() {
      const Type = Order;
      @Subscriber({ group: uniq('g') })
      class Collector {
        @Subscribe(Type)
        on(o: InstanceType<typeof Type>, ctx: MessageContext) {
          received.push({ id: ctx.id, n: o.n, orderId: o.orderId });
        }
      }
      return new Collector();
    }
    async function setup(options: Parameters<typeof createOutbox>[2] = {}, wrap?: (t: Transport) => Transport) {
      const transport = wrap ? wrap(memoryTransport()) : memoryTransport();
      const bus = newBus(transport, [collector()]);
      const outbox = createOutbox(bus, kit.outbox, { minPollMs: 20, maxPollMs: 200, retry: { initialDelayMs: 30, maxDelayMs: 200 }, ...options });
      await bus.start();
      return { bus, outbox };
    }
    function place(outbox: Outbox, n: number, key?: string) {
      return kit.tx(async (tx) => {
        await kit.insertOrder(tx, `o${n}`);
        return outbox.publish(tx, Order, { orderId: `o${n}`, n }, key ? { orderingKey: key } : {});
      });
    }

    it('publishes what committed, once, in the envelope bus.publish gives', async () => {
      const { bus, outbox } = await setup();
      const id = await place(outbox, 1);
      const direct = await bus.publish(Order, { orderId: 'direct', n: 0 });
      await waitFor(() => received.length === 2, 5000, 'both messages');
      const viaOutbox = received.find((r) => r.id === id)!;
      assert.deepEqual(viaOutbox, { id, n: 1, orderId: 'o1' });
      assert.ok(received.some((r) => r.id === direct));
      await eventually(async () => (await kit.rows()).every((r) => r.state === 'sent'), 'marked sent');
      const rows = await kit.rows();
      assert.deepEqual(rows.map((r) => [r.id, r.state]), [[id, 'sent']]);
    });

    it('(6b) a rolled-back transaction publishes nothing; publishing before the rollback (control) announces a ghost order', async () => {
      const { bus, outbox } = await setup();
      await assert.rejects(
        kit.tx(async (tx) => {
          await kit.insertOrder(tx, 'ghost');
          await outbox.publish(tx, Order, { orderId: 'ghost', n: 1 });
          throw new Error('payment declined');
        }),
        /payment declined/,
      );
      // Control: bus.publish inside the same kind of transaction, then the rollback.
      await assert.rejects(
        kit.tx(async (tx) => {
          await kit.insertOrder(tx, 'ghost2');
          await bus.publish(Order, { orderId: 'ghost2', n: 2 });
          throw new Error('payment declined');
        }),
        /payment declined/,
      );
      const marker = await place(outbox, 3); // a later commit: the relay has run past the rolled-back one
      await waitFor(() => received.some((r) => r.id === marker), 5000, 'the marker');
      await sleep(100);
      assert.deepEqual(await kit.orders(), ['o3']);
      assert.deepEqual(received.map((r) => r.orderId).sort(), ['ghost2', 'o3'], 'only the control announced an order that does not exist');
      assert.equal((await kit.rows()).length, 1);
    });

    it('validates like bus.publish: an invalid payload throws PayloadValidationError and writes nothing', async () => {
      const { outbox } = await setup();
      await assert.rejects(kit.tx((tx) => outbox.publish(tx, Order, { orderId: 'x', n: 'nope' } as never)), PayloadValidationError);
      await assert.rejects(kit.tx((tx) => outbox.publish(tx, Order, { orderId: 'x', n: 1 }, { orderingKey: '' })), /orderingKey/);
      assert.equal((await kit.rows()).length, 0);
    });

    it('@Publish methods publish into the outbox inside within(tx)', async () => {
      const Type = Order;
      @Publisher()
      class Orders {
        @Publish(Type)
        async placed(n: number) {
          return { orderId: `p${n}`, n };
        }
      }
      const orders = new Orders();
      const transport = memoryTransport();
      const bus = newBus(transport, [collector(), orders]);
      const outbox = createOutbox(bus, kit.outbox, { minPollMs: 20, maxPollMs: 200 });
      await bus.start();
      await kit.tx((tx) => outbox.within(tx, () => orders.placed(1)));
      await assert.rejects(kit.tx((tx) => outbox.within(tx, async () => {
        await orders.placed(2);
        throw new Error('rolled back');
      })));
      await waitFor(() => received.length === 1, 5000, 'the committed one');
      await sleep(150);
      assert.deepEqual(received.map((r) => r.orderId), ['p1']);
      assert.deepEqual((await kit.rows()).map((r) => r.state), ['sent']);
    });

    it('@Publish inside within(tx) before bus.start() stores its row, sent once the bus runs; outside within() it rejects (BusNotStartedError)', async () => {
      const Type = Order;
      @Publisher()
      class Orders {
        @Publish(Type)
        async placed(n: number) {
          return { orderId: `early${n}`, n };
        }
      }
      const orders = new Orders();
      const bus = newBus(memoryTransport(), [collector(), orders]);
      const outbox = createOutbox(bus, kit.outbox, { minPollMs: 20, maxPollMs: 200 });
      await kit.tx((tx) => outbox.within(tx, () => orders.placed(1)));
      await assert.rejects(orders.placed(2), BusNotStartedError);
      assert.equal((await kit.rows()).length, 1);
      await bus.start();
      await waitFor(() => received.length === 1, 5000, 'the stored one, once the bus runs');
      await sleep(150);
      assert.deepEqual(received.map((r) => r.orderId), ['early1']);
    });

    it('keeps per-key order; a failing row holds back its own key only, then goes through; after maxAttempts it is dead', async () => {
      let failA1 = 2;
      let flaky!: FlakyTransport;
      const { outbox, bus } = await setup({ maxAttempts: 3 }, (t) => (flaky = new FlakyTransport(t)));
      const ids: Record<string, string> = {};
      flaky.fail = (m) => (m.headers[Headers.id] === ids.a1 && failA1-- > 0) || m.headers[Headers.id] === ids.c1;
      // One transaction per row, as orders commit one after the other.
      ids.a1 = await place(outbox, 1, 'A');
      ids.b1 = await place(outbox, 2, 'B');
      ids.a2 = await place(outbox, 3, 'A');
      ids.b2 = await place(outbox, 4, 'B');
      ids.a3 = await place(outbox, 5, 'A');
      ids.c1 = await place(outbox, 6, 'C'); // always fails: dead after 3 attempts
      ids.c2 = await place(outbox, 7, 'C');
      await waitFor(() => received.length === 6, 8000, 'all but the dead one');
      const order = (key: string[]) => received.filter((r) => key.includes(r.id)).map((r) => r.n);
      assert.deepEqual(order([ids.a1, ids.a2, ids.a3]), [1, 3, 5]);
      assert.deepEqual(order([ids.b1, ids.b2]), [2, 4]);
      assert.deepEqual(order([ids.c2]), [7]);
      // B went through while A waited for its retries.
      assert.ok(received.findIndex((r) => r.id === ids.b2) < received.findIndex((r) => r.id === ids.a1), 'B was not held back by A');
      const rows = await kit.rows();
      const c1 = rows.find((r) => r.id === ids.c1)!;
      assert.equal(c1.state, 'dead');
      assert.equal(c1.attempts, 3);
      assert.match(c1.last_error!, /broker says no/);
      assert.equal(rows.find((r) => r.id === ids.a1)!.attempts, 2);
      assert.equal(new Set(received.map((r) => r.id)).size, received.length, 'no duplicates');
      await waitFor(() => bus.metrics().outbox[kit.outbox.name]?.dead === 1, 3000, 'the meter shows the dead row');
    });

    it('never publishes a row under a live lease; takes it over when the lease has expired', async () => {
      const id = await kit.tx((tx) => createOutbox(newBus(memoryTransport()), kit.outbox, { relay: false }).publish(tx, Order, { orderId: 'l', n: 1 }));
      const ghost = await kit.outbox.claim('crashed-relay', 10, 1000); // a relay that crashed after claiming
      assert.equal(ghost.length, 1);
      const claimedAt = Date.now();
      await setup();
      await sleep(500);
      assert.equal(received.length, 0, 'not while the lease lives');
      await waitFor(() => received.length === 1, 5000, 'taken over');
      assert.ok(Date.now() - claimedAt >= 1000);
      assert.equal(received[0].id, id);
    });

    it('two relays on one table publish every row once (normal operation) and keep per-key order', async () => {
      const transport = memoryTransport();
      const bus = newBus(transport, [collector()]);
      const outbox = createOutbox(bus, kit.outbox, { relay: false });
      await bus.start();
      const relays = [0, 1].map(() => new OutboxRelay(kit.outbox, { batchSize: 20, minPollMs: 10, maxPollMs: 50 }));
      for (const r of relays) await r.start({ transport });
      cleanups.push(async () => void (await Promise.all(relays.map((r) => r.stop()))));
      const n = 300;
      for (let i = 0; i < n; i += 10) {
        await kit.tx(async (tx) => {
          for (let j = i; j < i + 10; j++) await outbox.publish(tx, Order, { orderId: `o${j}`, n: j }, { orderingKey: `k${j % 7}` });
        });
      }
      await waitFor(() => received.length >= n, 10_000, 'every row');
      await sleep(200);
      assert.equal(received.length, n, 'no duplicates');
      assert.equal(new Set(received.map((r) => r.id)).size, n);
      for (let k = 0; k < 7; k++) {
        const seen = received.filter((r) => r.n % 7 === k).map((r) => r.n);
        assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `key k${k} in order`);
      }
      // A relay holds a whole key while it works on it, so with few keys one relay may do it all.
      assert.equal(relays[0].published + relays[1].published, n, `published by each: ${relays.map((r) => r.published)}`);
    });

    it('stop() lets the publish in flight finish and mark it, releases the rest of the batch', async () => {
      let flaky!: FlakyTransport;
      const { bus, outbox } = await setup({}, (t) => (flaky = new FlakyTransport(t)));
      flaky.delayMs = 300;
      await kit.tx(async (tx) => {
        for (let i = 0; i < 5; i++) await outbox.publish(tx, Order, { orderId: `s${i}`, n: i }, { orderingKey: 'S' });
      });
      await waitFor(() => flaky.publishes === 1, 5000, 'the first publish started');
      await bus.stop();
      const rows = await kit.rows();
      assert.deepEqual(rows.map((r) => r.state), ['sent', 'pending', 'pending', 'pending', 'pending']);
      assert.ok(rows.every((r) => r.lease_owner === null), 'nothing left leased');
      assert.equal(received.length, 1);
    });

    it('wakes on commit rather than polling, and purges sent rows on its schedule', async () => {
      const { bus, outbox } = await setup({ minPollMs: 10_000, maxPollMs: 10_000, purgeEveryMs: 50, retainSentMs: 0 });
      await sleep(200); // the first (empty) claim is done: the relay sleeps for 10 s now
      const started = Date.now();
      const id = await place(outbox, 1);
      await waitFor(() => received.length === 1, 3000, 'woken by the commit');
      assert.equal(received[0].id, id);
      assert.ok(Date.now() - started < 3000);
      await sleep(100);
      await place(outbox, 2); // the next loop turn purges the first row
      await waitFor(() => received.length === 2, 3000, 'the second');
      await sleep(100);
      await place(outbox, 3);
      await waitFor(() => received.length === 3, 3000, 'the third');
      await eventually(async () => (await kit.rows()).length < 3, 'sent rows purged');
      await bus.stop();
    });

    it('the meter shows rows waiting, the age of the oldest and the relay publish rate', async () => {
      let flaky!: FlakyTransport;
      const { bus, outbox } = await setup({ statsEveryMs: 20, retry: { initialDelayMs: 50, maxDelayMs: 50 }, maxAttempts: 1000 }, (t) => (flaky = new FlakyTransport(t)));
      let down = true;
      flaky.fail = () => down;
      for (let i = 0; i < 3; i++) await place(outbox, i);
      await sleep(300);
      await waitFor(() => bus.metrics().outbox[kit.outbox.name]?.waiting === 3, 3000, 'three waiting');
      assert.ok(bus.metrics().outbox[kit.outbox.name].oldestAgeMs! >= 200);
      down = false;
      await waitFor(() => received.length === 3, 5000, 'published');
      await waitFor(() => bus.metrics().outbox[kit.outbox.name].waiting === 0, 3000, 'none waiting');
      const m = bus.metrics().outbox[kit.outbox.name];
      assert.equal(m.published, 3);
      assert.equal(m.oldestAgeMs, null);
      assert.equal(typeof m.publishRate['10s'], 'number');
    });

    it('inbox: the effect and the mark commit together; a redelivered copy and two copies at once apply once', async () => {
      const Type = Order;
      const inbox = kit.inbox;
      let failOnce = true;
      @Subscriber({ group: uniq('inbox') })
      class Effects {
        @Subscribe(Type, { inbox, retry: { attempts: 3, initialDelayMs: 10 } })
        async on(o: InstanceType<typeof Type>, ctx: MessageContext) {
          assert.ok(ctx.tx, 'ctx.tx is the transaction');
          await kit.addEffect(ctx.tx as never, o.orderId);
          if (o.orderId === 'fails-once' && failOnce) {
            failOnce = false;
            throw new Error('after the write: rolled back with the mark');
          }
        }
      }
      const transport = memoryTransport();
      const bus = newBus(transport, [new Effects()]);
      await bus.start();
      const once = bus.encodeMessage(Order, { orderId: 'dup', n: 1 });
      await transport.publish(once);
      await transport.publish(once); // a redelivered copy (same id)
      const twin = bus.encodeMessage(Order, { orderId: 'twin', n: 2 });
      await Promise.all([transport.publish(twin), transport.publish(twin), transport.publish(twin)]);
      await transport.publish(bus.encodeMessage(Order, { orderId: 'fails-once', n: 3 }));
      await waitFor(() => {
        const m = Object.values(bus.metrics().inbox)[0];
        return !!m && m.applied === 3 && m.skippedDuplicates === 3;
      }, 5000, 'three applied, three skipped');
      assert.deepEqual(Object.fromEntries(await kit.effects()), { dup: 1, twin: 1, 'fails-once': 1 });
    });
  });
}
