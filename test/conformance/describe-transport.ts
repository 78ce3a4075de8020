/**
 * The conformance suite: one set of tests that every transport adapter runs. An adapter is ready
 * when it passes. Capabilities that only some adapters have (weighted consumers, mandatory
 * publish) are proven in that adapter's own specs; a handler that needs one its transport lacks is
 * refused by the bus at start-up (test/core/startup.spec.ts).
 *
 * Every test uses fresh topic and group names, and calls `target.purge` for every subscription it
 * made, so runs against a shared broker leave nothing behind.
 */
import assert from 'node:assert/strict';
import { Delivery, Headers, SubscriptionSpec, Transport } from '../../lib/transport';
import { TransportClosedError } from '../../lib/errors';
import { bodyN as n, testMessage as message } from '../helpers/test-message';
import { sleep, uniq, waitFor } from '../helpers/wait';

export interface ConformanceTarget {
  /** A new, unconnected transport: a separate client of the same broker each call. */
  create(): Transport | Promise<Transport>;
  /** Delete what the subscriptions left on the broker (queues, sessions). */
  purge?(specs: SubscriptionSpec[]): Promise<void>;
  /** How long to wait for a delivery; brokers need more than memory. Default 5000. */
  timeoutMs?: number;
}



export function describeTransport(name: string, target: ConformanceTarget): void {
  describe(`conformance: ${name}`, function () {
    const wait = target.timeoutMs ?? 5000;
    this.timeout(wait * 6);
    let open: Transport[] = [];
    let specs: SubscriptionSpec[] = [];

    async function transport(): Promise<Transport> {
      const t = await target.create();
      open.push(t);
      return t;
    }
    function spec(partial: Partial<SubscriptionSpec> & { pattern: string }): SubscriptionSpec {
      const s: SubscriptionSpec = { name: 'handler', prefetch: 10, ...partial };
      specs.push(s);
      return s;
    }

    afterEach(async function () {
      await Promise.all(open.map((t) => t.close({ timeoutMs: 2000 }).catch(() => undefined)));
      if (target.purge && specs.length) await target.purge(specs);
      open = [];
      specs = [];
    });

    it('round trip: body and headers arrive intact, attempt 1', async () => {
      const topic = uniq('conf.rt.');
      const t = await transport();
      const got: Delivery[] = [];
      await t.subscribe(spec({ pattern: topic, group: uniq('g') }), async (d) => {
        got.push(d);
        await d.ack();
      });
      await t.connect();
      const m = message(topic, 7, { [Headers.correlationid]: 'corr-1', custom: 'ü ✓' });
      await t.publish(m);
      await waitFor(() => got.length === 1, wait, 'one delivery');
      assert.equal(got[0].topic, topic);
      assert.equal(n(got[0]), 7);
      assert.equal(got[0].headers[Headers.id], m.headers[Headers.id]);
      assert.equal(got[0].headers[Headers.correlationid], 'corr-1');
      assert.equal(got[0].headers.custom, 'ü ✓');
      assert.equal(got[0].attempt, 1);
      assert.equal(got[0].redelivered, false);
    });

    it('1,000 messages are delivered exactly once to one group', async () => {
      const topic = uniq('conf.many.');
      const t = await transport();
      const seen = new Map<number, number>();
      await t.subscribe(spec({ pattern: topic, group: uniq('g'), prefetch: 100 }), async (d) => {
        seen.set(n(d), (seen.get(n(d)) ?? 0) + 1);
        await d.ack();
      });
      await t.connect();
      await Promise.all(Array.from({ length: 1000 }, (_, i) => t.publish(message(topic, i))));
      await waitFor(() => seen.size === 1000, wait * 3, '1,000 distinct messages');
      await sleep(200);
      assert.equal([...seen.values()].filter((c) => c !== 1).length, 0, 'no duplicates');
    });

    it('competing consumers of one group share the work with no duplicates', async function () {
        const topic = uniq('conf.compete.');
        const group = uniq('g');
        const counts = [0, 0];
        const seen = new Set<number>();
        let dups = 0;
        const publisher = await transport();
        await publisher.connect();
        for (const i of [0, 1]) {
          const t = await transport();
          await t.subscribe(spec({ pattern: topic, group, prefetch: 5 }), async (d) => {
            if (seen.has(n(d))) dups++;
            seen.add(n(d));
            counts[i]++;
            await sleep(1);
            await d.ack();
          });
          await t.connect();
        }
        await Promise.all(Array.from({ length: 400 }, (_, i) => publisher.publish(message(topic, i))));
        await waitFor(() => seen.size === 400, wait * 3, '400 messages over two consumers');
        await sleep(200);
        assert.equal(dups, 0, 'no duplicates');
        assert.ok(counts[0] > 0 && counts[1] > 0, `both consumers worked: ${counts.join(' / ')}`);
      });

    it('fan-out: each group gets every message', async () => {
      const topic = uniq('conf.fan.');
      const publisher = await transport();
      await publisher.connect();
      const got: number[][] = [[], []];
      for (const i of [0, 1]) {
        const t = await transport();
        await t.subscribe(spec({ pattern: topic, group: uniq(`g${i}`) }), async (d) => {
          got[i].push(n(d));
          await d.ack();
        });
        await t.connect();
      }
      for (let i = 0; i < 20; i++) await publisher.publish(message(topic, i));
      await waitFor(() => got[0].length === 20 && got[1].length === 20, wait, 'both groups to get 20');
      assert.deepEqual([...got[0]].sort((a, b) => a - b), [...got[1]].sort((a, b) => a - b));
    });

    it('broadcast subscriptions (no group) each get every message', async () => {
      const topic = uniq('conf.bc.');
      const publisher = await transport();
      await publisher.connect();
      const got = [0, 0];
      for (const i of [0, 1]) {
        const t = await transport();
        await t.subscribe(spec({ pattern: topic, name: 'broadcast' }), async (d) => {
          got[i]++;
          await d.ack();
        });
        await t.connect();
      }
      for (let i = 0; i < 5; i++) await publisher.publish(message(topic, i));
      await waitFor(() => got[0] === 5 && got[1] === 5, wait, 'both instances to get 5');
    });

    /** Subscribes `s` on a new transport, recording each delivery's number. */
    async function consumer(s: SubscriptionSpec): Promise<{ t: Transport; got: number[] }> {
      const t = await transport();
      const got: number[] = [];
      await t.subscribe(s, async (d) => {
        got.push(n(d));
        await d.ack();
      });
      await t.connect();
      return { t, got };
    }
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

    it('plain broadcast: what is published while it is closed is not delivered to it (gone when it closes)', async () => {
      const topic = uniq('conf.bcgone.');
      const s = spec({ pattern: topic, name: 'broadcast' });
      const publisher = await transport();
      await publisher.connect();
      const first = await consumer(s);
      await publisher.publish(message(topic, 0));
      await waitFor(() => first.got.length === 1, wait, 'the first message');
      await first.t.close();
      for (const i of range(1, 6)) await publisher.publish(message(topic, i));
      const second = await consumer(s);
      await publisher.publish(message(topic, 6));
      await waitFor(() => second.got.length >= 1, wait, 'the message published after the return');
      await sleep(200);
      assert.deepEqual(sorted(second.got), [6], 'only what was published after it subscribed again');
    });

    it('instance subscription: what is published while it is closed is delivered when the same instance returns', async () => {
      const topic = uniq('conf.inst.');
      const s = spec({ pattern: topic, name: 'replica', instance: uniq('svc.i'), expiresAfterMs: 60_000 });
      const publisher = await transport();
      await publisher.connect();
      const first = await consumer(s);
      for (const i of range(0, 5)) await publisher.publish(message(topic, i));
      await waitFor(() => first.got.length === 5, wait, 'the first 5');
      // A restart: this transport closes, another (a new process) subscribes with the same instance.
      await first.t.close();
      for (const i of range(5, 25)) await publisher.publish(message(topic, i));
      const second = await consumer(s);
      for (const i of range(25, 30)) await publisher.publish(message(topic, i));
      await waitFor(() => second.got.length >= 25, wait * 2, 'the 20 published while it was away and 5 after');
      await sleep(200);
      assert.deepEqual(sorted(first.got), range(0, 5));
      assert.deepEqual(sorted(second.got), range(5, 30), 'every message published while it was away, once');
    });

    it('instance subscriptions of two instances each get every message (a broadcast)', async () => {
      const topic = uniq('conf.inst2.');
      const publisher = await transport();
      await publisher.connect();
      const a = await consumer(spec({ pattern: topic, name: 'replica', instance: uniq('svc.a'), expiresAfterMs: 60_000 }));
      const b = await consumer(spec({ pattern: topic, name: 'replica', instance: uniq('svc.b'), expiresAfterMs: 60_000 }));
      for (const i of range(0, 20)) await publisher.publish(message(topic, i));
      await waitFor(() => a.got.length >= 20 && b.got.length >= 20, wait, 'both instances to get 20');
      await sleep(200);
      assert.deepEqual(sorted(a.got), range(0, 20));
      assert.deepEqual(sorted(b.got), range(0, 20));
    });

    it('instance subscription: once unused past expiresAfterMs it is gone, with what waited in it', async () => {
      const topic = uniq('conf.instexp.');
      const s = spec({ pattern: topic, name: 'replica', instance: uniq('svc.e'), expiresAfterMs: 1000 });
      const publisher = await transport();
      await publisher.connect();
      const first = await consumer(s);
      await first.t.close();
      await publisher.publish(message(topic, 0));
      // Brokers check expiry on their own clock (Mosquitto about once a second).
      await sleep(3500);
      const second = await consumer(s);
      await publisher.publish(message(topic, 1));
      await waitFor(() => second.got.length >= 1, wait, 'the message published after the return');
      await sleep(200);
      assert.deepEqual(sorted(second.got), [1], 'the expired subscription kept nothing');
    });

    it('patterns: * is one segment, # is zero or more', async () => {
      const base = uniq('conf');
      const t = await transport();
      const star: string[] = [];
      const hash: string[] = [];
      await t.subscribe(spec({ pattern: `${base}.*`, group: uniq('star'), name: 'star' }), async (d) => {
        star.push(d.topic);
        await d.ack();
      });
      await t.subscribe(spec({ pattern: `${base}.#`, group: uniq('hash'), name: 'hash' }), async (d) => {
        hash.push(d.topic);
        await d.ack();
      });
      await t.connect();
      for (const topic of [`${base}.a`, `${base}.a.b`, `${base}`, `other.${base}.a`]) {
        await t.publish(message(topic, 0));
      }
      await t.publish(message(`${base}.end`, 0));
      await waitFor(() => star.includes(`${base}.end`) && hash.includes(`${base}.end`), wait, 'the end marker');
      await sleep(100);
      assert.deepEqual(star.sort(), [`${base}.a`, `${base}.end`]);
      assert.deepEqual(hash.sort(), [base, `${base}.a`, `${base}.a.b`, `${base}.end`].sort());
    });

    it('requeue(): the message is delivered again, marked redelivered', async () => {
      const t = await transport();
      const topic = uniq('conf.requeue.');
      const got: Delivery[] = [];
      await t.subscribe(spec({ pattern: topic, group: uniq('g') }), async (d) => {
        got.push(d);
        if (got.length === 1) await d.requeue();
        else await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 1));
      await waitFor(() => got.length === 2, wait, 'the redelivery');
      assert.equal(n(got[1]), 1);
      assert.equal(got[1].redelivered, true);
    });

    it('retry(delay): delivered again later with the attempt count one higher', async () => {
      const t = await transport();
      const topic = uniq('conf.retry.');
      const got: Array<{ d: Delivery; at: number }> = [];
      await t.subscribe(spec({ pattern: topic, group: uniq('g'), maxAttempts: 3 }), async (d) => {
        got.push({ d, at: Date.now() });
        if (d.attempt < 3) await d.retry(100);
        else await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 5, { [Headers.correlationid]: 'keep-me' }));
      await waitFor(() => got.length === 3, wait, 'three attempts');
      assert.deepEqual(got.map((g) => g.d.attempt), [1, 2, 3]);
      assert.ok(got[1].at - got[0].at >= 90, `waited ${got[1].at - got[0].at} ms before attempt 2`);
      assert.equal(got[2].d.headers[Headers.correlationid], 'keep-me');
      assert.equal(n(got[2].d), 5);
    });

    it('the consumer is not blocked while a message waits for its retry', async () => {
      const t = await transport();
      const topic = uniq('conf.noblock.');
      const order: number[] = [];
      await t.subscribe(spec({ pattern: topic, group: uniq('g'), prefetch: 1, maxAttempts: 2 }), async (d) => {
        order.push(n(d));
        if (n(d) === 1 && d.attempt === 1) await d.retry(500);
        else await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 1));
      await t.publish(message(topic, 2));
      await waitFor(() => order.length === 3, wait, 'both messages and the retry');
      assert.deepEqual(order, [1, 2, 1]);
    });

    it('unacked at close goes back to the group and reaches the next consumer', async () => {
      const topic = uniq('conf.unacked.');
      const group = uniq('g');
      const first = await transport();
      let held = 0;
      await first.subscribe(spec({ pattern: topic, group, prefetch: 5 }), async () => {
        held++; // never settled
      });
      await first.connect();
      const publisher = await transport();
      await publisher.connect();
      for (let i = 0; i < 3; i++) await publisher.publish(message(topic, i));
      await waitFor(() => held === 3, wait, 'the first consumer to hold 3');
      await first.close({ timeoutMs: 200 });
      const second = await transport();
      const got: Delivery[] = [];
      await second.subscribe(spec({ pattern: topic, group, prefetch: 5 }), async (d) => {
        got.push(d);
        await d.ack();
      });
      await second.connect();
      await waitFor(() => got.length === 3, wait, 'the 3 messages at the next consumer');
      assert.deepEqual(got.map(n).sort(), [0, 1, 2]);
    });

    it('durable group: messages published while no consumer is connected wait for the next one', async () => {
      const topic = uniq('conf.durable.');
      const group = uniq('g');
      const s = spec({ pattern: topic, group });
      const first = await transport();
      await first.subscribe(s, async (d) => d.ack());
      await first.connect();
      await first.close();
      const publisher = await transport();
      await publisher.connect();
      for (let i = 0; i < 10; i++) await publisher.publish(message(topic, i));
      const second = await transport();
      const got: number[] = [];
      await second.subscribe(s, async (d) => {
        got.push(n(d));
        await d.ack();
      });
      await second.connect();
      await waitFor(() => got.length === 10, wait, '10 waiting messages');
    });

    it('dead letter: the message is kept with its reason headers', async () => {
      const topic = uniq('conf.dead.');
      const s = spec({ pattern: topic, group: uniq('g') });
      const t = await transport();
      await t.subscribe(s, async (d) => {
        if (n(d) === 1) await d.deadLetter({ reason: 'exhausted', errorName: 'TypeError', errorMessage: 'boom' });
        else await d.ack();
      });
      const dead: Delivery[] = [];
      await t.subscribeDeadLetters(s, async (d) => {
        dead.push(d);
        await d.ack();
      });
      await t.connect();
      await t.publish(message(topic, 0));
      await t.publish(message(topic, 1));
      await waitFor(() => dead.length === 1, wait, 'one dead letter');
      await sleep(100);
      assert.equal(dead.length, 1);
      assert.equal(n(dead[0]), 1);
      assert.equal(dead[0].headers[Headers.deadReason], 'exhausted');
      assert.equal(dead[0].headers[Headers.deadError], 'TypeError');
      assert.equal(dead[0].headers[Headers.deadMessage], 'boom');
      assert.ok(dead[0].headers[Headers.deadQueue], 'names the subscription');
      assert.ok(dead[0].headers[Headers.id], 'keeps the envelope');
    });

    it('dead letters are kept from the moment the subscription exists: dead-letter first, read later', async () => {
      const topic = uniq('conf.deadlater.');
      const s = spec({ pattern: topic, group: uniq('g') });
      const first = await transport();
      const deadLettered: string[] = [];
      await first.subscribe(s, async (d) => {
        await d.deadLetter({ reason: 'rejected', errorName: 'RejectMessageError', errorMessage: 'no' });
        deadLettered.push(d.headers[Headers.id]);
      });
      await first.connect();
      const m = message(topic, 5);
      await first.publish(m);
      await waitFor(() => deadLettered.length === 1, wait, 'the dead letter');
      await first.close();
      const reader = await transport();
      const dead: Delivery[] = [];
      await reader.subscribeDeadLetters(s, async (d) => {
        dead.push(d);
        await d.ack();
      });
      await reader.connect();
      await waitFor(() => dead.length >= 1, wait, 'the dead letter read after it was made').catch(() => undefined);
      await sleep(200);
      assert.equal(dead.length, 1, 'exactly the one dead letter');
      assert.equal(dead[0].headers[Headers.id], m.headers[Headers.id]);
      assert.equal(n(dead[0]), 5);
      assert.equal(dead[0].headers[Headers.deadReason], 'rejected');
      assert.equal(dead[0].headers[Headers.deadError], 'RejectMessageError');
      assert.equal(dead[0].headers[Headers.deadMessage], 'no');
    });

    it('prefetch: never more unsettled deliveries than prefetch', async () => {
      const topic = uniq('conf.prefetch.');
      const t = await transport();
      let inFlight = 0;
      let peak = 0;
      let done = 0;
      await t.subscribe(spec({ pattern: topic, group: uniq('g'), prefetch: 3 }), async (d) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        setTimeout(() => {
          inFlight--;
          done++;
          void d.ack();
        }, 5);
      });
      await t.connect();
      await Promise.all(Array.from({ length: 60 }, (_, i) => t.publish(message(topic, i))));
      await waitFor(() => done === 60, wait, '60 messages');
      assert.ok(peak <= 3, `peak unsettled ${peak} > prefetch 3`);
      assert.ok(peak >= 2, `prefetch used (peak ${peak})`);
    });

    it('request/reply: many requests in flight, each gets its own reply', async () => {
      const topic = uniq('conf.rpc.');
      const server = await transport();
      await server.subscribe(spec({ pattern: topic, group: uniq('g'), prefetch: 50 }), async (d) => {
        assert.equal(d.replyExpected, true);
        await d.reply({ body: Buffer.from(JSON.stringify({ n: n(d) * 2 })), headers: { [Headers.type]: `${topic}.reply` } });
        await d.ack();
      });
      await server.connect();
      const client = await transport();
      await client.connect();
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, i) => client.request(message(topic, i), { timeoutMs: wait })),
      );
      assert.deepEqual(replies.map((r) => JSON.parse(r.body.toString()).n), Array.from({ length: 50 }, (_, i) => i * 2));
    });

    it('request without a responder rejects after its timeout', async () => {
      const client = await transport();
      await client.connect();
      const started = Date.now();
      await assert.rejects(client.request(message(uniq('conf.nobody.'), 1), { timeoutMs: 300 }), {
        name: 'RequestTimeoutError',
      });
      assert.ok(Date.now() - started >= 290);
    });

    it('a request expires with its timeout: a group member back after it never handles it', async () => {
      const topic = uniq('conf.expire.');
      const s = spec({ pattern: topic, group: uniq('g') });
      const member = await transport();
      await member.subscribe(s, async (d) => d.ack());
      await member.connect();
      await member.close();
      const client = await transport();
      await client.connect();
      await assert.rejects(client.request(message(topic, 1), { timeoutMs: 300 }), { name: 'RequestTimeoutError' });
      // Past the request's deadline, even rounded up to whole seconds (MQTT 5 Message Expiry Interval).
      await sleep(1100);
      await client.publish(message(topic, 2));
      const back = await transport();
      const got: number[] = [];
      await back.subscribe(s, async (d) => {
        got.push(n(d));
        await d.ack();
      });
      await back.connect();
      await waitFor(() => got.includes(2), wait, 'the plain message published while the member was away');
      await sleep(200);
      assert.deepEqual(got, [2], 'the expired request was not handled');
    });

    it('close() twice is safe, and publish after close rejects', async () => {
      const t = await transport();
      await t.connect();
      const a = t.close();
      const b = t.close();
      await Promise.all([a, b]);
      await t.close();
      await assert.rejects(t.publish(message(uniq('conf.closed.'), 1)), TransportClosedError);
    });

    it('close() waits for deliveries in flight to settle', async () => {
      const topic = uniq('conf.drain.');
      const s = spec({ pattern: topic, group: uniq('g') });
      const t = await transport();
      let acked = 0;
      let started = 0;
      await t.subscribe(s, async (d) => {
        started++;
        await sleep(300);
        await d.ack();
        acked++;
      });
      await t.connect();
      await t.publish(message(topic, 1));
      await waitFor(() => started === 1, wait, 'the handler to start');
      await t.close({ timeoutMs: 3000 });
      assert.equal(acked, 1, 'the handler in flight finished and acked before close resolved');
      const next = await transport();
      let redelivered = 0;
      await next.subscribe(s, async (d) => {
        redelivered++;
        await d.ack();
      });
      await next.connect();
      await sleep(300);
      assert.equal(redelivered, 0, 'an acked message is not delivered again');
    });
  });
}
