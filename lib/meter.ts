/**
 * The throughput meter: a wrapper around any transport (adapters know nothing of it) that counts,
 * per message type and per handler, over sliding windows:
 *   - publish rate Ps and consume rate Pd (messages/s; Pd is the effective throughput);
 *   - backlog growth Ps - Pd (what some write-ups call "throughput": it is how fast the backlog grows);
 *   - backlog (published minus settled, as seen by this process), in-flight, handler latency p50/p99;
 *   - time to drain: backlog / (Pd - Ps) when consumption outpaces publishing, else null (never).
 * The clock is injectable so that tests are exact.
 */
import { RequestTimeoutError } from './errors';
import { Headers, Delivery, DeliveryHandler, OutgoingMessage, PublishOptions, ReceivedMessage, Subscription, SubscriptionSpec, Transport } from './transport';
import { DeliveryWrapper, TransportWrapper } from './transport-wrapper';
import { matchTopic } from './topic';
import { subscriptionAdmin, SubscriptionAdmin } from './ops/admin';

export type Clock = () => number;
/** How a delivery was settled. */
export type Outcome = 'ack' | 'retry' | 'requeue' | 'dead';
export const WINDOWS_S = [1, 10, 60] as const;
const BUCKETS = 60;
const SAMPLES_PER_BUCKET = 256;

/** Per-second buckets over the last minute. */
class Series {
  private readonly counts = new Float64Array(BUCKETS);
  private readonly seconds = new Float64Array(BUCKETS).fill(-1);
  private readonly samples: number[][] = Array.from({ length: BUCKETS }, () => []);
  private readonly seen = new Float64Array(BUCKETS);
  total = 0;

  add(now: number, latencyMs?: number): void {
    const sec = Math.floor(now / 1000);
    const i = sec % BUCKETS;
    if (this.seconds[i] !== sec) {
      this.seconds[i] = sec;
      this.counts[i] = 0;
      this.samples[i] = [];
      this.seen[i] = 0;
    }
    this.counts[i]++;
    this.total++;
    if (latencyMs !== undefined) {
      // Reservoir sampling keeps each bucket's memory fixed at any rate.
      const n = ++this.seen[i];
      if (this.samples[i].length < SAMPLES_PER_BUCKET) this.samples[i].push(latencyMs);
      else {
        const j = Math.floor(Math.random() * n);
        if (j < SAMPLES_PER_BUCKET) this.samples[i][j] = latencyMs;
      }
    }
  }

  /** Events per second over the last `windowS` whole seconds before now (the current one excluded). */
  rate(now: number, windowS: number): number {
    const sec = Math.floor(now / 1000);
    let sum = 0;
    for (let s = sec - windowS; s < sec; s++) {
      const i = ((s % BUCKETS) + BUCKETS) % BUCKETS;
      if (this.seconds[i] === s) sum += this.counts[i];
    }
    return sum / windowS;
  }

  percentiles(now: number, windowS: number): { p50: number | null; p99: number | null } {
    const sec = Math.floor(now / 1000);
    const all: number[] = [];
    for (let s = sec - windowS; s <= sec; s++) {
      const i = ((s % BUCKETS) + BUCKETS) % BUCKETS;
      if (this.seconds[i] === s) all.push(...this.samples[i]);
    }
    if (!all.length) return { p50: null, p99: null };
    all.sort((a, b) => a - b);
    const at = (q: number) => all[Math.min(all.length - 1, Math.ceil(q * all.length) - 1)];
    return { p50: at(0.5), p99: at(0.99) };
  }
}

export type Rates = Record<`${(typeof WINDOWS_S)[number]}s`, number>;

