/**
 * The registry over the bus itself (docs/discovery.md): each bus with `discovery` announces who it
 * is at start and every heartbeat, says goodbye at stop, and keeps the table of the live instances
 * it hears of; an instance that stops sending heartbeats is dropped after its TTL. Balanced
 * requests go to one chosen instance's own topic. The bus owns one Discovery; nothing here knows
 * an adapter.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { decode, encode } from '../codec';
import { messageMetadata, publicationsOf } from '../decorators';
import { redactSecrets, RequestTimeoutError } from '../errors';
import type { HandlerDefinition } from '../registry';
import type { Delivery, OutgoingMessage, ReceivedMessage, Subscription, Transport } from '../transport';
import { Balancer, BalanceStrategy } from './balancer';
import { InstanceGoneError, LeaveReason, NoInstanceError } from './errors';
import { canTakeOverSessions, TakeoverOptions } from '../session-takeover';
import { sessionsToTakeOver } from './takeover';
import { directTopic, parseAnnouncement, PresenceAnnouncement, PresenceTypes, PRESENCE_PATTERN, segmentProblems } from './presence';

/** `createBus({ discovery })`. Every field is optional. */
export interface DiscoveryOptions {
  /** The service's version, announced as is. Default `''`. */
  readonly version?: string;
  /** Share of `weighted` balanced requests this instance takes (> 0). Default 1. */
  readonly weight?: number;
  /** Interval of heartbeats, ms. Default 5000. */
  readonly heartbeatMs?: number;
  /**
   * How long others keep this instance without a heartbeat, ms (> heartbeatMs). Default 3 heartbeats.
   * A SIGKILLed instance leaves every table within ttlMs plus the observer's sweep interval
   * (a quarter of the shortest TTL it knows, at most 1 s).
   */
  readonly ttlMs?: number;
  /** False: only listen (list and balance over others); announce nothing and take no direct requests. Default true. */
  readonly announce?: boolean;
  /** Labels announced with the instance (zone, host). */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * On a transport that can take sessions over (MQTT): when a member of one of this instance's
   * groups expires, the first live member (by service/instance id) drains the persistent session
   * it left and deletes it (lib/discovery/takeover.ts). `false`: leave such sessions to their
   * member's return. Default true; an object sets the take-over's bounds.
   */
  readonly takeover?: boolean | TakeoverOptions;
}

/** A live instance, as this bus knows it. */
export interface ServiceInstance extends PresenceAnnouncement {
  /** True for this bus itself. */
  readonly self: boolean;
  /** Epoch ms of its last hello, by this process's clock. */
  readonly lastSeen: number;
  /** Moving average of this bus's balanced round trips to it, ms; undefined before the first. */
  readonly latencyMs?: number;
}

/** What a balanced request does when its instance leaves before it replied. */
export type OnInstanceGone = 'fail' | 'retry';

export interface BalancedRequestOptions {
  readonly strategy: BalanceStrategy;
  readonly timeoutMs: number;
  /** Default `fail`: reject with InstanceGoneError. `retry`: send it (same id) to another live instance, within the same timeout. */
  readonly onInstanceGone?: OnInstanceGone;
}

/** What the bus hands to its discovery. */
export interface DiscoveryHost {
  readonly source: string;
  readonly instanceId?: string;
  readonly transportName: string;
  readonly instances: readonly object[];
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  readonly emit: (event: 'join' | 'leave', instance: ServiceInstance, reason?: LeaveReason) => void;
}

interface Entry {
  info: PresenceAnnouncement;
  lastSeen: number;
  /** Rejecters of the balanced requests in flight to it. */
  inFlight: Set<(reason: LeaveReason) => void>;
}

const DEFAULT_HEARTBEAT_MS = 5000;
const MAX_SWEEP_MS = 1000;
const MAX_TABLE = 10_000;

export class Discovery {
  readonly heartbeatMs: number;
  readonly ttlMs: number;
  readonly instanceId: string;
  private readonly announcing: boolean;
  private readonly nonce = randomBytes(8).toString('hex');
  private readonly startedAt = new Date().toISOString();
  private readonly table = new Map<string, Entry>();
  private readonly balancer = new Balancer();
  private readonly subscriptions: Subscription[] = [];
  private handles: string[] = [];
  private heartbeat?: NodeJS.Timeout;
  private sweeper?: NodeJS.Timeout;
  private sweepMs = MAX_SWEEP_MS;
  private transport?: Transport;
  private running = false;

