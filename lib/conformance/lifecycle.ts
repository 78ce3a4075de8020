/** Conformance cases: capabilities, mandatory publish, close(). */
import assert from 'node:assert/strict';
import { TransportClosedError, UnroutableError } from '../errors';
import type { TransportCapabilities } from '../transport';
import type { SuiteContext } from './context';
import { testMessage as message } from './messages';
import { sleep, uniq, waitFor } from './wait';

/** The capability flags whose cases the suite runs only for a transport that claims them. */
export const CHOSEN_BY: ReadonlyArray<keyof TransportCapabilities> = [
  'competingConsumers',
  'patterns',
  'instanceSubscriptions',
  'durableGroups',
  'requeue',
  'delayedRetry',
  'deadLetter',
  'requestReply',
  'mandatory',
];

export function lifecycleCases(ctx: SuiteContext): void {
  const { wait, caps, transport, spec, it } = ctx;
  const lacking = CHOSEN_BY.filter((k) => !caps[k]);

  it(`claims the capabilities its cases were chosen by${lacking.length ? ` (not run, not claimed: ${lacking.join(', ')})` : ''}`, async () => {
    const t = await transport();
    assert.deepEqual({ ...t.capabilities }, { ...caps }, 'every transport made by create() claims the same');
    assert.ok(Number.isInteger(t.capabilities.maxMessageBytes) && t.capabilities.maxMessageBytes > 0, 'maxMessageBytes');
  });

  if (caps.mandatory) {
    it('mandatory publish: rejects with UnroutableError when no subscription receives it, resolves when one does', async () => {
      const topic = uniq('conf.mandatory.');
      const t = await transport();
      const got: string[] = [];
      await t.subscribe(spec({ pattern: topic, group: uniq('g') }), async (d) => {
        got.push(d.topic);
        await d.ack();
      });
      await t.connect();
      await assert.rejects(t.publish(message(uniq('conf.nobody.'), 1), { mandatory: true }), UnroutableError);
      await t.publish(message(topic, 2), { mandatory: true });
      await waitFor(() => got.length === 1, wait, 'the routed mandatory message');
    });
  }

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
}
