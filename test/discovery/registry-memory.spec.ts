/**
 * The registry and balanced requests (issue 22, points 1 and 2) on the memory transport, several
 * buses on one broker in this process. The same promises across processes, with SIGKILL, on AMQP
 * and MQTT: registry-brokers.spec.ts.
 */
import assert from 'node:assert/strict';
import { Bus, BusStoppedError, CourierError, createBus, InstanceGoneError, NoInstanceError, Publish, Publisher, ServiceInstance, silentLogger } from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import type { MemoryTransport } from '../../adapters/memory';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { pingKit } from './fixtures/ping';
import { OrderPlaced } from '../core/fixtures';

const HEARTBEAT_MS = 100;
const TTL_MS = 500;

describe('discovery: registry and balancing (memory)', () => {
  let broker: MemoryBroker;
  let buses: Bus[];
  beforeEach(() => {
    broker = new MemoryBroker();
    buses = [];
  });
  afterEach(async () => {
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 200 }).catch(() => undefined)));
  });

  function start(service: string, instanceId: string, subscribers: object[], extra: { weight?: number; ttlMs?: number; announce?: boolean } = {}): { bus: Bus; transport: MemoryTransport; ready: Promise<void> } {
    const transport = memoryTransport({ broker });
    const bus = createBus({
      transport,
      source: service,
      instanceId,
      logger: silentLogger,
      discovery: { heartbeatMs: HEARTBEAT_MS, ttlMs: extra.ttlMs ?? TTL_MS, weight: extra.weight, version: '2.0.1', announce: extra.announce, metadata: { zone: 'a' } },
    });
    bus.register(...subscribers);
    buses.push(bus);
    return { bus, transport, ready: bus.start() };
  }

  it('announces service, instance, version, handled and published types, transport and weight; lists the live instances; emits join', async () => {
    const type = uniq('disc.ping');
    const kit = pingKit(type);
    @Publisher()
    class Orders {
      @Publish(OrderPlaced)
      async place(id: string): Promise<OrderPlaced> {
        return { orderId: id };
      }
    }
    const a = start('products', 'p-1', [kit.service('p-1')], { weight: 3 });
    await a.ready;
    const joined: ServiceInstance[] = [];
    a.bus.on('join', (i: ServiceInstance) => joined.push(i));
    const b = start('orders', 'o-1', [new Orders()]);
    await b.ready;
    await waitFor(() => a.bus.services().length === 2 && b.bus.services().length === 2, 2000, 'both tables');
    const seen = b.bus.services();
    assert.deepEqual(
      seen.map((s) => [s.service, s.instanceId, s.self]),
      [
        ['orders', 'o-1', true],
        ['products', 'p-1', false],
      ],
    );
    const p = seen[1];
    assert.equal(p.version, '2.0.1');
    assert.equal(p.transport, 'memory');
    assert.equal(p.weight, 3);
    assert.deepEqual(p.handles, [type]);
    assert.deepEqual(p.publishes, []);
    assert.equal(p.ttlMs, TTL_MS);
    assert.deepEqual(p.metadata, { zone: 'a' });
    assert.deepEqual(seen[0].publishes, ['order.placed']);
    assert.deepEqual(seen[0].handles, []);
    assert.deepEqual(
      joined.map((j) => j.instanceId),
      ['o-1'],
    );
  });

  it('an instance that stops is gone at once (goodbye), with leave "stopped", long before its TTL', async () => {
    const kit = pingKit(uniq('disc.ping'));
    const a = start('svc', 'a', [kit.service('a')], { ttlMs: 60_000 });
    const b = start('svc', 'b', [kit.service('b')], { ttlMs: 60_000 });
    await Promise.all([a.ready, b.ready]);
    await waitFor(() => a.bus.services().length === 2, 2000, 'b in a');
    const left: Array<[string, string]> = [];
    a.bus.on('leave', (i: ServiceInstance, reason: string) => left.push([i.instanceId, reason]));
    await b.bus.stop();
    await waitFor(() => left.length === 1, 2000, 'leave of b (TTL is 60 s: only the goodbye can do it)');
    assert.deepEqual(left, [['b', 'stopped']]);
    assert.deepEqual(
      a.bus.services().map((s) => s.instanceId),
      ['a'],
    );
  });

  it('an instance whose heartbeats stop (its transport died, no goodbye) is gone within its TTL plus the sweep, not before the TTL', async () => {
    const kit = pingKit(uniq('disc.ping'));
    const a = start('svc', 'a', [kit.service('a')]);
    const b = start('svc', 'b', [kit.service('b')]);
    await Promise.all([a.ready, b.ready]);
    await waitFor(() => a.bus.services().length === 2, 2000, 'b in a');
    let leftAt = 0;
    let reason = '';
    a.bus.on('leave', (_i: ServiceInstance, r: string) => ((leftAt = Date.now()), (reason = r)));
    const lastHello = a.bus.services().find((s) => s.instanceId === 'b')!.lastSeen;
    await b.transport.close({ timeoutMs: 0 });
    const closedAt = Date.now();
    await waitFor(() => leftAt > 0, TTL_MS + 2000, 'leave of b');
    assert.equal(reason, 'expired');
    assert.ok(leftAt - lastHello > TTL_MS, `gone ${leftAt - lastHello} ms after its last hello: not before the TTL`);
    assert.ok(leftAt - closedAt <= TTL_MS + TTL_MS / 4 + 200, `gone ${leftAt - closedAt} ms after the crash (TTL ${TTL_MS} + sweep ${TTL_MS / 4})`);
  });

  it('waitForService resolves once an instance of the service is known, and rejects with NoInstanceError after its timeout', async () => {
    const kit = pingKit(uniq('disc.ping'));
    const l = start('watcher', 'w', [], { announce: false });
    await l.ready;
    await assert.rejects(l.bus.waitForService('late', 100), NoInstanceError);
    const waiting = l.bus.waitForService('late', 5000);
    await sleep(50);
    const a = start('late', 'a', [kit.service('a')]);
    await a.ready;
    assert.deepEqual(
      (await waiting).map((s) => s.instanceId),
      ['a'],
    );
    assert.equal((await l.bus.waitForService('late', 1)).length, 1);
  });

  it('a listener (announce: false) sees the others and is not listed', async () => {
    const kit = pingKit(uniq('disc.ping'));
    const a = start('svc', 'a', [kit.service('a')]);
    await a.ready;
    const l = start('watcher', 'w', [], { announce: false });
    await l.ready;
    await waitFor(() => l.bus.services().length === 1, 2000, 'a in the listener (answer to its query)');
    await sleep(3 * HEARTBEAT_MS);
    assert.deepEqual(
      a.bus.services().map((s) => s.service),
      ['svc'],
    );
  });

  async function fleet(type: string, specs: Array<{ id: string; weight?: number; delayMs?: () => number }>) {
    const kit = pingKit(type);
    const members = specs.map((s) => ({ ...s, service: kit.service(s.id, s.delayMs) as { handled: number } }));
    const all = members.map((m) => start('pinger', m.id, [m.service], { weight: m.weight }));
    const client = start('client', 'c', []);
    await Promise.all([...all.map((x) => x.ready), client.ready]);
    await waitFor(() => client.bus.services().length === specs.length + 1, 2000, 'the fleet in the client');
    return { kit, members, all, client: client.bus };
  }

  async function run(bus: Bus, kit: ReturnType<typeof pingKit>, n: number, balance: 'round-robin' | 'random' | 'weighted' | 'least-latency', concurrency = 50): Promise<Map<string, number>> {
    const split = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          const pong = await bus.request(kit.Ping, { n: i }, { balance, reply: kit.Pong });
          assert.equal(pong.n, i);
          split.set(pong.instanceId, (split.get(pong.instanceId) ?? 0) + 1);
        }
      }),
    );
    return split;
  }

  it('weighted: over 10,000 requests the split matches the announced weights 1:2:5 within 5 %; each reply came from the instance that counted it', async () => {
    const { kit, members, client } = await fleet(uniq('disc.w'), [
      { id: 'w1', weight: 1 },
      { id: 'w2', weight: 2 },
      { id: 'w5', weight: 5 },
    ]);
    const split = await run(client, kit, 10_000, 'weighted');
    for (const m of members) {
      const expected = (10_000 * m.weight!) / 8;
      const got = split.get(m.id) ?? 0;
      assert.ok(Math.abs(got - expected) <= 0.05 * expected, `${m.id}: ${got} of 10000, expected ${expected} ± 5 %`);
      assert.equal(m.service.handled, got, `${m.id} handled what it answered`);
    }
  });

  it('round-robin takes turns exactly; random spreads (each of 3 gets 25-42 % of 3,000)', async () => {
    const { kit, client } = await fleet(uniq('disc.rr'), [{ id: 'r1' }, { id: 'r2' }, { id: 'r3' }]);
    const rr = await run(client, kit, 3000, 'round-robin', 1);
    assert.deepEqual([...rr.values()], [1000, 1000, 1000]);
    const random = await run(client, kit, 3000, 'random');
    for (const id of ['r1', 'r2', 'r3']) assert.ok((random.get(id) ?? 0) > 750 && (random.get(id) ?? 0) < 1260, `random ${id}: ${random.get(id)}`);
  });

  it('least-latency moves most of 10,000 requests away from an instance made slow (20 ms against 0)', async () => {
    const { kit, client } = await fleet(uniq('disc.ll'), [{ id: 'fast1' }, { id: 'fast2' }, { id: 'slow', delayMs: () => 20 }]);
    const split = await run(client, kit, 10_000, 'least-latency', 20);
    const slow = split.get('slow') ?? 0;
    assert.ok(slow < 10_000 * 0.1, `the slow instance got ${slow} of 10000 (an even split gives it 3333)`);
    assert.ok((split.get('fast1') ?? 0) > 3000 && (split.get('fast2') ?? 0) > 3000, JSON.stringify([...split]));
    // Negative control: round-robin ignores the latency.
    const rr = await run(client, kit, 600, 'round-robin', 20);
    assert.equal(rr.get('slow'), 200);
  });

  it('its in-flight requests fail with InstanceGoneError when the instance leaves (by TTL), or are answered by another with onInstanceGone: retry', async () => {
    const kit = pingKit(uniq('disc.gone'));
    const hung = start('pinger', 'hung', [kit.service('hung', () => 3_600_000)]);
    const client = start('client', 'c', []);
    await Promise.all([hung.ready, client.ready]);
    await waitFor(() => client.bus.services().length === 2, 2000, 'hung in the client');
    const inFlight = Array.from({ length: 5 }, (_, n) => client.bus.request(kit.Ping, { n }, { balance: 'round-robin', timeoutMs: 30_000 }).then(() => 'answered', (e: unknown) => e));
    const retried = client.bus.request(kit.Ping, { n: 99 }, { balance: 'round-robin', timeoutMs: 30_000, onInstanceGone: 'retry', reply: kit.Pong });
    await sleep(50);
    const healthy = start('pinger', 'healthy', [kit.service('healthy')]);
    await healthy.ready;
    await waitFor(() => client.bus.services().length === 3, 2000, 'healthy in the client');
    await hung.transport.close({ timeoutMs: 0 });
    const killedAt = Date.now();
    const outcomes = await Promise.all(inFlight);
    const failedAfter = Date.now() - killedAt;
    for (const o of outcomes) assert.ok(o instanceof InstanceGoneError && o.reason === 'expired' && o.instance === 'pinger/hung', String(o));
    assert.ok(failedAfter <= TTL_MS + TTL_MS / 4 + 300, `failed ${failedAfter} ms after the crash`);
    assert.equal((await retried).instanceId, 'healthy');
    // Once gone, it gets nothing more.
    const after = await run(client.bus, kit, 100, 'round-robin', 5);
    assert.deepEqual([...after], [['healthy', 100]]);
  });

  it('no live instance: NoInstanceError at once; balance without discovery: CourierError; after stop: BusStoppedError', async () => {
    const kit = pingKit(uniq('disc.none'));
    const client = start('client', 'c', []);
    await client.ready;
    await assert.rejects(client.bus.request(kit.Ping, { n: 1 }, { balance: 'random' }), NoInstanceError);
    const plain = createBus({ transport: memoryTransport({ broker }), source: 'plain', logger: silentLogger });
    buses.push(plain);
    await plain.start();
    await assert.rejects(plain.request(kit.Ping, { n: 1 }, { balance: 'random' }), (e: unknown) => e instanceof CourierError && /discovery/.test(String(e)));
    assert.throws(() => plain.services(), CourierError);
    await client.bus.stop();
    await assert.rejects(client.bus.request(kit.Ping, { n: 1 }, { balance: 'random' }), BusStoppedError);
  });

  it('without balance a request still goes to the group (competing consumers), not to a direct topic', async () => {
    const { kit, members, client } = await fleet(uniq('disc.default'), [{ id: 'd1' }, { id: 'd2' }]);
    for (let n = 0; n < 20; n++) await client.request(kit.Ping, { n });
    assert.equal(members[0].service.handled + members[1].service.handled, 20);
    const m = client.metrics();
    assert.ok(!Object.keys(m.topics).some((t) => t.startsWith('_courier.to.')), 'no direct topic used');
  });

  it('start-up refuses bad discovery options and a source or instance id that cannot be a topic segment', async () => {
    const bus = createBus({ transport: memoryTransport(), source: 'my.service', instanceId: 'a b', logger: silentLogger, discovery: { heartbeatMs: 100, ttlMs: 50, weight: -1, bogus: 1 } as never });
    const err = await bus.start().catch((e: unknown) => e);
    const text = String((err as { problems?: string[] }).problems?.join('\n'));
    for (const p of ['unknown option "bogus"', 'ttlMs must exceed heartbeatMs', 'weight must be a positive number', 'source "my.service" may not contain "."', 'instanceId "a b"']) assert.ok(text.includes(p), `${p} in:\n${text}`);
  });
});
