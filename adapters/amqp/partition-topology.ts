/**
 * The topology of per-key order and of replay, as data (docs/scaling.md, docs/wire-format.md);
 * pure functions beside topology.ts, which they build on. Nothing here talks to a broker.
 *
 * Partitions (SubscriptionSpec.partitions = N, with a group):
 *   `courier.events` --pattern (exchange-to-exchange)--> `<group>.<name>.partitions`
 *     (x-consistent-hash, hashing the `cloudEvents_courierkey` header)
 *     --weight 1--> `<group>.<name>.p<i>` for i in 0..N-1 (quorum, x-single-active-consumer)
 *   Every consumer of the group consumes every partition queue, prefetch 1: the broker gives
 *   each partition to one of them at a time and to the next when it goes; and `<group>.<name>.members`
 *   (nothing published to it), whose consumer count is the group's size.
 *
 * History and replay:
 *   `courier.events` --<type>--> `<exchange>.history.<type>` (a stream, x-max-age / x-max-length-bytes)
 *   `<group>.<name>.position` (x-max-length 1): the last offset the group handled, one message.
 */
import { StartupError } from '../../lib/errors';
import type { SubscriptionSpec, HistoryRetention } from '../../lib/transport';
import { QueueDeclaration, redeliveryLimit, SubscriptionTopology, subscriptionTopology, TopologyOptions } from './topology';
import { workQueueName } from './wire';

/** The consistent-hash exchange type, from RabbitMQ's rabbitmq_consistent_hash_exchange plugin. */
export const HASH_EXCHANGE_TYPE = 'x-consistent-hash';
export const HASH_PLUGIN = 'rabbitmq_consistent_hash_exchange';
/** The AMQP header the hash exchange hashes: Courier's `courierkey` under the CloudEvents prefix. */
export const KEY_HEADER = 'cloudEvents_courierkey';
/** Streams of history are named `<exchange>.history.<type>`. */
export const HISTORY_PREFIX = 'history';
/** Streams keep this much when a history names neither age nor size. */
export const DEFAULT_HISTORY_BYTES = 1024 ** 3;

export interface ExchangeDeclaration {
  readonly name: string;
  readonly type: string;
  readonly arguments?: Record<string, unknown>;
}

/** A subscription topology with the exchanges (and exchange-to-exchange bindings) it needs first. */
export interface ExtendedTopology extends SubscriptionTopology {
  readonly exchanges?: readonly ExchangeDeclaration[];
  /** `destination` receives from `source` what matches `pattern`. */
  readonly exchangeBindings?: ReadonlyArray<{ readonly destination: string; readonly source: string; readonly pattern: string }>;
}

export function partitionExchangeName(group: string, name: string): string {
  return `${workQueueName(group, name)}.partitions`;
}

export function partitionQueueName(group: string, name: string, index: number): string {
  return `${workQueueName(group, name)}.p${index}`;
}

/** One topology per partition of `spec` (its `partitions`, with a group): each consumed on a channel of its own. */
export function partitionTopologies(spec: SubscriptionSpec, options: TopologyOptions): ExtendedTopology[] {
  const group = spec.group!;
  // The work queue as topology.ts makes it (queue type, dead-lettering, delivery limit), renamed per partition.
  const base = subscriptionTopology(spec, false, options);
  const [dead, work] = base.queues;
  const exchange = partitionExchangeName(group, spec.name);
  const exchanges = [{ name: exchange, type: HASH_EXCHANGE_TYPE, arguments: { 'hash-header': KEY_HEADER } }];
  const exchangeBindings = [{ destination: exchange, source: options.exchange, pattern: spec.pattern }];
  const out: ExtendedTopology[] = [];
  for (let i = 0; i < spec.partitions!; i++) {
    const queue = partitionQueueName(group, spec.name, i);
    const declaration: QueueDeclaration = {
      name: queue,
      options: {
        ...work.options,
        // Quorum whatever `queueType`: a classic queue with single active consumer crashes on
        // RabbitMQ 3.10 / 3.11 when its active consumer goes holding unacked messages (the next
        // consumer never takes over: rabbitmq/rabbitmq-server#5460); a quorum queue hands over.
        arguments: { 'x-delivery-limit': redeliveryLimit(spec), ...work.options.arguments, 'x-queue-type': 'quorum', 'x-single-active-consumer': true },
      },
    };
    out.push({
      exchanges,
      exchangeBindings,
      queues: [dead, declaration],
      // The routing key of a consistent-hash binding is the queue's weight: all equal.
      binding: { exchange, pattern: '1' },
      resource: `queue '${queue}'`,
      prefetch: 1,
      priority: 0,
    });
  }
  return out;
}

