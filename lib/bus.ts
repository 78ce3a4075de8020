/**
 * The bus wires decorated handlers and publishers to a transport and applies the one failure
 * policy (docs/failure-policy.md): decode and validate before the handler (a bad message goes to
 * the dead letter at once), ack only after the handler resolved, retry with exponential backoff
 * and jitter up to the handler's attempts, then dead-letter with the error's class and message.
 */
import { EventEmitter } from 'node:events';
import { decode, encode, EnvelopeInput, parseJson, validatePayload } from './codec';
import { currentMessage, MessageContext } from './context';
import type { Envelope } from './envelope';
import type { PublishCallOptions, PublishFunction } from './publish-options';

export type { PublishCallOptions } from './publish-options';
import { DedupeStore, MemoryDedupeStore } from './dedupe';
import { messageMetadata, MessageMetadata, PayloadClass, PayloadShape, publicationsOf } from './decorators';
import {
  BusNotStartedError,
  BusStoppedError,
  CourierError,
  redactSecrets,
  RejectMessageError,
  RemoteHandlerError,
  RequeueMessageError,
  StartupError,
  UnknownMessageTypeError,
} from './errors';
import { BusHealth, HealthError } from './health';
import { Meter, MeteredTransport, MetricsSnapshot, PublishWaiting } from './meter';
import type { BusTracing } from './tracing';
import { optionKeys, unknownKeys } from './option-keys';
import { retryDelay, buildRegistry, HandlerDefinition } from './registry';
import { DeadLetterReason, Delivery, Headers, OutgoingMessage, Subscription, Transport } from './transport';
import { outboxScope } from './outbox/scope';
import { SETTLED_AT_ONCE } from './adapter-kit/settle-once';
import { retainedTypes, stampKey } from './ordering';
import { Discovery, DiscoveryOptions, OnInstanceGone, ServiceInstance } from './discovery/discovery';
import type { BalanceStrategy } from './discovery/balancer';