export interface TopicMetrics {
  readonly published: number;
  /** Settles of this type's deliveries, summed over this process's handlers. */
  readonly consumed: number;
  readonly publishRate: Rates;
  /** Settles per second, summed over this process's handlers. */
  readonly consumeRate: Rates;
  /** Ps - Pd per window: positive means the backlog grows. */
  readonly backlogGrowth: Rates;
  /**
   * Published minus settled, as seen by this process (>= 0): the worst of the handlers whose
   * pattern matches the type (a stuck handler shows here however fast the others are); without
   * such a handler, published minus consumed.
   */
  readonly backlog: number;
  /** Per matching handler (`<group>.<Class.method>`): published minus what that handler settled. */
  readonly backlogByHandler: Record<string, number>;
  /** The handler of the worst backlog, or null when no handler of this process matches. */
  readonly worstHandler: string | null;
  readonly inFlight: number;
  /**
   * Over the 10 s window: backlog / (Pd - Ps), or null when it will not drain at this pace; with
   * matching handlers, the longest of theirs (null when one of them does not drain).
   */
  readonly timeToDrainMs: number | null;
}

/** A subscription's queue as the broker counts it (AMQP: a passive declare, at most every `queueDepthEveryMs`). */
export interface BrokerQueueMetrics {
  readonly queue: string;
  /** Messages ready in the queue (delivered and unacked ones not counted). */
  readonly messages: number;
  readonly consumers: number;
  /** When it was read (the meter's clock). */
  readonly at: number;
}

export interface HandlerMetrics {
  /** The handler's pattern (null when unknown: a meter used through {@link Meter.started} alone). */
  readonly pattern: string | null;
  /**
   * The subscription the handler consumes from, as the transport was given it (null when unknown,
   * as `pattern`): its group (null for an instance or broadcast subscription), its name
   * (`Class.method`) and, for an instance subscription, `<source>.<instanceId>`. What an operator
   * needs to reach its dead letters (lib/ops) and what the dashboard groups instances by.
   */
  readonly subscription: { readonly group: string | null; readonly name: string; readonly instance: string | null } | null;
  readonly consumed: number;
  readonly failed: number;
  readonly deadLettered: number;
  readonly inFlight: number;
  readonly consumeRate: Rates;
  /** Messages of the types it matches published in this process, minus those it settled (>= 0, per type). */
  readonly backlog: number;
  /** Over the 10 s window: backlog / (its Pd - the matching Ps); null when it is not draining, 0 when empty. */
  readonly timeToDrainMs: number | null;
  /** The broker's own count of the handler's queue, beside Courier's; null where the transport has none (MQTT, memory). */
  readonly brokerQueue: BrokerQueueMetrics | null;
  /** Delivery to settle, over the last 60 s. */
  readonly latencyMs: { p50: number | null; p99: number | null };
}

/** One outbox table, as its relay (in this process) sees it. */
export interface OutboxMetrics {
  /** Rows committed and not yet published (last refresh: every statsEveryMs). */
  readonly waiting: number;
  /** Age of the oldest of them, ms; null when none. */
  readonly oldestAgeMs: number | null;
  /** Rows given up on (state `dead`). */
  readonly dead: number;
  /** Rows this process's relay published (confirmed). */
  readonly published: number;
  readonly publishRate: Rates;
}

/** One inbox consumer (`<group>.<Class.method>`). */
export interface InboxMetrics {
  /** Messages whose effect was applied (and recorded). */
  readonly applied: number;
  /** Copies skipped: the message was recorded in the inbox already (a duplicate). */
  readonly skippedDuplicates: number;
}

export interface MetricsSnapshot {
  readonly at: number;
  readonly topics: Record<string, TopicMetrics>;
  readonly handlers: Record<string, HandlerMetrics>;
  /** Per outbox table (when an outbox relay reports to this meter). */
  readonly outbox: Record<string, OutboxMetrics>;
  /** Per inbox consumer (handlers with an inbox). */
  readonly inbox: Record<string, InboxMetrics>;
}

/**
 * Told of each event the meter counts, as it happens: what an exporter that keeps its own
 * counters and histograms (courier-bus/prometheus) listens to. Listeners must not throw.
 */
export interface MeterListener {
  /** The transport accepted (with confirms: stored) a message of `topic`, `durationMs` after publish() was called. */
  published?(topic: string, durationMs: number): void;
  /** A delivery of `topic` to `handler` was settled with `outcome`, `durationMs` after it arrived. */
  settled?(topic: string, handler: string, durationMs: number, outcome: Outcome): void;
  /** A request of `topic` ended: a reply (`ok`), an error reply (`error`), a timeout or another failure (`failed`). */
  requested?(topic: string, durationMs: number, outcome: 'ok' | 'error' | 'timeout' | 'failed'): void;
}