/**
 * The group's roll call: every consumer of a partitioned group also consumes this queue (nothing
 * is published to it), so its consumer count is the group's size. The partition queues cannot
 * say: with single active consumer their count is 1.
 */
export function membersTopology(spec: SubscriptionSpec): ExtendedTopology {
  const name = `${workQueueName(spec.group!, spec.name)}.members`;
  return { queues: [{ name, options: { durable: true, arguments: { 'x-queue-type': 'classic' } } }], resource: `queue '${name}'`, prefetch: 1, priority: 0 };
}

/** The stream that keeps the history of `type`. */
export function historyStreamName(exchange: string, type: string): string {
  return `${exchange}.${HISTORY_PREFIX}.${type}`;
}

/** The stream of `type` and its binding from the events exchange. */
export function historyTopology(exchange: string, type: string, retention: HistoryRetention): { queue: QueueDeclaration; binding: { exchange: string; pattern: string } } {
  const args: Record<string, unknown> = { 'x-queue-type': 'stream' };
  if (retention.maxAge !== undefined) args['x-max-age'] = retention.maxAge;
  if (retention.maxBytes !== undefined) args['x-max-length-bytes'] = retention.maxBytes;
  else if (retention.maxAge === undefined) args['x-max-length-bytes'] = DEFAULT_HISTORY_BYTES;
  return { queue: { name: historyStreamName(exchange, type), options: { durable: true, arguments: args } }, binding: { exchange, pattern: type } };
}

export function positionQueueName(group: string, name: string): string {
  return `${workQueueName(group, name)}.position`;
}

/** The queues of a replay subscription: its dead letters, its position, then the stream it reads. */
export function replayTopology(spec: SubscriptionSpec, options: TopologyOptions): ExtendedTopology {
  const base = subscriptionTopology(spec, false, options);
  const history = historyTopology(options.exchange, spec.pattern, spec.replay!.history);
  const position: QueueDeclaration = {
    name: positionQueueName(spec.group!, spec.name),
    options: { durable: true, arguments: { 'x-queue-type': 'classic', 'x-max-length': 1 } },
  };
  return {
    queues: [base.queues[0], position, history.queue],
    binding: history.binding,
    resource: `queue '${history.queue.name}'`,
    // A stream consumer needs a prefetch; its acks only give credit. No x-priority: a stream refuses it.
    prefetch: Math.max(1, spec.prefetch),
    priority: 0,
  };
}

/**
 * A declaration of an exchange type the broker lacks closes the whole connection (503
 * COMMAND_INVALID "unknown exchange type", or "invalid" once the plugin was disabled): the StartupError naming the plugin to enable, when
 * that is what closed `session`'s connection. It would be refused again: connect() stops trying.
 */
export function missingExchangeType(session: { readonly lastError?: Error }, topo: ExtendedTopology): StartupError | undefined {
  const text = session.lastError?.message ?? '';
  if (!topo.exchanges?.length || !/(unknown|invalid) exchange type/i.test(text)) return undefined;
  return new StartupError([
    `amqp: per-key order (partitions) needs RabbitMQ's consistent-hash exchange, and the broker has no exchange type '${HASH_EXCHANGE_TYPE}': enable its plugin with \`rabbitmq-plugins enable ${HASH_PLUGIN}\``,
  ]);
}