export interface Logger {
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Warnings and errors to stderr. */
export const consoleLogger: Logger = {
  warn: (m, f) => console.warn(`[courier] ${m}`, f ? JSON.stringify(f) : ''),
  error: (m, f) => console.error(`[courier] ${m}`, f ? JSON.stringify(f) : ''),
};
export const silentLogger: Logger = { warn: () => undefined, error: () => undefined };

export interface BusOptions {
  readonly transport: Transport;
  /** This service's name: the CloudEvents `source`, and the group of handlers that name none. */
  readonly source: string;
  /** Largest message body accepted on either side, checked before parsing. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** How long stop() waits for handlers in flight. Default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /** Default timeout of request(). Default 5 s. */
  readonly requestTimeoutMs?: number;
  /**
   * Skip messages a handler already handled, by envelope id: the id is claimed before the handler
   * runs (for `leaseMs`, default 30 s: a claim of a process that died expires after it; keep it
   * above the handler's longest run), marked done for `ttlMs` (default 24 h) after it succeeded,
   * released when it failed.
   */
  readonly idempotency?: { readonly store?: DedupeStore; readonly ttlMs?: number; readonly leaseMs?: number };
  /** The meter to report to (default: a new one); `false` for none. */
  readonly meter?: Meter | false;
  readonly logger?: Logger;
  /**
   * Carry the message being handled through the handler's async calls (AsyncLocalStorage), so
   * that what it publishes, even from a `@Publish` method, inherits its correlation id and trace and
   * takes its id as causation id. Default true. It costs every promise of the process a hook on
   * Node 20 (about 5 % of CPU at high rates); with false, use `ctx.publish()` for the same links.
   */
  readonly asyncContext?: boolean;
  /**
   * The id of this running instance of the service (`order-1`, a pod's ordinal, a host name that
   * survives restarts), for `@Subscribe(..., { instance: true })` handlers: their queue / session
   * is `<source>.<instanceId>.<Class.method>` and waits across reconnects and restarts of the
   * instance. Must be the same after a restart and differ between instances running at once.
   */
  readonly instanceId?: string;
  /** How long the broker keeps an instance subscription while its instance is away. Default 1 hour. */
  readonly instanceExpiresAfterMs?: number;
  /**
   * Join the registry over the bus itself (docs/discovery.md): announce this instance at start and
   * every heartbeat, keep the table of live instances ({@link Bus.services}, events `join` and
   * `leave`), take balanced requests on its own topic. Default off.
   */
  readonly discovery?: DiscoveryOptions | boolean;
  /**
   * Spans for publishes, deliveries and handler runs: `openTelemetry()` of `courier-bus/otel`
   * (docs/operations.md), or any {@link BusTracing}. Default none (no cost).
   */
  readonly tracing?: BusTracing;
}

const BUS_KEYS = optionKeys<BusOptions>({
  transport: true,
  source: true,
  maxMessageBytes: true,
  shutdownTimeoutMs: true,
  requestTimeoutMs: true,
  idempotency: true,
  meter: true,
  logger: true,
  asyncContext: true,
  instanceId: true,
  instanceExpiresAfterMs: true,
  discovery: true,
  tracing: true,
});

/** What a component is given at start. */
export interface BusComponentHost {
  readonly transport: Transport;
  readonly meter?: Meter;
  readonly logger: Logger;
  /** The bus's `source`. */
  readonly source?: string;
  /** The bus's {@link Bus.instanceId}. */
  readonly instanceId?: string;
}

/**
 * Something that runs with the bus (an outbox relay): started after the transport connected,
 * stopped before it closes. See {@link Bus.attach}.
 */
export interface BusComponent {
  start(host: BusComponentHost): Promise<void>;
  stop(): Promise<void>;
}

export interface RequestOptions<R> {
  readonly timeoutMs?: number;
  /** The reply's payload class; default: the request class's `@Message({ reply })`. */
  readonly reply?: PayloadClass<R>;
  /**
   * Send it to one live instance chosen by this strategy, on that instance's own topic (needs
   * `discovery`); rejects with NoInstanceError when none handles the type. Default: none, the
   * broker's competing consumers of each group.
   */
  readonly balance?: BalanceStrategy;
  /** With `balance`: when the chosen instance leaves before it replied, fail (InstanceGoneError, default) or retry on another. */
  readonly onInstanceGone?: OnInstanceGone;
  /** Extra headers (CloudEvents extensions); the envelope's own attributes cannot be overridden. */
  readonly headers?: Readonly<Record<string, string>>;
  /** W3C trace context of the request (default: that of the message being handled). */
  readonly traceparent?: string;
  readonly tracestate?: string;
}

export interface DeadLetterEvent {
  readonly subscription: string;
  readonly reason: DeadLetterReason;
  readonly errorName?: string;
  readonly errorMessage?: string;
  readonly id?: string;
  readonly type: string;
}

const DEFAULT_DEDUPE_TTL_MS = 24 * 3600_000;
const DEFAULT_DEDUPE_LEASE_MS = 30_000;
/** A copy whose id another holder has claimed polls the store, from the first wait to the longest. */
const BUSY_FIRST_WAIT_MS = 20;
const BUSY_LONGEST_WAIT_MS = 1000;
const DEFAULT_INSTANCE_EXPIRY_MS = 60 * 60_000;
const MANDATORY = Object.freeze({ mandatory: true });
const NOT_MANDATORY = Object.freeze({ mandatory: undefined });

export class Bus extends EventEmitter {
  /** What a handler's MessageContext publishes with: the bus's publish, not the bus. */
  /** ctx.publish: a handler's publish is sent during start() too (see publish()). */
  private readonly publishFromHandler: PublishFunction = (type, payload, options) =>
    this.state === 'starting' ? this.publishNow(type, payload, options) : this.publish(type, payload, options);
  private readonly transport: Transport;
  /** `transport` when it is the meter's wrapper. */
  private readonly metered?: MeteredTransport;
  /** The meter this bus reports to (undefined with `meter: false`): what exporters read (courier-bus/prometheus). */
  readonly meter?: Meter;
  /** This service's name (the `source` option). */
  readonly source: string;
  private readonly tracing?: BusTracing;
  /** Publishes handed to the transport, not yet settled; and what health() reports besides. */
  private readonly waiting = new PublishWaiting();
  private handlerCount = 0;
  private down = 0;
  private everConnected = false;
  private disconnectedAt?: number;
  private lastError?: HealthError;
  private failedStart = false;
  private readonly log: Logger;
  private readonly maxBytes: number;
  private readonly dedupe?: DedupeStore;
  private readonly instances: object[] = [];
  private readonly subscriptions: Subscription[] = [];
  private readonly components: BusComponent[] = [];
  /** `starting` from start() until it resolves (and for good if it failed); `stopping` from stop() on. */
  private state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new';
  private starting?: Promise<void>;
  private stopping?: Promise<void>;
  /** One settle-failure logger per handler (not a closure per message). */
  private readonly settleLoggers = new Map<HandlerDefinition, (err: unknown) => void>();
  private readonly discovery?: Discovery;
  /** Message types whose history the transport was asked to keep (retainHistories). */
  private readonly retained = new Set<string>();

