/** Conformance cases: what a subscription keeps while its consumer is away (groups, broadcasts, instances). */
import assert from 'node:assert/strict';
import type { Delivery, SubscriptionSpec, Transport } from '../transport';
import type { SuiteContext } from './context';
import { bodyN as n, testMessage as message } from './messages';
import { sleep, uniq, waitFor } from './wait';

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

export function subscriptionCases(ctx: SuiteContext): void {
  const { wait, caps, transport, spec, it } = ctx;

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

  if (caps.instanceSubscriptions) {
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
  }

  if (caps.durableGroups) {
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
  }
}
