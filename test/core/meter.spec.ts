import assert from 'node:assert/strict';
import { createBus, Meter, MeteredTransport, Subscribe, Subscriber, silentLogger, Headers, Delivery } from '../../lib';
import { memoryTransport } from '../../adapters/memory';
import { OrderPlaced } from './fixtures';
import { waitFor } from '../helpers/wait';

describe('meter', () => {
  it('computes rates, backlog growth, backlog, in-flight, latency and time to drain on an injected clock', async () => {
    let now = 1_000_000;
    const meter = new Meter(() => now);
    const t = new MeteredTransport(memoryTransport(), meter);
    const held: Delivery[] = [];
    await t.subscribe({ pattern: 'm.x', group: 'g', name: 'h', prefetch: 1000 }, async (d) => {
      held.push(d);
    });
    await t.connect();
    const msg = { topic: 'm.x', body: Buffer.from('{}'), headers: { [Headers.id]: 'i' } };
    // Second 1000: 100 published, 40 consumed, each consumed 25 ms after delivery.
    for (let i = 0; i < 100; i++) await t.publish(msg);
    await waitFor(() => held.length === 100, 2000, 'deliveries');
    now += 25;
    for (const d of held.splice(0, 40)) await d.ack();
    let s = meter.snapshot();
    assert.equal(s.topics['m.x'].inFlight, 60);
    assert.equal(s.handlers['g.h'].inFlight, 60);
    // The current second is not complete: rates cover whole seconds only.
    assert.equal(s.topics['m.x'].publishRate['1s'], 0);
    now += 1000; // second 1001: nothing happens
    s = meter.snapshot();
    const topic = s.topics['m.x'];
    assert.equal(topic.publishRate['1s'], 100);
    assert.equal(topic.consumeRate['1s'], 40);
    assert.equal(topic.backlogGrowth['1s'], 60);
    assert.equal(topic.publishRate['10s'], 10);
    assert.equal(topic.consumeRate['10s'], 4);
    assert.equal(topic.backlogGrowth['10s'], 6);
    assert.equal(topic.publishRate['60s'], 100 / 60);
    assert.equal(topic.backlog, 60);
    assert.equal(topic.timeToDrainMs, null, 'growing backlog never drains at this pace');
    assert.deepEqual(s.handlers['g.h'].latencyMs, { p50: 25, p99: 25 });
    // Second 1002: the remaining 60 consumed, nothing published.
    now += 1000;
    for (const d of held.splice(0, 30)) await d.ack();
    now += 1000;
    s = meter.snapshot();
    // Over 10 s: 100 published, 70 consumed -> Pd - Ps = -3/s: still not draining on that window.
    assert.equal(s.topics['m.x'].timeToDrainMs, null);
    for (let k = 0; k < 3; k++) {
      for (const d of held.splice(0, 10)) await d.ack();
      now += 1000;
    }
    s = meter.snapshot();
    assert.equal(s.topics['m.x'].backlog, 0);
    assert.equal(s.topics['m.x'].timeToDrainMs, 0);
    assert.equal(s.handlers['g.h'].consumed, 100);
    await t.close();
  });

  it('time to drain = backlog / (Pd - Ps) when consumption outpaces publishing', () => {
    let now = 5_000_000;
    const meter = new Meter(() => now);
    const second = (publish: number, consume: number) => {
      for (let i = 0; i < publish; i++) meter.published('t');
      for (let i = 0; i < consume; i++) meter.started('t', 'h')('ack');
      now += 1000;
    };
    second(100, 0); // a burst: backlog 100
    let t = meter.snapshot().topics.t;
    assert.equal(t.backlog, 100);
    assert.equal(t.timeToDrainMs, null, 'nothing consumed yet: no estimate');
    for (let s = 0; s < 10; s++) second(5, 10); // then Ps = 5/s, Pd = 10/s
    t = meter.snapshot().topics.t;
    assert.equal(t.backlog, 50);
    assert.equal(t.publishRate['10s'], 5);
    assert.equal(t.consumeRate['10s'], 10);
    assert.equal(t.backlogGrowth['10s'], -5);
    assert.equal(t.timeToDrainMs, 10_000, '50 messages at a net 5/s');
  });

  it('bus.metrics() reports per message type and per handler', async () => {
    @Subscriber({ group: 'metered' })
    class S {
      @Subscribe(OrderPlaced)
      async on() {}
    }
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    bus.register(new S());
    await bus.start();
    for (let i = 0; i < 20; i++) await bus.publish(OrderPlaced, { orderId: String(i) });
    await waitFor(() => bus.metrics().handlers['metered.S.on']?.consumed === 20, 2000, '20 consumed');
    const m = bus.metrics();
    assert.equal(m.topics['order.placed'].published, 20);
    assert.equal(m.topics['order.placed'].consumed, 20);
    assert.equal(m.topics['order.placed'].inFlight, 0);
    await bus.stop();
  });

  it('a stuck handler cannot hide behind a fast one: per-handler backlog, in-flight and time to drain, the topic shows the worst', async () => {
    let now = 7_000_000;
    const meter = new Meter(() => now);
    const t = new MeteredTransport(memoryTransport(), meter);
    await t.subscribe({ pattern: 'm.*', group: 'g', name: 'fast', prefetch: 1000 }, (d) => d.ack());
    await t.subscribe({ pattern: 'm.x', group: 'g', name: 'stuck', prefetch: 10 }, () => new Promise(() => undefined));
    await t.connect();
    const msg = { topic: 'm.x', body: Buffer.from('{}'), headers: { [Headers.id]: 'i' } };
    for (let i = 0; i < 100; i++) await t.publish(msg);
    await waitFor(() => meter.snapshot().handlers['g.fast'].consumed === 100 && meter.snapshot().handlers['g.stuck'].inFlight === 10, 2000, 'deliveries');
    now += 1000;
    const s = meter.snapshot();
    const topic = s.topics['m.x'];
    // What the meter showed before (issue 23): settles summed over handlers, so backlog 0 and time to drain 0.
    assert.equal(topic.published - topic.consumed, 0);
    assert.equal(topic.backlog, 100);
    assert.equal(topic.worstHandler, 'g.stuck');
    assert.deepEqual(topic.backlogByHandler, { 'g.fast': 0, 'g.stuck': 100 });
    assert.equal(topic.timeToDrainMs, null);
    assert.equal(s.handlers['g.stuck'].backlog, 100);
    assert.equal(s.handlers['g.stuck'].inFlight, 10);
    assert.equal(s.handlers['g.stuck'].timeToDrainMs, null);
    assert.equal(s.handlers['g.stuck'].pattern, 'm.x');
    assert.equal(s.handlers['g.fast'].backlog, 0);
    assert.equal(s.handlers['g.fast'].timeToDrainMs, 0);
    assert.equal(s.handlers['g.fast'].consumeRate['1s'], 100);
    assert.equal(s.handlers['g.fast'].brokerQueue, null, 'the memory transport has no queue depth');
    await t.close({ timeoutMs: 10 });
  });

  it("a handler's time to drain: its backlog over its consume rate less the matching publish rate", () => {
    let now = 9_000_000;
    const meter = new Meter(() => now);
    meter.handlerState('h', 'a.#');
    for (let i = 0; i < 100; i++) meter.published('a.b');
    now += 1000;
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 5; i++) meter.published('a.c');
      for (let i = 0; i < 10; i++) meter.started(i % 2 ? 'a.b' : 'a.c', 'h')('ack');
      now += 1000;
    }
    const h = meter.snapshot().handlers.h;
    // Published 150 (100 + 50), settled 100: backlog 50 (a.b 50 left, a.c none).
    assert.equal(h.backlog, 50);
    assert.equal(h.timeToDrainMs, 10_000, '50 at a net 10 - 5 per second');
    assert.equal(meter.snapshot().topics['a.b'].backlog, 50);
    assert.equal(meter.snapshot().topics['a.b'].worstHandler, 'h');
  });
});