  constructor(private readonly options: BusOptions) {
    super();
    this.source = options.source;
    this.meter = options.meter === false ? undefined : options.meter ?? new Meter();
    this.tracing = options.tracing;
    // The tracing wrapper is the inner one: the meter's publishThen goes through it.
    const base = this.tracing ? this.tracing.wrap(options.transport) : options.transport;
    this.metered = this.meter ? new MeteredTransport(base, this.meter) : undefined;
    this.transport = this.metered ?? base;
    this.watchTransport(options.transport);
    this.log = options.logger ?? consoleLogger;
    this.maxBytes = Math.min(options.maxMessageBytes ?? 1024 * 1024, options.transport.capabilities.maxMessageBytes);
    this.dedupe = options.idempotency ? options.idempotency.store ?? new MemoryDedupeStore() : undefined;
    if (options.discovery) {
      this.discovery = new Discovery(options.discovery === true ? {} : options.discovery, {
        source: options.source,
        instanceId: options.instanceId,
        transportName: options.transport.name,
        instances: this.instances,
        warn: (m, f) => this.log.warn(m, f),
        emit: (event, instance, reason) => this.emit(event, instance, reason),
      });
    }
  }

  /**
   * Adds subscriber and publisher instances. Before start() only. Each `@Publish` method becomes
   * one that publishes what it returns, while the bus runs: called before start() it rejects with
   * BusNotStartedError, after stop() with BusStoppedError, without running the method; called
   * while start() runs it waits for it, unless called from inside a handler (docs/failure-policy.md).
   */
  register(...instances: object[]): this {
    if (this.state !== 'new') throw new CourierError('register() must be called before start()');
    this.instances.push(...instances);
    for (const instance of instances) if (instance !== null && typeof instance === 'object') this.wrapPublishers(instance);
    return this;
  }

  /** Adds a component started with the bus (after connect) and stopped with it (before close). Before start() only. */
  attach(component: BusComponent): this {
    if (this.state !== 'new' || this.starting) throw new CourierError('attach() must be called before start()');
    this.components.push(component);
    return this;
  }

  /** The `instanceId` option, else the id discovery generated; undefined without either. */
  get instanceId(): string | undefined {
    return this.options.instanceId ?? this.discovery?.instanceId;
  }

  /** Checks everything registered (one StartupError listing every problem), subscribes, connects. */
  start(): Promise<void> {
    if (!this.starting) {
      if (this.state === 'new') this.state = 'starting';
      this.starting = this.doStart();
      this.starting.catch(() => (this.failedStart = true));
    }
    return this.starting;
  }

  /** Follows the transport's events for health(). */
  private watchTransport(t: Transport): void {
    t.on('connected', () => {
      this.everConnected = true;
      if (this.down > 0) this.down--;
      if (this.down === 0) this.disconnectedAt = undefined;
    });
    t.on('disconnected', (info) => {
      this.down++;
      this.disconnectedAt ??= Date.now();
      if (info.error) this.noteError(info.error);
    });
    t.on('error', (err) => this.noteError(err));
  }

  private noteError(err: Error): void {
    this.lastError = { name: err.name, message: redactSecrets(err.message).slice(0, 1000), at: new Date().toISOString() };
  }

