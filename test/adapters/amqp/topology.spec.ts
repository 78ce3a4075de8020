/**
 * The AMQP topology as data (adapters/amqp/topology.ts): what a subscription declares, binds and
 * consumes, as a pure function of its spec and the options. No broker: the declarations
 * themselves are exercised against RabbitMQ by the conformance suite and amqp.spec.ts.
 */
import assert from 'node:assert/strict';
import { deadLetterTarget, delayQueue, DELAY_QUEUE_GRACE_MS, INSTANCE_QUEUE_GRACE_MS, redeliveryLimitOf, subscriptionTopology, TopologyOptions } from '../../../adapters/amqp/topology';
import type { SubscriptionSpec } from '../../../lib/transport';
import { copyProperties, decodeRedeliveries, REDELIVERIES_HEADER } from '../../../adapters/amqp/wire';
import type { MessageProperties } from 'amqplib';

const CLASSIC: TopologyOptions = { exchange: 'courier.events', queueType: 'classic' };
const QUORUM: TopologyOptions = { exchange: 'x.events', queueType: 'quorum' };
const spec = (s: Partial<SubscriptionSpec>): SubscriptionSpec => ({ pattern: 'order.*', name: 'Billing.onOrder', prefetch: 10, ...s });

describe('amqp topology as data', () => {
  it('a group: its dead-letter queue first, then the work queue dead-lettering to it, bound to the pattern', () => {
    const t = subscriptionTopology(spec({ group: 'billing' }), false, CLASSIC);
    assert.deepEqual(t.queues, [
      { name: 'billing.Billing.onOrder.dead', options: { durable: true, arguments: { 'x-queue-type': 'classic' } } },
      {
        name: 'billing.Billing.onOrder',
        options: {
          durable: true,
          arguments: { 'x-queue-type': 'classic', 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'billing.Billing.onOrder.dead' },
        },
      },
    ]);
    assert.deepEqual(t.binding, { exchange: 'courier.events', pattern: 'order.*' });
    assert.equal(t.resource, "queue 'billing.Billing.onOrder'");
    assert.equal(t.prefetch, 10);
    assert.equal(t.priority, 1);
  });

  it('quorum queues carry the delivery limit (the spec\'s maxAttempts, default 20); the exchange comes from the options', () => {
    const t = subscriptionTopology(spec({ group: 'billing', maxAttempts: 5 }), false, QUORUM);
    assert.equal(t.queues[1].options.arguments!['x-delivery-limit'], 5);
    assert.equal(t.queues[1].options.arguments!['x-queue-type'], 'quorum');
    assert.equal(t.queues[0].options.arguments!['x-queue-type'], 'quorum');
    assert.equal(subscriptionTopology(spec({ group: 'billing' }), false, QUORUM).queues[1].options.arguments!['x-delivery-limit'], 20);
    assert.equal(subscriptionTopology(spec({ group: 'billing', maxAttempts: 5 }), false, CLASSIC).queues[1].options.arguments!['x-delivery-limit'], undefined);
    assert.equal(t.binding!.exchange, 'x.events');
    // The broker's own dead-lettering (the delivery limit) is at-least-once on quorum queues.
    assert.equal(t.queues[1].options.arguments!['x-dead-letter-strategy'], 'at-least-once');
    assert.equal(t.queues[1].options.arguments!['x-overflow'], 'reject-publish');
    assert.equal(subscriptionTopology(spec({ group: 'billing' }), false, CLASSIC).queues[1].options.arguments!['x-dead-letter-strategy'], undefined);
  });

  it('an instance subscription: a durable <instance>.<name> with x-expires (its grace, default an hour), dead letters shared as a broadcast\'s', () => {
    const t = subscriptionTopology(spec({ instance: 'orders.i-1', expiresAfterMs: 1234.4 }), false, CLASSIC);
    assert.deepEqual(
      t.queues.map((q) => q.name),
      ['broadcast.Billing.onOrder.dead', 'orders.i-1.Billing.onOrder'],
    );
    assert.equal(t.queues[1].options.durable, true);
    assert.equal(t.queues[1].options.exclusive, undefined);
    assert.equal(t.queues[1].options.arguments!['x-expires'], 1234);
    assert.equal(t.queues[1].options.arguments!['x-dead-letter-routing-key'], 'broadcast.Billing.onOrder.dead');
    assert.equal(subscriptionTopology(spec({ instance: 'orders.i-1' }), false, CLASSIC).queues[1].options.arguments!['x-expires'], INSTANCE_QUEUE_GRACE_MS);
    assert.equal(subscriptionTopology(spec({ instance: 'orders.i-1', expiresAfterMs: 0 }), false, CLASSIC).queues[1].options.arguments!['x-expires'], 1);
    assert.equal(t.resource, "queue 'orders.i-1.Billing.onOrder'");
  });

  it('a broadcast: one exclusive, auto-delete, transient, server-named queue; no dead-letter queue declared up front', () => {
    const t = subscriptionTopology(spec({}), false, CLASSIC);
    assert.deepEqual(t.queues, [{ name: '', options: { exclusive: true, autoDelete: true, durable: false } }]);
    assert.deepEqual(t.binding, { exchange: 'courier.events', pattern: 'order.*' });
    assert.equal(t.resource, undefined);
  });

  it('dead letters: the dead-letter queue alone, unbound', () => {
    const t = subscriptionTopology(spec({ group: 'billing' }), true, CLASSIC);
    assert.deepEqual(t.queues, [{ name: 'billing.Billing.onOrder.dead', options: { durable: true, arguments: { 'x-queue-type': 'classic' } } }]);
    assert.equal(t.binding, undefined);
    assert.equal(t.resource, "queue 'billing.Billing.onOrder.dead'");
    assert.deepEqual(subscriptionTopology(spec({}), true, CLASSIC).queues.map((q) => q.name), ['broadcast.Billing.onOrder.dead']);
  });

  it('weight: prefetch share and consumer priority; a weight that is not a positive number counts as 1', () => {
    const w3 = subscriptionTopology(spec({ group: 'g', weight: 3 }), false, CLASSIC);
    assert.deepEqual([w3.prefetch, w3.priority], [30, 3]);
    const small = subscriptionTopology(spec({ group: 'g', weight: 0.01, prefetch: 1 }), false, CLASSIC);
    assert.deepEqual([small.prefetch, small.priority], [1, 0]);
    for (const weight of [0, -2, NaN, Infinity]) {
      const t = subscriptionTopology(spec({ group: 'g', weight }), false, CLASSIC);
      assert.deepEqual([t.prefetch, t.priority], [10, 1], `weight ${weight}`);
    }
  });

  it('a delay queue: named and timed by the delay\'s tier, back to its queue through the default exchange, expiring unused', () => {
    const q = delayQueue('billing.Billing.onOrder', 5, CLASSIC);
    assert.equal(q.name, 'billing.Billing.onOrder.retry.5');
    assert.deepEqual(q.options, {
      durable: true,
      arguments: {
        'x-queue-type': 'classic',
        'x-message-ttl': 5,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'billing.Billing.onOrder',
        'x-expires': 5 + DELAY_QUEUE_GRACE_MS,
      },
    });
    // A tier is its own fixed point: the name's delay is the TTL (main's retryDelayTier fix).
    for (let d = 0; d <= 5000; d += 7) {
      const t = delayQueue('q', d, CLASSIC);
      assert.equal(t.name, `q.retry.${t.options.arguments!['x-message-ttl']}`, `delay ${d}`);
      assert.equal(delayQueue('q', t.options.arguments!['x-message-ttl'] as number, CLASSIC).name, t.name, `delay ${d}`);
    }
    // A server-named queue's prefix is dropped from the name (clients may not declare amq.*), not from the target.
    const s = delayQueue('amq.gen-abc', 100, CLASSIC);
    assert.equal(s.name.startsWith('gen-abc.retry.'), true);
    assert.equal(s.options.arguments!['x-dead-letter-routing-key'], 'amq.gen-abc');
  });

  it('with quorum queues the delay queues are quorum too, dead-lettering back at-least-once', () => {
    assert.deepEqual(delayQueue('billing.Billing.onOrder', 5, QUORUM).options, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': 5,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'billing.Billing.onOrder',
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-expires': 5 + DELAY_QUEUE_GRACE_MS,
      },
    });
  });

  it('Courier counts redeliveries only where the broker does not: classic group and instance queues, not dead letters, not broadcasts, not when turned off', () => {
    assert.equal(redeliveryLimitOf(spec({ group: 'g', maxAttempts: 4 }), false, CLASSIC), 4);
    assert.equal(redeliveryLimitOf(spec({ group: 'g' }), false, CLASSIC), 20);
    assert.equal(redeliveryLimitOf(spec({ instance: 'o.i' }), false, CLASSIC), 20);
    assert.equal(redeliveryLimitOf(spec({ group: 'g' }), false, QUORUM), undefined, 'x-delivery-limit counts');
    assert.equal(redeliveryLimitOf(spec({ group: 'g' }), true, CLASSIC), undefined, 'dead letters');
    assert.equal(redeliveryLimitOf(spec({}), false, CLASSIC), undefined, 'a broadcast queue dies with its consumer');
    assert.equal(redeliveryLimitOf(spec({ group: 'g' }), false, { ...CLASSIC, countRedeliveries: false }), undefined);
  });

  it('a redelivery copy keeps every property but the user id, adds its count; the count reads back (absent or bad: 0)', () => {
    const props = { headers: { a: 'b', [REDELIVERIES_HEADER]: 1 }, deliveryMode: 2, replyTo: 'amq.rabbitmq.reply-to.x', correlationId: 'c1', messageId: 'm1', userId: 'guest', expiration: undefined } as unknown as MessageProperties;
    const copy = copyProperties(props, { [REDELIVERIES_HEADER]: 2 });
    assert.deepEqual(copy, { headers: { a: 'b', [REDELIVERIES_HEADER]: 2 }, persistent: true, replyTo: 'amq.rabbitmq.reply-to.x', correlationId: 'c1', messageId: 'm1' });
    assert.equal(decodeRedeliveries({ headers: copy.headers } as unknown as MessageProperties), 2);
    assert.equal(decodeRedeliveries({ headers: { [REDELIVERIES_HEADER]: '3' } } as unknown as MessageProperties), 3);
    assert.equal(decodeRedeliveries({ headers: { [REDELIVERIES_HEADER]: 'x' } } as unknown as MessageProperties), 0);
    assert.equal(decodeRedeliveries({} as unknown as MessageProperties), 0);
  });

  it('dead-letter targets: a group\'s .dead queue as declared; a broadcast\'s shared one declared on the fly; dead letters of dead letters stay', () => {
    assert.deepEqual(deadLetterTarget(spec({ group: 'billing' }), false, 'billing.Billing.onOrder', CLASSIC), { queue: 'billing.Billing.onOrder.dead' });
    assert.deepEqual(deadLetterTarget(spec({}), false, 'amq.gen-1', QUORUM), {
      queue: 'broadcast.Billing.onOrder.dead',
      declare: { name: 'broadcast.Billing.onOrder.dead', options: { durable: true, arguments: { 'x-queue-type': 'quorum' } } },
    });
    assert.equal(deadLetterTarget(spec({ instance: 'o.i' }), false, 'o.i.Billing.onOrder', CLASSIC).declare?.name, 'broadcast.Billing.onOrder.dead');
    assert.deepEqual(deadLetterTarget(spec({ group: 'billing' }), true, 'billing.Billing.onOrder.dead', CLASSIC), { queue: 'billing.Billing.onOrder.dead' });
  });
});
