/**
 * The base of "extras as wrappers" (the meter, signing, fault injection): a Transport that passes
 * everything to `inner`. A wrapper overrides only what it changes.
 */
import {
  Delivery,
  DeliveryHandler,
  OutgoingMessage,
  PublishOptions,
  ReceivedMessage,
  Subscription,
  SubscriptionSpec,
  Transport,
  TransportCapabilities,
  TransportEvent,
  TransportEvents,
} from './transport';

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
  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.inner.on(event, listener);
    return this;
  }
  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.inner.off(event, listener);
    return this;
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