  /**
   * Readiness and liveness figures (lib/health.ts; `healthHandler(bus)` serves them over HTTP):
   * connected, subscriptions attached, publishes waiting for the broker, the last transport error.
   */
  health(): BusHealth {
    const state = this.failedStart ? 'failed' : this.state;
    const connected = this.everConnected && this.down === 0 && state !== 'stopped';
    const attached = connected && (state === 'started' || state === 'stopping') ? this.subscriptions.length : 0;
    return {
      state,
      ready: state === 'started' && connected && attached === this.handlerCount,
      live: state !== 'failed' && state !== 'stopped',
      connected,
      ...(this.disconnectedAt !== undefined ? { disconnectedSince: new Date(this.disconnectedAt).toISOString() } : {}),
      subscriptions: { expected: this.handlerCount, attached },
      publishesWaiting: this.waiting.count,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Replaces each `@Publish` method of `instance` (the registry checks their metadata at start). */
  private wrapPublishers(instance: object): void {
    const methods = instance as Record<string, (...a: unknown[]) => unknown>;
    for (const pub of publicationsOf(instance.constructor)) {
      const original = methods[pub.method];
      if (typeof original !== 'function') continue;
      const operation = `call ${instance.constructor.name}.${pub.method}`;
      const publishOptions = { mandatory: pub.options.mandatory };
      Object.defineProperty(instance, pub.method, {
        configurable: true,
        writable: true,
        value: async (...args: unknown[]) => {
          // Inside outbox.within() the message goes into the caller's transaction, sent by the relay once the bus runs.
          if (this.state !== 'started' && !outboxScope.getStore() && !this.handlerDuringStart()) await this.whenStarted(operation);
          const value = await original.apply(instance, args);
          const outbox = outboxScope.getStore();
          if (outbox) await outbox.publish(pub.payload as PayloadClass, value, {});
          else await this.publish(pub.payload as PayloadClass, value as never, publishOptions);
          return value;
        },
      });
    }
  }

  /**
   * True while start() runs, inside a handler (the message's async context): the backlog of a
   * resumed MQTT session or an AMQP queue is delivered before start() resolves, and a handler
   * that waited for the start it is part of would hold it up (or deadlock it). A delivery comes
   * only once the transport is connected, so the handler's publishes are sent at once.
   */
  private handlerDuringStart(): boolean {
    return this.state === 'starting' && currentMessage.getStore() !== undefined;
  }

  /**
   * Resolves once the bus runs (waiting for a start() in progress); rejects with
   * BusNotStartedError before start() or after a failed one, with BusStoppedError once stop() was called.
   */
  private async whenStarted(operation: string): Promise<void> {
    if (this.state === 'starting') {
      try {
        await this.starting;
      } catch (err) {
        throw new BusNotStartedError(operation, { cause: err });
      }
    }
    if (this.state === 'started') return;
    if (this.state === 'new') throw new BusNotStartedError(operation);
    throw new BusStoppedError(operation);
  }

  private async doStart(): Promise<void> {
    const problems: string[] = [];
    unknownKeys(this.options, BUS_KEYS, 'createBus', problems);
    if (!this.options.source) problems.push('createBus: source (the service name) is required');
    const registry = buildRegistry({
      instances: this.instances,
      capabilities: this.transport.capabilities,
      defaultGroup: this.options.source,
      hasDedupeStore: !!this.dedupe,
      instance: this.options.instanceId
        ? { id: `${this.options.source}.${this.options.instanceId}`, expiresAfterMs: this.options.instanceExpiresAfterMs ?? DEFAULT_INSTANCE_EXPIRY_MS }
        : undefined,
    });
    problems.push(...registry.problems, ...(this.discovery?.problems() ?? []));
    if (problems.length) throw new StartupError(problems);

    await this.retainHistories();
    this.handlerCount = registry.handlers.length;
    for (const h of registry.handlers) {
      this.subscriptions.push(await this.transport.subscribe(h.spec, (d) => this.handle(h, d)));
    }
    await this.discovery?.subscribe(this.transport, this.options.transport, registry.handlers, (h, d) => this.handle(h, d));
    await this.transport.connect();
    for (const c of this.components) await c.start({ transport: this.transport, meter: this.meter, logger: this.log, source: this.source, instanceId: this.instanceId });
    await this.discovery?.start();
    // Unless stop() was called meanwhile.
    if (this.state === 'starting') this.state = 'started';
  }

  /**
   * Asks the transport to keep the history of every type with `history` that the registered
   * classes publish or handle, before anything is published (docs/scaling.md). A transport
   * without history cannot keep it: said once, not silently.
   */
  private async retainHistories(): Promise<void> {
    for (const [type, history] of retainedTypes(this.instances)) {
      if (this.transport.capabilities.replay && this.transport.retain) await this.transport.retain(type, history);
      else this.log.warn(`${type}: history is not kept: the ${this.transport.name} transport has no message history`);
      this.retained.add(type);
    }
  }

  /**
   * Validates and publishes; resolves once the transport accepted the message. Before start()
   * rejects with BusNotStartedError, once stop() was called with BusStoppedError, sending nothing;
   * while start() runs waits for it, except from inside a handler (its deliveries may arrive
   * during start: a handler's publish is sent at once; docs/failure-policy.md).
   */
  publish<T>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions = {}): Promise<string> {
    if (this.state !== 'started' && !this.handlerDuringStart()) return this.whenStarted('publish').then(() => this.publish(type, payload, options));
    return this.publishNow(type, payload, options);
  }

  /** publish() once the bus may send. */
  private publishNow<T>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions = {}): Promise<string> {
    // Not an async function: while the broker confirms, only the id is held, not the message,
    // the instance and a suspended frame (each publish in flight is retained that long).
    // With the meter on, its count and the id share one reaction (MeteredTransport.publishThen).
    try {
      const meta = this.meta(type);
      if (meta.history !== undefined && !this.retained.has(meta.type)) return this.retainThenPublish(meta, type, payload, options);
      const message = this.encodeWith(meta, type, payload, options);
      const publishOptions = options.mandatory ? MANDATORY : NOT_MANDATORY;
      const metered = this.metered;
      const waiting = this.waiting;
      if (metered !== undefined) return metered.publishThen(message, publishOptions, message.headers[Headers.id], waiting);
      waiting.count++;
      return this.transport.publish(message, publishOptions).then(waiting.resolveTo(message.headers[Headers.id]), waiting.failed);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The first publish of a retained type no registered class names: its history starts before it. */
  private async retainThenPublish<T>(meta: MessageMetadata, type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions): Promise<string> {
    if (this.transport.capabilities.replay && this.transport.retain) await this.transport.retain(meta.type, meta.history!);
    this.retained.add(meta.type);
    return this.publishNow(type, payload, options);
  }

  /** The message publish() would send (validated, in its envelope), without sending it: what an outbox stores. */
  encodeMessage<T>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions = {}): OutgoingMessage {
    return this.encodeWith(this.meta(type), type, payload, options);
  }

  private encodeWith<T>(meta: MessageMetadata, type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions): OutgoingMessage {
    const valid = validatePayload(type, meta.type, payload);
    const message = encode(valid, this.envelope(meta.type, options));
    if (meta.key !== undefined || options.key !== undefined) stampKey(message, meta, valid, options.key);
    return message;
  }

  /** Sends a request and resolves to its validated reply. Outside start() and stop() as publish() does. */
  async request<T, R = unknown>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options: RequestOptions<R> = {}): Promise<R> {
    if (this.state !== 'started') await this.whenStarted('request');
    const meta = this.meta(type);
    const message = encode(validatePayload(type, meta.type, payload), this.envelope(meta.type, options));
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 5000;
    let reply;
    if (options.balance) {
      if (!this.discovery) throw new CourierError('request() with balance needs createBus({ discovery })');
      reply = await this.discovery.request(message, meta.type, { strategy: options.balance, timeoutMs, onInstanceGone: options.onInstanceGone });
    } else reply = await this.transport.request(message, { timeoutMs });
    if (reply.headers[Headers.replyError]) {
      const body = safeParse(reply.body) as { name?: string; message?: string; status?: unknown } | undefined;
      throw new RemoteHandlerError(meta.type, String(body?.name ?? 'Error'), String(body?.message ?? ''), httpStatus(body?.status));
    }
    const { data } = decode(reply, 1, this.maxBytes);
    const replyClass = options.reply ?? (meta.reply as PayloadClass<R> | undefined);
    return (replyClass && data !== null ? validatePayload(replyClass, `${meta.type} reply`, data) : data) as R;
  }

