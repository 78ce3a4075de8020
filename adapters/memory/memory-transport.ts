import {
  DeliveryHandler,
  Headers,
  OutgoingMessage,
  PublishOptions,
  ReceivedMessage,
  ReplyMessage,
  Subscription,
  SubscriptionSpec,
  Transport,
  TransportCapabilities,
  TransportEvents,
  restoreImpliedHeaders,
} from '../../lib/transport';
import { CourierError, PublishRejectedError, TransportClosedError, UnroutableError } from '../../lib/errors';
import { InFlight, LinkedList, SafeEmitter, Wakeup } from '../../lib/adapter-kit';
import { PendingRequest, RequestTable } from '../../lib/pending-table';
import type { SubscriptionAdmin } from '../../lib/ops/admin';
import { Consumer, Held, MemoryBroker, Queue, StoredMessage } from './memory-broker';

export { MemoryBroker } from './memory-broker';
export type { MemoryBrokerOptions } from './memory-broker';

export interface MemoryTransportOptions {
  /**
   * The broker to connect to. Transports given the same broker are clients of one broker
   * (competing consumers, fan-out between them); without one, each transport has its own.
   */
  readonly broker?: MemoryBroker;
  /** Largest body accepted by publish(). Default 16 MiB. */
  readonly maxMessageBytes?: number;
}

/** What publish() returns for a message routed at once. */
const ROUTED: Promise<void> = Promise.resolve();

/** Transport over a {@link MemoryBroker}: no network, the same contract as the broker adapters. */
export class MemoryTransport extends SafeEmitter<TransportEvents> implements Transport, SubscriptionAdmin {
  readonly name = 'memory';
  readonly capabilities: TransportCapabilities;
  private readonly broker: MemoryBroker;
  private readonly consumers = new Set<Consumer>();
  /** Publishes waiting for room in a full queue (MemoryBroker.route). */
  private readonly publishing = new InFlight();
  /** Notified on each settle of a delivery of this transport's consumers. */
  private readonly settled = new Wakeup();
  /** Requests awaiting their reply (the reply comes back through a closure: the ids go unused); one timer for all their timeouts. */
  private readonly pendingRequests = new RequestTable<PendingRequest<ReceivedMessage>>('memory.');
  private closing?: Promise<void>;
  private connected = false;

  constructor(options: MemoryTransportOptions = {}) {
    super();
    this.broker = options.broker ?? new MemoryBroker();
    this.capabilities = {
      durableGroups: true,
      instanceSubscriptions: true,
      competingConsumers: true,
      patterns: true,
      requeue: true,
      delayedRetry: true,
      deadLetter: true,
      requestReply: true,
      weightedConsumers: true,
      confirmedPublish: true,
      mandatory: true,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
    };
  }

  async connect(): Promise<void> {
    if (this.closing) throw new TransportClosedError('connect');
    if (this.connected) return;
    this.connected = true;
    for (const c of this.consumers) this.broker.attach(c);
    this.emit('connected', { url: 'memory://' });
  }

  /** Not an async function: a message routed at once (the common case) costs no promise but the one returned. */
  publish(message: OutgoingMessage, options: PublishOptions = {}): Promise<void> {
    return this.send(message, options);
  }

