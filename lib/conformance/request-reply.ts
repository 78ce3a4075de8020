/** Conformance cases: request/reply and request expiry. */
import assert from 'node:assert/strict';
import { Headers } from '../transport';
import type { SuiteContext } from './context';
import { bodyN as n, testMessage as message } from './messages';
import { sleep, uniq, waitFor } from './wait';

export function requestReplyCases(ctx: SuiteContext): void {
  const { wait, caps, transport, spec, it } = ctx;
  if (!caps.requestReply) return;

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
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => client.request(message(topic, i), { timeoutMs: wait })));
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

  if (caps.durableGroups) {
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
  }
}
