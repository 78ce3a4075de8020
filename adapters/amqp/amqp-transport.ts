/**
 * The RabbitMQ adapter: Courier's transport contract (lib/transport.ts) over amqplib. A facade
 * over parts with one role each:
 *   connection.ts       connecting, logging in, the reconnect policy
 *   session.ts          one connection and everything that dies with it (channel-provider.ts,
 *                       write-coalescer.ts, the consumers' acks), dropped whole on close
 *   confirm-publisher.ts  the publish window over a confirm channel, kept over reconnects
 *   subscriptions.ts    subscriptions and their deliveries (delivery.ts)
 *   request-reply.ts    requests over direct reply-to, and replies
 *   topology.ts         the queues, arguments and bindings of a subscription, as data
 *   amqp-options.ts     options, their defaults and their validation
 *   amqplib-internals.ts  every reach into amqplib beyond its public API
 *
 * Topology (declared at connect and again after every reconnect; names in docs/wire-format.md):
 *   exchange `courier.events` (durable, topic)  --pattern-->  queue `<group>.<name>` (durable)
 *   `<group>.<name>`  --x-dead-letter (broker's own: delivery limit)-->  `<group>.<name>.dead`
 *   retry(d):  copy -> `<queue>.retry.<d>` (TTL d)  --dead-letter via the default exchange-->  `<queue>` only
 *   deadLetter():  copy with Courier's reason headers -> `<group>.<name>.dead`
 *   broadcast (no group): an exclusive, auto-delete, server-named queue per instance.
 *   instance subscription (no group, an instance): durable `<instance>.<name>` with x-expires,
 *     consumed again after a cut or a restart; dead letters as a broadcast's.
 *
 * Channels: one confirm channel for every publish (and the copies retry / deadLetter make), one
 * channel per subscription (its prefetch, its acks, and a refusal that closes it closes nothing
 * else), one for declarations made on the fly, one for request/reply (direct reply-to needs the
 * request to be published on the channel that consumes the replies), one for replies.
 */
import type { ConfirmChannel } from 'amqplib';
import { SafeEmitter } from '../../lib/adapter-kit';
import { BrokerRefusedError, ConnectionError, NotConnectedError, PublishRejectedError, redactUrl, TransportClosedError } from '../../lib/errors';
import {
  DeliveryHandler,
  HistoryRetention,
  OutgoingMessage,
  PublishOptions,
  ReceivedMessage,
  Subscription,
  SubscriptionSpec,
  Transport,
  TransportCapabilities,
  TransportEvent,
  TransportEvents,
} from '../../lib/transport';
import { checkQueueDepth, sendToSubscriptionQueue } from './amqp-admin';
import type { QueueDepth, QueueKind } from '../../lib/ops/admin';
import { AmqpTransportOptions, resolveOptions, ResolvedAmqpOptions } from './amqp-options';
import { isChannelRefusal, toBrokerError } from './broker-errors';
import { ConfirmPublisher } from './confirm-publisher';
import { Connector, StartAttempt, userOf } from './connection';
import { DeliveryHost } from './delivery';
import { RequestReply } from './request-reply';
import { AmqpSession } from './session';
import { Subscriptions } from './subscriptions';
import { encodeProperties } from './wire';
import { PartitionedSubscription, PartitionHost } from './partitioned';
import { declareHistory, ReplayHost, ReplaySubscription } from './replay';

export class AmqpTransport implements Transport {
  readonly name = 'amqp';
  readonly capabilities: TransportCapabilities;

  private readonly options: ResolvedAmqpOptions;
  /** Never lets a listener's exception into the connection handling; an 'error' nobody listens to is dropped. */
  private readonly events = new SafeEmitter<TransportEvents>();
  private readonly publisher: ConfirmPublisher;
  private readonly connector: Connector;
  private readonly subscriptions: Subscriptions;
  private readonly rr: RequestReply;
  /** The current connection and what dies with it; replaced whole by the next one. */
  private session?: AmqpSession;
  private closing = false;
  private closed = false;
  private closePromise?: Promise<void>;
  /** The message types whose history is kept (retain()), declared on every connection. */
  private readonly histories = new Map<string, HistoryRetention>();
  /** Partitioned and replay subscriptions: closed first at close() (a replay writes its position then). */
  private readonly composite = new Set<Subscription>();

