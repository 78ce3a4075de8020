/**
 * bus.health() and healthHandler(): readiness 200 once started and attached, 503 while the broker
 * is cut off (a TCP proxy in front of the real broker refuses it for a while) and 200 again once
 * the transport reconnected; publishes made meanwhile are counted as waiting and every one of
 * them arrives once the cut healed. Liveness stays 200 through the cut and is 503 after stop().
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { IsString } from 'class-validator';
import { BusHealth, createBus, healthHandler, Message, silentLogger, Subscribe, Subscriber } from '../../lib';
import { memoryTransport, MemoryBroker } from '../../adapters/memory';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { kit } from './obs-kit';

@Message('health.tick')
class HealthTick {
  @IsString() n!: string;
}

interface Probe {
  status: number;
  body: { ok: boolean; probe: string; buses: BusHealth[] };
}

async function probe(port: number, path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', reject);
  });
}

async function serve(handler: http.RequestListener): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, close: () => new Promise((r) => server.close(() => r())) };
}

async function waitStatus(port: number, path: string, status: number, timeoutMs: number): Promise<Probe> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await probe(port, path);
    if (p.status === status) return p;
    if (Date.now() > deadline) throw new Error(`${path} stayed ${p.status} (wanted ${status}) for ${timeoutMs} ms: ${JSON.stringify(p.body)}`);
    await sleep(50);
  }
}

describe('health: bus.health() and healthHandler()', function () {
  this.timeout(40_000);

  it('memory: 503 before start, 200 once started, live 503 after stop; JSON with the figures; 404 elsewhere', async () => {
    @Subscriber({ group: 'h' })
    class Sink {
      @Subscribe(HealthTick)
      async on() {}
    }
    const bus = createBus({ transport: memoryTransport({ broker: new MemoryBroker() }), source: 'health-mem', logger: silentLogger }).register(new Sink());
    const server = await serve((req, res) => void healthHandler(bus)(req, res));
    try {
      assert.equal((await probe(server.port, '/ready')).status, 503);
      await bus.start();
      const ready = await probe(server.port, '/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.ok, true);
      assert.deepEqual(ready.body.buses[0].subscriptions, { expected: 1, attached: 1 });
      assert.equal(ready.body.buses[0].connected, true);
      assert.equal(ready.body.buses[0].publishesWaiting, 0);
      assert.equal((await probe(server.port, '/healthz')).status, 200);
      const missing = await new Promise<number>((resolve) => http.get({ host: '127.0.0.1', port: server.port, path: '/metrics' }, (r) => (r.resume(), resolve(r.statusCode ?? 0))));
      assert.equal(missing, 404);
      await bus.stop();
      assert.equal((await probe(server.port, '/ready')).status, 503);
      const live = await probe(server.port, '/live');
      assert.equal(live.status, 503);
      assert.equal(live.body.buses[0].state, 'stopped');
    } finally {
      await bus.stop();
      await server.close();
    }
  });

  it('a bus whose start() failed is not live', async () => {
    @Subscriber()
    class Bad {
      @Subscribe(HealthTick, { prefetch: 0 })
      async on() {}
    }
    const bus = createBus({ transport: memoryTransport({ broker: new MemoryBroker() }), source: 'health-bad', logger: silentLogger }).register(new Bad());
    await assert.rejects(bus.start());
    const h = bus.health();
    assert.equal(h.state, 'failed');
    assert.equal(h.live, false);
    assert.equal(h.ready, false);
  });

  for (const kind of ['amqp', 'mqtt'] as const) {
    it(`${kind}: a broker cut turns readiness to 503 and back to 200; publishes wait meanwhile and all arrive`, async () => {
      const k = await kit(kind);
      const proxy = new TcpProxy(k.host, k.port);
      const port = await proxy.start();
      const url = kind === 'amqp' ? `amqp://guest:guest@127.0.0.1:${port}` : `mqtt://127.0.0.1:${port}`;
      const group = uniq('health');
      const received = new Map<string, number>();
      @Subscriber({ group })
      class Sink {
        @Subscribe(HealthTick)
        async on(e: HealthTick) {
          received.set(e.n, (received.get(e.n) ?? 0) + 1);
        }
      }
      const bus = createBus({ transport: k.create(url), source: group, logger: silentLogger }).register(new Sink());
      const server = await serve((req, res) => void healthHandler(bus)(req, res));
      try {
        await bus.start();
        const before = await waitStatus(server.port, '/ready', 200, 5000);
        assert.deepEqual(before.body.buses[0].subscriptions, { expected: 1, attached: 1 });

        proxy.cut(4000);
        const down = await waitStatus(server.port, '/ready', 503, 5000);
        assert.equal(down.body.buses[0].connected, false);
        assert.equal(down.body.buses[0].subscriptions.attached, 0);
        assert.ok(down.body.buses[0].disconnectedSince);
        // Liveness stays: restarting the process would not bring the broker back.
        assert.equal((await probe(server.port, '/live')).status, 200);

        const sent = ['a', 'b', 'c', 'd', 'e'];
        const publishes = sent.map((n) => bus.publish(HealthTick, { n }));
        await waitFor(() => bus.health().publishesWaiting === sent.length, 2000, 'the publishes counted as waiting');
        assert.equal((await probe(server.port, '/ready')).status, 503);

        const back = await waitStatus(server.port, '/ready', 200, 20_000);
        assert.deepEqual(back.body.buses[0].subscriptions, { expected: 1, attached: 1 });
        assert.equal(back.body.buses[0].disconnectedSince, undefined);
        await Promise.all(publishes);
        assert.equal(bus.health().publishesWaiting, 0);
        await waitFor(() => received.size === sent.length, 15_000, 'every message published during the cut');
        await sleep(300);
        const lost = sent.filter((n) => !received.has(n));
        const unexpected = [...received.keys()].filter((n) => !sent.includes(n));
        assert.deepEqual({ lost, unexpected }, { lost: [], unexpected: [] });
        // Duplicates are allowed after a cut (at-least-once); counted for the record.
        const duplicates = [...received.values()].reduce((s, c) => s + c - 1, 0);
        assert.ok(duplicates >= 0);
      } finally {
        await bus.stop().catch(() => undefined);
        await server.close();
        await proxy.stop();
        await k.cleanup([{ pattern: 'health.tick', group, name: 'Sink.on', prefetch: 10 }]);
      }
    });
  }
});