  /** The live instances of every service on the broker, this one included (needs `discovery`). */
  services(): ServiceInstance[] {
    if (!this.discovery) throw new CourierError('services() needs createBus({ discovery })');
    return this.discovery.services();
  }

  /**
   * Resolves to the live instances of `service` once one is known (at once when one is); rejects
   * with NoInstanceError after `timeoutMs` (default 5 s). Needs `discovery`.
   */
  waitForService(service: string, timeoutMs = 5000): Promise<ServiceInstance[]> {
    if (!this.discovery) return Promise.reject(new CourierError('waitForService() needs createBus({ discovery })'));
    return this.discovery.waitForService(service, timeoutMs);
  }

  /** The meter's snapshot: rates, backlog, in-flight and latency per message type and handler. */
  metrics(): MetricsSnapshot {
    if (!this.meter) throw new CourierError('This bus was created with meter: false');
    return this.meter.snapshot();
  }

  /**
   * Takes no new deliveries, waits for handlers in flight (up to shutdownTimeoutMs), waits for
   * pending publishes, closes the transport. Unfinished deliveries go back to their group. Idempotent.
   * From the call on, publish(), request() and `@Publish` methods reject with BusStoppedError.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.state !== 'stopped') this.state = 'stopping';
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      await this.discovery?.stop();
      await Promise.all(this.components.map((c) => c.stop().catch((err) => this.log.error('a component failed to stop', { error: describe(err) }))));
      await this.transport.close({ timeoutMs: options.timeoutMs ?? this.options.shutdownTimeoutMs ?? 10_000 });
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  private meta(type: PayloadClass): MessageMetadata {
    const meta = messageMetadata(type);
    if (!meta) throw new CourierError(`${type?.name ?? type} has no @Message decorator`);
    return meta;
  }

  private envelope(type: string, options: PublishCallOptions): EnvelopeInput {
    const parent = options.causedBy ?? currentMessage.getStore();
    return {
      type,
      source: this.options.source,
      correlationId: options.correlationId ?? parent?.correlationId,
      causationId: parent?.id,
      traceparent: options.traceparent ?? parent?.traceparent,
      tracestate: options.traceparent ? options.tracestate : parent?.tracestate,
      extraHeaders: options.headers,
    };
  }

  /**
   * The delivery handler given to the transport. Resolves once the delivery is settled and never
   * rejects: a failing settle (the broker went away; it redelivers) is logged here.
   *
   * Per message on the common path (no idempotency store): no async function, no await. Decode,
   * validation and the handler call run synchronously; a handler that returns a promise gets one
   * `then`, and a settle that did not complete at once one more (to log its failure). The ack
   * still follows the handler's resolution, never precedes it.
   */
  private handle(h: HandlerDefinition, d: Delivery): Promise<void> {
    try {
      return this.process(h, d) ?? SETTLED_AT_ONCE;
    } catch (err) {
      this.settleFailed(h, err);
      return SETTLED_AT_ONCE;
    }
  }

