/**
 * What the AMQP adapter promises beyond the conformance suite, against the real broker:
 * confirms and nacks, mandatory publishes, dead letters and their headers, delayed retry into one
 * subscription only, the weighted split, direct reply-to under concurrency, typed channel errors
 * with the connection surviving, and 10,000 confirmed messages through connection cuts.
 */
import assert from 'node:assert/strict';
import { AmqpTransport, amqpTransport } from '../../../adapters/amqp';
import type { AmqpTransportOptions } from '../../../adapters/amqp';
import {
  AccessRefusedError,
  NotConnectedError,
  PublishTimeoutError,
  PreconditionFailedError,
  PublishRejectedError,
  RequestTimeoutError,
  ResourceNotFoundError,
  UnroutableError,
} from '../../../lib/errors';
import { Delivery, Headers, SubscriptionSpec } from '../../../lib/transport';
import { amqpBroker } from '../../helpers/brokers';
import { TcpProxy } from '../../helpers/tcp-proxy';
import { bodyN as n, testMessage as message } from '../../helpers/test-message';
import { sleep, uniq, waitFor } from '../../helpers/wait';
import { deleteQueues, rabbitmqctl, rawConnection, urlAs } from './amqp-fixture';


describe('amqp adapter', function () {
  this.timeout(30_000);
  let open: AmqpTransport[] = [];
  let specs: SubscriptionSpec[] = [];
  let cleanups: Array<() => Promise<unknown>> = [];

  async function transport(options: Partial<AmqpTransportOptions> = {}): Promise<AmqpTransport> {
    const t = amqpTransport({ url: (await amqpBroker()).url, ...options });
    open.push(t);
    return t;
  }
  function spec(partial: Partial<SubscriptionSpec> & { pattern: string }): SubscriptionSpec {
    const s: SubscriptionSpec = { name: 'handler', prefetch: 10, group: uniq('g'), ...partial };
    specs.push(s);
    return s;
  }

  /** A connected transport whose subscription to `topic` acks and keeps every delivery. */
  async function collecting(topic: string): Promise<{ t: AmqpTransport; got: Delivery[] }> {
    const t = await transport();
    const got: Delivery[] = [];
    await t.subscribe(spec({ pattern: topic }), async (d) => {
      got.push(d);
      await d.ack();
    });
    await t.connect();
    return { t, got };
  }

  /** A TCP proxy in front of the broker (stopped after the test) and the broker's URL through it. */
  async function proxiedBroker(): Promise<{ proxy: TcpProxy; url: string }> {
    const broker = await amqpBroker();
    const proxy = new TcpProxy(broker.host, broker.port);
    await proxy.start();
    cleanups.push(() => proxy.stop());
    const u = new URL(broker.url);
    u.host = `127.0.0.1:${proxy.port}`;
    return { proxy, url: u.toString() };
  }

  /** The numbers of the messages in `queue` (taken out of it), in ascending order. */
  async function backInQueue(queue: string): Promise<number[]> {
    const raw = await rawConnection();
    try {
      const ch = await raw.createChannel();
      const back: number[] = [];
      for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) {
        back.push(JSON.parse(m.content.toString('utf8')).n);
      }
      return back.sort((a, b) => a - b);
    } finally {
      await raw.close();
    }
  }

  afterEach(async function () {
    await Promise.all(open.map((t) => t.close({ timeoutMs: 1000 }).catch(() => undefined)));
    await deleteQueues(specs);
    for (const c of cleanups) await c().catch(() => undefined);
    open = [];
    specs = [];
    cleanups = [];
  });

  describe('publish', () => {
    it('resolves on the broker ack: every resolved message is in the queue', async () => {
      const topic = uniq('amqp.confirm.');
      const s = spec({ pattern: topic });
      const t = await transport();
      await t.subscribe(s, async (d) => d.ack());
      await t.connect();
      await t.close(); // the queue stays (durable group); nobody consumes from now on
      const p = await transport({ maxUnconfirmed: 50 });
      await p.connect();
      await Promise.all(Array.from({ length: 500 }, (_, i) => p.publish(message(topic, i))));
      const raw = await rawConnection();
      try {
        const ch = await raw.createChannel();
        assert.equal((await ch.checkQueue(`${s.group}.${s.name}`)).messageCount, 500);
      } finally {
        await raw.close();
      }
    });

    it('a nacked publish (a full reject-publish queue) is published again until there is room, else ends in PublishTimeoutError', async () => {
      const topic = uniq('amqp.nack.');
      const t = await transport();
      await t.connect();
      const raw = await rawConnection();
      const queue = uniq('amqp.full.');
      cleanups.push(async () => {
        const ch = await raw.createChannel();
        await ch.deleteQueue(queue);
        await raw.close();
      });
      const ch = await raw.createChannel();
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
      await ch.bindQueue(queue, 'courier.events', topic);
      await t.publish(message(topic, 1));
      // The queue is full: the broker nacks the next one, again and again, until a message leaves.
      let second: 'pending' | 'resolved' | Error = 'pending';
      const p2 = t.publish(message(topic, 2), { timeoutMs: 20_000 }).then(
        () => void (second = 'resolved'),
        (err: Error) => void (second = err),
      );
      await sleep(600);
      assert.equal(second, 'pending', 'nacked, and published again: not rejected');
      const first = await ch.get(queue, { noAck: true });
      assert.ok(first, 'the first message was stored');
      await p2;
      assert.equal(second, 'resolved', 'stored once there was room');
      const got = await ch.get(queue, { noAck: true });
      assert.ok(got && JSON.parse(got.content.toString()).n === 2);
      // Never room: the publish ends with its timeout, not a false success.
      await t.publish(message(topic, 3));
      await assert.rejects(t.publish(message(topic, 4), { timeoutMs: 800 }), (err: unknown) => {
        assert.ok(err instanceof PublishTimeoutError, String(err));
        return true;
      });
      // The channel survives the nacks: the next publish elsewhere resolves.
      await t.publish(message(uniq('amqp.nobody.'), 5));
    });

    it('mandatory: rejects with UnroutableError when no queue is bound; plain publish resolves', async () => {
      const t = await transport();
      await t.connect();
      const topic = uniq('amqp.unroutable.');
      await assert.rejects(t.publish(message(topic, 1), { mandatory: true }), UnroutableError);
      await t.publish(message(topic, 2));
      const s = spec({ pattern: topic });
      const got: number[] = [];
      await t.subscribe(s, async (d) => {
        got.push(n(d));
        await d.ack();
      });
      await t.publish(message(topic, 3), { mandatory: true });
      await waitFor(() => got.length === 1, 5000, 'the routed mandatory message');
      assert.deepEqual(got, [3]);
    });

    it('a body above maxMessageBytes is refused before it is sent', async () => {
      const t = await transport({ maxMessageBytes: 1024 });
      await t.connect();
      await assert.rejects(t.publish({ ...message(uniq('amqp.big.'), 1), body: Buffer.alloc(2048) }), PublishRejectedError);
    });
  });

  describe('connection', () => {
    it('takes a list of URLs and moves on to the next node when one does not answer', async () => {
      const good = (await amqpBroker()).url;
      const t = await transport({ url: ['amqp://guest:guest@127.0.0.1:1', good], reconnect: { initialDelayMs: 10 } });
      const urls: string[] = [];
      t.on('connected', ({ url }) => urls.push(url));
      await t.connect();
      assert.equal(urls.length, 1);
      assert.ok(!urls[0].includes(':1/') && !urls[0].endsWith(':1'), urls[0]);
      assert.ok(!urls[0].includes('guest:guest'), `password redacted in events: ${urls[0]}`);
    });

    it("while disconnected: whileDisconnected 'reject' refuses at once; 'buffer' holds until the publish timeout", async () => {
      const rejecting = await transport({ whileDisconnected: 'reject' });
      await assert.rejects(rejecting.publish(message(uniq('amqp.offline.'), 1)), NotConnectedError);
      const buffering = await transport();
      const started = Date.now();
      await assert.rejects(buffering.publish(message(uniq('amqp.offline.'), 1), { timeoutMs: 200 }), PublishTimeoutError);
      assert.ok(Date.now() - started >= 190);
    });

    it('a connect that cannot succeed rejects with ConnectionError, without the password', async () => {
      const t = await transport({ url: 'amqp://someone:topsecret@127.0.0.1:1', connectAttempts: 2, reconnect: { initialDelayMs: 10 } });
      await assert.rejects(t.connect(), (err: Error) => {
        assert.equal(err.name, 'ConnectionError');
        assert.ok(!err.message.includes('topsecret'), err.message);
        assert.match(err.message, /someone:\*\*\*@/);
        return true;
      });
    });
  });

  describe('consume', () => {
    it('dead letters carry Courier reason headers and the envelope; ack removes them', async () => {
      const topic = uniq('amqp.dead.');
      const s = spec({ pattern: topic, name: 'Orders.onPlaced' });
      const t = await transport();
      await t.subscribe(s, async (d) =>
        d.deadLetter({ reason: 'invalid', errorName: 'PayloadValidationError', errorMessage: 'see amqp://bob:hunter2@db' }),
      );
      const dead: Delivery[] = [];
      await t.subscribeDeadLetters(s, async (d) => {
        dead.push(d);
        await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 9, { [Headers.correlationid]: 'c-9', [Headers.time]: '2024-05-01T10:00:00.000Z', custom: 'ü' }));
      await waitFor(() => dead.length === 1, 5000, 'the dead letter');
      const h = dead[0].headers;
      console.log(`      dead-letter headers: ${JSON.stringify(h)}`);
      assert.equal(dead[0].topic, topic);
      assert.equal(n(dead[0]), 9);
      assert.equal(h[Headers.deadReason], 'invalid');
      assert.equal(h[Headers.deadError], 'PayloadValidationError');
      assert.equal(h[Headers.deadMessage], 'see amqp://bob:***@db');
      assert.equal(h[Headers.deadQueue], `${s.group}/Orders.onPlaced`);
      assert.ok(!Number.isNaN(Date.parse(h[Headers.deadTime])));
      assert.equal(h[Headers.id], `${topic}-9`);
      assert.equal(h[Headers.correlationid], 'c-9');
      assert.equal(h[Headers.time], '2024-05-01T10:00:00.000Z');
      assert.equal(h[Headers.datacontenttype], 'application/json');
      assert.equal(h.custom, 'ü');
      await sleep(200);
      const raw = await rawConnection();
      try {
        const ch = await raw.createChannel();
        assert.equal((await ch.checkQueue(`${s.group}.Orders.onPlaced.dead`)).messageCount, 0);
      } finally {
        await raw.close();
      }
    });

    it('the wire format: cloudEvents_ table, content_type, and tooling properties', async () => {
      const topic = uniq('amqp.wire.');
      const s = spec({ pattern: topic });
      const t = await transport();
      let raw: unknown;
      await t.subscribe(s, async (d) => {
        raw = d.raw;
        await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 1, { [Headers.source]: 'amqp.spec', [Headers.correlationid]: 'corr', [Headers.time]: '2024-05-01T10:00:00.000Z' }));
      await waitFor(() => raw !== undefined, 5000, 'the delivery');
      const props = (raw as { properties: Record<string, unknown> & { headers: Record<string, unknown> } }).properties;
      assert.equal(props.contentType, 'application/json');
      assert.equal(props.messageId, `${topic}-1`);
      assert.equal(props.correlationId, 'corr');
      assert.equal(props.type, topic);
      assert.equal(props.appId, 'amqp.spec');
      assert.equal(props.timestamp, Date.parse('2024-05-01T10:00:00.000Z') / 1000);
      assert.equal(props.deliveryMode, 2);
      assert.equal(props.headers.cloudEvents_specversion, '1.0');
      assert.equal(props.headers.cloudEvents_time, '2024-05-01T10:00:00.000Z');
      assert.equal(props.headers.cloudEvents_correlationid, 'corr');
      // The CloudEvents AMQP binding requires id, type and source in the table (the properties are copies).
      assert.equal(props.headers.cloudEvents_id, `${topic}-1`);
      assert.equal(props.headers.cloudEvents_type, topic);
      assert.equal(props.headers.cloudEvents_source, 'amqp.spec');
      // datacontenttype is content_type only, and the first attempt is implied.
      for (const k of ['cloudEvents_courierattempt', 'cloudEvents_datacontenttype']) {
        assert.equal(props.headers[k], undefined, k);
      }
    });

    it('the wire format round trip: property-borne headers come back, a long id travels in the table', async () => {
      const topic = uniq('amqp.wire.');
      const { t, got } = await collecting(topic);
      const longId = 'x'.repeat(300);
      await t.publish(message(topic, 1, { [Headers.source]: 'amqp.spec', [Headers.correlationid]: `${topic}-1` }));
      await t.publish(message(topic, 2, { [Headers.id]: longId }));
      await waitFor(() => got.length === 2, 5000, 'both deliveries');
      const [first, second] = got;
      assert.equal(first.headers[Headers.id], `${topic}-1`);
      assert.equal(first.headers[Headers.type], topic);
      assert.equal(first.headers[Headers.source], 'amqp.spec');
      assert.equal(first.headers[Headers.attempt], '1');
      assert.equal(first.attempt, 1);
      const firstProps = (first.raw as { properties: { headers: Record<string, unknown> } }).properties;
      assert.equal(firstProps.headers.cloudEvents_correlationid, undefined, 'a correlation id equal to the id is left out');
      assert.equal(first.headers[Headers.correlationid], `${topic}-1`, 'and restored from the id');
      const props = (second.raw as { properties: { messageId?: string; headers: Record<string, unknown> } }).properties;
      assert.equal(props.messageId, undefined, 'a 300-byte id does not fit message_id');
      assert.equal(props.headers.cloudEvents_id, longId);
      assert.equal(second.headers[Headers.id], longId);
    });

    it('non-string headers from a plain AMQP client are delivered as strings', async () => {
      const topic = uniq('amqp.foreign.');
      const { got } = await collecting(topic);
      const raw = await rawConnection();
      try {
        const ch = await raw.createChannel();
        ch.publish('courier.events', topic, Buffer.from('{"n":1}'), {
          messageId: 'foreign-1',
          contentType: 'application/json',
          headers: { cloudEvents_courierattempt: 2, cloudEvents_flag: true, table: { a: 1 }, bytes: Buffer.from('b') },
        });
        await waitFor(() => got.length === 1, 5000, 'the foreign message');
      } finally {
        await raw.close();
      }
      assert.equal(got[0].headers[Headers.id], 'foreign-1');
      assert.equal(got[0].headers[Headers.datacontenttype], 'application/json');
      assert.equal(got[0].attempt, 2);
      assert.equal(got[0].headers.flag, 'true');
      assert.equal(got[0].headers.table, '{"a":1}');
      assert.equal(got[0].headers.bytes, 'b');
    });

    it('coalesced acks never cover a message still in its handler, and a close sends the last turn\'s acks', async () => {
      const topic = uniq('amqp.acks.');
      const s = spec({ pattern: topic, prefetch: 20 });
      const t = await transport();
      const seen: number[] = [];
      // Messages 0 and 7 stay in their handlers; the others are acked, in reverse order of arrival.
      const held = new Set([0, 7]);
      const toAck: Delivery[] = [];
      await t.subscribe(s, async (d) => {
        const i = n(d);
        seen.push(i);
        if (!held.has(i)) toAck.push(d);
      });
      await t.connect();
      for (let i = 0; i < 20; i++) await t.publish(message(topic, i));
      await waitFor(() => seen.length === 20, 5000, 'all 20 deliveries');
      for (const d of toAck.reverse()) await d.ack();
      // Closed right away: the held two go back to the queue, the 18 acked ones must not.
      await t.close({ timeoutMs: 300 });
      assert.deepEqual(await backInQueue(`${s.group}.${s.name}`), [0, 7], 'only the two held messages went back to the queue');
    });

    it('coalesced acks stay exact past the ack ring\'s growth and wrap: 3,000 in flight, 6,000 tags, held and requeued ones among them', async function () {
      this.timeout(60_000);
      const topic = uniq('amqp.acks.ring.');
      // Prefetch above the ring's first 1,024 slots (it grows), tags well past its 4,096 (it wraps).
      const s = spec({ pattern: topic, prefetch: 3000 });
      const t = await transport();
      const total = 6000;
      const held = new Set<number>();
      let settled = 0;
      let requeued = 0;
      await t.subscribe(s, async (d) => {
        const i = n(d);
        if (i % 1000 === 0) return void held.add(i); // stays in its handler
        if (i % 1000 === 500 && !d.redelivered) {
          requeued++;
          return d.requeue(); // a nack among the acks; acked when it comes back
        }
        if (i % 3 === 0) await new Promise((r) => setImmediate(r)); // acked a turn later: out of order
        await d.ack();
        settled++;
      });
      await t.connect();
      for (let i = 0; i < total; i += 500) await Promise.all(Array.from({ length: 500 }, (_, k) => t.publish(message(topic, i + k))));
      await waitFor(() => settled === total - 6 && held.size === 6, 20_000, `${total - 6} acked and 6 held`);
      assert.equal(requeued, 6);
      await t.close({ timeoutMs: 300 });
      assert.deepEqual(await backInQueue(`${s.group}.${s.name}`), [0, 1000, 2000, 3000, 4000, 5000], 'only the six held messages went back to the queue');
    });

    it('retry(delay) goes back to this subscription only, after the delay, attempt + 1', async () => {
      const topic = uniq('amqp.retry.');
      const a = spec({ pattern: topic, maxAttempts: 3 });
      const b = spec({ pattern: topic });
      const t = await transport();
      const gotA: Array<{ attempt: number; at: number; topic: string }> = [];
      const gotB: number[] = [];
      await t.subscribe(a, async (d) => {
        gotA.push({ attempt: d.attempt, at: Date.now(), topic: d.topic });
        if (d.attempt < 3) await d.retry(200);
        else await d.ack();
      });
      await t.subscribe(b, async (d) => {
        gotB.push(d.attempt);
        await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 1));
      await waitFor(() => gotA.length === 3, 5000, 'three attempts');
      await sleep(300);
      assert.deepEqual(gotA.map((g) => g.attempt), [1, 2, 3]);
      assert.ok(gotA.every((g) => g.topic === topic), 'the topic survives the delay queue');
      for (let i = 1; i < 3; i++) assert.ok(gotA[i].at - gotA[i - 1].at >= 190, `attempt ${i + 1} waited ${gotA[i].at - gotA[i - 1].at} ms`);
      assert.deepEqual(gotB, [1], 'the other group saw the message once, never its retries');
    });

    it('quorum queues: the broker delivery limit dead-letters a crash loop with reason delivery-limit', async () => {
      const topic = uniq('amqp.quorum.');
      const s = spec({ pattern: topic, maxAttempts: 2 });
      const t = await transport({ queueType: 'quorum' });
      let deliveries = 0;
      await t.subscribe(s, async (d) => {
        deliveries++;
        await d.requeue(); // a handler that never gets through
      });
      const dead: Delivery[] = [];
      await t.subscribeDeadLetters(s, async (d) => {
        dead.push(d);
        await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 1));
      await waitFor(() => dead.length === 1, 10_000, 'the broker to dead-letter it');
      assert.equal(dead[0].headers[Headers.deadReason], 'delivery-limit');
      assert.equal(dead[0].topic, topic);
      assert.equal(dead[0].headers[Headers.id], `${topic}-1`);
      console.log(`      quorum delivery limit 2: ${deliveries} deliveries, then dead-lettered by the broker`);
    });

    it('weighted consumers: weights 1 and 3 on a saturated queue split the work about 1:3', async function () {
      const topic = uniq('amqp.weight.');
      const group = uniq('g');
      const s1 = spec({ pattern: topic, group, prefetch: 2, weight: 1 });
      const s3 = spec({ pattern: topic, group, prefetch: 2, weight: 3 });
      const setup = await transport();
      await setup.subscribe(s1, async (d) => d.requeue());
      await setup.connect();
      await setup.close();
      const publisher = await transport();
      await publisher.connect();
      const total = 600;
      await Promise.all(Array.from({ length: total }, (_, i) => publisher.publish(message(topic, i))));
      const counts = [0, 0];
      const consumers = [await transport(), await transport()];
      const work = (i: number) => async (d: Delivery) => {
        counts[i]++;
        await sleep(10);
        await d.ack();
      };
      await consumers[0].subscribe(s1, work(0));
      await consumers[1].subscribe(s3, work(1));
      await Promise.all(consumers.map((c) => c.connect()));
      await waitFor(() => counts[0] + counts[1] === total, 20_000, 'the saturated queue to drain');
      const share = counts[1] / total;
      console.log(`      weighted split (weights 1 : 3, ${total} messages, 10 ms each): ${counts[0]} : ${counts[1]} (weight 3 took ${(share * 100).toFixed(1)} %)`);
      assert.ok(share > 0.65 && share < 0.85, `weight 3 took ${(share * 100).toFixed(1)} %`);
    });
  });

  describe('request/reply over direct reply-to', () => {
    it('a server writes each reply and the ack of its request in one socket write', async () => {
      const { proxy, url } = await proxiedBroker();
      const topic = uniq('amqp.rpc.writes.');
      const server = await transport({ url });
      await server.subscribe(spec({ pattern: topic, prefetch: 10 }), async (d) => {
        await d.reply({ body: Buffer.from(JSON.stringify({ n: n(d) })), headers: { [Headers.type]: `${topic}.reply` } });
        await d.ack();
      });
      await server.connect();
      const client = await transport();
      await client.connect();
      await client.request(message(topic, -1), { timeoutMs: 5000 }); // the reply channel is open
      await sleep(100);
      const before = proxy.clientChunks;
      const count = 40;
      for (let i = 0; i < count; i++) await client.request(message(topic, i), { timeoutMs: 5000 });
      await sleep(100); // an ack left on its own would be written by now
      const writes = proxy.clientChunks - before;
      // One request at a time: a reply and an ack in separate writes would make 2 per request.
      assert.ok(writes <= count + 3, `${writes} writes from the server for ${count} requests`);
    });

    it('200 requests in flight on one channel, each gets its own reply; a missing reply times out', async () => {
      const topic = uniq('amqp.rpc.');
      const server = await transport();
      await server.subscribe(spec({ pattern: topic, prefetch: 50 }), async (d) => {
        await d.reply({ body: Buffer.from(JSON.stringify({ n: n(d) + 1000 })), headers: { [Headers.type]: `${topic}.reply` } });
        await d.ack();
      });
      await server.connect();
      const client = await transport();
      await client.connect();
      const started = Date.now();
      const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.request(message(topic, i), { timeoutMs: 10_000 })));
      const ms = Date.now() - started;
      console.log(`      200 concurrent requests answered in ${ms} ms`);
      assert.deepEqual(replies.map(n), Array.from({ length: 200 }, (_, i) => i + 1000));
      assert.equal(replies[0].headers[Headers.type], `${topic}.reply`);
      await assert.rejects(client.request(message(uniq('amqp.rpc.nobody.'), 1), { timeoutMs: 200 }), (err: unknown) => {
        assert.ok(err instanceof RequestTimeoutError);
        assert.match(err.messageType, /^amqp\.rpc\.nobody\./);
        return true;
      });
    });
  });

  describe('refusals are typed and the connection survives', () => {
    it('ACCESS_REFUSED names the queue and the user, never the password', async () => {
      const user = uniq('courier_limited_');
      const password = `pw-${uniq('s3cret')}`;
      await rabbitmqctl(['add_user', user, password]);
      cleanups.push(() => rabbitmqctl(['delete_user', user]));
      // May use the events exchange, may not create queues.
      await rabbitmqctl(['set_permissions', '-p', '/', user, '^courier\\.events$', '.*', '.*']);
      const t = await transport({ url: await urlAs(user, password) });
      const events: string[] = [];
      t.on('disconnected', () => events.push('disconnected'));
      t.on('error', (e) => events.push(`error: ${e.message}`));
      await t.connect();
      const s = spec({ pattern: uniq('amqp.denied.') });
      const err = await t.subscribe(s, async (d) => d.ack()).then(
        () => assert.fail('subscribe should be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof AccessRefusedError, String(err));
      assert.equal(err.user, user);
      assert.match(String(err.resource), new RegExp(`${s.group}`));
      assert.match(err.message, new RegExp(user));
      console.log(`      ${err.name}: ${err.message}`);
      await t.publish(message(uniq('amqp.still.'), 1)); // the connection and the publish channel live on
      await sleep(100);
      assert.ok(!events.includes('disconnected'), 'no disconnect');
      for (const text of [err.message, String(err.stack), String((err as Error & { cause?: Error }).cause?.message), ...events]) {
        assert.ok(!text.includes(password), `the password leaked: ${text}`);
      }
    });

    it('PRECONDITION_FAILED on a queue redeclared with other arguments; the connection survives', async () => {
      const topic = uniq('amqp.precondition.');
      const s = spec({ pattern: topic });
      const classic = await transport();
      await classic.subscribe(s, async (d) => d.ack());
      await classic.connect();
      const quorum = await transport({ queueType: 'quorum' });
      let disconnected = 0;
      quorum.on('disconnected', () => disconnected++);
      await quorum.connect();
      const err = await quorum.subscribe(s, async (d) => d.ack()).then(
        () => assert.fail('redeclaring as quorum should be refused'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof PreconditionFailedError, String(err));
      assert.match(String(err.resource), new RegExp(`${s.group}\\.handler`));
      assert.equal(err.user, 'guest');
      console.log(`      ${err.name}: ${err.message}`);
      // Same connection: another subscription and a publish still work.
      const other = spec({ pattern: topic });
      const got: number[] = [];
      await quorum.subscribe(other, async (d) => {
        got.push(n(d));
        await d.ack();
      });
      await quorum.publish(message(topic, 5));
      await waitFor(() => got.length === 1, 5000, 'a delivery on the surviving connection');
      assert.equal(disconnected, 0);
    });

    it('NOT_FOUND when the exchange vanished: the publish rejects typed, the channel is re-opened', async () => {
      const exchange = uniq('amqp.gone.');
      const t = await transport({ exchange });
      const errors: Error[] = [];
      t.on('error', (e) => errors.push(e));
      await t.connect();
      const raw = await rawConnection();
      cleanups.push(async () => {
        const ch = await raw.createChannel();
        await ch.deleteExchange(exchange);
        await raw.close();
      });
      const ch = await raw.createChannel();
      await ch.deleteExchange(exchange);
      await assert.rejects(t.publish(message('amqp.any', 1)), ResourceNotFoundError);
      await ch.assertExchange(exchange, 'topic', { durable: true });
      await sleep(50);
      await t.publish(message('amqp.any', 2)); // a new publish channel on the same connection
      assert.ok(errors.some((e) => e instanceof ResourceNotFoundError));
    });
  });

  describe('connection cuts', () => {
    it('10,000 confirmed messages through several cuts: 0 lost, duplicates counted', async function () {
      this.timeout(60_000);
      const { proxy, url } = await proxiedBroker();
      const options = { url, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, publishTimeoutMs: 30_000 };
      const topic = uniq('amqp.cut.');
      const s = spec({ pattern: topic, prefetch: 200 });
      const seen = new Map<number, number>();
      const consumerErrors: string[] = [];
      const consumer = await transport(options);
      consumer.on('error', (e) => consumerErrors.push(e.message));
      await consumer.subscribe(s, async (d) => {
        seen.set(n(d), (seen.get(n(d)) ?? 0) + 1);
        await d.ack();
      });
      await consumer.connect();
      const publisher = await transport(options);
      let reconnects = 0;
      publisher.on('connected', () => reconnects++);
      await publisher.connect();

      const total = 10_000;
      let confirmed = 0;
      let rejected = 0;
      const cuts = (async () => {
        for (let i = 0; i < 5; i++) {
          await sleep(250);
          proxy.cut(100);
        }
      })();
      const publishing: Promise<void>[] = [];
      for (let i = 0; i < total; i++) {
        publishing.push(publisher.publish(message(topic, i)).then(() => void confirmed++, () => void rejected++));
        if (i % 500 === 499) await sleep(40); // spread the stream over the cuts
      }
      await Promise.all(publishing);
      await cuts;
      // Drain only after the last cut has healed.
      await waitFor(() => seen.size >= confirmed, 30_000, `all ${confirmed} confirmed messages`);
      await sleep(500);
      let lost = 0;
      for (let i = 0; i < total; i++) if (!seen.has(i)) lost++;
      const received = [...seen.values()].reduce((a, b) => a + b, 0);
      const duplicates = received - seen.size;
      console.log(
        `      cut test: sent=${total} confirmed=${confirmed} rejected=${rejected} received=${received} distinct=${seen.size} lost=${lost} duplicates=${duplicates} cuts=${proxy.cuts} publisher-connects=${reconnects}`,
      );
      assert.equal(rejected, 0);
      assert.equal(confirmed, total);
      assert.equal(lost, 0);
      assert.ok(proxy.cuts >= 5);
      assert.ok(reconnects >= 2, `the publisher reconnected (${reconnects} connects)`);
      assert.ok(!consumerErrors.some((m) => /unknown delivery tag/i.test(m)), consumerErrors.join('; '));
    });

    it('negative control: without confirms the same checker sees loss through a cut', async function () {
      const { proxy, url } = await proxiedBroker();
      const topic = uniq('amqp.control.');
      const s = spec({ pattern: topic, prefetch: 500 });
      const seen = new Set<number>();
      const consumer = await transport();
      await consumer.subscribe(s, async (d) => {
        seen.add(n(d));
        await d.ack();
      });
      await consumer.connect();
      const amqplib = await import('amqplib');
      const raw = await amqplib.connect(url);
      raw.on('error', () => undefined);
      const ch = await raw.createChannel();
      ch.on('error', () => undefined);
      const total = 5000;
      let accepted = 0;
      for (let i = 0; i < total; i++) {
        const m = message(topic, i);
        ch.publish('courier.events', topic, m.body, { persistent: true });
        accepted++; // publish() without confirms "succeeds" once written to the socket buffer
      }
      proxy.cut();
      await sleep(1000);
      const lost = total - seen.size;
      console.log(`      negative control (no confirms, 1 cut): accepted=${accepted} received=${seen.size} lost=${lost}`);
      assert.ok(lost > 0, 'the checker must see the loss');
    });
  });
});
