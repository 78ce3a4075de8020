/**
 * The decorators only record plain data with reflect-metadata, keyed by class and method; the
 * registry (registry.ts) reads it back once at start-up and reports every problem at once.
 * Payload classes are passed explicitly: esbuild-based runners emit no `design:*` metadata.
 */
import 'reflect-metadata';
import type { MessageContext } from './context';
import type { InboxStore } from './outbox/store';
import type { PayloadClass, PayloadShape } from './payload';

export type { PayloadClass, PayloadShape } from './payload';

export interface MessageOptions {
  /** The payload class of the reply, when this message is a request. */
  readonly reply?: PayloadClass;
  /** Largest body accepted for this type, checked before parsing. Default: the bus's limit. */
  readonly maxBytes?: number;
  /**
   * The ordering key: the payload property whose value groups messages that must be handled in
   * publish order (`orderId`). The publisher sends its value in the `courierkey` header; a
   * subscription with `ordered: { key, partitions }` handles the messages of one key one at a
   * time, in order (docs/scaling.md, "Per-key order").
   */
  readonly key?: string;
  /**
   * Keep a history of this type in the broker: every bus that knows the class (publishers and
   * subscribers) declares a stream of it at start, so a subscription with `replay` can read it
   * from its first message later (docs/scaling.md, "Replay from a stream").
   */
  readonly history?: HistoryOptions;
}

/** How long a message type's history is kept (RabbitMQ stream retention). */
export interface HistoryOptions {
  /** Age after which whole segments go: a number and a unit of Y, M, D, h, m, s (`7D`). Default: kept until maxBytes. */
  readonly maxAge?: string;
  /** Size after which the oldest segments go, in bytes. Default: 1 GiB when maxAge is absent too. */
  readonly maxBytes?: number;
}

/**
 * Where a replay starts the first time (later starts resume from the stored position): the first
 * message, the last chunk, only what comes, an offset, or a Date (what was published at or after it,
 * by the messages' CloudEvents `time`; docs/scaling.md).
 */
export type ReplayFrom = 'first' | 'last' | 'next' | number | Date;

/** Per-key order: messages with the same key are handled one at a time, in publish order. */
export interface OrderedOptions {
  /** The payload property of the ordering key; every payload class must declare it as its `@Message` `key`. */
  readonly key: string;
  /** Partitions of the group (1..64): each is handled by one consumer at a time, one message at a time. */
  readonly partitions: number;
}

export interface MessageMetadata extends MessageOptions {
  readonly type: string;
}

export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  readonly attempts?: number;
  /** Delay before the second attempt. Default 200 ms. */
  readonly initialDelayMs?: number;
  /** Growth of the delay per attempt. Default 2. */
  readonly factor?: number;
  /** Ceiling of the delay. Default 30 s. */
  readonly maxDelayMs?: number;
}

export interface SubscribeOptions {
  /** Topic pattern (`order.*`, `order.#`). Default: the payload class's type (one class only). */
  readonly pattern?: string;
  /** Consumer-side filter on the message type, for what a pattern cannot express. */
  readonly filter?: RegExp;
  /** Overrides the class's group. `null`: a broadcast subscription (every instance gets every message). */
  readonly group?: string | null;
  /**
   * A broadcast kept per instance (needs the bus's `instanceId`): every instance gets every
   * message, and what is published while this instance reconnects or restarts waits for it. What
   * a replica (a local copy kept from events) should use. Excludes `group`.
   */
  readonly instance?: boolean;
  /** Unacked deliveries this handler holds at once. Default: the class's, else 10. */
  readonly prefetch?: number;
  /** Relative share of the group's work (needs a transport with weighted consumers). */
  readonly weight?: number;
  readonly retry?: RetryOptions;
  /** Skip a message whose envelope id this handler already handled (needs the bus's dedupe store). */
  readonly idempotent?: boolean;
  /**
   * Handle inside a transaction of this inbox (ctx.tx), which records the message id in the same
   * transaction: the effect applies once, however often the message comes (docs/consistency.md).
   * A function gets the registered instance and returns its inbox (or undefined: none), for a
   * class whose database is given to its constructor: `inbox: (s: Orders) => s.inbox`.
   */
  readonly inbox?: InboxStore | ((instance: never) => InboxStore | undefined);
  /**
   * Per-key order (needs a transport with partitions; needs a group): the group's messages are
   * spread over `partitions` by the value of `key`, and each partition is handled by one consumer
   * at a time, one message at a time; a retry waits in place, blocking its partition.
   */
  readonly ordered?: OrderedOptions;
  /**
   * Read the history of the payload's type (its `@Message` declares `history`) from `from`, then
   * what follows; the group's position is stored, so a restart resumes where it stopped
   * (at-least-once). One payload class; one consumer per group (each reads everything).
   */
  readonly replay?: { readonly from: ReplayFrom };
}

export interface SubscriptionMetadata {
  readonly method: string;
  /** Exactly what the decorator was given; the registry checks it. */
  readonly payloads: ReadonlyArray<PayloadClass | undefined>;
  readonly options: SubscribeOptions;
}

export interface SubscriberOptions {
  /** Competing-consumer group: instances with the same group share the work. */
  readonly group?: string;
  /** Default prefetch of the class's handlers. */
  readonly prefetch?: number;
}