  /** Logs a settle that failed; the one place such an error ends. */
  private settleFailed(h: HandlerDefinition, err: unknown): void {
    this.log.error(`${h.id}: could not settle a delivery`, { error: redactSecrets(String(err)) });
  }

  /** `p`, with its failure logged: the promise returned never rejects. */
  private guard(h: HandlerDefinition, p: Promise<void>): Promise<void> {
    let onError = this.settleLoggers.get(h);
    if (!onError) this.settleLoggers.set(h, (onError = (err: unknown) => this.settleFailed(h, err)));
    return p.then(undefined, onError);
  }

  /** Undefined when the delivery was settled synchronously, else a promise that never rejects. */
  private process(h: HandlerDefinition, d: Delivery): Promise<void> | undefined {
    const typeHint = d.headers[Headers.type] ?? d.topic;
    const declared = h.classes.get(typeHint);
    let decoded;
    try {
      decoded = decode(d, d.attempt, messageMetadata(declared)?.maxBytes ?? this.maxBytes);
    } catch (err) {
      return this.guard(h, this.deadLetter(h, d, 'malformed', err, typeHint));
    }
    const { envelope, data } = decoded;
    if (h.filter && !h.filter.test(envelope.type)) return this.guard(h, d.ack());
    const cls = h.classes.get(envelope.type);
    if (!cls) return this.guard(h, this.deadLetter(h, d, 'unknown-type', new UnknownMessageTypeError(envelope.type), envelope.type));
    let payload: unknown;
    try {
      payload = validatePayload(cls, envelope.type, data);
    } catch (err) {
      return this.guard(h, this.deadLetter(h, d, 'invalid', err, envelope.type));
    }
    if (h.inbox && !d.replyExpected) return this.guard(h, this.processInbox(h, d, envelope, payload));
    if (h.idempotent && !d.replyExpected) return this.guard(h, this.processIdempotent(h, d, cls, envelope, payload));

    let result: unknown;
    try {
      result = this.call(h, d, envelope, payload);
    } catch (err) {
      return this.guard(h, this.failed(h, d, envelope, err));
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      return Promise.resolve(result as PromiseLike<unknown>).then(
        (value) => this.handled(h, d, cls, envelope, value),
        (err: unknown) => this.guard(h, this.failed(h, d, envelope, err)),
      );
    }
    return this.handled(h, d, cls, envelope, result);
  }

