/**
 * The fleet's figures from its instances' meter snapshots (docs/dashboard.md): what one meter
 * cannot know, since a message is published in one process and consumed in another.
 *
 * - Rates and in-flight: summed over the instances (the 1 s window; time to drain uses 10 s).
 * - A handler is its subscription: a group's handler is one, whatever the number of its
 *   instances (`<group>/<Class.method>`); an instance subscription is one per instance.
 * - Its backlog: the broker's count of its queue plus its in-flight where the broker tells it
 *   (AMQP); else the messages of the types its pattern matches published by the watched
 *   instances, minus those it settled, both counted from when each instance was first seen
 *   (so what was published before the dashboard watched is not counted), at least 0.
 * - Latency p50 / p99: the worst instance's (percentiles do not add up).
 * - Per type: its backlog, time to drain and latency are the worst of the handlers matching it.
 *
 * An instance that leaves keeps what it counted; one whose counters went down (a restart under
 * the same name) is counted anew from there. Types and handlers are capped ({@link MAX_KEYS}).
 */
import type { HandlerMetrics, MetricsSnapshot } from '../meter';
import { matchTopic } from '../topic';

/** One running instance, as a dashboard source knows it. */
export interface InstanceView {
  readonly service: string;
  readonly instance: string;
  readonly transport?: string;
  readonly version?: string;
  readonly startedAt?: string;
  /** Types its `@Publish` methods publish (announced through discovery). */
  readonly publishes?: readonly string[];
  /** Types its handlers accept (announced through discovery). */
  readonly handles?: readonly string[];
  /** Its meter's latest snapshot (none: the instance announces itself but reports no metrics). */
  readonly snapshot?: MetricsSnapshot;
  /** Epoch ms of the latest news of it. */
  readonly seenAt: number;
}

/** The figures charted per type and per handler; null where there is no figure. */
export interface Figures {
  readonly publishRate: number;
  readonly consumeRate: number;
  readonly backlog: number | null;
  readonly inFlight: number;
  readonly timeToDrainMs: number | null;
  readonly p50: number | null;
  readonly p99: number | null;
}

export interface HandlerView extends Figures {
  readonly key: string;
  /** The group, or null for an instance subscription. */
  readonly group: string | null;
  /** `Class.method`. */
  readonly name: string;
  readonly pattern: string | null;
  /** For an instance subscription: `<source>.<instanceId>`. */
  readonly instance: string | null;
  readonly services: readonly string[];
  readonly instances: number;
  readonly failed: number;
  readonly deadLettered: number;
  /** Where the backlog comes from: the broker's count, or the meters'. */
  readonly backlogFrom: 'broker' | 'meters';
}

export interface ServiceView {
  readonly name: string;
  readonly instances: ReadonlyArray<{ readonly id: string; readonly transport: string | null; readonly version: string | null; readonly startedAt: string | null; readonly seenAt: number; readonly reportsMetrics: boolean }>;
}

export interface GraphView {
  readonly types: readonly string[];
  /** Subscribing ends: handler keys. */
  readonly publishers: ReadonlyArray<{ readonly service: string; readonly type: string }>;
  readonly subscribers: ReadonlyArray<{ readonly type: string; readonly handler: string }>;
}

/** What one tick shows. */
export interface FleetFrame {
  readonly at: number;
  readonly services: readonly ServiceView[];
  readonly graph: GraphView;
  readonly types: Readonly<Record<string, Figures>>;
  readonly handlers: Readonly<Record<string, HandlerView>>;
}

/** Most types and handlers the model keeps (a fleet with more shows the first ones). */
export const MAX_KEYS = 2000;

/** Types that are Courier's own traffic, not the services'. */
export function isInternalType(type: string): boolean {
  return type.startsWith('_courier.') || type === 'courier.metrics';
}

interface Counters {
  published: Map<string, number>;
  consumed: Map<string, number>;
}

export class FleetModel {
  /** Per instance: its counters when first seen (or reset), and the latest. */
  private readonly seen = new Map<string, { base: Counters; last: Counters }>();
  /** What instances that left (or restarted) counted while watched. */
  private readonly retired: Counters = { published: new Map(), consumed: new Map() };

