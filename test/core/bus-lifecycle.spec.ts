import assert from 'node:assert/strict';
import {
  BusNotStartedError,
  Bus,
  BusStoppedError,
  createBus,
  MessageContext,
  OutgoingMessage,
  PublishOptions,
  Publish,
  Publisher,
  ReceivedMessage,
  silentLogger,
  StartupError,
  Subscribe,
  Subscriber,
  TransportWrapper,
} from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { GetProduct, OrderCancelled, OrderPlaced, ProductView } from './fixtures';
import { sleep, waitFor } from '../helpers/wait';

/** Records what reaches the transport, in order; connect() can be slowed down. */
class RecordingTransport extends TransportWrapper {
  readonly calls: string[] = [];
  connectDelayMs = 0;
  override async connect(): Promise<void> {
    await sleep(this.connectDelayMs);
    await super.connect();
    this.calls.push('connected');
  }
  override publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    this.calls.push(`publish ${message.topic}`);
    return super.publish(message, options);
  }
  override request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    this.calls.push(`request ${message.topic}`);
    return super.request(message, options);
  }
  sent(): string[] {
    return this.calls.filter((c) => c !== 'connected');
  }
}

/** A second service on the same broker: what it receives is what the bus under test published. */
async function receiver(broker: MemoryBroker) {
  const received: string[] = [];
  @Subscriber({ group: 'lifecycle-receiver' })
  class Receiver {
    @Subscribe(OrderPlaced)
    async onOrder(e: OrderPlaced) {
      received.push(`order ${e.orderId}`);
    }
    @Subscribe(GetProduct)
    async get(q: GetProduct) {
      received.push(`request ${q.productId}`);
      return { productId: q.productId, priceCents: 1 };
    }
  }
  const bus = createBus({ transport: memoryTransport({ broker }), source: 'receiver', logger: silentLogger });
  bus.register(new Receiver());
  await bus.start();
  return { received, stop: () => bus.stop() };
}

function setup() {
  const broker = new MemoryBroker();
  const transport = new RecordingTransport(memoryTransport({ broker }));
  let bodyRuns = 0;
  @Publisher()
  class Orders {
    @Publish(OrderPlaced)
    async place(orderId: string) {
      bodyRuns++;
      return { orderId };
    }
  }
  const orders = new Orders();
  const bus = createBus({ transport, source: 'lifecycle', logger: silentLogger });
  bus.register(orders);
  return { broker, transport, bus, orders, bodyRuns: () => bodyRuns };
}

describe('bus: publishing outside start() and stop()', () => {
  it('before start(): @Publish, publish() and request() reject with BusNotStartedError and send nothing', async () => {
    const { broker, transport, bus, orders, bodyRuns } = setup();
    const other = await receiver(broker);
    try {
      await assert.rejects(orders.place('early-1'), BusNotStartedError);
      await assert.rejects(bus.publish(OrderPlaced, { orderId: 'early-2' }), BusNotStartedError);
      await assert.rejects(bus.request(GetProduct, { productId: 'early-3' }, { timeoutMs: 500 }), BusNotStartedError);
      assert.equal(bodyRuns(), 0, 'the @Publish method body did not run');
      await sleep(50);
      assert.deepEqual(transport.sent(), [], 'nothing reached the transport');
      assert.deepEqual(other.received, [], 'nothing reached the other service');
    } finally {
      await bus.stop();
      await other.stop();
    }
  });

  it('while start() runs: all three wait for it, then send', async () => {
    const { broker, transport, bus, orders } = setup();
    const other = await receiver(broker);
    transport.connectDelayMs = 100;
    try {
      const starting = bus.start();
      const placed = orders.place('during-1');
      const published = bus.publish(OrderPlaced, { orderId: 'during-2' });
      const answered = bus.request<GetProduct, ProductView>(GetProduct, { productId: 'during-3' }, { timeoutMs: 2000 });
      await starting;
      assert.deepEqual(await placed, { orderId: 'during-1' });
      assert.equal(typeof (await published), 'string');
      assert.deepEqual({ ...(await answered) }, { productId: 'during-3', priceCents: 1 });
      assert.equal(transport.calls[0], 'connected', `nothing was sent before connect() resolved: ${transport.calls.join(', ')}`);
      assert.equal(transport.sent().length, 3);
      await waitFor(() => other.received.length === 3, 2000, 'three messages at the other service');
      assert.deepEqual([...other.received].sort(), ['order during-1', 'order during-2', 'request during-3']);
    } finally {
      await bus.stop();
      await other.stop();
    }
  });

  it('once stop() was called (before it resolves, and after): all three reject with BusStoppedError and send nothing', async () => {
    const { broker, transport, bus, orders, bodyRuns } = setup();
    const other = await receiver(broker);
    try {
      await bus.start();
      await orders.place('before-stop');
      await waitFor(() => other.received.length === 1, 2000, 'the publish made while started');
      const sentWhileStarted = transport.sent().length;

      const stopping = bus.stop();
      await assert.rejects(orders.place('stopping-1'), BusStoppedError);
      await assert.rejects(bus.publish(OrderPlaced, { orderId: 'stopping-2' }), BusStoppedError);
      await assert.rejects(bus.request(GetProduct, { productId: 'stopping-3' }, { timeoutMs: 500 }), BusStoppedError);
      await stopping;
      await assert.rejects(orders.place('stopped-1'), BusStoppedError);
      await assert.rejects(bus.publish(OrderPlaced, { orderId: 'stopped-2' }), BusStoppedError);
      await assert.rejects(bus.request(GetProduct, { productId: 'stopped-3' }, { timeoutMs: 500 }), BusStoppedError);

      assert.equal(bodyRuns(), 1, 'the @Publish method body ran only while started');
      await sleep(50);
      assert.equal(transport.sent().length, sentWhileStarted, 'nothing more reached the transport');
      assert.deepEqual(other.received, ['order before-stop']);
    } finally {
      await bus.stop();
      await other.stop();
    }
  });

  it('after a failed start(): publish() rejects with BusNotStartedError, the start failure as its cause', async () => {
    @Subscriber()
    class Broken {
      @Subscribe(OrderPlaced, { prefetch: -1 })
      async on() {}
    }
    const { transport, bus } = setup();
    bus.register(new Broken());
    await assert.rejects(bus.start(), StartupError);
    const err = await bus.publish(OrderPlaced, { orderId: 'x' }).then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BusNotStartedError);
    assert.ok(err.cause instanceof StartupError);
    assert.deepEqual(transport.sent(), []);
    await bus.stop();
  });
});

