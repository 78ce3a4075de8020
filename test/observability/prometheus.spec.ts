/**
 * courier-bus/prometheus: two instances of one service (each with its own registry, as two
 * processes have) and a publisher; their /metrics are scraped over HTTP in the text format and
 * the counters and histogram counts add up across the instances to what was sent; labels are
 * bounded (no ids). On memory and AMQP.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { IsInt, IsString } from 'class-validator';
import { Bus, createBus, Message, RejectMessageError, silentLogger, Subscribe, Subscriber } from '../../lib';
import { prometheusMetrics } from '../../adapters/prometheus';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { kit } from './obs-kit';
import { uniq, waitFor } from '../helpers/wait';

@Message('prom.job')
class PromJob {
  @IsString() id!: string;
  @IsInt() n!: number;
}

@Message('prom.square-reply')
class PromSquare {
  @IsInt() n!: number;
}

@Message('prom.square', { reply: PromSquare })
class PromSquareRequest {
  @IsInt() n!: number;
}

/** One sample line of the text format: `name{a="b",...} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function sum(samples: Sample[], name: string, where: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

async function scrape(port: number): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), text }));
      })
      .on('error', reject);
  });
}

describe('Prometheus metrics (courier-bus/prometheus)', function () {
  this.timeout(40_000);

  for (const kind of ['memory', 'amqp'] as const) {
    it(`${kind}: two instances scraped over HTTP; handled, published and request counts add up across them`, async () => {
      const k = await kit(kind);
      const service = uniq('prom');
      const handledBy = new Map<string, number>();
      @Subscriber({ group: service })
      class Worker {
        @Subscribe(PromJob, { retry: { attempts: 1 } })
        async job(e: PromJob) {
          if (e.n % 4 === 0) throw new RejectMessageError(`job ${e.id} is poison`);
          handledBy.set(e.id, (handledBy.get(e.id) ?? 0) + 1);
        }
        @Subscribe(PromSquareRequest)
        square(e: PromSquareRequest): PromSquare {
          return { n: e.n * e.n };
        }
      }
      const instances: Bus[] = [1, 2].map(() => createBus({ transport: k.create(), source: service, logger: silentLogger }).register(new Worker()));
      const client = createBus({ transport: k.create(), source: `${service}-client`, logger: silentLogger });
      const servers: http.Server[] = [];
      const ports: number[] = [];
      try {
        for (const bus of [...instances, client]) {
          const metrics = prometheusMetrics().addBus(bus, bus === instances[0] ? { queueDepth: () => ({ [`${service}.Worker.job`]: 7 }) } : {});
          const server = http.createServer((req, res) => void metrics.handler()(req, res));
          await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
          servers.push(server);
          ports.push((server.address() as { port: number }).port);
          await bus.start();
        }
        const n = 40;
        for (let i = 1; i <= n; i++) await client.publish(PromJob, { id: `job-${i}`, n: i });
        for (let i = 1; i <= 3; i++) assert.equal((await client.request<PromSquareRequest, PromSquare>(PromSquareRequest, { n: i })).n, i * i);
        const poison = n / 4;
        await waitFor(() => handledBy.size === n - poison, 15_000, 'every good job handled');
        // Settles are counted when they happen: wait until both meters saw all n settled.
        const settled = () => instances.reduce((t, bus) => t + (bus.metrics().handlers[`${service}.Worker.job`]?.consumed ?? 0), 0);
        await waitFor(() => settled() === n, 10_000, 'every job settled');
        const scraped = await Promise.all(ports.map(scrape));
        for (const s of scraped) {
          assert.equal(s.status, 200);
          assert.match(s.type, /^text\/plain; version=0\.0\.4/);
        }
        const [a, b, c] = scraped.map((s) => parse(s.text));
        const workers = [...a, ...b];
        const handler = `${service}.Worker.job`;
        assert.equal(sum(workers, 'courier_messages_handled_total', { service, handler, outcome: 'ack' }), n - poison);
        assert.equal(sum(workers, 'courier_messages_handled_total', { service, handler, outcome: 'dead' }), poison);
        assert.equal(sum(workers, 'courier_handle_duration_seconds_count', { service, handler }), n);
        assert.equal(sum(workers, 'courier_handle_duration_seconds_bucket', { service, handler, le: '+Inf' }), n);
        assert.equal(sum(workers, 'courier_messages_handled_total', { handler: `${service}.Worker.square`, outcome: 'ack' }), 3);
        // Both instances took a share of the work (a competing group).
        assert.ok(sum(a, 'courier_messages_handled_total', { handler }) > 0 && sum(b, 'courier_messages_handled_total', { handler }) > 0, 'both instances handled jobs');
        // The client published n jobs (and 3 requests); its publish histogram counted each.
        assert.equal(sum(c, 'courier_messages_published_total', { service: `${service}-client`, type: 'prom.job' }), n);
        assert.equal(sum(c, 'courier_publish_duration_seconds_count', { type: 'prom.job' }), n);
        assert.equal(sum(c, 'courier_request_duration_seconds_count', { type: 'prom.square', outcome: 'ok' }), 3);
        // Gauges from the meters' figures.
        assert.ok(c.some((s) => s.name === 'courier_backlog_messages' && s.labels.type === 'prom.job'));
        assert.ok(a.some((s) => s.name === 'courier_in_flight_messages' && s.labels.handler === handler));
        assert.equal(sum(c, 'courier_publishes_waiting'), 0);
        assert.equal(sum(a, 'courier_queue_depth_messages', { queue: handler }), 7);
        // Bounded labels only: never an id.
        const allowed = new Set(['service', 'type', 'handler', 'outcome', 'le', 'table', 'queue']);
        for (const s of [...a, ...b, ...c]) {
          for (const key of Object.keys(s.labels)) assert.ok(allowed.has(key), `label ${key} on ${s.name}`);
          for (const v of Object.values(s.labels)) assert.doesNotMatch(v, /job-\d+|[0-9a-f]{8}-[0-9a-f]{4}-/, `${s.name} has an id in a label`);
        }
      } finally {
        await Promise.allSettled([...instances, client].map((bus) => bus.stop()));
        for (const s of servers) s.close();
        await k.cleanup([
          { pattern: 'prom.job', group: service, name: 'Worker.job', prefetch: 10 },
          { pattern: 'prom.square', group: service, name: 'Worker.square', prefetch: 10 },
        ]);
      }
    });
  }

  it('a bus created with meter: false is refused with a clear error', () => {
    const bus = createBus({ transport: memoryTransport({ broker: new MemoryBroker() }), source: 'nometer', meter: false });
    assert.throws(() => prometheusMetrics().addBus(bus), /meter: false/);
  });
});