  /** The frame of `instances` at `now`. */
  frame(instances: readonly InstanceView[], now: number): FleetFrame {
    const live = new Set<string>();
    const counted: Counters = { published: new Map(), consumed: new Map() };
    const typeSet = new Set<string>();
    const handlerAgg = new Map<string, Agg>();
    const pubRate = new Map<string, number>();
    const pubRate10 = new Map<string, number>();
    const conRate = new Map<string, number>();
    const typeInFlight = new Map<string, number>();
    const publishers = new Set<string>();
    const services = new Map<string, ServiceView['instances'][number][]>();

    for (const inst of instances) {
      const ikey = `${inst.service}\u0000${inst.instance}`;
      live.add(ikey);
      let list = services.get(inst.service);
      if (!list) services.set(inst.service, (list = []));
      list.push({ id: inst.instance, transport: inst.transport ?? null, version: inst.version || null, startedAt: inst.startedAt || null, seenAt: inst.seenAt, reportsMetrics: !!inst.snapshot });
      for (const t of inst.publishes ?? []) if (!isInternalType(t) && this.room(typeSet, t)) publishers.add(`${inst.service}\u0000${t}`);
      for (const t of inst.handles ?? []) if (!isInternalType(t)) this.room(typeSet, t);
      const s = inst.snapshot;
      if (!s) continue;
      const counters = this.count(ikey, s);
      for (const [t, n] of counters.published) add(counted.published, t, n);
      for (const [h, n] of counters.consumed) add(counted.consumed, h, n);
      for (const [t, m] of Object.entries(s.topics)) {
        if (isInternalType(t) || !this.room(typeSet, t)) continue;
        add(pubRate, t, m.publishRate['1s']);
        add(pubRate10, t, m.publishRate['10s']);
        add(conRate, t, m.consumeRate['1s']);
        add(typeInFlight, t, m.inFlight);
        if (m.published > 0) publishers.add(`${inst.service}\u0000${t}`);
      }
      for (const [name, h] of Object.entries(s.handlers)) {
        if (h.pattern !== null && isInternalType(h.pattern)) continue;
        const key = handlerKey(inst, name, h);
        let a = handlerAgg.get(key);
        if (!a) {
          if (handlerAgg.size >= MAX_KEYS) continue;
          handlerAgg.set(key, (a = new Agg(h, name)));
        }
        a.add(inst.service, h, `${ikey}\u0000${name}`);
      }
    }
    // The instances gone since the last frame keep their counts.
    for (const [ikey, c] of this.seen) {
      if (live.has(ikey)) continue;
      this.retire(c);
      this.seen.delete(ikey);
    }
    // A type whose publishers left is still waited for by its handlers.
    for (const [t, n] of this.retired.published) if (n > 0) this.room(typeSet, t);

    const published = new Map<string, number>(this.retired.published);
    const consumed = new Map<string, number>(this.retired.consumed);
    for (const [t, n] of counted.published) add(published, t, n);
    for (const [h, n] of counted.consumed) add(consumed, h, n);
    const types = [...typeSet].sort();
    const handlers: Record<string, HandlerView> = {};
    const subscribers: Array<{ type: string; handler: string }> = [];
    for (const [key, a] of [...handlerAgg].sort(([x], [y]) => (x < y ? -1 : 1))) {
      const matching = a.pattern === null ? [] : types.filter((t) => matchTopic(a.pattern!, t));
      for (const t of matching) subscribers.push({ type: t, handler: key });
      let c = 0;
      for (const ck of a.consumedKeys) c += consumed.get(ck) ?? 0;
      let p = 0;
      let ps10 = 0;
      for (const t of matching) {
        p += published.get(t) ?? 0;
        ps10 += pubRate10.get(t) ?? 0;
      }
      const backlog = a.brokerMessages !== null ? a.brokerMessages + a.inFlight : Math.max(0, p - c);
      const net = a.consumeRate10 - ps10;
      handlers[key] = {
        key,
        group: a.group,
        name: a.name,
        pattern: a.pattern,
        instance: a.instance,
        services: [...a.services].sort(),
        instances: a.instances,
        publishRate: matching.reduce((n, t) => n + (pubRate.get(t) ?? 0), 0),
        consumeRate: a.consumeRate,
        backlog,
        inFlight: a.inFlight,
        timeToDrainMs: backlog === 0 ? 0 : net > 0 ? Math.round((backlog / net) * 1000) : null,
        p50: a.p50,
        p99: a.p99,
        failed: a.failed,
        deadLettered: a.deadLettered,
        backlogFrom: a.brokerMessages !== null ? 'broker' : 'meters',
      };
    }
    const typeFigures: Record<string, Figures> = {};
    for (const t of types) {
      const matching = Object.values(handlers).filter((h) => h.pattern !== null && matchTopic(h.pattern, t));
      let drain: number | null = matching.length ? 0 : null;
      for (const h of matching) drain = drain === null || h.timeToDrainMs === null ? null : Math.max(drain, h.timeToDrainMs);
      typeFigures[t] = {
        publishRate: pubRate.get(t) ?? 0,
        consumeRate: conRate.get(t) ?? 0,
        backlog: matching.length ? Math.max(...matching.map((h) => h.backlog ?? 0)) : null,
        inFlight: typeInFlight.get(t) ?? 0,
        timeToDrainMs: drain,
        p50: maxOf(matching.map((h) => h.p50)),
        p99: maxOf(matching.map((h) => h.p99)),
      };
    }
    return {
      at: now,
      services: [...services].sort(([a], [b]) => a.localeCompare(b)).map(([name, list]) => ({ name, instances: list.sort((a, b) => a.id.localeCompare(b.id)) })),
      graph: {
        types,
        publishers: [...publishers].sort().map((k) => {
          const [service, type] = k.split('\u0000');
          return { service, type };
        }),
        subscribers,
      },
      types: typeFigures,
      handlers,
    };
  }