export interface PublishMetadata {
  readonly method: string;
  readonly payload: PayloadClass | undefined;
  readonly options: PublishMethodOptions;
}

export interface PublishMethodOptions {
  /** Reject the publish when no subscription receives it (transports with `mandatory`). */
  readonly mandatory?: boolean;
}

const MESSAGE = Symbol('courier:message');
/** messageMetadata()'s answers by class (a class @Message marks afresh is read again). */
const messageMetadataOf = new WeakMap<Function, MessageMetadata>();
const SUBSCRIBER = Symbol('courier:subscriber');
const SUBSCRIPTIONS = Symbol('courier:subscriptions');
const PUBLISHER = Symbol('courier:publisher');
const PUBLICATIONS = Symbol('courier:publications');

/** Marks a payload class; `type` is its routing identity (`product.price-changed`). */
export function Message(type: string, options: MessageOptions = {}): ClassDecorator {
  return (target) => {
    Reflect.defineMetadata(MESSAGE, { ...options, type }, target);
    messageMetadataOf.delete(target);
  };
}

/** Marks a class whose `@Subscribe` methods handle messages. */
export function Subscriber(options: SubscriberOptions = {}): ClassDecorator {
  return (target) => Reflect.defineMetadata(SUBSCRIBER, options, target);
}

/** Marks a class whose `@Publish` methods publish what they return. */
export function Publisher(): ClassDecorator {
  return (target) => Reflect.defineMetadata(PUBLISHER, true, target);
}

/** The shape of a `@Subscribe` method: the validated payload and its context; resolves when handled. */
export type Handler<T> = (event: T, ctx: MessageContext) => unknown;

/**
 * Handles messages of `payload` (or of several classes, with a `pattern`). The method gets the
 * validated payload instance and its {@link MessageContext}; what it returns is the reply when
 * the message is a request. Its message is acked only after its promise resolves.
 */
export function Subscribe<T>(
  payload: PayloadClass<T> | ReadonlyArray<PayloadClass<T>>,
  options: SubscribeOptions = {},
): <M extends Handler<T>>(target: object, method: string | symbol, descriptor: TypedPropertyDescriptor<M>) => void {
  return (target, method) => {
    const list: SubscriptionMetadata[] = Reflect.getOwnMetadata(SUBSCRIPTIONS, target.constructor) ?? [];
    const payloads = Array.isArray(payload) ? [...payload] : [payload as PayloadClass<T>];
    list.push({ method: String(method), payloads, options });
    Reflect.defineMetadata(SUBSCRIPTIONS, list, target.constructor);
  };
}

/**
 * Publishes what the method resolves to as a `payload` message, after validating it. The call
 * resolves once the transport has accepted the message, and rejects (publishing nothing) when
 * the value is invalid.
 */
export function Publish<T>(
  payload: PayloadClass<T>,
  options: PublishMethodOptions = {},
): <M extends (...args: never[]) => PayloadShape<T> | Promise<PayloadShape<T>>>(
  target: object,
  method: string | symbol,
  descriptor: TypedPropertyDescriptor<M>,
) => void {
  return (target, method) => {
    const list: PublishMetadata[] = Reflect.getOwnMetadata(PUBLICATIONS, target.constructor) ?? [];
    list.push({ method: String(method), payload, options });
    Reflect.defineMetadata(PUBLICATIONS, list, target.constructor);
  };
}

export function messageMetadata(cls: unknown): MessageMetadata | undefined {
  if (typeof cls !== 'function') return undefined;
  // Read on every publish and delivery: reflect-metadata's walk up the prototype chain, once per
  // class. @Message runs when its class is defined, before anything can read it.
  let meta = messageMetadataOf.get(cls);
  if (meta === undefined) {
    meta = Reflect.getMetadata(MESSAGE, cls) as MessageMetadata | undefined;
    if (meta !== undefined) messageMetadataOf.set(cls, meta);
  }
  return meta;
}
export function subscriberMetadata(cls: Function): SubscriberOptions | undefined {
  return Reflect.getMetadata(SUBSCRIBER, cls);
}
export function publisherMetadata(cls: Function): boolean {
  return Reflect.getMetadata(PUBLISHER, cls) === true;
}
/**
 * Whether `cls` is something `bus.register()` takes: a class with `@Subscriber`, `@Publisher`,
 * `@Subscribe` or `@Publish` (its own or inherited). What a framework's discovery (the Nest
 * module, courier-bus/nest) uses to find handler classes without knowing the metadata keys.
 */
export function isCourierClass(cls: unknown): boolean {
  if (typeof cls !== 'function') return false;
  return !!subscriberMetadata(cls) || publisherMetadata(cls) || subscriptionsOf(cls).length > 0 || publicationsOf(cls).length > 0;
}
/** Subscriptions of a class and of the classes it extends. */
export function subscriptionsOf(cls: Function): SubscriptionMetadata[] {
  return collect<SubscriptionMetadata>(SUBSCRIPTIONS, cls);
}
export function publicationsOf(cls: Function): PublishMetadata[] {
  return collect<PublishMetadata>(PUBLICATIONS, cls);
}

function collect<T>(key: symbol, cls: Function): T[] {
  const out: T[] = [];
  for (let c: Function | null = cls; c && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    out.unshift(...((Reflect.getOwnMetadata(key, c) as T[] | undefined) ?? []));
  }
  return out;
}
