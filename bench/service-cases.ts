/**
 * Cases g (issue 22): the service layer over AMQP, in this process (like cases f): two instances of
 * a product service (buses with discovery) and a client bus, in one run:
 *   g-request    bus.request loop, `inflight` at a time, the broker's competing consumers (the default):
 *                the baseline of the other two.
 *   g-balanced   the same loop with `balance: 'round-robin'` (each request on an instance's own
 *                topic): what balancing costs against the default.
 *   g-gateway    HTTP GET through createGateway to the same request, driven by autocannon with
 *                `inflight` connections: what the gateway costs against the bare loop.
 * Rate: requests/s; p50 / p99: round trip in ms (autocannon's histogram for g-gateway, 1 ms steps).
 */
import 'reflect-metadata';
import { IsString } from 'class-validator';
import { amqpTransport } from '../adapters/amqp';
import { Bus, createBus, Message, silentLogger, Subscribe, Subscriber } from '../lib';
import { createGateway } from '../lib/gateway';

export interface ServiceSample {
  rate: number;
  p50: number;
  p99: number;
  rssMb: number;
  detail: Record<string, number>;
}

interface AutocannonResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  duration: number;
}
type Autocannon = (opts: { url: string; connections: number; amount: number; pipelining?: number }) => Promise<AutocannonResult>;

export async function serviceCase(kind: 'request' | 'balanced' | 'gateway', o: { amqpUrl: string; n: number; inflight: number; tag: string }): Promise<ServiceSample> {
  const type = `${o.tag}.product.get`;
  @Message(`${type}.reply`)
  class Product {
    @IsString() id!: string;
    @IsString() name!: string;
  }
  @Message(type, { reply: Product })
  class GetProduct {
    @IsString() id!: string;
  }
  @Subscriber({ prefetch: 200 })
  class Catalogue {
    @Subscribe(GetProduct)
    get(q: GetProduct): Product {
      return { id: q.id, name: `product ${q.id}` };
    }
  }
  const service = o.tag.replace(/[^A-Za-z0-9_-]/g, '_');
  const buses: Bus[] = [];
  const mk = (source: string, instanceId: string) => {
    const bus = createBus({ transport: amqpTransport({ url: o.amqpUrl }), source, instanceId, logger: silentLogger, meter: false, discovery: { heartbeatMs: 1000 } });
    buses.push(bus);
    return bus;
  };
  const servers = [mk(service, 'p1'), mk(service, 'p2')];
  for (const s of servers) s.register(new Catalogue());
  const client = mk(`${service}-client`, 'c');
  let peakRss = 0;
  const rss = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  try {
    await Promise.all(buses.map((b) => b.start()));
    const deadline = Date.now() + 10_000;
    while (client.services().filter((s) => s.service === service).length < 2) {
      if (Date.now() > deadline) throw new Error('the two instances were not discovered within 10 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    if (kind === 'gateway') {
      const gateway = createGateway(client, { routes: [{ method: 'GET', path: /^\/products\/(?<id>[\w-]+)$/, request: GetProduct }] });
      const port = await gateway.listen(0);
      try {
        const autocannon = require('autocannon') as Autocannon;
        const url = `http://127.0.0.1:${port}/products/p-1`;
        await autocannon({ url, connections: o.inflight, amount: Math.min(500, o.n) });
        const r = await autocannon({ url, connections: o.inflight, amount: o.n });
        if (r.non2xx || r.errors) throw new Error(`gateway: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
        return { rate: (r.requests.total * 1000) / Math.max(1, r.duration * 1000), p50: r.latency.p50, p99: r.latency.p99, rssMb: peakRss / 2 ** 20, detail: { total: r.requests.total } };
      } finally {
        await gateway.close();
      }
    }
    const options = kind === 'balanced' ? ({ balance: 'round-robin' } as const) : {};
    const latencies: number[] = [];
    const loop = async (n: number, record: boolean) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: o.inflight }, async () => {
          while (next < n) {
            next++;
            const t = performance.now();
            await client.request(GetProduct, { id: 'p-1' }, options);
            if (record) latencies.push(performance.now() - t);
          }
        }),
      );
    };
    await loop(Math.min(500, o.n), false);
    const started = performance.now();
    await loop(o.n, true);
    const ms = performance.now() - started;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    return { rate: (o.n * 1000) / ms, p50: pct(0.5), p99: pct(0.99), rssMb: peakRss / 2 ** 20, detail: {} };
  } finally {
    clearInterval(rss);
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 2000 }).catch(() => undefined)));
  }
}
