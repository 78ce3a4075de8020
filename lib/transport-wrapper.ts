/**
 * The base of "extras as wrappers" (the meter, signing, fault injection): a Transport that passes
 * everything to `inner`. A wrapper overrides only what it changes.
 */
import {
  DeadLetterInfo,
  Delivery,
  DeliveryHandler,
  HistoryRetention,
  OutgoingMessage,
  PublishOptions,
  ReceivedMessage,
  ReplyMessage,
  Subscription,
  SubscriptionSpec,
  Transport,
  TransportCapabilities,
  TransportEvent,
  TransportEvents,
} from './transport';
import { setDeliveryFields } from './adapter-kit/delivery-fields';
import type { DeliveryFields } from './adapter-kit/delivery-fields';

export class TransportWrapper implements Transport {
  constructor(readonly inner: Transport) {}
  get name(): string {
    return this.inner.name;
  }
  get capabilities(): TransportCapabilities {
    return this.inner.capabilities;
  }
  connect(): Promise<void> {
    return this.inner.connect();
  }
  publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    return this.inner.publish(message, options);
  }
  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.inner.subscribe(spec, handler);
  }
  subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.inner.subscribeDeadLetters(of, handler);
  }
  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    return this.inner.request(message, options);
  }
  close(options?: { timeoutMs?: number }): Promise<void> {
    return this.inner.close(options);
  }
  retain(type: string, retention: HistoryRetention): Promise<void> {
    if (!this.inner.retain) return Promise.reject(new Error(`${this.inner.name}: no message history (capability replay)`));
    return this.inner.retain(type, retention);
  }
  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.inner.on(event, listener);
    return this;
  }
  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.inner.off(event, listener);
    return this;
  }
}

/** How a delivery was settled, as {@link DeliveryWrapper.settling} hears it. */
export type SettleKind = 'ack' | 'requeue' | 'retry' | 'dead';

// Its data fields (merged into the class): lib/adapter-kit/delivery-fields.ts.
export interface DeliveryWrapper extends DeliveryFields {}
/**
 * The base of a wrapper's delivery (the meter's, tracing's): the fields of `inner`, and each
 * settle passed to `inner` after {@link DeliveryWrapper.settling} heard of it. Prototype methods:
 * no closure per message.
 */
export class DeliveryWrapper implements Delivery {
  constructor(protected readonly inner: Delivery) {
    setDeliveryFields(this, inner.topic, inner.body, inner.headers, inner.attempt, inner.redelivered, inner.replyExpected, inner.raw);
  }
  /** Called before a settle is passed on (`info` for a dead letter); a subclass overrides it. */
  protected settling(_kind: SettleKind, _info?: DeadLetterInfo): void {}
  ack(): Promise<void> {
    this.settling('ack');
    return this.inner.ack();
  }
  requeue(): Promise<void> {
    this.settling('requeue');
    return this.inner.requeue();
  }
  retry(delayMs: number): Promise<void> {
    this.settling('retry');
    return this.inner.retry(delayMs);
  }
  deadLetter(info: DeadLetterInfo): Promise<void> {
    this.settling('dead', info);
    return this.inner.deadLetter(info);
  }
  reply(message: ReplyMessage): Promise<void> {
    return this.inner.reply(message);
  }
}

/** A delivery like `d`, with some of its members replaced. */
export function withDelivery(d: Delivery, changes: Partial<Delivery>): Delivery {
  return {
    topic: d.topic,
    body: d.body,
    headers: d.headers,
    attempt: d.attempt,
    redelivered: d.redelivered,
    replyExpected: d.replyExpected,
    raw: d.raw,
    ack: () => d.ack(),
    requeue: () => d.requeue(),
    retry: (ms) => d.retry(ms),
    deadLetter: (info) => d.deadLetter(info),
    reply: (m) => d.reply(m),
    ...changes,
  };
}
