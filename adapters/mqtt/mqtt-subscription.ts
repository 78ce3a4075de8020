/**
 * One subscription: its feeds (mqtt-feed.ts: the main client and the retry client, as
 * mqtt-topology.ts lays them out) and the dispatcher that hands at most `prefetch` deliveries at a
 * time to the handler. It filters what its broker filter lets through but is not its own, holds
 * retry copies until their time, drops requests whose caller stopped waiting, and dead-letters
 * what cannot be decoded.
 */
import type { IPublishPacket } from 'mqtt';
import { deadLetterHeaders, InFlight } from '../../lib/adapter-kit';
import { CourierError } from '../../lib/errors';
import { matchTopic } from '../../lib/topic';
import { DeliveryHandler, Headers, SubscriptionSpec } from '../../lib/transport';
import { MqttConnection } from './mqtt-connection';
import type { MqttContext } from './mqtt-context';
import { DeliveryOwner, MqttDelivery } from './mqtt-delivery';
import { Feed } from './mqtt-feed';
import { Decoded, decode, topicToType } from './mqtt-mapping';
import { DEFER_ACK } from './mqtt-internals';
import type { MqttPublisher } from './mqtt-publisher';
import type { MqttRequests } from './mqtt-requests';
import { deadLetterTopic, subscriptionTopology, SubscriptionTopology } from './mqtt-topology';

/** What a subscription uses of its transport. */
export interface SubscriptionDeps {
  readonly ctx: MqttContext;
  readonly publisher: MqttPublisher;
  readonly requests: MqttRequests;
  /** True when this transport has a dead-letter consumer of `spec`'s subscription. */
  readsDeadLetters(spec: SubscriptionSpec): boolean;
}

export class MqttSubscription implements DeliveryOwner {
  readonly ctx: MqttContext;
  readonly publisher: MqttPublisher;
  readonly requests: MqttRequests;
  private readonly topology: SubscriptionTopology;
  private readonly queue: MqttDelivery[] = [];
  readonly feeds: readonly Feed[];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly matcher?: (type: string) => boolean;
  /** Deliveries handed to the handler and not yet settled (each marks itself `dispatched`). */
  private readonly active = new InFlight();
  private pumping = false;
  private stopped = false;
  private started?: Promise<void>;

  constructor(
    private readonly deps: SubscriptionDeps,
    readonly spec: SubscriptionSpec,
    readonly handler: DeliveryHandler,
    readonly dead: boolean,
  ) {
    ({ ctx: this.ctx, publisher: this.publisher, requests: this.requests } = deps);
    this.topology = subscriptionTopology(spec, dead, { prefix: this.ctx.options.prefix, ids: this.ctx.clientIds });
    if (!this.topology.exact) this.matcher = (type) => matchTopic(spec.pattern, type);
    const role = `subscriber ${this.queueName}`;
    const reconnected = () => this.publisher.reconnected();
    this.feeds = this.topology.feeds.map((f) => new Feed(this.ctx, { ...f, role }, this, reconnected));
  }

  get queueName(): string {
    return this.topology.queueName;
  }

  /** Deliveries received and not settled yet: queued, held until their retry time, or with the handler. */
  get pending(): number {
    return this.queue.length + this.timers.size + this.active.size;
  }

  get retryTopic(): string {
    return this.topology.retryTopic;
  }

  start(): Promise<void> {
    this.started ??= Promise.all(this.feeds.map((f) => f.start())).then(() => this.holdDeadLetters());
    return this.started;
  }

