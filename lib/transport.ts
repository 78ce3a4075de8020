/**
 * The transport contract: everything Courier's core asks of a broker adapter, and nothing more.
 *
 * An adapter moves opaque messages (a body and string headers) between a publisher and the
 * subscriptions whose pattern matches the message's topic. It never sees a payload class, never
 * validates and never decides a failure policy: the bus does. What it must do is keep the promises
 * written on each member below, and state in {@link TransportCapabilities} which ones it keeps.
 * The conformance suite (`courier-bus/conformance`, lib/conformance/) checks them; an adapter is
 * ready when it passes that suite.
 */

/** Header names the core and every adapter agree on. CloudEvents attribute names (lowercase). */
export const Headers = {
  id: 'id',
  source: 'source',
  type: 'type',
  specversion: 'specversion',
  time: 'time',
  datacontenttype: 'datacontenttype',
  correlationid: 'correlationid',
  causationid: 'causationid',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** 1 on the first delivery; a transport's retry() sets it to the next attempt. */
  attempt: 'courierattempt',
  /** Set when a message is dead-lettered: why (a {@link DeadLetterReason}). */
  deadReason: 'courierdeadreason',
  /** Set when a message is dead-lettered: the error class name. */
  deadError: 'courierdeaderror',
  /** Set when a message is dead-lettered: the error message (secrets redacted). */
  deadMessage: 'courierdeadmessage',
  /** Set when a message is dead-lettered: the subscription (group / name) that gave up on it. */
  deadQueue: 'courierdeadqueue',
  /** Set when a message is dead-lettered: ISO time. */
  deadTime: 'courierdeadtime',
  /** Set on a dead letter sent back to its subscription (lib/ops/dead-letters.ts): ISO time of the replay. */
  replayed: 'courierreplayed',
  /** On a reply: the remote handler failed; the body is `{ name, message }`. */
  replyError: 'courierreplyerror',
  /** The ordering key of the message (a `@Message` `key`'s value): what partitions hash. */
  key: 'courierkey',
  /** Optional message signature (see lib/signing.ts). */
  signature: 'couriersignature',
} as const;

/**
 * The two envelope defaults a transport may leave off the wire: an attempt count of 1, and a
 * correlation id equal to the id. Every header a transport writes costs its client library on
 * both ends; a transport that leaves these out calls {@link restoreImpliedHeaders} on receipt, so
 * handlers see the same headers on every transport.
 */
export function isImpliedHeader(key: string, value: string, headers: Readonly<Record<string, string>>): boolean {
  return key === Headers.attempt ? value === '1' : key === Headers.correlationid && value === headers[Headers.id];
}

/** Puts back what {@link isImpliedHeader} let a transport leave out. */
export function restoreImpliedHeaders(headers: Record<string, string>): void {
  if (headers[Headers.attempt] === undefined) headers[Headers.attempt] = '1';
  if (headers[Headers.correlationid] === undefined && headers[Headers.id] !== undefined) headers[Headers.correlationid] = headers[Headers.id];
}

/** Why a message went to the dead letter. */
export type DeadLetterReason =
  | 'malformed' // not decodable: bad bytes, bad JSON, wrong content type, too large, bad signature
  | 'invalid' // decoded, but the payload failed validation
  | 'unknown-type' // no payload class for its type on this subscription
  | 'rejected' // the handler rejected it explicitly (no retry)
  | 'exhausted' // the handler failed on its last attempt
  | 'delivery-limit'; // the broker's own redelivery limit was reached (e.g. a crash loop)

/** What a publisher hands to a transport. Topic is the message type (`order.placed`). */
export interface OutgoingMessage {
  readonly topic: string;
  readonly body: Buffer;
  /** Envelope attributes, keyed by {@link Headers}; values are strings. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface PublishOptions {
  /**
   * Reject with an `UnroutableError` when no subscription (queue) receives the message,
   * where the transport can tell (capability `mandatory`). Default: false (the message is dropped
   * by the broker when nobody listens, like any pub/sub).
   */
  readonly mandatory?: boolean;
  /** Give up and reject with a `PublishTimeoutError` after this long. Adapter default applies. */
  readonly timeoutMs?: number;
}

