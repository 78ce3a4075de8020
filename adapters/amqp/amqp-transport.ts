/**
 * The RabbitMQ adapter: Courier's transport contract (lib/transport.ts) over amqplib.
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
 * request to be published on the channel that consumes the replies).
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options, SocketOptions } from 'amqplib';
import {
  AuthenticationError,
  brokerAddress,
  BrokerRefusedError,
  ConnectionError,
  CourierError,
  NotConnectedError,
  PublishRejectedError,
  redactSecrets,
  redactUrl,
  ResourceNotFoundError,
  StartTimeoutError,
  TransportClosedError,
} from '../../lib/errors';
import {
  DeadLetterInfo,
  Delivery,
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
  TransportEvent,
  TransportEvents,
} from '../../lib/transport';
import { PendingRequest, RequestTable } from '../../lib/pending-table';
import { AckBatcher } from './ack-batcher';
import { checkQueueDepth, sendToSubscriptionQueue } from './amqp-admin';
import type { QueueDepth, QueueKind } from '../../lib/ops/admin';
import { AmqpTransportOptions, resolveOptions, ResolvedAmqpOptions } from './amqp-options';
import { isChannelRefusal, toBrokerError } from './broker-errors';
import { ConfirmPublisher } from './confirm-publisher';
import { publishOn } from './direct-publish';
import {
  addBrokerDeathReason,
  decodeAttempt,
  decodeHeaders,
  decodeTopic,
  deadQueueName,
  delayQueueName,
  retryDelayTier,
  encodeProperties,
  instanceQueueName,
  TOPIC_HEADER,
  workQueueName,
} from './wire';

type AmqpLib = typeof import('amqplib');

const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
/** Delay queues expire this long after their last declaration, which always precedes a publish to them. */
const DELAY_QUEUE_GRACE_MS = 10 * 60_000;
/** A declared queue is declared again after this long, which keeps a delay queue from expiring under a publish. */
const REDECLARE_AFTER_MS = 60_000;
/** An instance subscription's queue expires after this long unused when its spec names no grace. */
const INSTANCE_QUEUE_GRACE_MS = 60 * 60_000;

interface SubState {
  readonly spec: SubscriptionSpec;
  readonly handler: DeliveryHandler;
  /** Consumes the dead letters of `spec` rather than its work queue. */
  readonly deadLetters: boolean;
  queue?: string;
  channel?: Channel;
  /** The acks of `channel`. */
  acks?: AckBatcher;
  consumerTag?: string;
  /** Deliveries of `channel` handed to the handler and not yet settled. */
  inflight: number;
  /** Counts the channels this subscription consumed on; a delivery of an earlier one no longer counts as in flight. */
  epoch: number;
  closed: boolean;
  closing?: Promise<void>;
}

/** One attempt of the first connect(): given up (and its connection closed) when the start timeout passes. */
interface StartAttempt {
  abandoned: boolean;
  socket?: CorkableSocket;
}

class AmqpRequest extends PendingRequest<ReceivedMessage> {
  sent = false;
  constructor(
    readonly message: OutgoingMessage,
    timeoutMs: number,
  ) {
    super(message.topic, timeoutMs);
  }
}

export class AmqpTransport implements Transport {
  readonly name = 'amqp';
  readonly capabilities: TransportCapabilities;

  private readonly options: ResolvedAmqpOptions;
  private readonly events = new EventEmitter();
  private readonly publisher: ConfirmPublisher;
  private readonly subs = new Set<SubState>();
  /** Requests awaiting their reply, by correlation id; one timer for all their timeouts. */
  private readonly requests = new RequestTable<AmqpRequest>(`${randomUUID()}.`);

  private lib?: AmqpLib;
  private conn?: ChannelModel;
  private connUser?: string;
  private connected = false;
  private firstConnect?: Promise<void>;
  private urlIndex = 0;
  private reconnectAttempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private topo?: Promise<Channel>;
  private declared = new Map<string, number>();
  private rpc?: Promise<Channel>;
  private rpcDrain?: Promise<void>;
  /** The request/reply channel once it consumes direct reply-to. */
  private rpcOpen?: Channel;
  private replyCh?: Promise<Channel>;
  /** The reply channel once open, for the synchronous path. */
  private replyChOpen?: Channel;
  /** Replies waiting for the reply channel's 'drain'. */
  private replyDrain?: Array<() => void>;
  private readonly host: DeliveryHost;
  private closing = false;
  private closed = false;
  private closePromise?: Promise<void>;
  private settledWaiters: Array<() => void> = [];
  /** The connection's socket, for write coalescing (see coalesceWrites). */
  private socket?: CorkableSocket;
  /** The socket corked by coalesceWrites, until its uncork. */
  private corked?: CorkableSocket;

