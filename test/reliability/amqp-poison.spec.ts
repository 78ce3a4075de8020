/**
 * Issue 7, point 5 for AMQP: poison messages (not JSON, failing validation, oversized, an unknown
 * type, a wrong content type, a handler that always throws) each end in the dead letter with the
 * reason, the error class and the attempt count; no poison message is delivered more often than
 * its attempts; the 1,000 good messages behind them are all handled.
 */
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import { IsInt } from 'class-validator';
import { amqpTransport } from '../../adapters/amqp';
import { encodeProperties } from '../../adapters/amqp/wire';
import { encode } from '../../lib/codec';
import { Delivery, Headers, Message, MessageContext, Subscribe, Subscriber } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { amqpBus, bounded, CaseBus, tickClass, deleteListedQueues } from './amqp-harness';
import { Ledger } from './ledger';

class AlwaysFailsError extends Error {
  override name = 'AlwaysFailsError';
}

describe('reliability, AMQP: poison messages', function () {
  this.timeout(60_000);
  const buses: CaseBus[] = [];
  const groups: string[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  after(async function () {
    this.timeout(30_000);
    await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    for (const c of closers) await c().catch(() => undefined);
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  it('each poison message is dead-lettered with reason, error class and attempts; 1,000 good ones behind them are handled', async () => {
    const { url } = await amqpBroker();
    const p = uniq('rel.poison.');
    const goodType = `${p}.in.good`;
    const boomType = `${p}.boom`;
    const group = uniq('relpoison');
    groups.push(group);
    const Good = tickClass(goodType);
    @Message(boomType)
    class Boom {
      @IsInt() n!: number;
    }
    const ledger = new Ledger('amqp: poison messages, then 1,000 good');
    const ATTEMPTS = 3;
    const handled = new Map<string, number>();
    @Subscriber({ group, prefetch: 50 })
    class Poison {
      // A pattern wider than its one class: a message of another type on it is an unknown type.
      @Subscribe([Good], { pattern: `${p}.in.*`, retry: { attempts: ATTEMPTS, initialDelayMs: 20 } })
      async onGood(_g: InstanceType<typeof Good>, ctx: MessageContext) {
        handled.set(ctx.id, (handled.get(ctx.id) ?? 0) + 1);
        ledger.received(ctx.id);
      }
      @Subscribe(Boom, { retry: { attempts: ATTEMPTS, initialDelayMs: 20 } })
      async onBoom(_b: Boom, ctx: MessageContext) {
        handled.set(ctx.id, (handled.get(ctx.id) ?? 0) + 1);
        throw new AlwaysFailsError(`cannot handle ${ctx.id}`);
      }
    }
    const delivered = new Map<string, number>();
    const consumer = amqpBus(url, { delivered, bus: { maxMessageBytes: 64 * 1024 } });
    buses.push(consumer);
    const deadEvents: string[] = [];
    consumer.bus.on('deadLetter', (e) => deadEvents.push(`${e.id}:${e.reason}`));
    consumer.bus.register(new Poison());
    await consumer.bus.start();

    // The poison, published as a foreign client would (confirmed, so none is lost on the way).
    const raw = await amqplib.connect(url);
    closers.push(() => raw.close());
    const ch = await raw.createConfirmChannel();
    const poison = (id: string, type: string, body: Buffer | string, props: Record<string, unknown> = {}) => {
      const m = encode(null, { type, source: 'poisoner', id });
      ch.publish('courier.events', type, Buffer.from(body), { ...encodeProperties(m.headers), ...props });
    };
    const expected: Record<string, { reason: string; error: string; handler: 'Poison.onGood' | 'Poison.onBoom'; attempts: number }> = {
      'poison-not-json': { reason: 'malformed', error: 'MalformedMessageError', handler: 'Poison.onGood', attempts: 1 },
      'poison-invalid': { reason: 'invalid', error: 'PayloadValidationError', handler: 'Poison.onGood', attempts: 1 },
      'poison-oversized': { reason: 'malformed', error: 'MalformedMessageError', handler: 'Poison.onGood', attempts: 1 },
      'poison-unknown-type': { reason: 'unknown-type', error: 'UnknownMessageTypeError', handler: 'Poison.onGood', attempts: 1 },
      'poison-content-type': { reason: 'malformed', error: 'MalformedMessageError', handler: 'Poison.onGood', attempts: 1 },
      'poison-foreign-not-json': { reason: 'malformed', error: 'MalformedMessageError', handler: 'Poison.onGood', attempts: 1 },
      'poison-always-throws': { reason: 'exhausted', error: 'AlwaysFailsError', handler: 'Poison.onBoom', attempts: ATTEMPTS },
    };
    poison('poison-not-json', goodType, '{"n": 1,,');
    poison('poison-invalid', goodType, JSON.stringify({ n: 'one', extra: true }));
    poison('poison-oversized', goodType, JSON.stringify({ n: 1, pad: 'x'.repeat(100 * 1024) }));
    poison('poison-unknown-type', `${p}.in.unknown`, JSON.stringify({ n: 1 }));
    poison('poison-content-type', goodType, JSON.stringify({ n: 1 }), { contentType: 'text/plain' });
    // A plain AMQP client: no Courier headers at all, only the AMQP message-id.
    ch.publish('courier.events', goodType, Buffer.from('\u0000\u0001 binary'), { messageId: 'poison-foreign-not-json', persistent: true });
    await ch.waitForConfirms();
    const publisher = amqpBus(url, { ledger });
    buses.push(publisher);
    await publisher.bus.start();
    // The always-throwing handler's message goes through a bus like any other (not the ledger's:
    // it is dead-lettered by design, so it is not one of the ids that must be handled).
    const boomId = await consumer.bus.publish(Boom, { n: 1 });
    delete expected['poison-always-throws'];
    expected[boomId] = { reason: 'exhausted', error: 'AlwaysFailsError', handler: 'Poison.onBoom', attempts: ATTEMPTS };
    // Good messages right behind the poison.
    await bounded(Promise.all(Array.from({ length: 1000 }, (_, i) => publisher.bus.publish(Good, { n: i }))), 20_000, 'the good publishes');

    // Read the dead letters of both handlers back from their dead-letter queues.
    const dead = new Map<string, Delivery>();
    const reader = amqpTransport({ url });
    closers.push(() => reader.close({ timeoutMs: 1000 }));
    for (const name of ['Poison.onGood', 'Poison.onBoom']) {
      await reader.subscribeDeadLetters({ pattern: name === 'Poison.onGood' ? `${p}.in.*` : boomType, group, name, prefetch: 50 }, async (d) => {
        dead.set(d.headers[Headers.id], d);
        await d.ack();
      });
    }
    await reader.connect();
    await waitFor(() => ledger.complete && dead.size >= Object.keys(expected).length, 20_000, 'the good messages and every dead letter');
    await sleep(300);

    const rows: string[] = [];
    for (const [id, want] of Object.entries(expected)) {
      const d = dead.get(id);
      assert.ok(d, `${id} is in the dead letter`);
      const h = d.headers;
      rows.push(`${id}: reason ${h[Headers.deadReason]}, error ${h[Headers.deadError]}, attempt ${h[Headers.attempt]}, deliveries ${delivered.get(id)}, handler calls ${handled.get(id) ?? 0}`);
      assert.equal(h[Headers.deadReason], want.reason, id);
      assert.equal(h[Headers.deadError], want.error, id);
      assert.equal(h[Headers.deadQueue], `${group}/${want.handler}`, id);
      assert.equal(h[Headers.attempt], String(want.attempts), `${id}: the attempt count in the dead letter`);
      assert.ok((delivered.get(id) ?? 0) <= want.attempts, `${id}: ${delivered.get(id)} deliveries, at most ${want.attempts}`);
    }
    console.log(rows.map((r) => `      ${r}`).join('\n'));
    assert.equal(handled.get(boomId), ATTEMPTS, 'the throwing handler ran once per attempt');
    for (const id of Object.keys(expected)) if (id !== boomId) assert.equal(handled.get(id), undefined, `${id} never reached a handler`);
    assert.equal(deadEvents.length, Object.keys(expected).length);
    const f = ledger.report();
    assert.equal(f.confirmed, 1000);
    assert.equal(f.lost, 0);
    assert.equal(f.received, 1000);
    assert.equal(f.unexpected, 0);
  });
});
