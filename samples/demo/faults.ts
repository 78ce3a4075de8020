/**
 * Fault injection for `courier demo --faults`: what an at-least-once system does to a service.
 *   - DuplicatingTransport publishes some messages a second time, a little later: half of the
 *     copies keep the envelope id (a redelivery, a producer retry), half get a new one (the same
 *     event sent again), so neither the bus's id-based deduplication nor luck can hide a handler
 *     that is not idempotent.
 *   - poison messages: bytes that are no event, and an event that fails validation; both must end
 *     in the dead letter and change nothing.
 */
import { randomUUID } from 'node:crypto';
import { DeliveryHandler, Headers, OutgoingMessage, PublishOptions, Subscription, SubscriptionSpec, Transport, TransportWrapper } from 'courier-bus';

export class DuplicatingTransport extends TransportWrapper {
  private readonly pending = new Set<Promise<void>>();
  duplicated = 0;

  constructor(
    inner: Transport,
    private readonly probability: number,
    private readonly random: () => number,
    /** Only messages of these types are duplicated. */
    private readonly types: ReadonlySet<string>,
  ) {
    super(inner);
  }

  override async publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    await this.inner.publish(message, options);
    if (!this.types.has(message.topic) || this.random() >= this.probability) return;
    const copy: OutgoingMessage = {
      ...message,
      headers: this.random() < 0.5 ? message.headers : { ...message.headers, [Headers.id]: randomUUID() },
    };
    const delayMs = Math.floor(this.random() * 30);
    const p = new Promise<void>((resolve) => setTimeout(resolve, delayMs))
      .then(() => this.inner.publish(copy))
      .then(() => void this.duplicated++)
      .catch(() => undefined)
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }
  /** Resolves when the copies published so far have been sent. */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }
  override async close(options?: { timeoutMs?: number }): Promise<void> {
    await this.flush();
    return this.inner.close(options);
  }
}

/** Two poison messages for `type`: bytes that are not JSON, and a payload that fails validation. */
export function poisonMessages(type: string, invalidPayload: object): OutgoingMessage[] {
  const headers = (id: string) => ({
    [Headers.specversion]: '1.0',
    [Headers.id]: id,
    [Headers.source]: 'courier-demo-faults',
    [Headers.type]: type,
    [Headers.datacontenttype]: 'application/json',
  });
  return [
    { topic: type, body: Buffer.from('{"orderId": this is not JSON'), headers: headers(`poison-${randomUUID()}`) },
    { topic: type, body: Buffer.from(JSON.stringify(invalidPayload)), headers: headers(`invalid-${randomUUID()}`) },
  ];
}

/**
 * `courier demo --slow Class.method=MS`: the handler of that name (in any group) waits MS ms
 * before each message it is given, a stand-in for a stalled dependency: with the orders still
 * coming, its backlog grows (what the dashboard shows within seconds).
 */
export class SlowHandlerTransport extends TransportWrapper {
  constructor(
    inner: Transport,
    private readonly handler: string,
    private readonly delayMs: number,
  ) {
    super(inner);
  }

  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    if (spec.name !== this.handler) return this.inner.subscribe(spec, handler);
    const ms = this.delayMs;
    return this.inner.subscribe(spec, (d) => new Promise<void>((resolve) => setTimeout(resolve, ms)).then(() => handler(d)));
  }
}