describe('bus: handlers that run while start() runs', () => {
  // A group member's backlog (an MQTT persistent session, an AMQP queue) is delivered as soon as its
  // subscription is up, while start() goes on (here: an attached component that has not finished
  // starting). What those handlers publish - ctx.publish, bus.publish, @Publish - is sent at once;
  // before, it waited for the start the handler was part of, and a start that waited for the
  // handler never ended.
  it('their publishes are sent at once (ctx.publish, bus.publish, @Publish); outside calls still wait', async () => {
    const N = 9;
    const broker = new MemoryBroker();
    const events: string[] = [];
    @Subscriber({ group: 'lifecycle-events' })
    class Events {
      @Subscribe(OrderCancelled)
      on(e: OrderCancelled) {
        events.push(e.orderId);
      }
    }
    @Publisher()
    class Notifier {
      @Publish(OrderCancelled)
      async cancelled(orderId: string) {
        return { orderId };
      }
    }
    const notifier = new Notifier();
    let bus: Bus | undefined;
    const handled: string[] = [];
    @Subscriber({ group: 'lifecycle-worker' })
    class Worker {
      @Subscribe(OrderPlaced, { retry: { attempts: 1 } })
      async on(o: OrderPlaced, ctx: MessageContext) {
        const k = Number(o.orderId.split('-')[1]) % 3;
        if (k === 0) await ctx.publish(OrderCancelled, { orderId: o.orderId });
        else if (k === 1) await bus!.publish(OrderCancelled, { orderId: o.orderId });
        else await notifier.cancelled(o.orderId);
        handled.push(o.orderId);
      }
    }
    const collector = createBus({ transport: memoryTransport({ broker }), source: 'collector', logger: silentLogger }).register(new Events());
    const shop = createBus({ transport: memoryTransport({ broker }), source: 'shop', logger: silentLogger });
    await collector.start();
    await shop.start();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    bus = createBus({ transport: memoryTransport({ broker }), source: 'worker', logger: silentLogger });
    bus.register(new Worker(), notifier);
    // A component that finishes starting when released (at the latest after 3 s).
    bus.attach({
      start: () => Promise.race([released, sleep(3000)]),
      stop: async () => undefined,
    });
    const deadLetters: string[] = [];
    bus.on('deadLetter', (e) => deadLetters.push(`${e.id} ${e.reason}`));
    let started = false;
    const starting = bus.start().then(() => (started = true));
    try {
      await waitFor(() => bus!.health().connected, 2000, 'the worker connected');
      const sent = Array.from({ length: N }, (_, i) => `o-${i}`);
      for (const orderId of sent) await shop.publish(OrderPlaced, { orderId });
      // A publish from outside while start() runs still waits for it.
      let outsideDone = false;
      const outside = bus.publish(OrderCancelled, { orderId: 'outside' }).then(() => (outsideDone = true));
      await waitFor(() => handled.length === N && events.filter((e) => e !== 'outside').length === N, 2000, `${N} handled and their events while start() runs (handled ${handled.length}, events ${events.length})`);
      assert.equal(started, false, 'start() is still running');
      assert.equal(outsideDone, false, 'the outside publish waits for start()');
      release();
      await starting;
      await outside;
      await waitFor(() => events.includes('outside'), 2000, 'the outside publish, after start');
      assert.deepEqual([...handled].sort(), sent);
      assert.deepEqual(events.filter((e) => e !== 'outside').sort(), sent);
      assert.deepEqual(deadLetters, []);
    } finally {
      release();
      await bus.stop();
      await shop.stop();
      await collector.stop();
    }
  });
});