  constructor(options: AmqpTransportOptions) {
    this.options = resolveOptions(options);
    const o = this.options;
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
      maxMessageBytes: o.maxMessageBytes,
      partitions: true,
      replay: true,
    };
    this.publisher = new ConfirmPublisher({
      maxUnconfirmed: o.maxUnconfirmed,
      maxBuffered: o.maxBuffered,
      whileDisconnected: o.whileDisconnected,
      publishTimeoutMs: o.publishTimeoutMs,
      refusal: (err, topic) => toBrokerError(err, { user: this.session?.user, action: `publish ${topic}`, resource: `exchange '${o.exchange}'` }),
    });
    const session = () => this.session;
    const closing = () => this.closing;
    const error = (err: Error) => this.emit('error', err);
    this.connector = new Connector(o, { open: (url, start) => this.open(url, start), closing, error });
    this.rr = new RequestReply({
      exchange: o.exchange,
      whileDisconnected: o.whileDisconnected,
      publisher: this.publisher,
      session,
      closing,
      closed: () => this.closed,
      error,
    });
    const delivery: DeliveryHost = {
      publisher: this.publisher,
      topology: o,
      ensureQueue: (queue) => (this.session ? this.session.ensureQueue(queue) : Promise.reject(new NotConnectedError('Not connected to RabbitMQ'))),
      notifySettled: () => this.subscriptions.notifySettled(),
      sendReply: (replyTo, body, props, topic) => this.rr.sendReply(replyTo, body, props, topic),
      coalesceWrites: () => this.session?.writes.coalesce(),
    };
    this.subscriptions = new Subscriptions({ delivery, session, closing, error });
  }

  // ---- events ---------------------------------------------------------------------------------

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.on(event, listener);
    return this;
  }

  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.off(event, listener);
    return this;
  }

  private emit<E extends TransportEvent>(event: E, ...args: TransportEvents[E]): void {
    this.events.emit(event, ...args);
  }

  // ---- connection -----------------------------------------------------------------------------

  connect(): Promise<void> {
    return this.connector.connect();
  }

  /**
   * One connection: a new session, the publish channel, the exchange, every subscription, then
   * publishing resumes. `start` is given for the first connect(): a refused subscription fails
   * it, where a reconnect reports it.
   */
  private async open(url: string, start?: StartAttempt): Promise<void> {
    const conn = await this.connector.login(url);
    if (start?.abandoned) {
      await conn.close().catch(() => undefined);
      throw new Error('not connected when the start timeout passed');
    }
    const user = userOf(url);
    const session = new AmqpSession(conn, user, {
      topology: { onError: () => undefined }, // reported by the operation that failed
      request: {
        onError: (err) => this.emit('error', toBrokerError(err, { user, action: 'request/reply' })),
        prepare: (ch) => this.rr.consumeReplies(ch),
      },
      reply: { onError: (err) => this.emit('error', toBrokerError(err, { user, action: 'reply' })) },
    });
    conn.on('error', (err: Error) => (session.lastError = err));
    conn.on('close', (err?: Error) => this.onConnectionClosed(session, url, err ?? session.lastError));
    this.session = session;
    if (start) start.socket = session.socket;
    try {
      const pub = await conn.createConfirmChannel();
      this.watchPublishChannel(session, pub, false);
      await session.declareExchange(this.options.exchange, { durable: true });
      for (const [type, retention] of this.histories) await declareHistory(session, this.options.exchange, type, retention);
      await this.subscriptions.attachAll(session, start !== undefined);
      if (this.session !== session) throw new Error('connection lost while declaring the topology');
      if (start?.abandoned) throw new Error('not connected when the start timeout passed');
      session.ready = true;
      this.connector.connected();
      this.publisher.attach(pub);
      this.emit('connected', { url: redactUrl(url) });
      this.rr.resend();
    } catch (err) {
      const lost = session.ended;
      if (this.session === session) this.session = undefined;
      await session.close();
      // A declaration that failed because the connection went (amqplib: "Channel ended, no reply
      // will be forthcoming") was not refused: the next attempt makes it again.
      if (lost && err instanceof BrokerRefusedError && !isChannelRefusal(err.cause)) {
        throw new Error(`connection lost while declaring the topology: ${(err.cause as Error | undefined)?.message ?? err.message}`);
      }
      throw err;
    }
  }

  /** The publish channel: handed to the publisher once connected, replaced while the connection lives. */
  private watchPublishChannel(session: AmqpSession, pub: ConfirmChannel, attachNow: boolean): void {
    let refusal: unknown;
    pub.on('error', (err: Error) => {
      refusal = err;
      this.emit('error', toBrokerError(err, { user: session.user, action: 'publish', resource: `exchange '${this.options.exchange}'` }));
    });
    pub.on('close', () => {
      this.publisher.detach(pub, refusal);
      // The connection closes its channels before it says so itself: wait a turn to learn which it was.
      setImmediate(() => {
        if (this.session !== session || !session.ready || this.closed) return;
        session.conn
          .createConfirmChannel()
          .then((next) => this.watchPublishChannel(session, next, true))
          .catch((err) => this.emit('error', err as Error));
      });
    });
    if (attachNow) this.publisher.attach(pub);
  }

  private onConnectionClosed(session: AmqpSession, url: string, error?: Error): void {
    const wasConnected = session.ready;
    session.end();
    if (this.session !== session) return;
    this.session = undefined;
    if (!wasConnected) return; // open() is still running: it fails and its caller decides what next
    this.emit('disconnected', { url: redactUrl(url), error: error && new ConnectionError(`Connection to ${redactUrl(url)} lost: ${error.message}`, { cause: error }) });
    if (!this.closed) this.connector.reconnectLater();
  }

  // ---- publish --------------------------------------------------------------------------------

  publish(message: OutgoingMessage, options: PublishOptions = {}): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('publish'));
    if (message.body.length > this.options.maxMessageBytes) {
      return Promise.reject(
        new PublishRejectedError(message.topic, `body of ${message.body.length} bytes exceeds maxMessageBytes (${this.options.maxMessageBytes})`),
      );
    }
    const props = encodeProperties(message.headers);
    if (options.mandatory) props.mandatory = true;
    this.session?.writes.coalesce();
    return this.publisher.publish({
      exchange: this.options.exchange,
      routingKey: message.topic,
      content: message.body,
      options: props,
      topic: message.topic,
      timeoutMs: options.timeoutMs,
    });
  }

  // ---- subscribe ------------------------------------------------------------------------------

  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    if (spec.group && (spec.partitions !== undefined || spec.replay !== undefined)) {
      const sub = spec.partitions !== undefined ? new PartitionedSubscription(this.orderedHost(), spec, handler) : new ReplaySubscription(this.orderedHost(), spec, handler);
      this.composite.add(sub);
      return sub.open();
    }
    return this.subscriptions.add(spec, handler, false);
  }

  /** Keeps the history of `type` in its stream (partition-topology.ts), declared now when connected and on every connection. */
  async retain(type: string, retention: HistoryRetention): Promise<void> {
    this.histories.set(type, retention);
    if (this.session?.ready) await declareHistory(this.session, this.options.exchange, type, retention);
  }

  /** What partitioned and replay subscriptions need of the transport (partitioned.ts, replay.ts). */
  private orderedHost(): PartitionHost & ReplayHost {
    return {
      subscriptions: this.subscriptions,
      topology: this.options,
      replayClockMarginMs: this.options.replayClockMarginMs,
      publisher: this.publisher,
      consumerCount: async (queue) => {
        const session = this.session;
        if (!session?.ready) return undefined;
        const ch = await session.channels.get('topology');
        return (await ch.checkQueue(queue)).consumerCount;
      },
      error: (err) => this.emit('error', err),
    };
  }

  subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.subscriptions.add(of, handler, true);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): `message` to the work queue of `of` alone, confirmed (adapters/amqp/amqp-admin.ts). */
  sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('publish'));
    return sendToSubscriptionQueue(this.publisher, of, message);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): the broker's count of a queue of `of` (a passive declare, one round trip). */
  queueDepth(of: SubscriptionSpec, kind?: QueueKind): Promise<QueueDepth | undefined> {
    return checkQueueDepth(this.session?.ready ? this.session.conn : undefined, of, kind);
  }

  // ---- request / reply ------------------------------------------------------------------------

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    return this.rr.request(message, options.timeoutMs);
  }

  // ---- close ----------------------------------------------------------------------------------

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown(options.timeoutMs ?? 5000);
    return this.closePromise;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    // Stop consuming, let the handlers in flight settle, then give back what they did not.
    const deadline = Date.now() + timeoutMs;
    await Promise.all([...this.composite].map((s) => s.close()));
    await this.subscriptions.closeAll(deadline);
    // The copies made by retry() / deadLetter() and plain publishes: each ends by its own timeout at the latest.
    // Unless nothing could ever send them: never connected and not trying to.
    if (this.session || this.connector.trying) await this.publisher.whenIdle();
    this.closed = true;
    this.connector.stop();
    this.rr.rejectAll();
    this.publisher.failAll(new TransportClosedError('publish'));
    const session = this.session;
    this.session = undefined;
    if (session) await session.close();
  }
}

/** `amqpTransport({ url: 'amqp://user:pass@host', ... })`: an unconnected transport; call connect(). */
export function amqpTransport(options: AmqpTransportOptions): AmqpTransport {
  return new AmqpTransport(options);
}
