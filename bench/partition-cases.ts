/**
 * Cases i (issue 21, point 6): per-key order's throughput over AMQP with 1, 2 and 4 consumers of
 * one group, in this process (like cases f and g): one publisher bus and `consumers` consumer
 * buses, each a connection of its own. Each round runs the ordered subscription (`ordered:
 * { key: 'orderId', partitions: 8 }`, 64 keys) and then, on new buses, the same consumers as a
 * plain group (prefetch 8 each, no order): `detail.ratio` is the ordered rate over the plain one
 * (the report's figure is the median of these per-round ratios). The handler waits 1 ms (a stand-in
 * for I/O: a database write), so the figure shows what one message at a time per partition costs,
 * not CPU; the consumers share this process's event loop.
 * Rate: messages handled per second, from the first publish to the last handling.
 */
import 'reflect-metadata';
import { IsInt, IsString } from 'class-validator';
import { amqpTransport } from '../adapters/amqp';
import { Bus, createBus, Message, silentLogger, Subscribe, Subscriber } from '../lib';

export interface PartitionSample {
  rate: number;
  rssMb: number;
  detail: Record<string, number>;
}

export const PARTITIONS = 8;
const KEYS = 64;
const HANDLER_MS = 1;

/** The queues and exchanges a run of `tag` declares, for the caller's clean-up. */
export function partitionCaseResources(tag: string): { queues: string[]; exchanges: string[] } {
  const names = ['ordered', 'plain'].map((g) => `${tag}.${g}.Steps.on`);
  const queues = names.flatMap((n) => [n, `${n}.dead`, `${n}.members`, ...Array.from({ length: PARTITIONS }, (_, i) => `${n}.p${i}`)]);
  return { queues, exchanges: [`${names[0]}.partitions`, tag] };
}

export async function partitionCase(o: { amqpUrl: string; n: number; consumers: number; tag: string }): Promise<PartitionSample> {
  const type = `${o.tag}.step`;
  @Message(type, { key: 'orderId' })
  class Step {
    @IsString() orderId!: string;
    @IsInt() seq!: number;
  }
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  try {
    const ordered = await measure(o, Step, true);
    const plain = await measure(o, Step, false);
    return { rate: ordered.rate, rssMb: peakRss / 2 ** 20, detail: { plainRate: plain.rate, ratio: ordered.rate / plain.rate, consumersActive: ordered.active } };
  } finally {
    clearInterval(sampler);
  }
}

async function measure(o: { amqpUrl: string; n: number; consumers: number; tag: string }, Step: new () => { orderId: string; seq: number }, ordered: boolean): Promise<{ rate: number; active: number }> {
  let handled = 0;
  const byConsumer = new Map<number, number>();
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const warmup = Math.min(500, o.n);
  const target = warmup + o.n;
  const buses: Bus[] = [];
  const mk = (source: string) => {
    const bus = createBus({ transport: amqpTransport({ url: o.amqpUrl, exchange: o.tag }), source, logger: silentLogger, meter: false });
    buses.push(bus);
    return bus;
  };
  for (let c = 0; c < o.consumers; c++) {
    @Subscriber({ group: `${o.tag}.${ordered ? 'ordered' : 'plain'}` })
    class Steps {
      @Subscribe(Step, ordered ? { ordered: { key: 'orderId', partitions: PARTITIONS } } : { prefetch: PARTITIONS })
      async on(): Promise<void> {
        await new Promise((r) => setTimeout(r, HANDLER_MS));
        byConsumer.set(c, (byConsumer.get(c) ?? 0) + 1);
        if (++handled === target) done();
      }
    }
    mk(`${o.tag}-c${c}`).register(new Steps());
  }
  const publisher = mk(`${o.tag}-p`);
  try {
    await Promise.all(buses.map((b) => b.start()));
    const publish = async (from: number, count: number) => {
      const window: Promise<string>[] = [];
      for (let seq = from; seq < from + count; seq++) {
        window.push(publisher.publish(Step, { orderId: `k${seq % KEYS}`, seq }));
        if (window.length >= 1000) await Promise.all(window.splice(0));
      }
      await Promise.all(window);
    };
    await publish(0, warmup);
    while (handled < warmup) await new Promise((r) => setTimeout(r, 10));
    byConsumer.clear();
    const started = performance.now();
    await publish(warmup, o.n);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`i: not all handled in 180 s (${handled}/${target})`)), 180_000)))]).finally(() => clearTimeout(timer));
    return { rate: (o.n * 1000) / (performance.now() - started), active: [...byConsumer.values()].filter((v) => v > 0).length };
  } finally {
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 2000 }).catch(() => undefined)));
  }
}
