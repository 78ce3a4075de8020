/**
 * The AMQP wire format as a client that is not Courier sees it (docs/wire-format.md, "AMQP
 * binding"): the CloudEvents AMQP binding both ways, checked with the official `cloudevents` SDK;
 * the exact envelope of replies; the bounded set of retry delay queues. Raw amqplib against the
 * real broker, never a mock.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { HTTP } from 'cloudevents';
import { IsInt, IsString } from 'class-validator';
import { amqpTransport, delayQueueName, retryDelayTier, workQueueName } from '../../../adapters/amqp';
import { Bus, createBus, Message, MessageContext, silentLogger, Subscribe, Subscriber } from '../../../lib';
import { amqpBroker } from '../../helpers/brokers';
import { uniq, waitFor } from '../../helpers/wait';
import { rawConnection } from './amqp-fixture';

const TYPE = `wire.item-${randomUUID().slice(0, 8)}`;
const GET = `wire.get-${randomUUID().slice(0, 8)}`;

@Message(TYPE)
class Item {
  @IsInt() n!: number;
}

@Message(GET)
class GetItem {
  @IsString() key!: string;
}

/** `cloudEvents_x` (or `cloudEvents:x`) application properties -> `ce-x` HTTP headers, the binding's way. */
function ceHeaders(msg: ConsumeMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(msg.properties.headers ?? {})) {
    const m = /^cloudEvents[_:](.+)$/.exec(k);
    if (m) out[`ce-${m[1]}`] = String(v);
  }
  if (msg.properties.contentType) out['content-type'] = msg.properties.contentType;
  return out;
}