  /** Calls the handler method (inside the message's async context unless that is off). */
  private call(h: HandlerDefinition, d: Delivery, envelope: Envelope, payload: unknown, tx?: unknown): unknown {
    const ctx = new MessageContext(envelope, d.headers, d.redelivered, `${h.spec.group ?? ''}.${h.id}`, d, this.publishFromHandler, tx);
    const method = (h.instance as Record<string, (p: unknown, c: MessageContext) => unknown>)[h.method];
    if (this.tracing) {
      const tracing = this.tracing;
      return tracing.handler(ctx.subscription, envelope, () =>
        this.options.asyncContext === false ? method.call(h.instance, payload, ctx) : currentMessage.run(envelope, () => method.call(h.instance, payload, ctx)),
      );
    }
    return this.options.asyncContext === false
      ? method.call(h.instance, payload, ctx)
      : currentMessage.run(envelope, () => method.call(h.instance, payload, ctx));
  }

  /**
   * The handler resolved: reply if asked for, then ack. Never throws; what it returns never
   * rejects. Undefined when the ack completed at once (SETTLED_AT_ONCE, the adapters' common
   * case): then no promise is made to log a failure that cannot come, and the promise of
   * process() has nothing to adopt.
   */
  private handled(h: HandlerDefinition, d: Delivery, cls: PayloadClass, envelope: Envelope, result: unknown): Promise<void> | undefined {
    try {
      if (d.replyExpected) return this.guard(h, this.replyThenAck(h, d, cls, envelope, result));
      const acked = d.ack();
      return acked === SETTLED_AT_ONCE ? undefined : this.guard(h, acked);
    } catch (err) {
      this.settleFailed(h, err);
      return undefined;
    }
  }

  private async replyThenAck(h: HandlerDefinition, d: Delivery, cls: PayloadClass, envelope: Envelope, result: unknown): Promise<void> {
    try {
      await d.reply(this.replyMessage(cls, result, envelope));
    } catch (err) {
      return this.failed(h, d, envelope, err);
    }
    await d.ack();
  }

  /**
   * With an inbox: the handler runs inside the inbox's transaction (ctx.tx) that also records
   * the message id; a message recorded already is acked without calling the handler.
   */
  private async processInbox(h: HandlerDefinition, d: Delivery, envelope: Envelope, payload: unknown): Promise<void> {
    const consumer = `${h.spec.group ?? ''}.${h.id}`;
    let applied: boolean;
    try {
      applied = await h.inbox!.run(consumer, envelope.id, (tx) => this.call(h, d, envelope, payload, tx));
    } catch (err) {
      return this.failed(h, d, envelope, err);
    }
    this.meter?.inboxHandled(consumer, applied);
    await d.ack();
  }

  /**
   * With an idempotency store: claim the id before the handler, skip (ack) it when done already,
   * mark it done after the handler succeeded, release it when the handler failed. A copy that
   * finds the id claimed by another holder (a duplicate in flight at once) is held and polls until
   * the holder is done (ack) or released it / its lease expired (handle it); given back when the
   * bus stops meanwhile. Never acked blindly: the holder may die before it is done.
   */
  private async processIdempotent(h: HandlerDefinition, d: Delivery, cls: PayloadClass, envelope: Envelope, payload: unknown): Promise<void> {
    const store = this.dedupe!;
    const key = `${h.spec.group ?? ''}/${h.id}/${envelope.id}`;
    const leaseMs = this.options.idempotency?.leaseMs ?? DEFAULT_DEDUPE_LEASE_MS;
    let claim = await store.claim(key, leaseMs);
    for (let waitMs = BUSY_FIRST_WAIT_MS; claim === 'busy'; waitMs = Math.min(2 * waitMs, BUSY_LONGEST_WAIT_MS)) {
      if (this.state !== 'started') return d.requeue();
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      claim = await store.claim(key, leaseMs);
    }
    if (claim === 'done') return d.ack();
    try {
      await this.call(h, d, envelope, payload);
    } catch (err) {
      await store.release(key).catch((e: unknown) => this.log.warn(`${h.id}: could not release the dedupe claim (it expires with its lease)`, { id: envelope.id, error: describe(e) }));
      return this.failed(h, d, envelope, err);
    }
    await store.complete(key, this.options.idempotency?.ttlMs ?? DEFAULT_DEDUPE_TTL_MS);
    await d.ack();
  }

