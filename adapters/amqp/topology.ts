/**
 * The topology of a subscription as data: a pure function from its spec and the transport's
 * options to the queues (with their arguments) and the binding it needs (docs/wire-format.md,
 * "AMQP binding"; the names come from wire.ts). Nothing here talks to a broker:
 * subscriptions.ts declares what these functions return, in order, and the delivery declares the
 * retry and dead-letter queues it needs on the fly. Unit-tested without a broker
 * (test/adapters/amqp/topology.spec.ts).
 */
import type { Options } from 'amqplib';
import type { SubscriptionSpec } from '../../lib/transport';
import { deadQueueName, delayQueueName, instanceQueueName, retryDelayTier, workQueueName } from './wire';

/** Delay queues expire this long after their last declaration, which always precedes a publish to them. */
export const DELAY_QUEUE_GRACE_MS = 10 * 60_000;
/** An instance subscription's queue expires after this long unused when its spec names no grace. */
export const INSTANCE_QUEUE_GRACE_MS = 60 * 60_000;

/** The transport options the topology depends on. */
export interface TopologyOptions {
  /** The durable topic exchange of events. */
  readonly exchange: string;
  readonly queueType: 'classic' | 'quorum';
  /** Classic queues: Courier counts redeliveries (redeliveryLimitOf). Default true. */
  readonly countRedeliveries?: boolean;
}

/** One `queue.declare`. */
export interface QueueDeclaration {
  /** The queue's name; '' for a server-named queue (the broker answers with its name). */
  readonly name: string;
  readonly options: Options.AssertQueue;
}

/** What one subscription declares, binds and consumes. */
export interface SubscriptionTopology {
  /** Declared in this order; the last one is the queue consumed. */
  readonly queues: readonly QueueDeclaration[];
  /** Binds the consumed queue to the events exchange; none for a subscription to dead letters. */
  readonly binding?: { readonly exchange: string; readonly pattern: string };
  /** The consumed queue as errors name it (`queue 'a.b'`); none for a server-named queue. */
  readonly resource?: string;
  /** basic.qos prefetch of the subscription's channel: the spec's prefetch times its weight. */
  readonly prefetch: number;
  /** The consumer priority (`x-priority`): its weight. */
  readonly priority: number;
}

/** The arguments every queue Courier keeps (work, dead-letter, delay) carries. */
export function queueArguments(options: TopologyOptions): Record<string, unknown> {
  return { 'x-queue-type': options.queueType };
}

/**
 * The arguments of a queue the broker dead-letters from (a work queue: its delivery limit; a delay
 * queue: its TTL) to `target` through the default exchange. A quorum queue dead-letters
 * at-most-once unless told otherwise: a message whose target had no leader at that instant would
 * be gone. `at-least-once` (RabbitMQ 3.10+, which requires `x-overflow: reject-publish`) keeps it
 * in the source until the target confirmed it (docs/scaling.md, "Cluster and quorum queues").
 */
