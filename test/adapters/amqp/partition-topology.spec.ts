/**
 * The topology of per-key order and replay as data (adapters/amqp/partition-topology.ts), without
 * a broker: names, arguments, bindings, and the start-up error for a missing hash exchange plugin.
 */
import assert from 'node:assert/strict';
import { StartupError } from '../../../lib';
import type { SubscriptionSpec } from '../../../lib/transport';
import {
  historyTopology,
  membersTopology,
  missingExchangeType,
  partitionTopologies,
  replayTopology,
} from '../../../adapters/amqp/partition-topology';

const options = { exchange: 'courier.events', queueType: 'classic' as const };
const spec: SubscriptionSpec = { pattern: 'order.*', group: 'billing', name: 'Billing.onStep', prefetch: 1, partitions: 3, maxAttempts: 4 };

describe('AMQP partition and replay topology (as data)', () => {
  it('N partition queues: quorum with single active consumer whatever queueType, bound with equal weight to one hash exchange fed by the pattern', () => {
    const all = partitionTopologies(spec, options);
    assert.equal(all.length, 3);
    all.forEach((t, i) => {
      const q = t.queues[t.queues.length - 1];
      assert.equal(q.name, `billing.Billing.onStep.p${i}`);
      assert.equal(q.options.arguments!['x-queue-type'], 'quorum');
      assert.equal(q.options.arguments!['x-single-active-consumer'], true);
      assert.equal(q.options.arguments!['x-delivery-limit'], 4);
      assert.equal(q.options.arguments!['x-dead-letter-routing-key'], 'billing.Billing.onStep.dead');
      assert.equal(t.queues[0].name, 'billing.Billing.onStep.dead');
      assert.deepEqual(t.binding, { exchange: 'billing.Billing.onStep.partitions', pattern: '1' });
      assert.deepEqual(t.exchanges, [{ name: 'billing.Billing.onStep.partitions', type: 'x-consistent-hash', arguments: { 'hash-header': 'cloudEvents_courierkey' } }]);
      assert.deepEqual(t.exchangeBindings, [{ destination: 'billing.Billing.onStep.partitions', source: 'courier.events', pattern: 'order.*' }]);
      assert.equal(t.prefetch, 1);
    });
    assert.equal(membersTopology(spec).queues[0].name, 'billing.Billing.onStep.members');
  });

  it('history: a stream per type with its retention; a replay reads it after declaring its dead letters and its one-message position queue', () => {
    assert.deepEqual(historyTopology('x', 'product.changed', { maxAge: '7D' }).queue, {
      name: 'x.history.product.changed',
      options: { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-age': '7D' } },
    });
    assert.equal(historyTopology('x', 't', {}).queue.options.arguments!['x-max-length-bytes'], 1024 ** 3);
    const replay = replayTopology({ pattern: 'product.changed', group: 'r', name: 'R.on', prefetch: 20, replay: { from: 'first', history: { maxBytes: 5000 } } }, options);
    assert.deepEqual(replay.queues.map((q) => q.name), ['r.R.on.dead', 'r.R.on.position', 'courier.events.history.product.changed']);
    assert.equal(replay.queues[1].options.arguments!['x-max-length'], 1);
    assert.deepEqual(replay.binding, { exchange: 'courier.events', pattern: 'product.changed' });
    assert.equal(replay.priority, 0, 'a stream refuses x-priority');
  });

  it('a connection closed for an unknown (or disabled) exchange type is a StartupError naming the plugin', () => {
    const topo = partitionTopologies(spec, options)[0];
    for (const text of ["unknown exchange type 'x-consistent-hash'", "invalid exchange type 'x-consistent-hash'"]) {
      const err = missingExchangeType({ lastError: new Error(`Connection closed: 503 (COMMAND-INVALID) with message "COMMAND_INVALID - ${text}"`) }, topo);
      assert.ok(err instanceof StartupError);
      assert.match(err.message, /rabbitmq-plugins enable rabbitmq_consistent_hash_exchange/);
    }
    assert.equal(missingExchangeType({ lastError: new Error('socket hang up') }, topo), undefined);
    assert.equal(missingExchangeType({}, topo), undefined);
  });
});