  /** The handler (or its reply) failed: requeue, answer the caller, dead-letter or retry. */
  private async failed(h: HandlerDefinition, d: Delivery, envelope: Envelope, err: unknown): Promise<void> {
    if (err instanceof RequeueMessageError) return d.requeue();
    if (d.replyExpected) {
      // The caller is waiting: answer with the error now rather than retry behind its back.
      await d.reply(errorReply(err, envelope, this.options.source));
      return d.ack();
    }
    if (err instanceof RejectMessageError) return this.deadLetter(h, d, 'rejected', err, envelope.type);
    if (d.attempt >= h.retry.attempts) return this.deadLetter(h, d, 'exhausted', err, envelope.type);
    this.log.warn(`${h.id} failed on attempt ${d.attempt} of ${h.retry.attempts}; retrying`, {
      id: envelope.id,
      error: describe(err),
    });
    return d.retry(retryDelay(h.retry, d.attempt));
  }

  private replyMessage(cls: PayloadClass, result: unknown, envelope: { type: string; id: string; correlationId: string }) {
    const replyClass = messageMetadata(cls)?.reply;
    const data = replyClass && result != null ? validatePayload(replyClass, `${envelope.type} reply`, result) : result;
    const m = encode(data ?? null, {
      type: `${envelope.type}.reply`,
      source: this.options.source,
      correlationId: envelope.correlationId,
      causationId: envelope.id,
    });
    return { body: m.body, headers: m.headers };
  }

  private async deadLetter(h: HandlerDefinition, d: Delivery, reason: DeadLetterReason, err: unknown, type: string): Promise<void> {
    const e = err instanceof Error ? err : new Error(String(err));
    const event: DeadLetterEvent = {
      subscription: `${h.spec.group ?? ''}.${h.id}`,
      reason,
      errorName: e.name,
      errorMessage: redactSecrets(e.message).slice(0, 1000),
      id: d.headers[Headers.id],
      type,
    };
    if (d.replyExpected && (reason === 'malformed' || reason === 'invalid' || reason === 'unknown-type')) {
      await d.reply(errorReply(e, { type, id: event.id ?? '', correlationId: d.headers[Headers.correlationid] ?? '' }, this.options.source));
    }
    this.log.warn(`${h.id}: message dead-lettered (${reason})`, { ...event });
    await d.deadLetter({ reason, errorName: event.errorName, errorMessage: event.errorMessage });
    this.emit('deadLetter', event);
  }
}

/** A new bus; nothing connects until start(). */
export function createBus(options: BusOptions): Bus {
  return new Bus(options);
}

/**
 * The reply to a request whose handler failed: a message of its own like any other (fresh id,
 * `source`, `time`, docs/wire-format.md), tied to the request by `correlationid` and `causationid`,
 * marked by `courierreplyerror`; the body is `{ name, message }` with secrets redacted, and
 * `status` when the error carries an HTTP error status of its own (what a gateway answers).
 */
function errorReply(err: unknown, envelope: { type: string; id: string; correlationId: string }, source: string) {
  const e = err instanceof Error ? err : new Error(String(err));
  const status = httpStatus((e as { status?: unknown }).status);
  const m = encode(
    status === undefined ? { name: e.name, message: redactSecrets(e.message) } : { name: e.name, message: redactSecrets(e.message), status },
    {
      type: `${envelope.type}.reply`,
      source,
      correlationId: envelope.correlationId || envelope.id || undefined,
      causationId: envelope.id || undefined,
      extraHeaders: { [Headers.replyError]: e.name },
    },
  );
  return { body: m.body, headers: m.headers };
}

/** An error's own `status` when it is an HTTP error status (400-599), else undefined. */
function httpStatus(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 599 ? value : undefined;
}

function describe(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  return redactSecrets(`${e.name}: ${e.message}`);
}

function safeParse(body: Buffer): unknown {
  try {
    return parseJson(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