export function deadLetteringArguments(options: TopologyOptions, target: string): Record<string, unknown> {
  const args: Record<string, unknown> = { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': target };
  if (options.queueType === 'quorum') {
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  return args;
}

/** A spec's weight: a positive finite number, else 1. */
export function weightOf(spec: SubscriptionSpec): number {
  const w = spec.weight ?? 1;
  return Number.isFinite(w) && w > 0 ? w : 1;
}

/**
 * The queues and binding of `spec` (with `deadLetters`: of its dead letters, consumed instead of
 * its work queue).
 *   group:     `<group>.<name>.dead`, then `<group>.<name>` dead-lettering to it, bound to `pattern`
 *   instance:  `broadcast.<name>.dead`, then `<instance>.<name>` likewise, with `x-expires`
 *   broadcast: an exclusive, auto-delete, server-named queue bound to `pattern`
 *   deadLetters: the dead-letter queue alone, unbound
 */
export function subscriptionTopology(spec: SubscriptionSpec, deadLetters: boolean, options: TopologyOptions): SubscriptionTopology {
  const { group, name, pattern, instance } = spec;
  const weight = weightOf(spec);
  // Weight = prefetch share and consumer priority: on a saturated queue a consumer of weight 3
  // holds three times the deliveries of one of weight 1, and is offered the next message first.
  const consumer = { prefetch: Math.max(1, Math.round(spec.prefetch * weight)), priority: Math.max(0, Math.round(weight)) };
  const dead = deadQueueName(group, name);
  const deadQueue: QueueDeclaration = { name: dead, options: { durable: true, arguments: queueArguments(options) } };
  if (deadLetters) return { queues: [deadQueue], resource: `queue '${dead}'`, ...consumer };
  const binding = { exchange: options.exchange, pattern };
  const kept = group ?? instance;
  if (!kept) {
    // Exclusive queues may be transient (RabbitMQ 4.x refuses only transient non-exclusive ones).
    return { queues: [{ name: '', options: { exclusive: true, autoDelete: true, durable: false } }], binding, ...consumer };
  }
  const queue = group ? workQueueName(group, name) : instanceQueueName(instance!, name);
  const args: Record<string, unknown> = {
    ...queueArguments(options),
    // What RabbitMQ itself dead-letters (the quorum delivery limit) lands beside Courier's dead letters.
    ...deadLetteringArguments(options, dead),
  };
  // A backstop against a crash loop: the bus counts attempts, the broker counts redeliveries
  // (a classic queue has no such limit: Courier counts them itself, AmqpDelivery.countRedelivery in delivery.ts).
  if (options.queueType === 'quorum') args['x-delivery-limit'] = redeliveryLimit(spec);
  // Not exclusive: it outlives this connection. It goes once unused for the grace period, so
  // an instance that never returns leaks nothing (a changed grace is a PRECONDITION_FAILED).
  if (!group) args['x-expires'] = Math.max(1, Math.round(spec.expiresAfterMs ?? INSTANCE_QUEUE_GRACE_MS));
  return {
    queues: [deadQueue, { name: queue, options: { durable: true, arguments: args } }],
    binding,
    resource: `queue '${queue}'`,
    ...consumer,
  };
}

/**
 * How often a message may be redelivered (given back by a crash, a cut or a requeue, not a retry)
 * before it is dead-lettered with reason `delivery-limit`: the handler's attempts (default 20).
 * A quorum queue counts with `x-delivery-limit`; on a classic queue Courier counts
 * (AmqpDelivery.countRedelivery in delivery.ts). Both let a message be handed over at most limit + 1 times per attempt.
 */
export function redeliveryLimit(spec: SubscriptionSpec): number {
  return spec.maxAttempts ?? 20;
}

/**
 * The limit Courier enforces itself on the redeliveries of a subscription's deliveries, or
 * undefined when it does not count: a quorum queue counts with `x-delivery-limit`; a broadcast's
 * queue dies with its consumer (no loop); dead letters are not dead-lettered again; and
 * `countRedeliveries: false` turns it off. Where the count lives: AmqpDelivery.countRedelivery.
 */
export function redeliveryLimitOf(spec: SubscriptionSpec, deadLetters: boolean, options: TopologyOptions): number | undefined {
  if (options.queueType !== 'classic' || options.countRedeliveries === false || deadLetters) return undefined;
  return spec.group || spec.instance ? redeliveryLimit(spec) : undefined;
}

/**
 * The delay queue a retry of a delivery from `queue` waits in: `<queue>.retry.<tier>`, the delay
 * rounded up to its tier (wire.ts), its TTL the tier; it dead-letters back to `queue` only,
 * through the default exchange, and expires unused. Of the transport's queue type: a quorum
 * delay queue survives the loss of a node with the retries waiting in it (RabbitMQ 3.10 quorum
 * queues take `x-message-ttl` and `x-expires`).
 */
export function delayQueue(queue: string, delayMs: number, options: TopologyOptions): QueueDeclaration {
  const delay = retryDelayTier(delayMs);
  return {
    name: delayQueueName(queue, delay),
    options: {
      durable: true,
      arguments: {
        ...queueArguments(options),
        'x-message-ttl': delay,
        ...deadLetteringArguments(options, queue),
        'x-expires': delay + DELAY_QUEUE_GRACE_MS,
      },
    },
  };
}

/** Where a delivery's dead letter goes. */
export interface DeadLetterTarget {
  readonly queue: string;
  /** To declare before the copy is published: a broadcast's shared dead-letter queue (declared at subscribe otherwise). */
  readonly declare?: QueueDeclaration;
}

/**
 * The dead-letter queue of a delivery from `consumed` (the queue its subscription consumes): the
 * spec's `.dead` queue, or `consumed` itself for a subscription to dead letters.
 */
export function deadLetterTarget(spec: SubscriptionSpec, deadLetters: boolean, consumed: string, options: TopologyOptions): DeadLetterTarget {
  if (deadLetters) return { queue: consumed };
  const queue = deadQueueName(spec.group, spec.name);
  if (spec.group) return { queue };
  return { queue, declare: { name: queue, options: { durable: true, arguments: queueArguments(options) } } };
}
