/**
 * The fleet's figures (lib/dashboard/fleet.ts) from meter snapshots as instances report them:
 * counted from when each instance was first seen, kept when an instance leaves, counted anew when
 * its counters go down (a restart), the broker's count where there is one.
 */
import assert from 'node:assert/strict';
import { FleetModel, InstanceView } from '../../lib/dashboard';
import type { HandlerMetrics, MetricsSnapshot, TopicMetrics } from '../../lib/meter';

const R = (n: number) => ({ '1s': n, '10s': n, '60s': n });
function topic(published: number, rate = 0): TopicMetrics {
  return { published, consumed: 0, publishRate: R(rate), consumeRate: R(0), backlogGrowth: R(rate), backlog: 0, backlogByHandler: {}, worstHandler: null, inFlight: 0, timeToDrainMs: 0 };
}
function handler(consumed: number, extra: Partial<HandlerMetrics> = {}): HandlerMetrics {
  return {
    pattern: 'order.placed',
    subscription: { group: 'stock', name: 'Stock.on', instance: null },
    consumed,
    failed: 0,
    deadLettered: 0,
    inFlight: 0,
    consumeRate: R(0),
    backlog: 0,
    timeToDrainMs: 0,
    brokerQueue: null,
    latencyMs: { p50: null, p99: null },
    ...extra,
  };
}
function snap(topics: Record<string, TopicMetrics>, handlers: Record<string, HandlerMetrics> = {}): MetricsSnapshot {
  return { at: Date.now(), topics, handlers, outbox: {}, inbox: {} };
}
const pub = (instance: string, published: number, rate = 0): InstanceView => ({ service: 'orders', instance, seenAt: 0, snapshot: snap({ 'order.placed': topic(published, rate) }) });
const con = (instance: string, consumed: number, extra: Partial<HandlerMetrics> = {}): InstanceView => ({ service: 'stock', instance, seenAt: 0, snapshot: snap({}, { 'stock.Stock.on': handler(consumed, extra) }) });
const KEY = 'stock/Stock.on';

describe('dashboard fleet figures', () => {
  it('counts from when an instance was first seen, keeps what a gone one counted, restarts anew', () => {
    const m = new FleetModel();
    // Before the dashboard watched: 100 published, 90 consumed. Not counted.
    assert.equal(m.frame([pub('o1', 100), con('s1', 90)], 1).handlers[KEY].backlog, 0);
    // 10 more published, 4 of them consumed, by two consumer instances of the group.
    assert.equal(m.frame([pub('o1', 110), con('s1', 92), con('s2', 0)], 2).handlers[KEY].backlog, 10 - 2);
    const f = m.frame([pub('o1', 110), con('s1', 92), con('s2', 2)], 3);
    assert.equal(f.handlers[KEY].backlog, 6);
    assert.equal(f.handlers[KEY].instances, 2);
    assert.deepEqual(f.graph.publishers, [{ service: 'orders', type: 'order.placed' }]);
    assert.deepEqual(f.graph.subscribers, [{ type: 'order.placed', handler: KEY }]);
    // The publisher leaves: what it published stays counted.
    assert.equal(m.frame([con('s1', 93), con('s2', 2)], 4).handlers[KEY].backlog, 5);
    // s1 restarts (its counter goes down to 0): it is counted anew from there, the 3 it settled stay.
    assert.equal(m.frame([con('s1', 0), con('s2', 2)], 5).handlers[KEY].backlog, 5);
    assert.equal(m.frame([con('s1', 1), con('s2', 2)], 6).handlers[KEY].backlog, 4);
  });

  it("takes the broker's count where there is one, the worst instance's latency, and the worst handler per type", () => {
    const m = new FleetModel();
    const f = m.frame(
      [
        pub('o1', 5, 20),
        con('s1', 0, { inFlight: 2, brokerQueue: { queue: 'q', messages: 40, consumers: 2, at: 10 }, latencyMs: { p50: 3, p99: 9 }, consumeRate: R(5) }),
        con('s2', 0, { inFlight: 1, brokerQueue: { queue: 'q', messages: 37, consumers: 2, at: 11 }, latencyMs: { p50: 4, p99: 7 }, consumeRate: R(5) }),
      ],
      1,
    );
    const h = f.handlers[KEY];
    assert.deepEqual([h.backlog, h.backlogFrom, h.inFlight, h.p50, h.p99, h.consumeRate], [37 + 3, 'broker', 3, 4, 9, 10]);
    assert.equal(h.timeToDrainMs, null, 'consuming 10/s against 20/s published: never');
    assert.deepEqual([f.types['order.placed'].backlog, f.types['order.placed'].publishRate, f.types['order.placed'].timeToDrainMs], [40, 20, null]);
  });

  it("leaves Courier's own traffic out", () => {
    const m = new FleetModel();
    const f = m.frame([{ service: 'x', instance: 'i', seenAt: 0, snapshot: snap({ '_courier.presence.hello': topic(3), 'courier.metrics': topic(2), 'a.b': topic(1) }) }], 1);
    assert.deepEqual(f.graph.types, ['a.b']);
  });
});