  constructor(options: AmqpTransportOptions) {
    this.options = resolveOptions(options);
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
      maxMessageBytes: this.options.maxMessageBytes,
    };
    this.publisher = new ConfirmPublisher({
      maxUnconfirmed: this.options.maxUnconfirmed,
      maxBuffered: this.options.maxBuffered,
      whileDisconnected: this.options.whileDisconnected,
      publishTimeoutMs: this.options.publishTimeoutMs,
      refusal: (err, topic) => toBrokerError(err, { user: this.connUser, action: `publish ${topic}`, resource: `exchange '${this.options.exchange}'` }),
    });
    this.host = {
      publisher: this.publisher,
      ensureQueue: (queue, opts) => this.ensureQueue(queue, opts),
      queueArguments: () => this.queueArguments(),
      notifySettled: () => this.notifySettled(),
      sendReply: (replyTo, body, props, topic) => this.sendReply(replyTo, body, props, topic),
      coalesceWrites: () => this.coalesceWrites(),
    };
  }

  // ---- events ---------------------------------------------------------------------------------

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  private emit<E extends TransportEvent>(event: E, ...args: TransportEvents[E]): void {
    // An 'error' nobody listens to must not crash the process (EventEmitter would throw it).
    if (event === 'error' && this.events.listenerCount('error') === 0) return;
    try {
      this.events.emit(event, ...args);
    } catch {
      // A listener's exception is its own; it must not break the connection handling.
    }
  }

  // ---- connection -----------------------------------------------------------------------------

  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('connect'));
    if (!this.firstConnect) {
      this.firstConnect = this.connectFirst().catch((err) => {
        this.firstConnect = undefined;
        throw err;
      });
    }
    return this.firstConnect;
  }

  /**
   * Tries until connected, `startTimeoutMs` passed or `connectAttempts` are used up. What a
   * connection that is refused or lost gives (also lost while the topology is declared) is tried
   * again with the reconnect back-off; a refusal (authentication, a declaration) is thrown at once.
   */
  private async connectFirst(): Promise<void> {
    const { startTimeoutMs, connectAttempts } = this.options;
    const deadline = Date.now() + startTimeoutMs;
    const failures = new Map<string, number>();
    let last: unknown;
    let attempt = 0;
    while (attempt < connectAttempts && (attempt === 0 || Date.now() < deadline)) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(this.backoff(attempt), Math.max(0, deadline - Date.now()))));
      if (this.closing) throw new TransportClosedError('connect');
      if (attempt > 0 && Date.now() >= deadline) break;
      attempt++;
      const url = this.nextUrl();
      try {
        await this.openWithin(url, deadline);
        return;
      } catch (err) {
        if (err instanceof CourierError) throw err; // a refusal: it would be refused again
        last = err;
        const text = `${redactUrl(url)}: ${(err as Error)?.message ?? String(err)}`;
        failures.set(text, (failures.get(text) ?? 0) + 1);
      }
    }
    const listed = [...failures].map(([text, n]) => (n > 1 ? `${text} (${n} times)` : text));
    if (attempt >= connectAttempts) {
      throw new ConnectionError(`Cannot connect to RabbitMQ after ${attempt} attempts: ${listed.join('; ')}`, { cause: last });
    }
    throw new StartTimeoutError(startTimeoutMs, [`${attempt} attempts`, ...listed], { cause: last });
  }

  /** open() of the first connect, given up when `deadline` passes (its connection, if any, closed). */
  private openWithin(url: string, deadline: number): Promise<void> {
    const attempt: StartAttempt = { abandoned: false };
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        attempt.abandoned = true;
        attempt.socket?.destroy?.();
        reject(new Error('not connected when the start timeout passed'));
      }, Math.max(0, deadline - Date.now()));
      this.open(url, attempt).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private nextUrl(): string {
    const urls = this.options.urls;
    return urls[this.urlIndex++ % urls.length];
  }

  /** Exponential backoff with jitter: a cluster's clients do not come back all at the same instant. */
  private backoff(attempt: number): number {
    const { initialDelayMs, maxDelayMs, factor, jitter } = this.options.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * factor ** Math.max(0, attempt - 1));
    return Math.round(base * (1 - jitter * Math.random()));
  }

  private loadLib(): AmqpLib {
    if (!this.lib) {
      try {
        // Loaded here, not at import: an application on MQTT alone does not need amqplib installed.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        this.lib = require('amqplib') as AmqpLib;
      } catch (err) {
        throw new ConnectionError('The AMQP transport needs the "amqplib" package: npm install amqplib', { cause: err });
      }
    }
    return this.lib;
  }

  private socketOptions(): SocketOptions {
    const tls = this.options.tls ?? {};
    const opts: SocketOptions = {
      // amqplib leaves Nagle on; request/reply then stalls on 40 ms delayed ACKs (docs/brokers.md, "Measured while benchmarking").
      noDelay: true,
      timeout: this.options.connectTimeoutMs,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      clientProperties: { connection_name: this.options.connectionName ?? `courier-${process.pid}` },
    };
    if (tls.ca !== undefined) opts.ca = tls.ca as SocketOptions['ca'];
    if (tls.cert !== undefined) opts.cert = tls.cert;
    if (tls.key !== undefined) opts.key = tls.key;
    if (tls.passphrase !== undefined) opts.passphrase = tls.passphrase;
    if (tls.servername !== undefined) opts.servername = tls.servername;
    return opts;
  }

  private withHeartbeat(url: string): string {
    const u = new URL(url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    return u.toString();
  }

  private static userOf(url: string): string {
    try {
      return decodeURIComponent(new URL(url).username) || 'guest';
    } catch {
      return 'unknown';
    }
  }

  /** `amqplib.connect`; a login the broker refused becomes an AuthenticationError. */
  private async login(url: string): Promise<ChannelModel> {
    try {
      return await this.loadLib().connect(this.withHeartbeat(url), this.socketOptions());
    } catch (err) {
      // RabbitMQ closes the handshake with 403 ACCESS_REFUSED (amqplib gives no code, only this text).
      const text = String((err as Error)?.message ?? err);
      const broker = () => brokerAddress(url, /^amqps:/i.test(url) ? 5671 : 5672);
      if (/^Handshake terminated by server: 403\b/.test(text)) {
        throw new AuthenticationError(AmqpTransport.userOf(url), broker(), text.replace(/^Handshake terminated by server: /, ''), { cause: err });
      }
      // RabbitMQ answers connection.open with a close (530 NOT_ALLOWED) for a virtual host that
      // does not exist or that the user may not use; amqplib keeps only this text of it.
      if (/^Expected ConnectionOpenOk; got <ConnectionClose/.test(text)) {
        const vhost = decodeURIComponent(new URL(url).pathname.slice(1)) || '/';
        throw new AuthenticationError(AmqpTransport.userOf(url), broker(), `the broker refused to open virtual host '${vhost}' (it does not exist, or the user may not use it)`, { cause: err });
      }
      throw err;
    }
  }

  /**
   * One connection: channels, exchange, every subscription, then publishing resumes. `start` is
   * given for the first connect(): a refused subscription fails it, where a reconnect reports it.
   */
  private async open(url: string, start?: StartAttempt): Promise<void> {
    const first = start !== undefined;
    const conn = await this.login(url);
    if (start?.abandoned) {
      await conn.close().catch(() => undefined);
      throw new Error('not connected when the start timeout passed');
    }
    let lastError: Error | undefined;
    let lost = false;
    conn.on('error', (err: Error) => (lastError = err));
    conn.on('close', (err?: Error) => {
      lost = true;
      this.onConnectionClosed(conn, url, err ?? lastError);
    });
    this.conn = conn;
    this.socket = socketOf(conn);
    if (start) start.socket = this.socket;
    // amqplib's Mux writes everything its channels queued, frame by frame, as soon as a full
    // socket drains: uncorked, each is a system call. Cork first (this listener runs before the
    // Mux's), so that burst leaves in one writev too.
    this.socket?.prependListener?.('drain', this.coalesceOnDrain);
    this.connUser = AmqpTransport.userOf(url);
    this.declared = new Map();
    try {
      const pub = await conn.createConfirmChannel();
      this.watchPublishChannel(conn, pub, false);
      const topo = await this.topoChannel();
      await topo.assertExchange(this.options.exchange, 'topic', { durable: true }).catch((err) => {
        throw toBrokerError(err, { user: this.connUser, action: 'declare the events exchange', resource: `exchange '${this.options.exchange}'` });
      });
      for (const sub of this.subs) {
        if (sub.closed) continue;
        try {
          await this.attach(sub);
        } catch (err) {
          if (first) throw err;
          this.emit('error', err as Error);
        }
      }
      if (this.conn !== conn) throw new Error('connection lost while declaring the topology');
      if (start?.abandoned) throw new Error('not connected when the start timeout passed');
      this.connected = true;
      this.reconnectAttempt = 0;
      this.publisher.attach(pub);
      this.emit('connected', { url: redactUrl(url) });
      for (const r of this.requests.entries()) this.sendRequest(r);
    } catch (err) {
      if (this.conn === conn) this.conn = undefined;
      this.topo = undefined;
      this.rpc = undefined;
      this.rpcOpen = undefined;
      this.replyCh = undefined;
      this.replyChOpen = undefined;
      await conn.close().catch(() => undefined);
      // A declaration that failed because the connection went (amqplib: "Channel ended, no reply
      // will be forthcoming") was not refused: the next attempt makes it again.
      if (lost && err instanceof BrokerRefusedError && !isChannelRefusal(err.cause)) {
        throw new Error(`connection lost while declaring the topology: ${(err.cause as Error | undefined)?.message ?? err.message}`);
      }
      throw err;
    }
  }

  private watchPublishChannel(conn: ChannelModel, pub: ConfirmChannel, attachNow: boolean): void {
    let refusal: unknown;
    pub.on('error', (err: Error) => {
      refusal = err;
      this.emit('error', toBrokerError(err, { user: this.connUser, action: 'publish', resource: `exchange '${this.options.exchange}'` }));
    });
    pub.on('close', () => {
      this.publisher.detach(pub, refusal);
      // The connection closes its channels before it says so itself: wait a turn to learn which it was.
      setImmediate(() => {
        if (this.conn !== conn || !this.connected || this.closed) return;
        conn
          .createConfirmChannel()
          .then((next) => this.watchPublishChannel(conn, next, true))
          .catch((err) => this.emit('error', err as Error));
      });
    });
    if (attachNow) this.publisher.attach(pub);
  }

  private onConnectionClosed(conn: ChannelModel, url: string, error?: Error): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.topo = undefined;
    this.rpc = undefined;
    this.rpcOpen = undefined;
    this.replyCh = undefined;
    this.replyChOpen = undefined;
    this.releaseReplyDrain();
    const wasConnected = this.connected;
    this.connected = false;
    if (!wasConnected) return; // open() is still running: it fails and its caller decides what next
    this.emit('disconnected', { url: redactUrl(url), error: error && new ConnectionError(`Connection to ${redactUrl(url)} lost: ${error.message}`, { cause: error }) });
    if (!this.closed) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoff(++this.reconnectAttempt);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      // The next URL: after a node is lost, the cluster's next node is tried first.
      this.open(this.nextUrl()).catch((err: unknown) => {
        // Refused logins are said (the password may have changed) and tried again, as any failure.
        if (err instanceof AuthenticationError) this.emit('error', err);
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** A channel for declarations made on the fly; replaced when a refusal closes it. */
  private topoChannel(): Promise<Channel> {
    const conn = this.conn;
    if (!conn) return Promise.reject(new NotConnectedError('Not connected to RabbitMQ'));
    if (!this.topo) {
      const p = conn.createChannel().then((ch) => {
        ch.on('error', () => undefined); // reported by the operation that failed
        ch.on('close', () => {
          if (this.topo === p) this.topo = undefined;
        });
        return ch;
      });
      this.topo = p;
      p.catch(() => {
        if (this.topo === p) this.topo = undefined;
      });
    }
    return this.topo;
  }

  private async ensureQueue(queue: string, options: Options.AssertQueue): Promise<void> {
    const at = this.declared.get(queue);
    if (at !== undefined && Date.now() - at < REDECLARE_AFTER_MS) return;
    const ch = await this.topoChannel();
    try {
      await ch.assertQueue(queue, options);
    } catch (err) {
      throw toBrokerError(err, { user: this.connUser, action: 'declare a queue', resource: `queue '${queue}'` });
    }
    this.declared.set(queue, Date.now());
  }

  // ---- write coalescing -----------------------------------------------------------------------

  /**
   * amqplib writes every frame batch (a publish, an ack) to the socket as its own write: a system
   * call each, a quarter of the CPU of a busy client. Called before Courier writes frames: corks
   * the socket for the rest of this turn of the event loop, so that what is written in it (the
   * acks of a batch of deliveries, a window of publishes) leaves in one writev. The uncork runs in
   * the check phase right after amqplib's own write-out (its Mux flushes in a setImmediate that is
   * queued, through a 'readable' tick, after the write), so nothing waits for another turn.
   */
  private coalesceWrites(): void {
    if (this.corked !== undefined) return;
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return;
    socket.cork();
    this.corked = socket;
    process.nextTick(this.afterWriteTick);
  }

  private readonly coalesceOnDrain = (): void => this.coalesceWrites();

  /** A second tick: queued behind the stream's 'readable' tick of the write that follows coalesceWrites. */
  private readonly afterWriteTick = (): void => {
    process.nextTick(this.scheduleUncork);
  };

  private readonly scheduleUncork = (): void => {
    setImmediate(this.uncork);
  };

  /**
   * The acks asked for in this turn join the corked writes: a server's reply and the request's
   * ack then leave in one write, not two (the ack batcher's own flush, also in this check phase,
   * would come after the uncork). amqplib's mux takes a channel's frames to the socket in a
   * setImmediate scheduled on the stream's 'readable' tick, so when acks were flushed here the
   * uncork waits for that: a tick, then the check phase of the next turn.
   */
  private readonly uncork = (): void => {
    let acked = false;
    for (const sub of this.subs) if (sub.acks?.flush()) acked = true;
    if (acked) process.nextTick(this.releaseAfterMux);
    else this.release();
  };

  private readonly releaseAfterMux = (): void => {
    setImmediate(this.release);
  };

  private readonly release = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };

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
    this.coalesceWrites();
    return this.publisher.publish(this.options.exchange, message.topic, message.body, props, {
      topic: message.topic,
      timeoutMs: options.timeoutMs,
    });
  }

  // ---- subscribe ------------------------------------------------------------------------------

  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addSubscription(spec, handler, false);
  }

  subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addSubscription(of, handler, true);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): `message` to the work queue of `of` alone, confirmed (adapters/amqp/amqp-admin.ts). */
  sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('publish'));
    return sendToSubscriptionQueue(this.publisher, of, message);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): the broker's count of a queue of `of` (a passive declare, one round trip). */
  queueDepth(of: SubscriptionSpec, kind?: QueueKind): Promise<QueueDepth | undefined> {
    return checkQueueDepth(this.connected ? this.conn : undefined, of, kind);
  }

  private async addSubscription(spec: SubscriptionSpec, handler: DeliveryHandler, deadLetters: boolean): Promise<Subscription> {
    if (this.closing) throw new TransportClosedError('subscribe');
    const sub: SubState = { spec, handler, deadLetters, inflight: 0, epoch: 0, closed: false };
    this.subs.add(sub);
    if (this.connected) {
      try {
        await this.attach(sub);
      } catch (err) {
        this.subs.delete(sub);
        throw err;
      }
    }
    return { close: () => this.closeSubscription(sub, 5000) };
  }

  private queueArguments(): Record<string, unknown> {
    return { 'x-queue-type': this.options.queueType };
  }

  /** Declares what the subscription consumes from and returns that queue's name. */
  private async declare(ch: Channel, sub: SubState): Promise<string> {
    const { group, name, pattern, instance } = sub.spec;
    const dead = deadQueueName(group, name);
    const kept = group ?? instance;
    if (kept || sub.deadLetters) {
      await ch.assertQueue(dead, { durable: true, arguments: this.queueArguments() });
      this.declared.set(dead, Date.now());
    }
    if (sub.deadLetters) return dead;
    let queue: string;
    if (kept) {
      queue = group ? workQueueName(group, name) : instanceQueueName(instance!, name);
      const args: Record<string, unknown> = {
        ...this.queueArguments(),
        // What RabbitMQ itself dead-letters (the quorum delivery limit) lands beside Courier's dead letters.
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': dead,
      };
      // A backstop against a crash loop: the bus counts attempts, the broker counts redeliveries.
      if (this.options.queueType === 'quorum') args['x-delivery-limit'] = sub.spec.maxAttempts ?? 20;
      // Not exclusive: it outlives this connection. It goes once unused for the grace period, so
      // an instance that never returns leaks nothing (a changed grace is a PRECONDITION_FAILED).
      if (!group) args['x-expires'] = Math.max(1, Math.round(sub.spec.expiresAfterMs ?? INSTANCE_QUEUE_GRACE_MS));
      await ch.assertQueue(queue, { durable: true, arguments: args });
    } else {
      // Exclusive queues may be transient (RabbitMQ 4.x refuses only transient non-exclusive ones).
      queue = (await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false })).queue;
    }
    await ch.bindQueue(queue, this.options.exchange, pattern);
    return queue;
  }

  private weight(spec: SubscriptionSpec): number {
    const w = spec.weight ?? 1;
    return Number.isFinite(w) && w > 0 ? w : 1;
  }

  private async attach(sub: SubState): Promise<void> {
    const conn = this.conn;
    if (!conn) return;
    const ch = await conn.createChannel();
    let refusal: unknown;
    ch.on('error', (err: Error) => (refusal = err));
    ch.on('close', () => this.onSubscriptionChannelClosed(sub, ch, conn, refusal));
    const { group, name, pattern } = sub.spec;
    const instance = sub.spec.instance;
    const resource = sub.deadLetters
      ? `queue '${deadQueueName(group, name)}'`
      : group
        ? `queue '${workQueueName(group, name)}'`
        : instance
          ? `queue '${instanceQueueName(instance, name)}'`
          : undefined;
    try {
      const queue = await this.declare(ch, sub);
      const weight = this.weight(sub.spec);
      // Weight = prefetch share and consumer priority: on a saturated queue a consumer of weight 3
      // holds three times the deliveries of one of weight 1, and is offered the next message first.
      await ch.prefetch(Math.max(1, Math.round(sub.spec.prefetch * weight)), false);
      sub.queue = queue;
      sub.channel = ch;
      const acks = new AckBatcher(ch);
      sub.acks = acks;
      const { consumerTag } = await ch.consume(queue, (msg) => this.onMessage(sub, ch, acks, msg), {
        noAck: false,
        priority: Math.max(0, Math.round(weight)),
      });
      sub.consumerTag = consumerTag;
    } catch (err) {
      if (sub.channel === ch) sub.channel = undefined;
      ch.close().catch(() => undefined);
      throw toBrokerError(err, { user: this.connUser, action: `subscribe to ${pattern}`, resource });
    }
  }

  private onSubscriptionChannelClosed(sub: SubState, ch: Channel, conn: ChannelModel, refusal: unknown): void {
    if (sub.channel !== ch) return;
    sub.channel = undefined;
    sub.consumerTag = undefined;
    // The broker gives back what this channel held; settles of those deliveries are no-ops now.
    sub.inflight = 0;
    sub.epoch++;
    this.notifySettled();
    if (refusal) this.emit('error', toBrokerError(refusal, { user: this.connUser, action: `consume ${sub.spec.pattern}`, resource: sub.queue && `queue '${sub.queue}'` }));
    // A channel error leaves the connection up: open the subscription's channel again.
    setTimeout(() => {
      if (sub.closed || this.closing || this.conn !== conn || !this.connected || sub.channel) return;
      this.attach(sub).catch((err) => this.emit('error', err as Error));
    }, 1000).unref();
  }

  private onMessage(sub: SubState, ch: Channel, acks: AckBatcher, msg: ConsumeMessage | null): void {
    // Never throw in here: an exception in an amqplib consume callback closes the channel.
    try {
      if (msg === null) {
        // basic.cancel from the broker: the queue was deleted or the node holding it went away.
        if (sub.channel === ch) {
          this.emit('error', new ResourceNotFoundError(`The broker cancelled the consumer of queue '${sub.queue}'`, `queue '${sub.queue}'`, this.connUser));
          ch.close().catch(() => undefined);
        }
        return;
      }
      // Every delivery of the channel, handled or not: a multiple ack never covers one it did not see.
      acks.received(msg);
      if (sub.channel !== ch) return;
      const delivery = new AmqpDelivery(this.host, sub, ch, acks, msg);
      sub.inflight++;
      // Called at once (no extra promise per message); a throw or a rejection both land in handlerFailed.
      let result: unknown;
      try {
        result = sub.handler(delivery);
      } catch (err) {
        this.handlerFailed(delivery, err);
        return;
      }
      if (result !== null && typeof result === 'object' && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(delivery, err));
      }
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  /** The handler should settle its delivery; one that failed without doing so gives it back. */
  private handlerFailed(delivery: Delivery, err: unknown): void {
    this.emit('error', err instanceof Error ? err : new Error(String(err)));
    delivery.requeue().catch(() => undefined);
  }

  // ---- replies --------------------------------------------------------------------------------

  /**
   * A plain channel for replies to direct reply-to. Such a reply is transient and goes to a live
   * consumer or nowhere, so a publisher confirm buys nothing there and would cost the server a
   * broker round trip before it acks each request. Its own channel: a refused reply closes
   * neither a subscription's channel nor the publish channel.
   */
  private replyChannel(): Promise<Channel> {
    const conn = this.conn;
    if (!conn) return Promise.reject(new NotConnectedError('Not connected to RabbitMQ'));
    if (!this.replyCh) {
      const p = conn.createChannel().then((ch) => {
        ch.on('error', (err: Error) => this.emit('error', toBrokerError(err, { user: this.connUser, action: 'reply' })));
        ch.on('close', () => {
          if (this.replyCh === p) {
            this.replyCh = undefined;
            this.replyChOpen = undefined;
          }
          this.releaseReplyDrain();
        });
        ch.on('drain', () => this.releaseReplyDrain());
        if (this.replyCh === p) this.replyChOpen = ch;
        return ch;
      });
      this.replyCh = p;
      p.catch(() => {
        if (this.replyCh === p) this.replyCh = undefined;
      });
    }
    return this.replyCh;
  }

  private releaseReplyDrain(): void {
    const waiters = this.replyDrain;
    if (!waiters) return;
    this.replyDrain = undefined;
    for (const w of waiters) w();
  }

  /**
   * Sends a reply. To direct reply-to: on the plain reply channel, resolved once written (after a
   * 'drain' when the channel's buffer is full), so the request's ack follows right after, as a
   * hand-written amqplib server does. To an ordinary queue (a foreign requester's own reply
   * queue): through the confirm publisher, as any stored message.
   */
  private async sendReply(replyTo: string, body: Buffer, props: Options.Publish, topic: string): Promise<void> {
    if (!replyTo.startsWith(DIRECT_REPLY_TO)) {
      await this.publisher.publish('', replyTo, body, props, { topic: `${topic} (reply)` });
      return;
    }
    if (this.closed) throw new TransportClosedError('reply');
    let ch = this.replyChOpen;
    if (!ch) ch = await this.replyChannel();
    while (this.replyDrain) await new Promise<void>((resolve) => this.replyDrain!.push(resolve));
    this.coalesceWrites();
    if (!publishOn(ch, '', replyTo, body, props)) {
      // Written, but the channel's buffer is full: hold this reply (and the request's ack) until it drains.
      await new Promise<void>((resolve) => (this.replyDrain ??= []).push(resolve));
    }
  }

  private async closeSubscription(sub: SubState, timeoutMs: number): Promise<void> {
    if (!sub.closing) {
      sub.closing = (async () => {
        sub.closed = true;
        const ch = sub.channel;
        if (ch && sub.consumerTag) await ch.cancel(sub.consumerTag).catch(() => undefined);
        await this.waitSettled(() => sub.inflight === 0, timeoutMs);
        sub.channel = undefined;
        sub.acks?.flush(); // the acks of the last turn, before the channel goes
        // Closing the channel gives back what it still holds; an auto-delete broadcast queue goes with it.
        if (ch) await ch.close().catch(() => undefined);
        this.subs.delete(sub);
      })();
    }
    return sub.closing;
  }

  private notifySettled(): void {
    if (this.settledWaiters.length === 0) return;
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const w of waiters) w();
  }

  private async waitSettled(done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.settledWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  // ---- request / reply ------------------------------------------------------------------------

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    if (this.closing) return Promise.reject(new TransportClosedError('request'));
    if (!this.connected && this.options.whileDisconnected === 'reject') {
      return Promise.reject(new NotConnectedError(`Not connected: request ${message.topic} refused (whileDisconnected: 'reject')`));
    }
    const r = new AmqpRequest(message, options.timeoutMs);
    this.requests.add(r);
    this.sendRequest(r);
    return r.promise;
  }

  /** Direct reply-to: the replies come back on the channel that published the requests, without a queue. */
  private rpcChannel(): Promise<Channel> {
    const conn = this.conn;
    if (!conn) return Promise.reject(new NotConnectedError('Not connected to RabbitMQ'));
    if (!this.rpc) {
      const p = (async () => {
        const ch = await conn.createChannel();
        ch.on('error', (err: Error) => this.emit('error', toBrokerError(err, { user: this.connUser, action: 'request/reply' })));
        ch.on('close', () => {
          if (this.rpc === p) {
            this.rpc = undefined;
            this.rpcOpen = undefined;
          }
        });
        await ch.consume(DIRECT_REPLY_TO, (msg) => this.onReply(msg), { noAck: true });
        return ch;
      })();
      this.rpc = p;
      p.then(
        (ch) => {
          if (this.rpc === p) this.rpcOpen = ch;
        },
        () => {
          if (this.rpc === p) this.rpc = undefined;
        },
      );
    }
    return this.rpc;
  }

  /** Writes the request now when the channel is open and not full (no promise, no turn of the event loop), else once it is. */
  private sendRequest(r: AmqpRequest): void {
    if (r.sent || !this.connected) return; // sent on the next 'connected'
    const ch = this.rpcOpen;
    if (ch && !this.rpcDrain) this.writeRequest(ch, r);
    else void this.sendRequestLater(r);
  }

  private async sendRequestLater(r: AmqpRequest): Promise<void> {
    try {
      const ch = this.rpcOpen ?? (await this.rpcChannel());
      while (this.rpcDrain) await this.rpcDrain;
      if (this.requests.get(r.id) !== r || r.sent) return;
      this.writeRequest(ch, r);
    } catch {
      r.sent = false; // the connection went; 'connected' sends it again
    }
  }

  private writeRequest(ch: Channel, r: AmqpRequest): void {
    try {
      const props = encodeProperties(r.message.headers);
      props.correlationId = r.id;
      props.replyTo = DIRECT_REPLY_TO;
      // A request nobody took before its caller gave up is of no use to anyone.
      props.expiration = String(r.timeoutMs);
      r.sent = true;
      this.coalesceWrites();
      if (!publishOn(ch, this.options.exchange, r.message.topic, r.message.body, props)) {
        this.rpcDrain = new Promise((resolve) =>
          ch.once('drain', () => {
            this.rpcDrain = undefined;
            resolve();
          }),
        );
      }
    } catch {
      r.sent = false; // the connection went; 'connected' sends it again
    }
  }

  private onReply(msg: ConsumeMessage | null): void {
    try {
      if (!msg) return;
      const r = this.requests.get(msg.properties.correlationId);
      if (!r) return; // late: its caller timed out already
      this.requests.delete(r);
      const headers = decodeHeaders(msg.properties);
      r.resolve({ topic: headers[Headers.type] ?? msg.fields.routingKey, body: msg.content, headers });
    } catch (err) {
      this.emit('error', err as Error);
    }
  }

  // ---- close ----------------------------------------------------------------------------------

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.closePromise) this.closePromise = this.shutdown(options.timeoutMs ?? 5000);
    return this.closePromise;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + timeoutMs;
    // Stop consuming, let the handlers in flight settle, then give back what they did not.
    await Promise.all([...this.subs].map((s) => this.closeSubscription(s, Math.max(0, deadline - Date.now()))));
    // The copies made by retry() / deadLetter() and plain publishes: each ends by its own timeout at the latest.
    // Unless nothing could ever send them: never connected and not trying to.
    if (this.conn || this.reconnectTimer || this.firstConnect) await this.publisher.whenIdle();
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.requests.rejectAll(() => new TransportClosedError('wait for a reply'));
    this.publisher.failAll(new TransportClosedError('publish'));
    const conn = this.conn;
    this.conn = undefined;
    this.connected = false;
    if (conn) await conn.close().catch(() => undefined);
  }
}