/** @internal */
export interface TopicState {
  readonly name: string;
  published: Series;
  consumed: Series;
  inFlight: number;
}
/** @internal One handler's share of one topic: what it settled of it. */
export interface HandlerTopicState {
  readonly topic: TopicState;
  consumed: number;
}
/** @internal */
export interface HandlerState {
  readonly name: string;
  consumed: Series;
  failed: number;
  deadLettered: number;
  inFlight: number;
  pattern?: string;
  subscription?: { readonly group: string | null; readonly name: string; readonly instance: string | null };
  /** Per topic it received. */
  readonly topics: Map<string, HandlerTopicState>;
  brokerQueue?: BrokerQueueMetrics;
}

/** Meter options. */
export interface MeterOptions {
  /**
   * How often a metered transport asks the broker for the depth of each subscription's queue
   * (one passive declare per group queue per interval, on a channel of its own, where the adapter
   * can: AMQP), ms. 0: never. Default 5,000. The polls start at the first {@link Meter.snapshot}
   * (`bus.metrics()`, a Prometheus scrape, a metrics reporter): a bus nobody reads costs nothing.
   */
  readonly queueDepthEveryMs?: number;
}

export class Meter {
  private readonly topics = new Map<string, TopicState>();
  private readonly handlers = new Map<string, HandlerState>();
  private readonly outboxes = new Map<string, { waiting: number; oldestAgeMs: number | null; dead: number; published: Series }>();
  private readonly inboxes = new Map<string, { applied: number; skippedDuplicates: number }>();
  /** @internal Read by MeteredTransport on each publish: empty unless an exporter listens. */
  readonly listeners: MeterListener[] = [];
  /** Resolved {@link MeterOptions}. */
  readonly options: Required<MeterOptions>;
  /** A snapshot has been read: the broker's queue depths are wanted from then on. */
  private queueDepthWanted = false;
  private readonly onQueueDepthWanted: Array<() => void> = [];
  constructor(
    readonly clock: Clock = Date.now,
    options: MeterOptions = {},
  ) {
    this.options = { queueDepthEveryMs: Math.max(0, options.queueDepthEveryMs ?? 5000) };
  }

