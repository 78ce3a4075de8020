/**
 * Case q (issue 21, point 6): AMQP events on quorum queues against the same on classic queues,
 * in one run, rounds alternating (run.ts), so the choice of the default `queueType` rests on a
 * figure (docs/benchmarks.md, docs/scaling.md). In this process, like cases f and g: a producer
 * bus and a consumer bus, each on its own connection; persistent messages, publisher confirms
 * with `window` in flight, one ack per message, prefetch 1000; the payload of case a. Rate:
 * messages/s from the first publish to the last message handled; p50 / p99: publish-to-handler
 * latency in ms. On a single node a quorum queue still writes its Raft log (fsync'd in batches):
 * this measures that cost; on a cluster the replication to the other members adds to it.
 */
import 'reflect-metadata';
import { amqpTransport } from '../adapters/amqp';
import { createBus, silentLogger, Subscribe, Subscriber } from '../lib';
import { BenchEvent, benchEvent } from './payload';
import { Window } from './window';

export interface QueueTypeSample {
  rate: number;
  p50: number;
  p99: number;
  rssMb: number;
  detail: Record<string, number>;
}

export async function queueTypeCase(queueType: 'classic' | 'quorum', o: { amqpUrl: string; n: number; window: number; tag: string }): Promise<QueueTypeSample> {
  const sent = new Map<number, number>();
  const latencies: number[] = [];
  let last = 0;
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  @Subscriber({ group: o.tag, prefetch: 1000 })
  class QueueSink {
    @Subscribe(BenchEvent)
    on(e: BenchEvent): void {
      const at = sent.get(e.seq);
      if (at !== undefined) latencies.push(performance.now() - at);
      if (latencies.length === o.n) {
        last = performance.now();
        done();
      }
    }
  }
  const mk = (role: string) =>
    createBus({
      transport: amqpTransport({ url: o.amqpUrl, exchange: o.tag, queueType, connectionName: `bench-${o.tag}-${role}` }),
      source: o.tag,
      logger: silentLogger,
    });
  const consumer = mk('consumer');
  consumer.register(new QueueSink());
  const producer = mk('producer');
  let peakRss = 0;
  const rss = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  try {
    await consumer.start();
    await producer.start();
    const first = performance.now();
    const window = new Window(o.window);
    await window.run(o.n, (i) => {
      sent.set(i, performance.now());
      return producer.publish(BenchEvent, benchEvent(i));
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${queueType}: ${latencies.length} of ${o.n} handled after 300 s`)), 300_000))),
    ]).finally(() => clearTimeout(timer));
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    return { rate: (o.n * 1000) / Math.max(1e-3, last - first), p50: pct(0.5), p99: pct(0.99), rssMb: peakRss / 2 ** 20, detail: { count: o.n } };
  } finally {
    clearInterval(rss);
    await Promise.all([producer.stop({ timeoutMs: 2000 }).catch(() => undefined), consumer.stop({ timeoutMs: 2000 }).catch(() => undefined)]);
  }
}