/** One message handed to a subscription's handler. Settle it exactly once; later settles are no-ops. */
export interface Delivery {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** 1-based; from the {@link Headers.attempt} header, counted by the transport across retries. */
  readonly attempt: number;
  /** True when the broker says it may have been delivered before (a crash, a requeue). */
  readonly redelivered: boolean;
  /** True when the sender waits for a reply (see {@link Delivery.reply}). */
  readonly replyExpected: boolean;
  /** The adapter's own message object, for the rare handler that needs it. Not portable. */
  readonly raw?: unknown;

  /** Done: the broker forgets the message. Called only after the handler's promise resolved. */
  ack(): Promise<void>;
  /**
   * Give it back now: the message is delivered again (`redelivered` true, same attempt count),
   * to this subscription only, possibly to another consumer of the same group.
   */
  requeue(): Promise<void>;
  /**
   * Try again later: after `delayMs` the message is delivered again to this subscription only,
   * with the attempt count one higher. The consumer is not blocked meanwhile. The transport
   * guarantees the message is not lost in between (it is either still unacked or stored again
   * before the original is acked).
   */
  retry(delayMs: number): Promise<void>;
  /**
   * Move to the subscription's dead letter with the reason headers of {@link Headers} set from
   * `info`; the message stays readable through {@link Transport.subscribeDeadLetters}.
   */
  deadLetter(info: DeadLetterInfo): Promise<void>;
  /** Send the reply of a request (only when `replyExpected`); the caller's request() resolves to it. */
  reply(message: ReplyMessage): Promise<void>;
}

export interface DeadLetterInfo {
  readonly reason: DeadLetterReason;
  readonly errorName?: string;
  readonly errorMessage?: string;
}

export interface ReplyMessage {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** A message as received by request() or a dead-letter consumer. */
export interface ReceivedMessage {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

export interface SubscriptionSpec {
  /**
   * A message type (`order.placed`) or a pattern: segments split on `.`, `*` matches exactly one
   * segment, `#` zero or more (`order.*`, `order.#`, `#`).
   */
  readonly pattern: string;
  /**
   * Consumers with the same group share the work (each message goes to one of them);
   * each group gets every message. A group outlives its consumers: what arrives while none is
   * connected waits for the next one (capability `durableGroups`).
   * Without a group the subscription is a broadcast: this instance alone, gone when it closes
   * (what is published while it is closed or reconnecting is not delivered to it), unless it names
   * an {@link SubscriptionSpec.instance}.
   */
  readonly group?: string;
  /**
   * Without a group only: a per-instance broadcast (capability `instanceSubscriptions`). Every
   * instance still gets every message, but what is published while this instance's subscription
   * is reconnecting, closed or its process restarting waits for it, as a group's messages do: the
   * broker keeps its queue / session, named from `instance` and `name` (docs/wire-format.md),
   * until it has had no consumer for {@link SubscriptionSpec.expiresAfterMs}. `instance` must be
   * the same across restarts of the instance and unique among the instances running at once; two
   * live subscriptions with the same instance and name share one queue (each message goes to one).
   */
  readonly instance?: string;
  /**
   * With `instance`: how long the broker keeps the subscription's queue / session (and what waits
   * in it) while no consumer is connected, in ms. An instance that never returns leaks nothing
   * beyond this. Adapter default when absent (1 hour).
   */
  readonly expiresAfterMs?: number;
  /** Names the subscription inside its group (`Class.method`); with the group it names the queue. */
  readonly name: string;
  /** The most unacked deliveries this consumer holds at once (>= 1). */
  readonly prefetch: number;
  /** Relative share of a group's work this consumer gets (capability `weightedConsumers`). Default 1. */
  readonly weight?: number;
  /** How many attempts the bus will make; lets a broker enforce its own limit as a backstop. */
  readonly maxAttempts?: number;
  /**
   * With a group (capability `partitions`): the group's messages are spread over this many
   * partitions by their {@link Headers.key} header; each partition is delivered to one consumer
   * of the group at a time, one message at a time, in publish order; a consumer that goes hands
   * its partitions to the others. `prefetch` is 1 per partition. retry() waits in place.
   */
  readonly partitions?: number;
  /**
   * With a group (capability `replay`): consume the history of the type `pattern` names (kept as
   * declared with {@link Transport.retain}) from `from` the first time, and from the group's stored
   * position after that (at-least-once: what was handled after the last stored position comes again).
   */
  readonly replay?: { readonly from: 'first' | 'last' | 'next' | number | Date; readonly history: HistoryRetention };
}

/** How long a message type's history is kept by the broker. */
export interface HistoryRetention {
  /** A number and a unit of Y, M, D, h, m, s (`7D`). */
  readonly maxAge?: string;
  readonly maxBytes?: number;
}

/** Called once per delivery, at most `prefetch` at a time. The handler settles the delivery. */
export type DeliveryHandler = (delivery: Delivery) => Promise<void>;

export interface Subscription {
  /**
   * Stop taking deliveries; those in flight may still be settled. What the consumer held unacked
   * goes back to the group. A broadcast subscription's queue is deleted, unless it is an instance
   * subscription (its queue waits for the instance's return, up to its expiry). Idempotent.
   */
  close(): Promise<void>;
}

/** What an adapter guarantees; the bus refuses at start a handler that needs what is missing. */
export interface TransportCapabilities {
  /** A group's messages wait while it has no consumer. */
  readonly durableGroups: boolean;
  /** SubscriptionSpec.instance: a broadcast whose messages wait across reconnects and restarts. */
  readonly instanceSubscriptions: boolean;
  /** Consumers of one group share the work without duplicates (in the absence of faults). */
  readonly competingConsumers: boolean;
  /** `*` and `#` patterns. */
  readonly patterns: boolean;
  /** Delivery.requeue() redelivers at once. */
  readonly requeue: boolean;
  /** Delivery.retry(delay) redelivers later without blocking the consumer. */
  readonly delayedRetry: boolean;
  /** Delivery.deadLetter() keeps the message readable with its reason. */
  readonly deadLetter: boolean;
  /** request() / Delivery.reply(). */
  readonly requestReply: boolean;
  /** SubscriptionSpec.weight is honoured. */
  readonly weightedConsumers: boolean;
  /** publish() resolves only once the broker has stored the message (confirms / PUBACK). */
  readonly confirmedPublish: boolean;
  /** PublishOptions.mandatory is honoured. */
  readonly mandatory: boolean;
  /** The largest body the transport accepts, in bytes. */
  readonly maxMessageBytes: number;
  /** SubscriptionSpec.partitions (per-key order) is honoured. Absent: false. */
  readonly partitions?: boolean;
  /** SubscriptionSpec.replay and Transport.retain (history) are honoured. Absent: false. */
  readonly replay?: boolean;
}

export type TransportEvent = 'connected' | 'disconnected' | 'error';

export interface TransportEvents {
  connected: [info: { url: string }];
  disconnected: [info: { url: string; error?: Error }];
  error: [error: Error];
}

/**
 * The adapter. Lifecycle: subscribe() may be called before connect(); those subscriptions are in
 * place before the first message is consumed (MQTT needs this for a persistent session's backlog).
 * No I/O happens in the constructor.
 */
export interface Transport {
  readonly name: string;
  readonly capabilities: TransportCapabilities;

