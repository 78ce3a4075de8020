/**
 * Issue 3, point 7: a lost connection is detected by heartbeats. A connection whose bytes stop
 * flowing without any socket being closed (TcpProxy.stall(): a partition, a dead NAT entry) gives
 * no 'close' or 'error' from the operating system; only missed heartbeats can tell. With a 1 s
 * heartbeat the adapter must say 'disconnected' within a few intervals, then reconnect once the
 * network is back (resume, or the stalled connections cut) and publish + consume with confirms.
 * A negative control with heartbeats off shows that it is the heartbeat that detects the stall.
 */
import assert from 'node:assert/strict';
import { AmqpTransport, amqpTransport } from '../../../adapters/amqp';
import type { AmqpTransportOptions } from '../../../adapters/amqp';
import { SubscriptionSpec } from '../../../lib/transport';
import { amqpBroker } from '../../helpers/brokers';
import { TcpProxy } from '../../helpers/tcp-proxy';
import { testMessage as message } from '../../helpers/test-message';
import { sleep, uniq, waitFor } from '../../helpers/wait';
import { deleteQueues } from './amqp-fixture';

const HEARTBEAT_S = 1;


describe('amqp adapter: heartbeats detect a stalled connection', function () {
  this.timeout(40_000);
  let proxy: TcpProxy;
  const open: AmqpTransport[] = [];
  const specs: SubscriptionSpec[] = [];

  beforeEach(async () => {
    const { host, port } = await amqpBroker();
    proxy = new TcpProxy(host, port);
    await proxy.start();
  });

  afterEach(async function () {
    this.timeout(15_000);
    proxy.resume();
    await Promise.all(open.splice(0).map((t) => t.close({ timeoutMs: 1000 }).catch(() => undefined)));
    await proxy.stop();
  });

  after(async function () {
    this.timeout(15_000);
    await deleteQueues(specs.splice(0)).catch(() => undefined);
  });

  /** A transport through the proxy that records its events with their time. */
  function transport(options: Partial<AmqpTransportOptions> = {}) {
    const { port } = proxy;
    const t = amqpTransport({
      url: `amqp://guest:guest@127.0.0.1:${port}`,
      heartbeatSeconds: HEARTBEAT_S,
      connectTimeoutMs: 2000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
      ...options,
    });
    open.push(t);
    const events: Array<{ at: number; event: string; detail?: string }> = [];
    t.on('connected', () => events.push({ at: Date.now(), event: 'connected' }));
    t.on('disconnected', (e) => events.push({ at: Date.now(), event: 'disconnected', detail: e.error?.message }));
    t.on('error', (e) => events.push({ at: Date.now(), event: 'error', detail: e.message }));
    const count = (event: string) => events.filter((e) => e.event === event).length;
    return { t, events, count };
  }

  async function subscribed(t: AmqpTransport, topic: string, got: number[]): Promise<void> {
    const s: SubscriptionSpec = { pattern: topic, group: uniq('hb'), name: 'handler', prefetch: 10 };
    specs.push(s);
    await t.subscribe(s, async (d) => {
      got.push(JSON.parse(d.body.toString()).n);
      await d.ack();
    });
  }

  for (const heal of ['resume', 'cut'] as const) {
    it(`a stall is detected within a few heartbeat intervals; after ${heal === 'resume' ? 'the network comes back' : 'the stalled connection is cut'} it reconnects and a confirmed publish is consumed`, async () => {
      const { t, events, count } = transport();
      const topic = uniq('amqp.hb.');
      const got: number[] = [];
      await subscribed(t, topic, got);
      await t.connect();
      await t.publish(message(topic, 1));
      await waitFor(() => got.includes(1), 5000, 'message 1 before the stall');

      const stalledAt = Date.now();
      proxy.stall();
      // amqplib declares the connection dead after two silent intervals (checked once per interval).
      const bound = 4 * HEARTBEAT_S * 1000 + 1000;
      await waitFor(() => count('disconnected') >= 1, bound, `'disconnected' within ${bound} ms of the stall`);
      const detectedMs = events.find((e) => e.event === 'disconnected')!.at - stalledAt;
      const detail = events.find((e) => e.event === 'disconnected')!.detail;

      // While the network is down, a publish waits in the buffer (the default 'buffer' policy).
      const pending = t.publish(message(topic, 2), { timeoutMs: 20_000 });
      await sleep(1500); // reconnect attempts meet the stall too
      assert.equal(count('connected'), 1, 'no reconnect can succeed while stalled');

      const healedAt = Date.now();
      if (heal === 'resume') proxy.resume();
      else {
        proxy.cut();
        proxy.resume();
      }
      await waitFor(() => count('connected') >= 2, 15_000, 'a reconnect after the network came back');
      const recoveredMs = Date.now() - healedAt;
      await pending; // confirmed by the broker after the reconnect
      await t.publish(message(topic, 3));
      await waitFor(() => got.includes(2) && got.includes(3), 10_000, 'messages 2 and 3 consumed after the reconnect');
      console.log(
        `      heartbeat ${HEARTBEAT_S} s: stall detected after ${detectedMs} ms (${detail}); ` +
          `reconnected ${recoveredMs} ms after ${heal}; events: ${events.map((e) => e.event).join(', ')}`,
      );
      assert.ok(detectedMs <= bound, `detected after ${detectedMs} ms`);
      assert.match(String(detail), /heartbeat/i, 'the loss is reported as a heartbeat timeout');
    });
  }

  it('negative control: with heartbeats off the same stall goes unnoticed (the heartbeat is what detects it)', async () => {
    const { t, count } = transport({ heartbeatSeconds: 0 });
    const topic = uniq('amqp.hb0.');
    const got: number[] = [];
    await subscribed(t, topic, got);
    await t.connect();
    proxy.stall();
    await sleep(4 * HEARTBEAT_S * 1000 + 1000);
    const disconnected = count('disconnected');
    proxy.resume();
    console.log(`      heartbeat off: ${disconnected} disconnect(s) seen during a ${4 * HEARTBEAT_S + 1} s stall`);
    assert.equal(disconnected, 0, 'without heartbeats nothing notices a silent stall');
    // The connection was never closed: it carries on once the bytes flow again.
    await t.publish(message(topic, 1), { timeoutMs: 5000 });
    await waitFor(() => got.includes(1), 5000, 'message after resume on the same connection');
  });
});
