/** Conformance cases: requeue, retry and dead letters, with the exact headers each writes. */
import assert from 'node:assert/strict';
import { Delivery, Headers, SubscriptionSpec, Transport } from '../transport';
import type { SuiteContext } from './context';
import { bodyN as n, testMessage as message } from './messages';
import { sleep, uniq, waitFor } from './wait';

/** What a dead letter's headers must say (docs/wire-format.md): every one exactly. */
interface DeadHeaders {
  readonly reason: string;
  readonly error?: string;
  readonly message?: string;
  /** `<group>/<name>`, or `<name>` for a broadcast. */
  readonly queue: string;
  readonly attempt: number;
  /** The dead letter was made between these two times (ms). */
  readonly after: number;
  readonly before: number;
}

function assertDeadHeaders(h: Readonly<Record<string, string>>, want: DeadHeaders): void {
  assert.equal(h[Headers.deadReason], want.reason, 'courierdeadreason');
  assert.equal(h[Headers.deadError], want.error, 'courierdeaderror');
  assert.equal(h[Headers.deadMessage], want.message, 'courierdeadmessage');
  assert.equal(h[Headers.deadQueue], want.queue, 'courierdeadqueue');
  assert.equal(h[Headers.attempt], String(want.attempt), 'courierattempt');
  const time = h[Headers.deadTime];
  assert.equal(new Date(time).toISOString(), time, `courierdeadtime is an ISO time: ${time}`);
  const at = Date.parse(time);
  // Millisecond precision; a broker's clock is the machine's here, with 1 s of slack.
  assert.ok(at >= want.after - 1000 && at <= want.before + 1000, `courierdeadtime ${time} within the test`);
}

/**
 * Reads the dead letters of `s` on `t` (acking each), then connects `t`: the dead letters as they
 * come, and the time just after connecting (a dead letter made later is within the test).
 */
async function readDeadLettersAndConnect(t: Transport, s: SubscriptionSpec): Promise<{ dead: Delivery[]; after: number }> {
  const dead: Delivery[] = [];
  await t.subscribeDeadLetters(s, async (d) => {
    dead.push(d);
    await d.ack();
  });
  await t.connect();
  return { dead, after: Date.now() };
}

export function settlingCases(ctx: SuiteContext): void {
  const { wait, caps, transport, spec, it } = ctx;

  if (caps.requeue) {
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
      assert.equal(got[1].attempt, 1, 'a requeue counts no attempt');
      assert.equal(got[1].headers[Headers.attempt], '1');
    });
  }

  if (caps.delayedRetry) {
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
      const m = message(topic, 5, { [Headers.correlationid]: 'keep-me' });
      await t.publish(m);
      await waitFor(() => got.length === 3, wait, 'three attempts');
      assert.deepEqual(got.map((g) => g.d.attempt), [1, 2, 3]);
      assert.deepEqual(got.map((g) => g.d.headers[Headers.attempt]), ['1', '2', '3'], 'the courierattempt header of each attempt');
      assert.deepEqual(got.map((g) => g.d.headers[Headers.id]), [m.headers[Headers.id], m.headers[Headers.id], m.headers[Headers.id]], 'the same message id');
      assert.ok(got[1].at - got[0].at >= 90, `waited ${got[1].at - got[0].at} ms before attempt 2`);
      assert.equal(got[2].d.headers[Headers.correlationid], 'keep-me');
      assert.equal(got[2].d.headers[Headers.deadReason], undefined, 'a retry is no dead letter');
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
  }

  if (!caps.deadLetter) return;

  it('dead letter: the message is kept with its reason headers', async () => {
    const topic = uniq('conf.dead.');
    const group = uniq('g');
    const s = spec({ pattern: topic, group });
    const t = await transport();
    await t.subscribe(s, async (d) => {
      if (n(d) === 1) await d.deadLetter({ reason: 'exhausted', errorName: 'TypeError', errorMessage: 'boom' });
      else await d.ack();
    });
    const { dead, after } = await readDeadLettersAndConnect(t, s);
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
    assertDeadHeaders(dead[0].headers, { reason: 'exhausted', error: 'TypeError', message: 'boom', queue: `${group}/handler`, attempt: 1, after, before: Date.now() });
    assert.equal(dead[0].headers[Headers.id], `${topic}-1`);
  });

  it('dead letters are kept from the moment the subscription exists: dead-letter first, read later', async () => {
    const topic = uniq('conf.deadlater.');
    const group = uniq('g');
    const s = spec({ pattern: topic, group });
    const first = await transport();
    const deadLettered: string[] = [];
    await first.subscribe(s, async (d) => {
      await d.deadLetter({ reason: 'rejected', errorName: 'RejectMessageError', errorMessage: 'no' });
      deadLettered.push(d.headers[Headers.id]);
    });
    await first.connect();
    const after = Date.now();
    const m = message(topic, 5);
    await first.publish(m);
    await waitFor(() => deadLettered.length === 1, wait, 'the dead letter');
    const before = Date.now();
    await first.close();
    const reader = await transport();
    const { dead } = await readDeadLettersAndConnect(reader, s);
    await waitFor(() => dead.length >= 1, wait, 'the dead letter read after it was made').catch(() => undefined);
    await sleep(200);
    assert.equal(dead.length, 1, 'exactly the one dead letter');
    assert.equal(dead[0].headers[Headers.id], m.headers[Headers.id]);
    assert.equal(n(dead[0]), 5);
    assert.equal(dead[0].headers[Headers.deadReason], 'rejected');
    assert.equal(dead[0].headers[Headers.deadError], 'RejectMessageError');
    assert.equal(dead[0].headers[Headers.deadMessage], 'no');
    assertDeadHeaders(dead[0].headers, { reason: 'rejected', error: 'RejectMessageError', message: 'no', queue: `${group}/handler`, attempt: 1, after, before });
  });

  if (caps.delayedRetry) {
    it('dead letter after retries: the attempt it failed on, the error with its secrets redacted', async () => {
      const topic = uniq('conf.deadretry.');
      const group = uniq('g');
      const s = spec({ pattern: topic, group, name: 'Billing.onOrder', maxAttempts: 3 });
      const t = await transport();
      const attempts: number[] = [];
      await t.subscribe(s, async (d) => {
        attempts.push(d.attempt);
        if (d.attempt < 3) await d.retry(20);
        else await d.deadLetter({ reason: 'exhausted', errorName: 'ConnectionError', errorMessage: 'connect to amqp://bob:hunter2@db:5672 failed' });
      });
      const { dead, after } = await readDeadLettersAndConnect(t, s);
      await t.publish(message(topic, 9));
      await waitFor(() => dead.length === 1, wait, 'the dead letter');
      const before = Date.now();
      await sleep(100);
      assert.deepEqual(attempts, [1, 2, 3]);
      assert.equal(n(dead[0]), 9);
      assertDeadHeaders(dead[0].headers, {
        reason: 'exhausted',
        error: 'ConnectionError',
        message: 'connect to amqp://bob:***@db:5672 failed',
        queue: `${group}/Billing.onOrder`,
        attempt: 3,
        after,
        before,
      });
      assert.equal(dead.length, 1, 'one dead letter');
    });
  }
}
