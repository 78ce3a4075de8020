/** Conformance cases: publish and consume, groups, fan-out, broadcasts, patterns, prefetch. */
import assert from 'node:assert/strict';
import { Delivery, Headers } from '../transport';
import type { SuiteContext } from './context';
import { bodyN as n, testMessage as message } from './messages';
import { sleep, uniq, waitFor } from './wait';

export function deliveryCases(ctx: SuiteContext): void {
  const { wait, caps, transport, spec, it } = ctx;

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
    assert.equal(got[0].headers[Headers.attempt], '1', 'the attempt header says 1 on the first delivery');
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

  if (caps.competingConsumers) {
    it('competing consumers of one group share the work with no duplicates', async () => {
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
  }

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

  if (caps.patterns) {
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
  }

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
}
