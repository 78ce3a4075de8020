import { Child } from './processes';
import { buildChildren } from './build';
import amqplib from 'amqplib';
async function pair(cons: string, prod: string, n: number, extra: object = {}) {
  const entry = buildChildren();
  const tag = `mix-${Date.now().toString(36)}`;
  const p = { url: 'amqp://guest:guest@127.0.0.1:5672', exchange: tag, queue: `${tag}.raw`, routingKey: 'bench.event', source: tag, transport: 'amqp', n, window: 1000, prefetch: 1000, ...extra };
  const c = new Child(entry, cons, p, (extra as any).prof); const pr = new Child(entry, prod, p);
  await Promise.all([c.ready, pr.ready]); pr.send('go');
  const rp = await pr.result; const rc = await c.result;
  console.log(cons, prod, 'e2e', Math.round(n*1000/(rc.last-rp.first)), 'pub', Math.round(n*1000/(rp.last-rp.first)));
  const conn = await amqplib.connect(p.url); const ch = await conn.createChannel();
  for (const q of [`${tag}.raw`, `${tag}.EventSink.handle`, `${tag}.EventSink.handle.dead`]) await ch.deleteQueue(q);
  await ch.deleteExchange(tag); await conn.close();
}
(async () => {
  const n = 40000;
  await pair('courier-consumer', 'raw-amqp-producer', n, { envelope: true, prof: '/tmp/prof-cons' });
  await pair('raw-amqp-consumer', 'raw-amqp-producer', n, { envelope: true, prof: '/tmp/prof-cons' });
})();