  /** Connect and declare what was subscribed so far. Resolves when ready to publish and consume. */
  connect(): Promise<void>;

  /**
   * Resolves once the broker has accepted the message (with `confirmedPublish`: stored it; a
   * reconnect in between re-publishes it, so a resolve means it is in the broker). Rejects with a
   * typed CourierError when the broker refused it, on timeout, or after close(). Nothing is
   * retried after a reject.
   */
  publish(message: OutgoingMessage, options?: PublishOptions): Promise<void>;

  /** Start consuming. Each matching message is delivered to exactly one consumer of each group. */
  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription>;

  /**
   * Consume what the subscription `of` (same group and name) dead-lettered, each message with its
   * reason headers. The handler settles deliveries as usual (ack removes a dead letter).
   */
  subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription>;

  /**
   * Send a message that expects one reply; resolves to the first reply. Rejects with
   * `RequestTimeoutError` after `timeoutMs`. Many requests may be in flight at once.
   */
  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage>;

  /**
   * Stop consuming, wait for settles of deliveries in flight (up to `timeoutMs`), wait for
   * publishes not yet confirmed, then disconnect. Unacked deliveries go back to their group.
   * Idempotent: a second call returns the first call's promise. publish() after close() rejects.
   */
  close(options?: { timeoutMs?: number }): Promise<void>;

  /**
   * With capability `replay`: keep the history of `type` from now on (what is published of it is
   * also stored, per `retention`). Idempotent; called before connect() it takes effect at connect,
   * and it is declared again on every reconnect.
   */
  retain?(type: string, retention: HistoryRetention): Promise<void>;

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this;
  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this;
}