  /** Called by a feed for each incoming PUBLISH, in the order received. */
  accept(feed: Feed, packet: IPublishPacket, ack: () => void): void {
    const { prefix, version } = this.ctx.options;
    const route = topicToType(prefix, packet.topic);
    if (!route || (this.matcher && !this.matcher(route.type)) || (!this.dead && route.via === 'dead')) {
      ack(); // not ours (a `#` filter also sees the adapter's own topics): drop it
      return;
    }
    let decoded: Decoded;
    try {
      decoded = decode(version, packet);
    } catch (err) {
      // Undecodable bytes cannot be handed to the bus as a Delivery; keep them readable.
      this.ctx.events.emit('error', err as Error);
      void this.deadLetterRaw(packet, route.type, err as Error).then(ack, () => undefined);
      return;
    }
    if (this.dead && decoded.headers[Headers.deadQueue] !== this.queueName) {
      ack(); // another subscription's dead letter on an overlapping topic
      return;
    }
    if (decoded.expiresAt !== undefined && decoded.expiresAt <= Date.now()) {
      // A request whose caller stopped waiting (its timeout): nobody would read the reply. MQTT
      // 3.1.1 has no expiry on the wire and a queued MQTT 5 one expires only in whole seconds.
      ack();
      return;
    }
    const delivery = new MqttDelivery(this, { packet, type: route.type, decoded, ack, feed });
    const wait = decoded.retryAt !== undefined ? decoded.retryAt - Date.now() : 0;
    // A retry copy that is not due yet: hold it (unacked, so the broker keeps it) on the retry
    // feed, whose in-flight window is separate from the main feed's.
    if (wait > 0) this.later(wait, () => this.enqueue(delivery));
    else this.enqueue(delivery);
  }

  /** A feed reconnected: what it had not yet handed out will be redelivered by the broker. */
  forget(feed: Feed): void {
    if (!feed.persistent) return;
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].received.feed === feed) this.queue.splice(i, 1);
  }

  enqueue(d: MqttDelivery, front = false): void {
    if (front) this.queue.unshift(d);
    else this.queue.push(d);
    this.pump();
  }

  /** A delivery was settled: its prefetch slot is free. */
  settled(d: MqttDelivery): void {
    if (!d.dispatched) return;
    d.dispatched = false;
    this.active.end();
    this.pump();
  }

  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  /** Stops taking deliveries, waits (up to `timeoutMs`) for those in flight, ends the feeds. */
  async close(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.active.idle(timeoutMs);
    this.stop(false);
    await Promise.all(this.feeds.map((f) => f.end()));
  }

  /** Stops at once: timers cleared, queue dropped, and with `force` the connections too. */
  stop(force: boolean): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    if (force) for (const f of this.feeds) f.kill();
  }

  /** Hands out queued deliveries while the prefetch allows; a settle from inside a handler frees its slot for this same loop. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.active.size < this.spec.prefetch && this.queue.length) {
        const d = this.queue.shift()!;
        this.active.begin();
        d.dispatched = true;
        this.handler(d).catch((err) => {
          // The bus settles deliveries itself; a handler that throws anyway gets its message back.
          this.ctx.events.emit('error', new CourierError(`Handler of ${this.queueName} threw: ${(err as Error)?.message}`, { cause: err }));
          if (d.isOpen) void d.requeue();
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Makes the broker keep this subscription's dead letters from now on, before anyone reads them:
   * the member's dead-letter session (the one its subscribeDeadLetters resumes) is created with
   * its subscription and left offline, so Mosquitto queues what is dead-lettered meanwhile.
   * Skipped when this transport reads those dead letters itself (that session is connected).
   */
  private async holdDeadLetters(): Promise<void> {
    const d = this.topology.deadSession;
    if (!d || this.deps.readsDeadLetters(this.spec)) return;
    const conn = new MqttConnection(this.ctx, { clientId: d.clientId, clean: false, role: `dead-letter session of ${this.queueName}` });
    // Never PUBACK here: what arrives stays in the session for the dead-letter consumer. But call
    // mqtt.js back (with DEFER_ACK, which skips its PUBACK): it reads no further packet until then,
    // and dead letters queued from an earlier run arrive before the SUBACK this start waits for.
    conn.client.handleMessage = (_packet, cb) => cb(DEFER_ACK);
    try {
      await conn.start([d.filter]);
    } finally {
      await conn.end();
    }
  }

  /** Dead-letter a message whose bytes could not be decoded. */
  private async deadLetterRaw(packet: IPublishPacket, type: string, err: Error): Promise<void> {
    const body = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    const { group, name } = this.spec;
    await this.publisher.send({
      topic: deadLetterTopic(this.ctx.options.prefix, type),
      label: type,
      body,
      headers: deadLetterHeaders({}, { reason: 'malformed', errorName: err.name, errorMessage: err.message, group, name, attempt: 1 }),
      whileClosing: true,
    });
  }
}
