/**
 * What the operations (lib/ops/) ask of a broker beyond the transport contract: an optional
 * capability an adapter may implement on its transport, found through any wrappers (the meter,
 * signing) by {@link subscriptionAdmin}. The AMQP, MQTT and memory adapters implement
 * `sendToSubscription` (the memory broker's dead letters live and die with its process);
 * `queueDepth` only AMQP.
 */
import { OutgoingMessage, SubscriptionSpec, Transport } from '../transport';

/** The broker's own count of one queue (AMQP `queue.declare` passive, i.e. `checkQueue`). */
export interface QueueDepth {
  /** The queue's name on the broker. */
  readonly queue: string;
  /** Messages ready in it (not counting those delivered and not yet acknowledged). */
  readonly messages: number;
  /** Consumers attached to it. */
  readonly consumers: number;
}

/** Which queue of a subscription: its work queue, or its dead-letter queue. */
export type QueueKind = 'work' | 'dead';

/** The optional capability of a transport that lets the operations reach one subscription. */
export interface SubscriptionAdmin {
  /**
   * Publishes `message` to the subscription `of` alone (same group and name), not to the other
   * subscriptions of its topic: AMQP its work queue through the default exchange, MQTT its retry
   * topic. Resolves once the broker stored the message (confirm / PUBACK); rejects with
   * `UnroutableError` when the subscription has no queue or session to hold it, and with a
   * `CourierError` for a broadcast subscription, which has none that outlives it.
   */
  sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void>;
  /**
   * The broker's count of the subscription's work or dead-letter queue, or undefined where the
   * broker has no such figure (MQTT) or the queue does not exist. One round trip per call: callers
   * bound their rate.
   */
  queueDepth?(of: SubscriptionSpec, kind?: QueueKind): Promise<QueueDepth | undefined>;
}

/** `t`'s {@link SubscriptionAdmin}, looked for on `t` and the transports it wraps (`inner`), or undefined. */
export function subscriptionAdmin(t: Transport): SubscriptionAdmin | undefined {
  const seen = new Set<unknown>();
  let at: unknown = t;
  while (at !== null && typeof at === 'object' && !seen.has(at)) {
    seen.add(at);
    if (typeof (at as Partial<SubscriptionAdmin>).sendToSubscription === 'function') return at as SubscriptionAdmin;
    at = (at as { inner?: unknown }).inner;
  }
  return undefined;
}