describe('amqp wire format, seen by other clients', function () {
  this.timeout(60_000);
  let exchange: string;
  let conn: ChannelModel;
  let ch: Channel;
  let buses: Bus[];
  let queues: string[];

  async function bus(source: string, ...instances: object[]): Promise<Bus> {
    const b = createBus({ transport: amqpTransport({ url: (await amqpBroker()).url, exchange }), source, logger: silentLogger });
    b.register(...instances);
    buses.push(b);
    await b.start();
    return b;
  }

  /** Consumes the next message of a fresh exclusive queue bound to `type`, through raw amqplib. */
  async function rawQueue(type: string): Promise<ConsumeMessage[]> {
    const got: ConsumeMessage[] = [];
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, exchange, type);
    await ch.consume(queue, (m) => m && got.push(m), { noAck: true });
    return got;
  }

  beforeEach(async () => {
    exchange = uniq('wire-ex-');
    buses = [];
    queues = [];
    conn = await rawConnection();
    ch = await conn.createChannel();
    await ch.assertExchange(exchange, 'topic', { durable: true });
  });

  afterEach(async () => {
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    for (const q of queues) {
      const c = await conn.createChannel();
      c.on('error', () => undefined);
      await c.deleteQueue(q).catch(() => undefined);
      await c.close().catch(() => undefined);
    }
    await ch.deleteExchange(exchange).catch(() => undefined);
    await conn.close().catch(() => undefined);
  });

  it('a Courier event maps to a valid CloudEvent in the official SDK, the binding\'s way', async () => {
    const got = await rawQueue(TYPE);
    const b = await bus('wire-publisher');
    await b.publish(Item, { n: 7 });
    await waitFor(() => got.length === 1, 5000, 'the raw delivery');
    const msg = got[0];
    const event = HTTP.toEvent({ headers: ceHeaders(msg), body: msg.content.toString('utf8') });
    assert.ok(!Array.isArray(event));
    const e = event as { id: string; source: string; type: string; time?: string; specversion: string; data?: unknown; validate(): boolean };
    assert.equal(e.validate(), true);
    assert.equal(e.specversion, '1.0');
    assert.equal(e.type, TYPE);
    assert.equal(e.source, 'wire-publisher');
    assert.equal(e.id, msg.properties.messageId, 'the AMQP message_id copy equals the binding id');
    assert.match(e.id, /^[0-9a-f-]{36}$/);
    assert.ok(e.time && Math.abs(Date.parse(e.time) - Date.now()) < 60_000, `time ${e.time}`);
    assert.deepEqual(e.data, { n: 7 });
  });

  for (const prefix of ['cloudEvents_', 'cloudEvents:']) {
    it(`a message published by raw amqplib following the binding (${prefix}) reaches a Courier handler`, async () => {
      const seen: Array<{ n: number; ctx: MessageContext }> = [];
      const group = uniq('wire-g');
      @Subscriber({ group })
      class Sink {
        @Subscribe(Item)
        async onItem(item: Item, ctx: MessageContext) {
          seen.push({ n: item.n, ctx });
        }
      }
      queues.push(workQueueName(group, 'Sink.onItem'), `${workQueueName(group, 'Sink.onItem')}.dead`);
      await bus('wire-consumer', new Sink());
      const id = randomUUID();
      const time = '2026-01-02T03:04:05.678Z';
      ch.publish(exchange, TYPE, Buffer.from(JSON.stringify({ n: 42 })), {
        contentType: 'application/json',
        persistent: true,
        headers: {
          [`${prefix}specversion`]: '1.0',
          [`${prefix}id`]: id,
          [`${prefix}source`]: '/outside/client',
          [`${prefix}type`]: TYPE,
          [`${prefix}time`]: time,
        },
      });
      await waitFor(() => seen.length === 1, 5000, 'the handler ran');
      const env = seen[0].ctx.envelope;
      assert.equal(seen[0].n, 42);
      assert.equal(env.id, id);
      assert.equal(env.source, '/outside/client');
      assert.equal(env.type, TYPE);
      assert.equal(env.time, time);
    });
  }

  it('replies: the exact envelope of a success reply and an error reply, as a raw client receives them', async () => {
    const serverGroup = uniq('wire-server');
    queues.push(workQueueName(serverGroup, 'Server.get'), `${workQueueName(serverGroup, 'Server.get')}.dead`);
    @Subscriber({ group: serverGroup })
    class Server {
      @Subscribe(GetItem)
      async get(q: GetItem) {
        if (q.key === 'bad') throw new RangeError('no such key');
        return { key: q.key, found: true };
      }
    }
    const server = new Server();
    await bus('wire-server-svc', server);
    const replies: ConsumeMessage[] = [];
    await ch.consume('amq.rabbitmq.reply-to', (m) => m && replies.push(m), { noAck: true });
    const requests = ['good', 'bad'].map((key) => ({ key, id: randomUUID(), corr: randomUUID() }));
    for (const r of requests) {
      ch.publish(exchange, GET, Buffer.from(JSON.stringify({ key: r.key })), {
        contentType: 'application/json',
        persistent: true,
        replyTo: 'amq.rabbitmq.reply-to',
        correlationId: r.corr,
        expiration: '10000',
        headers: { cloudEvents_specversion: '1.0', cloudEvents_id: r.id, cloudEvents_source: '/raw', cloudEvents_type: GET, cloudEvents_time: new Date().toISOString() },
      });
    }
    await waitFor(() => replies.length === 2, 10_000, 'two replies');
    for (const r of requests) {
      const reply = replies.find((m) => m.properties.correlationId === r.corr)!;
      assert.ok(reply, `a reply for ${r.key}`);
      const p = reply.properties;
      const h = p.headers as Record<string, unknown>;
      const keys = Object.keys(h).sort();
      const expected = ['cloudEvents_correlationid', 'cloudEvents_causationid', 'cloudEvents_id', 'cloudEvents_source', 'cloudEvents_specversion', 'cloudEvents_time', 'cloudEvents_type'];
      if (r.key === 'bad') expected.push('cloudEvents_courierreplyerror');
      assert.deepEqual(keys, expected.sort(), `${r.key}: the application properties`);
      assert.equal(h.cloudEvents_specversion, '1.0');
      assert.match(String(h.cloudEvents_id), /^[0-9a-f-]{36}$/);
      assert.notEqual(h.cloudEvents_id, r.id);
      assert.equal(h.cloudEvents_source, 'wire-server-svc');
      assert.equal(h.cloudEvents_type, `${GET}.reply`);
      assert.ok(Math.abs(Date.parse(String(h.cloudEvents_time)) - Date.now()) < 60_000);
      assert.equal(h.cloudEvents_correlationid, r.id, 'the request has no correlationid of its own: its id');
      assert.equal(h.cloudEvents_causationid, r.id);
      assert.equal(p.contentType, 'application/json');
      assert.equal(p.messageId, h.cloudEvents_id);
      assert.equal(p.type, `${GET}.reply`);
      assert.equal(p.appId, 'wire-server-svc');
      assert.equal(p.deliveryMode, 1, 'replies are not persistent (docs/wire-format.md)');
      const body = JSON.parse(reply.content.toString());
      if (r.key === 'bad') {
        assert.equal(h.cloudEvents_courierreplyerror, 'RangeError');
        assert.deepEqual(body, { name: 'RangeError', message: 'no such key' });
      } else {
        assert.deepEqual(body, { key: 'good', found: true });
      }
      const ce = HTTP.toEvent({ headers: ceHeaders(reply), body: reply.content.toString() }) as unknown as { validate(): boolean };
      assert.equal(ce.validate(), true, `${r.key}: the reply is a valid CloudEvent`);
    }
  });

  it('requests: transient, with reply_to, correlation_id and expiration, on the events exchange under their type, as a raw server receives them', async () => {
    const got = await rawQueue(GET);
    const client = await bus('wire-client-svc');
    const answered = client.request(GetItem, { key: 'k' }, { timeoutMs: 7000 });
    await waitFor(() => got.length === 1, 10_000, 'the request');
    const m = got[0];
    assert.equal(m.fields.exchange, exchange);
    assert.equal(m.fields.routingKey, GET);
    assert.equal(m.properties.deliveryMode, 1, 'requests are not persistent (docs/wire-format.md)');
    assert.match(String(m.properties.replyTo), /^amq\.rabbitmq\.reply-to\./, 'direct reply-to (the broker fills in the channel)');
    assert.equal(m.properties.expiration, '7000', 'a request expires with its timeout');
    assert.match(String(m.properties.correlationId), /\S/);
    assert.equal((m.properties.headers as Record<string, unknown>).cloudEvents_type, GET);
    assert.deepEqual(JSON.parse(m.content.toString()), { key: 'k' });
    // Answer it by hand, as a foreign server would: the caller resolves.
    ch.publish('', m.properties.replyTo, Buffer.from(JSON.stringify({ key: 'k', found: true })), { correlationId: m.properties.correlationId, messageId: randomUUID(), appId: '/raw', contentType: 'application/json' });
    assert.deepEqual(await answered, { key: 'k', found: true });
  });

  it('retries: a few hundred failures with jittered delays make a bounded set of delay queues', async () => {
    const group = uniq('wire-retry');
    let calls = 0;
    @Subscriber({ group, prefetch: 100 })
    class Failing {
      @Subscribe(Item, { retry: { attempts: 3, initialDelayMs: 20, factor: 2 } })
      async onItem() {
        calls++;
        throw new Error('always fails');
      }
    }
    const queue = workQueueName(group, 'Failing.onItem');
    // Every delay the jitter can pick (attempt 1: 10-20 ms, attempt 2: 20-40 ms) and the tiers.
    const candidates = Array.from({ length: 61 }, (_, i) => delayQueueName(queue, i));
    const rawNames = Array.from({ length: 61 }, (_, i) => `${queue}.retry.${i}`);
    queues.push(queue, `${queue}.dead`, ...new Set([...candidates, ...rawNames]));
    const b = await bus('wire-retry-svc', new Failing());
    let dead = 0;
    b.on('deadLetter', () => dead++);
    const count = 300;
    await Promise.all(Array.from({ length: count }, (_, n) => b.publish(Item, { n })));
    await waitFor(() => dead === count, 40_000, `${count} dead letters`);
    assert.ok(calls >= count * 3, `${calls} handler calls`);
    const exists = async (name: string) => {
      const c = await conn.createChannel();
      c.on('error', () => undefined);
      try {
        await c.checkQueue(name);
        return true;
      } catch {
        return false;
      } finally {
        await c.close().catch(() => undefined);
      }
    };
    assert.ok(await exists(queue), 'the work queue exists (the check can see queues)');
    const present: string[] = [];
    for (const name of new Set([...candidates, ...rawNames])) if (await exists(name)) present.push(name);
    // The documented tiers round(2^(k/4)) ms covering 10-40 ms (10 of them, 10 ms to 45 ms), whatever the traffic.
    const tiers = documentedTiers(10, 40);
    assert.ok(present.length > 0, 'some delay queue was made');
    assert.ok(present.length <= tiers.size, `at most ${tiers.size} delay queues for delays of 10-40 ms, found ${present.length}: ${present.join(', ')}`);
    for (const name of present) assert.ok(tiers.has(Number(name.split('.').pop())), `${name} is a tier`);
    const chosen = new Set(Array.from({ length: 31 }, (_, i) => retryDelayTier(10 + i)));
    assert.deepEqual([...chosen].sort((a, b) => a - b), [...tiers].sort((a, b) => a - b));
  });

  it('a delay tier is its own tier: the delay queue named for a delay has that delay as its TTL', () => {
    const tiers = documentedTiers(1, 2 ** 22);
    const sorted = [...tiers].sort((a, b) => a - b);
    for (let d = 0; d <= 70_000; d++) {
      const t = retryDelayTier(d);
      assert.equal(retryDelayTier(t), t, `tier of ${d} ms is ${t} ms, whose own tier must be ${t}`);
      assert.ok(d === 0 ? t === 0 : tiers.has(t), `${t} ms (for ${d} ms) is a documented tier`);
      assert.ok(t >= d, `${t} ms is not shorter than ${d} ms`);
      const shorter = sorted.filter((x) => x < t).pop();
      assert.ok(d === 0 || shorter === undefined || shorter < d, `${t} ms is the shortest tier not shorter than ${d} ms (${shorter} ms is shorter)`);
      assert.ok(delayQueueName('q', d).endsWith(`.retry.${t}`));
    }
  });
});

/** The documented tiers, computed independently of the adapter: every round(2^(k/4)) ms from the one covering `from` through the first not shorter than `to`. */
function documentedTiers(from: number, to: number): Set<number> {
  const all = [...new Set(Array.from({ length: 129 }, (_, k) => Math.round(2 ** (k / 4))))].sort((a, b) => a - b);
  const last = all.find((t) => t >= to)!;
  return new Set(all.filter((t) => t >= from && t <= last));
}