/** What a delivery needs from its transport (one object per transport, not per message). */
interface DeliveryHost {
  readonly publisher: ConfirmPublisher;
  ensureQueue(queue: string, options: Options.AssertQueue): Promise<void>;
  queueArguments(): Record<string, unknown>;
  notifySettled(): void;
  sendReply(replyTo: string, body: Buffer, props: Options.Publish, topic: string): Promise<void>;
  coalesceWrites(): void;
}

interface CorkableSocket {
  cork(): void;
  uncork(): void;
  destroy?(): void;
  readonly destroyed?: boolean;
  prependListener?(event: 'drain', listener: () => void): unknown;
}

/** The socket under an amqplib connection (amqplib keeps it as `connection.stream`), if it can be corked. */
function socketOf(conn: ChannelModel): CorkableSocket | undefined {
  const stream = (conn as unknown as { connection?: { stream?: Partial<CorkableSocket> } }).connection?.stream;
  return stream && typeof stream.cork === 'function' && typeof stream.uncork === 'function' ? (stream as CorkableSocket) : undefined;
}

const OPEN = 0;
const SETTLING = 1;
const DONE = 2;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * One delivery of a subscription. A class with its methods on the prototype: per message one
 * object, not one object and a dozen closures.
 */
class AmqpDelivery implements Delivery {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly replyExpected: boolean;
  readonly raw: ConsumeMessage;
  readonly #host: DeliveryHost;
  readonly #sub: SubState;
  readonly #ch: Channel;
  readonly #acks: AckBatcher;
  /** The subscription's epoch when this was delivered. */
  readonly #epoch: number;
  #state: number = OPEN;

