/**
 * `node -r ts-node/register/transpile-only bench/exchange-cost.ts [n] [rounds]`: what a message's
 * route and delivery mode cost RabbitMQ (issue 19, point 3), apart from any client: raw amqplib
 * publishes n messages (~210 bytes, a confirm window of 1,000) through each variant below into a
 * durable queue that the same process drains (prefetch 1,000, an ack each), and reads the
 * broker's CPU (beam.smp user + system from /proc, bench/broker-cpu.ts) over each. The variants
 * take turns within a round (rotated each round); the figure per variant is the median over the
 * rounds of broker CPU ms per 1,000 messages. Another client's traffic on the same broker counts
 * too: compare variants of one run, on a machine as quiet as it gets.
 *
 *   topic-persistent   Courier's events: a topic exchange, the queue bound by the type, delivery_mode 2
 *   topic-transient    Courier's requests since issue 19: the same route, delivery_mode 1
 *   direct-persistent  a direct exchange, the queue bound by the same key
 *   default-persistent the default exchange straight to the queue (the plain raw client of case a)
 *   default-transient  the plain raw client of case b
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import amqplib, { Channel } from 'amqplib';
import { brokerCpuDelta, brokerCpuMs } from './broker-cpu';
import { benchEvent } from './payload';
import { median, Window } from './window';

interface Variant {
  readonly name: string;
  readonly exchange?: 'topic' | 'direct';
  readonly persistent: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'topic-persistent', exchange: 'topic', persistent: true },
  { name: 'topic-transient', exchange: 'topic', persistent: false },
  { name: 'direct-persistent', exchange: 'direct', persistent: true },
  { name: 'default-persistent', persistent: true },
  { name: 'default-transient', persistent: false },
];

async function once1(url: string, v: Variant, n: number): Promise<number> {
  const conn = await amqplib.connect(url, { noDelay: true });
  const tag = `bench-xcost-${randomUUID().slice(0, 8)}`;
  const queue = `${tag}.q`;
  const key = 'bench.event';
  try {
    const pub = await conn.createConfirmChannel();
    const sub: Channel = await conn.createChannel();
    await pub.assertQueue(queue, { durable: true });
    if (v.exchange) {
      await pub.assertExchange(tag, v.exchange, { durable: true });
      await pub.bindQueue(queue, tag, key);
    }
    await sub.prefetch(1000);
    let got = 0;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    await sub.consume(queue, (m) => {
      if (!m) return;
      sub.ack(m);
      if (++got === n) finish();
    });
    const window = new Window(1000);
    const cpu0 = brokerCpuMs();
    for (let i = 0; i < n; i++) {
      const wait = window.acquire();
      if (wait) await wait;
      const body = Buffer.from(JSON.stringify(benchEvent(i)));
      const ok = pub.publish(v.exchange ? tag : '', v.exchange ? key : queue, body, { persistent: v.persistent, contentType: 'application/json', messageId: randomUUID() }, (err) =>
        err ? window.fail(new Error(String(err))) : window.release(),
      );
      if (!ok) await once(pub, 'drain');
    }
    await window.idle();
    await done;
    const cpu1 = brokerCpuMs();
    if (!cpu0 || !cpu1) throw new Error('no RabbitMQ process readable in /proc');
    return (brokerCpuDelta(cpu0, cpu1) * 1000) / n;
  } finally {
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue).catch(() => undefined);
    if (v.exchange) await ch.deleteExchange(tag).catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20_000);
  const rounds = Number(process.argv[3] ?? 5);
  const url = process.env.COURIER_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const per = new Map<string, number[]>(VARIANTS.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(k + r) % VARIANTS.length];
      const ms = await once1(url, v, n);
      per.get(v.name)!.push(ms);
      process.stderr.write(`round ${r + 1}/${rounds} ${v.name}: ${ms.toFixed(1)} ms per 1,000\n`);
    }
  }
  process.stdout.write(`RabbitMQ CPU ms per 1,000 messages, median of ${rounds} rounds (range), ${n} messages each:\n`);
  for (const [name, xs] of per) {
    process.stdout.write(`  ${name.padEnd(20)} ${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)})\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