  /** Adds a listener of every counted event; returns a function that removes it. */
  listen(listener: MeterListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private topic(t: string): TopicState {
    let s = this.topics.get(t);
    if (!s) this.topics.set(t, (s = { name: t, published: new Series(), consumed: new Series(), inFlight: 0 }));
    return s;
  }
  private handler(h: string): HandlerState {
    let s = this.handlers.get(h);
    if (!s) this.handlers.set(h, (s = { name: h, consumed: new Series(), failed: 0, deadLettered: 0, inFlight: 0, topics: new Map() }));
    return s;
  }

  private outbox(name: string) {
    let o = this.outboxes.get(name);
    if (!o) this.outboxes.set(name, (o = { waiting: 0, oldestAgeMs: null, dead: 0, published: new Series() }));
    return o;
  }
  /** An outbox relay published (the broker confirmed) one row of `table`. */
  outboxPublished(table: string): void {
    this.outbox(table).published.add(this.clock());
  }
  /** The relay's latest look at `table`. */
  outboxStats(table: string, stats: { pending: number; oldestPendingMs: number | null; dead: number }): void {
    const o = this.outbox(table);
    o.waiting = stats.pending;
    o.oldestAgeMs = stats.oldestPendingMs;
    o.dead = stats.dead;
  }
  /** A handler with an inbox applied a message (`applied`) or skipped a duplicate. */
  inboxHandled(consumer: string, applied: boolean): void {
    let i = this.inboxes.get(consumer);
    if (!i) this.inboxes.set(consumer, (i = { applied: 0, skippedDuplicates: 0 }));
    if (applied) i.applied++;
    else i.skippedDuplicates++;
  }

  /** A message of `topic` was published; `startedAt` (the clock when publish() was called) times it for listeners. */
  published(topic: string, startedAt?: number): void {
    const now = this.clock();
    this.topic(topic).published.add(now);
    if (this.listeners.length) for (const l of this.listeners) l.published?.(topic, startedAt === undefined ? 0 : now - startedAt);
  }

  /** Call when a delivery reaches a handler; call the returned function when it is settled. */
  started(topic: string, handler: string): (outcome: Outcome) => void {
    const h = this.handler(handler);
    const ht = this.begin(topic, h);
    const start = this.clock();
    let done = false;
    return (outcome) => {
      if (done) return;
      done = true;
      this.ended(ht, h, start, outcome);
    };
  }

  /**
   * @internal The state of a handler, for {@link MeteredTransport} (looked up once per
   * subscription), with its pattern: the types whose backlog it is counted in.
   */
  handlerState(handler: string, pattern?: string, spec?: Pick<SubscriptionSpec, 'group' | 'name' | 'instance'>): HandlerState {
    const h = this.handler(handler);
    if (pattern !== undefined) h.pattern = pattern;
    if (spec !== undefined) h.subscription = { group: spec.group ?? null, name: spec.name, instance: spec.group ? null : spec.instance ?? null };
    return h;
  }

  /** @internal started() without the closure: the caller keeps the state, `h` and the start time. */
  begin(topic: string, h: HandlerState): HandlerTopicState {
    let ht = h.topics.get(topic);
    if (ht === undefined) h.topics.set(topic, (ht = { topic: this.topic(topic), consumed: 0 }));
    ht.topic.inFlight++;
    h.inFlight++;
    return ht;
  }

  /** @internal A delivery begun with begin() (or started()) was settled. */
  ended(ht: HandlerTopicState, h: HandlerState, start: number, outcome: Outcome): void {
    const t = ht.topic;
    t.inFlight--;
    h.inFlight--;
    const now = this.clock();
    if (outcome === 'ack' || outcome === 'dead') {
      t.consumed.add(now);
      ht.consumed++;
      h.consumed.add(now, now - start);
    }
    if (outcome !== 'ack') h.failed++;
    if (outcome === 'dead') h.deadLettered++;
    if (this.listeners.length) for (const l of this.listeners) l.settled?.(t.name, h.name, now - start, outcome);
  }

  /** @internal The broker's latest count of a handler's queue. */
  brokerQueue(handler: string, depth: Omit<BrokerQueueMetrics, 'at'>): void {
    this.handler(handler).brokerQueue = { ...depth, at: this.clock() };
  }

  /**
   * @internal Calls `start` once a snapshot is read (at once if one was): a metered transport polls
   * the broker's queue depths only when someone reads them.
   */
  whenQueueDepthWanted(start: () => void): void {
    if (this.queueDepthWanted) start();
    else this.onQueueDepthWanted.push(start);
  }

  /**
   * Everything counted so far. The first call also starts the broker queue-depth polls
   * ({@link MeterOptions.queueDepthEveryMs}): `brokerQueue` is null until the first poll answered.
   */
  snapshot(): MetricsSnapshot {
    if (!this.queueDepthWanted) {
      this.queueDepthWanted = true;
      for (const start of this.onQueueDepthWanted.splice(0)) start();
    }
    const now = this.clock();
    const rates = (s: Series): Rates => Object.fromEntries(WINDOWS_S.map((w) => [`${w}s`, s.rate(now, w)])) as Rates;
    const drain = (backlog: number, net: number): number | null => (backlog === 0 ? 0 : net > 0 ? Math.round((backlog / net) * 1000) : null);
    // Per handler: the types it matches (its pattern; else those it received), its backlog of each.
    const handlers: Record<string, HandlerMetrics> = {};
    const byTopic = new Map<string, Array<{ handler: string; backlog: number; drainMs: number | null }>>();
    for (const [name, h] of this.handlers) {
      let backlog = 0;
      let publishRate10 = 0;
      const mine: Array<[string, number]> = [];
      for (const [topic, t] of this.topics) {
        const ht = h.topics.get(topic);
        if (h.pattern !== undefined ? !matchTopic(h.pattern, topic) : ht === undefined) continue;
        const b = Math.max(0, t.published.total - (ht?.consumed ?? 0));
        backlog += b;
        publishRate10 += t.published.rate(now, 10);
        mine.push([topic, b]);
      }
      const consumeRate = rates(h.consumed);
      const drainMs = drain(backlog, consumeRate['10s'] - publishRate10);
      for (const [topic, b] of mine) {
        let list = byTopic.get(topic);
        if (!list) byTopic.set(topic, (list = []));
        list.push({ handler: name, backlog: b, drainMs: b === 0 ? 0 : drainMs });
      }
      handlers[name] = {
        pattern: h.pattern ?? null,
        subscription: h.subscription ?? null,
        consumed: h.consumed.total,
        failed: h.failed,
        deadLettered: h.deadLettered,
        inFlight: h.inFlight,
        consumeRate,
        backlog,
        timeToDrainMs: drainMs,
        brokerQueue: h.brokerQueue ? { ...h.brokerQueue } : null,
        latencyMs: h.consumed.percentiles(now, 60),
      };
    }
    const topics: Record<string, TopicMetrics> = {};
    for (const [name, t] of this.topics) {
      const ps = rates(t.published);
      const pd = rates(t.consumed);
      const matching = byTopic.get(name) ?? [];
      const backlogByHandler: Record<string, number> = {};
      let worst: { handler: string; backlog: number } | undefined;
      let drainMs: number | null = 0;
      for (const m of matching) {
        backlogByHandler[m.handler] = m.backlog;
        if (!worst || m.backlog > worst.backlog) worst = m;
        if (drainMs !== null) drainMs = m.drainMs === null ? null : Math.max(drainMs, m.drainMs);
      }
      const backlog = worst ? worst.backlog : Math.max(0, t.published.total - t.consumed.total);
      topics[name] = {
        published: t.published.total,
        consumed: t.consumed.total,
        publishRate: ps,
        consumeRate: pd,
        backlogGrowth: Object.fromEntries(WINDOWS_S.map((w) => [`${w}s`, ps[`${w}s`] - pd[`${w}s`]])) as Rates,
        backlog,
        backlogByHandler,
        worstHandler: worst ? worst.handler : null,
        inFlight: t.inFlight,
        timeToDrainMs: worst ? drainMs : drain(backlog, pd['10s'] - ps['10s']),
      };
    }
    const outbox: Record<string, OutboxMetrics> = {};
    for (const [name, o] of this.outboxes) {
      outbox[name] = { waiting: o.waiting, oldestAgeMs: o.oldestAgeMs, dead: o.dead, published: o.published.total, publishRate: rates(o.published) };
    }
    const inbox: Record<string, InboxMetrics> = {};
    for (const [name, i] of this.inboxes) inbox[name] = { ...i };
    return { at: now, topics, handlers, outbox, inbox };
  }
}

/**
 * A delivery that tells the meter how it was settled; prototype methods, no closures per message
 * (the meter's states and the start time are fields, settled once).
 */
class MeteredDelivery extends DeliveryWrapper {
  private readonly t: HandlerTopicState;
  private readonly start: number;
  private done = false;
  constructor(
    d: Delivery,
    private readonly meter: Meter,
    private readonly h: HandlerState,
  ) {
    super(d);
    this.start = meter.clock();
    this.t = meter.begin(d.topic, h);
  }
  protected override settling(outcome: Outcome): void {
    if (this.done) return;
    this.done = true;
    this.meter.ended(this.t, this.h, this.start, outcome);
  }
}

/**
 * @internal A count of publishes handed to the transport and not yet settled (the bus's health()),
 * kept without a closure per publish: `failed` is bound once.
 */
export class PublishWaiting {
  count = 0;
  readonly failed = (err: unknown): never => {
    this.count--;
    throw err;
  };
  /** A reaction that counts the publish settled and resolves to `value`. */
  resolveTo<T>(value: T): () => T {
    return () => {
      this.count--;
      return value;
    };
  }
}

/** A transport that reports to a {@link Meter}; everything else passes through. */
export class MeteredTransport extends TransportWrapper {
  /** The subscriptions whose queue depth the broker can tell, by handler name. */
  private readonly depths = new Map<string, SubscriptionSpec>();
  private depthTimer?: NodeJS.Timeout;
  private polling = false;
  private closed = false;
  private connectedOnce = false;
  /** A snapshot of the meter was read (Meter.whenQueueDepthWanted): no poll before. */
  private depthWanted = false;
  private admin?: SubscriptionAdmin | null;