  constructor(host: DeliveryHost, sub: SubState, ch: Channel, acks: AckBatcher, msg: ConsumeMessage) {
    const props = msg.properties;
    const headers = decodeHeaders(props);
    if (sub.deadLetters) addBrokerDeathReason(headers, props);
    this.topic = decodeTopic(props, msg.fields.routingKey);
    this.body = msg.content;
    this.headers = headers;
    this.attempt = decodeAttempt(headers);
    this.redelivered = msg.fields.redelivered;
    this.replyExpected = !!props.replyTo;
    this.raw = msg;
    this.#host = host;
    this.#sub = sub;
    this.#ch = ch;
    this.#acks = acks;
    this.#epoch = sub.epoch;
  }

  ack(): Promise<void> {
    if (this.#state === OPEN) this.#settle(true);
    return RESOLVED;
  }

  requeue(): Promise<void> {
    if (this.#state === OPEN) this.#settle(false);
    return RESOLVED;
  }

  async retry(delayMs: number): Promise<void> {
    if (this.#state !== OPEN) return;
    const delay = retryDelayTier(delayMs);
    const base = this.#sub.queue!;
    const queue = delayQueueName(base, delay);
    this.#state = SETTLING;
    try {
      await this.#host.ensureQueue(queue, {
        durable: true,
        arguments: {
          'x-queue-type': 'classic',
          'x-message-ttl': delay,
          // Back to this subscription's queue only, through the default exchange.
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': base,
          'x-expires': delay + DELAY_QUEUE_GRACE_MS,
        },
      });
    } catch (err) {
      this.#settle(false);
      throw err;
    }
    this.#state = OPEN;
    await this.#moveTo(queue, { ...this.headers, [Headers.attempt]: String(this.attempt + 1) });
  }

  async deadLetter(info: DeadLetterInfo): Promise<void> {
    if (this.#state !== OPEN) return;
    const sub = this.#sub;
    const { group, name } = sub.spec;
    const queue = sub.deadLetters ? sub.queue! : deadQueueName(group, name);
    if (!group && !sub.deadLetters) {
      this.#state = SETTLING;
      try {
        await this.#host.ensureQueue(queue, { durable: true, arguments: this.#host.queueArguments() });
      } catch (err) {
        this.#settle(false);
        throw err;
      }
      this.#state = OPEN;
    }
    const dead: Record<string, string> = {
      ...this.headers,
      [Headers.deadReason]: info.reason,
      [Headers.deadQueue]: group ? `${group}/${name}` : name,
      [Headers.deadTime]: new Date().toISOString(),
      // The count this delivery was handled with: a message from a plain AMQP client has no
      // attempt header of its own, and its dead letter must still say how often it was tried.
      [Headers.attempt]: String(this.attempt),
    };
    if (info.errorName !== undefined) dead[Headers.deadError] = info.errorName;
    else delete dead[Headers.deadError];
    if (info.errorMessage !== undefined) dead[Headers.deadMessage] = redactSecrets(info.errorMessage);
    else delete dead[Headers.deadMessage];
    await this.#moveTo(queue, dead);
  }

  async reply(message: ReplyMessage): Promise<void> {
    const msg = this.raw;
    const replyTo = msg.properties.replyTo as string | undefined;
    if (!replyTo) throw new CourierError(`Cannot reply to ${this.topic}: the sender expects no reply`);
    const props = encodeProperties(message.headers);
    props.correlationId = msg.properties.correlationId;
    props.persistent = false;
    await this.#host.sendReply(replyTo, message.body, props, this.topic);
  }

  /**
   * Acks go to the channel the delivery came from, and only while it lives: after a reconnect
   * the broker has given the message back already ("unknown delivery tag" otherwise). They leave
   * at the end of the turn, coalesced by the channel's AckBatcher; a nack leaves at once.
   */
  #settle(ack: boolean): void {
    if (this.#sub.channel === this.#ch) {
      try {
        if (ack) this.#acks.ack(this.raw);
        else {
          this.#host.coalesceWrites();
          this.#ch.nack(this.raw, false, true);
          this.#acks.settledOtherwise(this.raw);
        }
      } catch {
        // The channel closed under us: the broker redelivers it.
      }
    }
    this.#state = DONE;
    if (this.#sub.epoch === this.#epoch) {
      this.#sub.inflight--;
      this.#host.notifySettled();
    }
  }

  /** Stores a copy (confirmed) in `queue`, then acks the original: never lost in between. */
  async #moveTo(queue: string, copyHeaders: Record<string, string>): Promise<void> {
    if (this.#state !== OPEN) return;
    this.#state = SETTLING;
    try {
      const props = encodeProperties(copyHeaders, { [TOPIC_HEADER]: this.topic });
      await this.#host.publisher.publish('', queue, this.raw.content, props, { topic: this.topic });
    } catch (err) {
      this.#settle(false);
      throw err;
    }
    this.#settle(true);
  }
}

/** `amqpTransport({ url: 'amqp://user:pass@host', ... })`: an unconnected transport; call connect(). */
export function amqpTransport(options: AmqpTransportOptions): AmqpTransport {
  return new AmqpTransport(options);
}