  constructor(private readonly options: DiscoveryOptions, private readonly host: DiscoveryHost) {
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.ttlMs = options.ttlMs ?? 3 * this.heartbeatMs;
    this.announcing = options.announce !== false;
    this.instanceId = host.instanceId ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-${randomBytes(4).toString('hex')}`;
  }

  /** Problems with the options, for the bus's StartupError. */
  problems(): string[] {
    const p: string[] = [];
    const o = this.options as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['version', 'weight', 'heartbeatMs', 'ttlMs', 'announce', 'metadata', 'takeover'].includes(k)) p.push(`discovery: unknown option "${k}"`);
    if (!(this.heartbeatMs >= 10)) p.push('discovery: heartbeatMs must be at least 10');
    if (!(this.ttlMs > this.heartbeatMs)) p.push('discovery: ttlMs must exceed heartbeatMs');
    if (this.options.weight !== undefined && !(this.options.weight > 0 && Number.isFinite(this.options.weight))) p.push('discovery: weight must be a positive number');
    if (this.announcing) p.push(...segmentProblems('source', this.host.source), ...segmentProblems('instanceId', this.instanceId));
    return p;
  }

  /**
   * Subscribes, before the transport connects: presence (broadcast), and per handler its direct
   * subscription `_courier.to.<source>.<instanceId>.<pattern>` (a broadcast: this instance's own
   * queue, gone with it), delivering to `handle` as the handler's own subscription does.
   */
  async subscribe(transport: Transport, presenceTransport: Transport, handlers: readonly HandlerDefinition[], handle: (h: HandlerDefinition, d: Delivery) => Promise<void>): Promise<void> {
    this.transport = transport;
    this.presenceTransport = presenceTransport;
    this.subscriptions.push(await presenceTransport.subscribe({ pattern: PRESENCE_PATTERN, name: 'courier.presence', prefetch: 64 }, (d) => this.onPresence(d)));
    presenceTransport.on('connected', this.onConnected);
    if (!this.announcing) return;
    const handles = new Set<string>();
    for (const h of handlers) {
      for (const type of h.classes.keys()) handles.add(type);
      const spec = { pattern: directTopic(this.host.source, this.instanceId, h.spec.pattern), name: `${h.spec.name}.direct`, prefetch: h.spec.prefetch, maxAttempts: h.spec.maxAttempts };
      this.subscriptions.push(await transport.subscribe(spec, (d) => handle(h, d)));
    }
    this.handles = [...handles].sort();
  }

  private presenceTransport?: Transport;

  /**
   * After a reconnect: announce and ask again at once. What was published during the cut was not
   * delivered to the broadcast subscription; others may have expired this instance meanwhile.
   */
  private readonly onConnected = (): void => {
    if (!this.running) return;
    if (this.announcing) void this.send(PresenceTypes.hello, this.announcement()).catch(() => undefined);
    void this.send(PresenceTypes.query, { service: this.host.source, instanceId: this.instanceId }).catch(() => undefined);
  };

  /** After the transport connected: announce, ask the others to announce, start the timers. */
  async start(): Promise<void> {
    this.running = true;
    if (this.announcing) {
      this.touch(this.announcement(), true);
      await this.send(PresenceTypes.hello, this.announcement());
      this.heartbeat = setInterval(() => void this.send(PresenceTypes.hello, this.announcement()).catch(() => undefined), this.heartbeatMs);
      this.heartbeat.unref();
    }
    await this.send(PresenceTypes.query, { service: this.host.source, instanceId: this.instanceId });
    this.scheduleSweep();
  }

  /** Says goodbye (others drop this instance at once), stops the timers, fails balanced requests in flight. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.heartbeat);
    clearTimeout(this.sweeper);
    this.presenceTransport?.off('connected', this.onConnected);
    if (this.announcing) await this.send(PresenceTypes.bye, this.announcement()).catch((err) => this.host.warn('discovery: could not say goodbye (others drop this instance after its TTL)', { error: redactSecrets(String(err)) }));
    for (const key of [...this.table.keys()]) this.remove(key, 'stopped', false);
    // The subscriptions close with the transport.
  }

  /** The live instances (this one included when it announces), by service then instance id. */
  services(): ServiceInstance[] {
    this.sweep();
    return [...this.table.entries()]
      .map(([key, e]) => this.view(key, e))
      .sort((a, b) => a.service.localeCompare(b.service) || a.instanceId.localeCompare(b.instanceId));
  }

  /**
   * Resolves to the live instances of `service` once there is at least one; rejects with
   * NoInstanceError after `timeoutMs`. For start-up ordering (a gateway that waits for its services).
   */
  waitForService(service: string, timeoutMs: number): Promise<ServiceInstance[]> {
    const now = () => this.services().filter((s) => s.service === service);
    if (now().length) return Promise.resolve(now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new NoInstanceError(`any message type (no instance of ${service} within ${timeoutMs} ms)`));
      }, timeoutMs);
      const check = () => {
        const found = now();
        if (!found.length) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(found);
      };
      this.waiters.add(check);
    });
  }

  private readonly waiters = new Set<() => void>();

  /** Live instances that take direct requests of `type`, in a stable order. */
  candidates(type: string): Array<{ key: string; weight: number; entry: Entry }> {
    const now = Date.now();
    const out: Array<{ key: string; weight: number; entry: Entry }> = [];
    for (const [key, entry] of this.table) {
      if (entry.info.direct && now - entry.lastSeen <= entry.info.ttlMs && entry.info.handles.includes(type)) out.push({ key, weight: entry.info.weight, entry });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  /**
   * Sends `message` to one live instance chosen by `strategy`, on its own topic. Rejects with
   * NoInstanceError when none handles the type, InstanceGoneError when the instance left before
   * replying (unless `onInstanceGone: 'retry'`), RequestTimeoutError after `timeoutMs` in all.
   */
  async request(message: OutgoingMessage, type: string, options: BalancedRequestOptions): Promise<ReceivedMessage> {
    const deadline = Date.now() + options.timeoutMs;
    const tried = new Set<string>();
    for (;;) {
      const candidates = this.candidates(type).filter((c) => !tried.has(c.key));
      if (!candidates.length) throw new NoInstanceError(type);
      const chosen = this.balancer.pick(options.strategy, type, candidates);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new RequestTimeoutError(type, options.timeoutMs);
      try {
        return await this.requestOne(chosen.key, chosen.entry, message, type, remaining);
      } catch (err) {
        if (!(err instanceof InstanceGoneError) || options.onInstanceGone !== 'retry') throw err;
        tried.add(chosen.key);
      }
    }
  }

  private requestOne(key: string, entry: Entry, message: OutgoingMessage, type: string, timeoutMs: number): Promise<ReceivedMessage> {
    const sentAt = Date.now();
    this.balancer.sent(key);
    return new Promise<ReceivedMessage>((resolve, reject) => {
      let done = false;
      const gone = (reason: LeaveReason) => finish(new InstanceGoneError(type, key, reason));
      const finish = (err: unknown, reply?: ReceivedMessage) => {
        if (done) return;
        done = true;
        entry.inFlight.delete(gone);
        this.balancer.ended(key, Date.now() - sentAt);
        if (err) reject(err);
        else resolve(reply!);
      };
      entry.inFlight.add(gone);
      const directed: OutgoingMessage = { topic: directTopic(entry.info.service, entry.info.instanceId, type), body: message.body, headers: message.headers };
      this.transport!.request(directed, { timeoutMs }).then(
        (reply) => finish(undefined, reply),
        (err: unknown) => finish(err instanceof RequestTimeoutError ? new RequestTimeoutError(type, err.timeoutMs) : err),
      );
    });
  }

  private announcement(): PresenceAnnouncement {
    const publishes = new Set<string>();
    for (const instance of this.host.instances) {
      if (instance === null || typeof instance !== 'object') continue;
      for (const p of publicationsOf(instance.constructor)) {
        const t = messageMetadata(p.payload)?.type;
        if (t) publishes.add(t);
      }
    }
    return {
      service: this.host.source,
      instanceId: this.instanceId,
      nonce: this.nonce,
      version: this.options.version ?? '',
      transport: this.host.transportName,
      handles: this.handles,
      publishes: [...publishes].sort(),
      weight: this.options.weight ?? 1,
      direct: true,
      heartbeatMs: this.heartbeatMs,
      ttlMs: this.ttlMs,
      startedAt: this.startedAt,
      metadata: this.options.metadata ?? {},
      ...(canTakeOverSessions(this.presenceTransport) ? { sessions: this.presenceTransport.heldSessions() } : {}),
    };
  }

  /** A member expired: drain the group sessions it left that fall to this instance (lib/discovery/takeover.ts). */
  private takeOver(gone: PresenceAnnouncement): void {
    const transport = this.presenceTransport;
    if (this.options.takeover === false || !this.announcing || !this.running || !canTakeOverSessions(transport)) return;
    const self = this.announcement();
    const live = [...this.table.values()].map((e) => e.info);
    const options = typeof this.options.takeover === 'object' ? this.options.takeover : {};
    for (const session of sessionsToTakeOver(gone, live, self)) {
      const fields = { instance: `${gone.service}/${gone.instanceId}`, group: session.group, name: session.name };
      this.host.warn('discovery: taking over the group session of an expired instance', fields);
      transport.takeOverSession(session, options).then(
        (r) => this.host.warn(`discovery: take-over of an expired instance's session ended: ${r.outcome}`, { ...fields, handled: r.handled }),
        (err) => this.host.warn('discovery: take-over of an expired instance\'s session failed', { ...fields, error: redactSecrets(String(err)) }),
      );
    }
  }

  private async send(type: string, data: unknown): Promise<void> {
    const m = encode(data, { type, source: this.host.source });
    await this.presenceTransport!.publish(m);
  }

  private async onPresence(d: Delivery): Promise<void> {
    try {
      const { envelope, data } = decode(d, 1, 256 * 1024);
      if (envelope.type === PresenceTypes.query) {
        if (this.announcing && this.running) await this.send(PresenceTypes.hello, this.announcement()).catch(() => undefined);
      } else if (envelope.type === PresenceTypes.hello || envelope.type === PresenceTypes.bye) {
        const info = parseAnnouncement(data);
        const key = keyOf(info);
        if (envelope.type === PresenceTypes.bye) {
          const entry = this.table.get(key);
          if (entry && entry.info.nonce === info.nonce) this.remove(key, 'stopped');
        } else if (this.running) this.touch(info, key === keyOf(this.announcement()) && info.nonce === this.nonce);
      }
    } catch (err) {
      this.host.warn('discovery: ignored a malformed presence message', { error: redactSecrets(String(err)) });
    }
    await d.ack();
  }

  /** A hello: add or refresh. A new nonce under a known key is a restart: the old one leaves first. */
  private touch(info: PresenceAnnouncement, self: boolean): void {
    const key = keyOf(info);
    const entry = this.table.get(key);
    if (entry && entry.info.nonce !== info.nonce) this.remove(key, 'stopped');
    const existing = this.table.get(key);
    if (existing) {
      existing.info = info;
      existing.lastSeen = Date.now();
      return;
    }
    if (this.table.size >= MAX_TABLE) return this.host.warn('discovery: table full; an instance was ignored', { key });
    const fresh: Entry = { info, lastSeen: Date.now(), inFlight: new Set() };
    this.table.set(key, fresh);
    if (info.ttlMs / 4 < this.sweepMs) {
      this.sweepMs = Math.max(5, Math.min(MAX_SWEEP_MS, info.ttlMs / 4));
      if (this.running && !self) this.scheduleSweep();
    }
    this.host.emit('join', this.view(key, fresh, self));
    for (const w of [...this.waiters]) w();
  }

  private remove(key: string, reason: LeaveReason, emit = true): void {
    const entry = this.table.get(key);
    if (!entry) return;
    this.table.delete(key);
    this.balancer.forget(key);
    for (const fail of [...entry.inFlight]) fail(reason);
    if (emit) this.host.emit('leave', this.view(key, entry), reason);
    if (reason === 'expired') this.takeOver(entry.info);
  }

  private scheduleSweep(): void {
    clearTimeout(this.sweeper);
    if (!this.running) return;
    this.sweeper = setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, this.sweepMs);
    this.sweeper.unref();
  }

  /** Drops every instance not heard of for its TTL (this one never: it is alive while it runs). */
  private sweep(): void {
    const now = Date.now();
    for (const [key, e] of this.table) {
      if (e.info.nonce === this.nonce) {
        e.lastSeen = now;
        continue;
      }
      if (now - e.lastSeen > e.info.ttlMs) this.remove(key, 'expired');
    }
  }

  private view(key: string, e: Entry, self = e.info.nonce === this.nonce): ServiceInstance {
    return { ...e.info, self, lastSeen: e.lastSeen, latencyMs: this.balancer.latencyOf(key) };
  }
}

function keyOf(info: { service: string; instanceId: string }): string {
  return `${info.service}/${info.instanceId}`;
}