  constructor(inner: Transport, readonly meter: Meter) {
    super(inner);
    meter.whenQueueDepthWanted(() => {
      this.depthWanted = true;
      if (this.connectedOnce) this.startDepthPolls();
    });
  }

  override async connect(): Promise<void> {
    await this.inner.connect();
    this.connectedOnce = true;
    this.startDepthPolls();
  }

  override close(options?: { timeoutMs?: number }): Promise<void> {
    this.closed = true;
    if (this.depthTimer) clearInterval(this.depthTimer);
    this.depthTimer = undefined;
    return this.inner.close(options);
  }

  /**
   * Asks the broker for the depth of each group / instance queue, one at a time, every
   * `queueDepthEveryMs` (a poll still running skips a tick), once the transport is connected and
   * the meter read.
   */
  private startDepthPolls(): void {
    const every = this.meter.options.queueDepthEveryMs;
    if (!every || !this.depthWanted || this.depthTimer || this.closed || this.depths.size === 0) return;
    this.admin ??= subscriptionAdmin(this.inner) ?? null;
    const admin = this.admin;
    if (!admin?.queueDepth) return;
    const poll = async () => {
      if (this.polling || this.closed) return;
      this.polling = true;
      try {
        for (const [name, spec] of this.depths) {
          const d = await admin.queueDepth!(spec, 'work').catch(() => undefined);
          if (d) this.meter.brokerQueue(name, d);
        }
      } finally {
        this.polling = false;
      }
    };
    void poll();
    this.depthTimer = setInterval(() => void poll(), every);
    this.depthTimer.unref();
  }
  override publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    // Only the topic is held until the transport resolves, not the message.
    const topic = message.topic;
    const start = this.meter.listeners.length ? this.meter.clock() : undefined;
    return this.inner.publish(message, options).then(() => this.meter.published(topic, start));
  }
  /**
   * @internal publish() resolving to `value` once the transport accepted the message: the bus's
   * publish with one reaction (and one closure) held until the broker confirms, not two.
   */
  publishThen<T>(message: OutgoingMessage, options: PublishOptions | undefined, value: T, waiting?: PublishWaiting): Promise<T> {
    const topic = message.topic;
    const meter = this.meter;
    const start = meter.listeners.length ? meter.clock() : undefined;
    if (waiting === undefined) {
      return this.inner.publish(message, options).then(() => {
        meter.published(topic, start);
        return value;
      });
    }
    waiting.count++;
    return this.inner.publish(message, options).then(() => {
      waiting.count--;
      meter.published(topic, start);
      return value;
    }, waiting.failed);
  }
  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    const name = spec.group ? `${spec.group}.${spec.name}` : spec.name;
    const meter = this.meter;
    const h = meter.handlerState(name, spec.pattern, spec);
    if (spec.group || spec.instance) this.depths.set(name, spec);
    return this.inner.subscribe(spec, (d: Delivery) => handler(new MeteredDelivery(d, meter, h))).then((sub) => {
      // A subscription added once the transport runs: its queue exists now.
      if (this.depthTimer === undefined && this.connectedOnce) this.startDepthPolls();
      if (!this.depths.has(name)) return sub;
      return {
        close: () => {
          this.depths.delete(name);
          return sub.close();
        },
      };
    });
  }
  override request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    const meter = this.meter;
    meter.published(message.topic);
    if (!meter.listeners.length) return this.inner.request(message, options);
    const topic = message.topic;
    const start = meter.clock();
    const tell = (outcome: 'ok' | 'error' | 'timeout' | 'failed') => {
      for (const l of meter.listeners) l.requested?.(topic, meter.clock() - start, outcome);
    };
    return this.inner.request(message, options).then(
      (reply) => {
        tell(reply.headers[Headers.replyError] ? 'error' : 'ok');
        return reply;
      },
      (err: unknown) => {
        tell(err instanceof RequestTimeoutError ? 'timeout' : 'failed');
        throw err;
      },
    );
  }
}
