/**
 * Cases g (issue 22): the service layer over AMQP, in this process (like cases f): two instances of
 * a product service (buses with discovery) and a client bus. Each round measures the baseline, a
 * bare bus.request loop (`inflight` at a time, the broker's competing consumers: the default),
 * then the case, then the baseline again, on the same buses: `detail.ratio` is the case's rate
 * over the mean of the two baselines (the report's figure is the median of these per-round ratios).
 *   g-balanced   the loop with `balance: 'round-robin'` (each request on an instance's own topic).
 *   g-gateway    HTTP GET through createGateway to the same request, driven by autocannon (in
 *                this process) with `inflight` connections.
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

export async function serviceCase(kind: 'balanced' | 'gateway', o: { amqpUrl: string; n: number; inflight: number; tag: string }): Promise<ServiceSample> {
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
    const loop = async (n: number, options: { balance?: 'round-robin' }, latencies?: number[]) => {
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: o.inflight }, async () => {
          while (next < n) {
            next++;
            const t = performance.now();
            await client.request(GetProduct, { id: 'p-1' }, options);
            latencies?.push(performance.now() - t);
          }
        }),
      );
      return (n * 1000) / (performance.now() - started);
    };
    await loop(Math.min(500, o.n), {});
    const before = await loop(o.n, {});
    let sample: ServiceSample;
    if (kind === 'gateway') {
      const gateway = createGateway(client, { routes: [{ method: 'GET', path: /^\/products\/(?<id>[\w-]+)$/, request: GetProduct }] });
      const port = await gateway.listen(0);
      try {
        const autocannon = require('autocannon') as Autocannon;
        const url = `http://127.0.0.1:${port}/products/p-1`;
        await autocannon({ url, connections: o.inflight, amount: Math.min(500, o.n) });
        const r = await autocannon({ url, connections: o.inflight, amount: o.n });
        if (r.non2xx || r.errors) throw new Error(`gateway: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
        sample = { rate: r.requests.total / Math.max(1e-3, r.duration), p50: r.latency.p50, p99: r.latency.p99, rssMb: 0, detail: {} };
      } finally {
        await gateway.close();
      }
    } else {
      const latencies: number[] = [];
      await loop(Math.min(500, o.n), { balance: 'round-robin' });
      const rate = await loop(o.n, { balance: 'round-robin' }, latencies);
      latencies.sort((a, b) => a - b);
      const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
      sample = { rate, p50: pct(0.5), p99: pct(0.99), rssMb: 0, detail: {} };
    }
    const after = await loop(o.n, {});
    const baseline = (before + after) / 2;
    return { ...sample, rssMb: peakRss / 2 ** 20, detail: { baselineRate: baseline, ratio: sample.rate / baseline } };
  } finally {
    clearInterval(rss);
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 2000 }).catch(() => undefined)));
  }
}