  private send(message: OutgoingMessage, options: PublishOptions, replyTo?: StoredMessage['replyTo'], expiresAt?: number): Promise<void> {
    try {
      return this.route(this.store(message, replyTo, expiresAt), options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Routes through the broker (MemoryBroker.route) and resolves at the turn of the event loop
   * that is due, if one is (MemoryBroker.turnIfDue); one waiting for room is tracked for close().
   */
  private route(stored: StoredMessage, options: PublishOptions): Promise<void> {
    const routed = this.broker.route(stored);
    if (typeof routed === 'number') {
      if (routed === 0 && options.mandatory) return Promise.reject(new UnroutableError(stored.topic));
      return this.broker.turnIfDue() ?? ROUTED;
    }
    this.publishing.begin();
    return routed.then(
      (queues) => {
        this.publishing.end();
        if (queues === 0 && options.mandatory) throw new UnroutableError(stored.topic);
      },
      (err: unknown) => {
        this.publishing.end();
        throw err;
      },
    );
  }

  /** The broker's copy of a message (its own body and headers); throws when closing or too large. */
  private store(message: OutgoingMessage, replyTo?: StoredMessage['replyTo'], expiresAt?: number): StoredMessage {
    if (this.closing) throw new TransportClosedError();
    if (message.body.length > this.capabilities.maxMessageBytes) {
      throw new PublishRejectedError(message.topic, `message of ${message.body.length} bytes exceeds ${this.capabilities.maxMessageBytes}`);
    }
    const stored: StoredMessage = {
      topic: message.topic,
      body: Buffer.from(message.body),
      headers: { ...message.headers },
      redelivered: false,
      replyTo,
      expiresAt,
    };
    // What the broker adapters restore on receipt (an attempt of 1, the correlation id): handlers
    // see the same headers on every transport.
    restoreImpliedHeaders(stored.headers);
    return stored;
  }

  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.consume(this.broker.queueFor(spec), spec, handler);
  }

  /**
   * The operations' {@link SubscriptionAdmin} capability (lib/ops/admin.ts): puts `message` in the
   * queue of the subscription `of` alone (what a dead-letter replay does). Rejects with
   * CourierError for a broadcast subscription (its queue is its consumer's own).
   */
  async sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
    if (this.closing) throw new TransportClosedError();
    if (!of.group && !of.instance) throw new CourierError(`${of.name} is a broadcast subscription: it has no queue that outlives its consumer`);
    const headers = { ...message.headers };
    restoreImpliedHeaders(headers);
    this.broker.enqueue(this.broker.queueFor(of), { topic: message.topic, body: Buffer.from(message.body), headers, redelivered: false });
  }

  async subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.consume(this.broker.queueFor(of).dead!, of, handler);
  }

  private consume(queue: Queue, spec: SubscriptionSpec, handler: DeliveryHandler): Subscription {
    if (this.closing) throw new TransportClosedError('subscribe');
    const consumer: Consumer = {
      queue,
      spec,
      settled: this.settled,
      prefetch: Math.max(1, spec.prefetch),
      weight: Math.max(1, spec.weight ?? 1),
      handler,
      unacked: new LinkedList<Held>(),
      delivered: 0,
      active: true,
    };
    this.consumers.add(consumer);
    if (this.connected) this.broker.attach(consumer);
    let closed = false;
    return {
      close: async () => {
        if (closed) return;
        closed = true;
        this.consumers.delete(consumer);
        this.broker.detach(consumer);
      },
    };
  }

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    const r = new PendingRequest<ReceivedMessage>(message.topic, options.timeoutMs);
    this.pendingRequests.add(r);
    // Still in the table: not timed out, not answered, not rejected by close.
    const onReply = (reply: ReplyMessage) => {
      if (this.pendingRequests.delete(r)) r.resolve({ topic: reply.headers[Headers.type] ?? message.topic, body: reply.body, headers: reply.headers });
    };
    this.send(message, {}, onReply, Date.now() + options.timeoutMs).catch((err) => {
      if (this.pendingRequests.delete(r)) r.reject(err);
    });
    return r.promise;
  }

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(options.timeoutMs ?? 10_000);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    for (const c of this.consumers) c.active = false;
    const consumers = [...this.consumers];
    await this.settled.until(() => consumers.every((c) => c.unacked.size === 0), timeoutMs);
    for (const c of this.consumers) this.broker.detach(c);
    this.consumers.clear();
    // Bounded too: a publish waiting for room in a full queue that nobody consumes any more would
    // otherwise hold close() for ever.
    await this.publishing.idle(timeoutMs);
    this.pendingRequests.rejectAll(() => new TransportClosedError('wait for a reply'));
    this.connected = false;
    this.emit('disconnected', { url: 'memory://' });
  }
}

/** The embedded default transport. */
export function memoryTransport(options: MemoryTransportOptions = {}): MemoryTransport {
  return new MemoryTransport(options);
}