  private room(set: Set<string>, t: string): boolean {
    if (set.has(t)) return true;
    if (set.size >= MAX_KEYS) return false;
    set.add(t);
    return true;
  }

  /** This instance's counts since it was first seen (its base); a counter that went down starts anew. */
  private count(ikey: string, s: MetricsSnapshot): Counters {
    const now: Counters = { published: new Map(), consumed: new Map() };
    for (const [t, m] of Object.entries(s.topics)) if (!isInternalType(t)) now.published.set(t, m.published);
    for (const [name, h] of Object.entries(s.handlers)) now.consumed.set(name, h.consumed);
    let entry = this.seen.get(ikey);
    const wentDown = entry && ([...entry.last.published].some(([k, v]) => (now.published.get(k) ?? 0) < v) || [...entry.last.consumed].some(([k, v]) => (now.consumed.get(k) ?? 0) < v));
    if (entry && wentDown) {
      this.retire(entry);
      entry = undefined;
    }
    if (!entry) {
      this.seen.set(ikey, (entry = { base: now, last: now }));
      return { published: new Map(), consumed: new Map() };
    }
    entry.last = now;
    const delta: Counters = { published: new Map(), consumed: new Map() };
    for (const [k, v] of now.published) delta.published.set(k, v - (entry.base.published.get(k) ?? 0));
    for (const [k, v] of now.consumed) delta.consumed.set(`${ikey}\u0000${k}`, v - (entry.base.consumed.get(k) ?? 0));
    return delta;
  }

  private retire(c: { base: Counters; last: Counters }): void {
    for (const [k, v] of c.last.published) if (this.retired.published.size < MAX_KEYS || this.retired.published.has(k)) add(this.retired.published, k, v - (c.base.published.get(k) ?? 0));
    // A retired consumer's counts are kept under its handler's name in that instance; they are
    // found again through Agg.consumedKeys only while a live instance of the handler remains,
    // which is enough for a group (its members share the queue) and moot for an instance subscription.
    for (const [k, v] of c.last.consumed) {
      const rk = `retired\u0000${k}`;
      if (this.retired.consumed.size < MAX_KEYS || this.retired.consumed.has(rk)) add(this.retired.consumed, rk, v - (c.base.consumed.get(k) ?? 0));
    }
  }
}

/** Sums a handler over its instances. */
class Agg {
  readonly group: string | null;
  readonly name: string;
  readonly pattern: string | null;
  readonly instance: string | null;
  readonly services = new Set<string>();
  readonly consumedKeys = new Set<string>();
  instances = 0;
  consumeRate = 0;
  consumeRate10 = 0;
  inFlight = 0;
  failed = 0;
  deadLettered = 0;
  p50: number | null = null;
  p99: number | null = null;
  brokerMessages: number | null = null;
  private brokerAt = -1;
  constructor(h: HandlerMetrics, handlerName: string) {
    this.group = h.subscription?.group ?? null;
    this.name = h.subscription?.name ?? handlerName;
    this.pattern = h.pattern;
    this.instance = h.subscription?.instance ?? null;
    // A group's handler that left: its count stays under the handler's name.
    this.consumedKeys.add(`retired\u0000${handlerName}`);
  }
  add(service: string, h: HandlerMetrics, consumedKey: string): void {
    this.services.add(service);
    this.consumedKeys.add(consumedKey);
    this.instances++;
    this.consumeRate += h.consumeRate['1s'];
    this.consumeRate10 += h.consumeRate['10s'];
    this.inFlight += h.inFlight;
    this.failed += h.failed;
    this.deadLettered += h.deadLettered;
    this.p50 = maxOf([this.p50, h.latencyMs.p50]);
    this.p99 = maxOf([this.p99, h.latencyMs.p99]);
    // One queue for the group: the latest reading of it.
    if (h.brokerQueue && h.brokerQueue.at > this.brokerAt) {
      this.brokerAt = h.brokerQueue.at;
      this.brokerMessages = h.brokerQueue.messages;
    }
  }
}

function handlerKey(inst: InstanceView, name: string, h: HandlerMetrics): string {
  const s = h.subscription;
  if (s?.group) return `${s.group}/${s.name}`;
  if (s?.instance) return `${s.instance}/${s.name}`;
  return `${inst.service}.${inst.instance}/${name}`;
}

function add(m: Map<string, number>, k: string, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function maxOf(values: ReadonlyArray<number | null>): number | null {
  let out: number | null = null;
  for (const v of values) if (v !== null && (out === null || v > out)) out = v;
  return out;
}
