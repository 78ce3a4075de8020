/**
 * The MQTT adapter: Courier's transport contract over mqtt.js 5 (Mosquitto and other MQTT 5
 * brokers; MQTT 3.1.1 as an option). The mapping is in docs/wire-format.md, the broker settings
 * durable use needs in docs/brokers.md, who calls whom in docs/architecture.md.
 *
 * A facade over parts with one role each: options and their validation (mqtt-options.ts); one
 * client with its reconnect policy and a session per connection (mqtt-connection.ts,
 * mqtt-startup.ts); the publisher on the kit's publish window (mqtt-publisher.ts);
 * subscriptions with their feeds and deliveries (mqtt-subscription.ts, mqtt-feed.ts,
 * mqtt-delivery.ts); request/reply (mqtt-requests.ts); taking a gone member's session over (mqtt-takeover.ts); topology as data (mqtt-topology.ts); the
 * wire mapping (mqtt-mapping.ts); client ids (client-id-policy.ts); and every reach into mqtt.js's
 * private parts (mqtt-internals.ts).
 */
import type { MqttClient } from 'mqtt';
import { CourierError, TransportClosedError } from '../../lib/errors';
import {
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
} from '../../lib/transport';
import type { HeldSession, SessionTakeover, TakeoverOptions, TakeoverResult } from '../../lib/session-takeover';
import { sendToSubscriptionTopic } from './mqtt-admin';
import { ClientIdPolicy } from './client-id-policy';
import { SafeEmitter } from '../../lib/adapter-kit';
import type { MqttContext } from './mqtt-context';
import { typeToTopic } from './mqtt-mapping';
import { MqttTransportOptions, resolveMqttOptions } from './mqtt-options';
import { MqttPublisher } from './mqtt-publisher';
import { MqttRequests } from './mqtt-requests';
import { MqttSubscription, SubscriptionDeps } from './mqtt-subscription';
import { MqttTakeovers } from './mqtt-takeover';

export type { MqttTlsOptions, MqttTransportOptions } from './mqtt-options';

export class MqttTransport implements Transport, SessionTakeover {
  readonly name = 'mqtt';
  readonly capabilities: TransportCapabilities;
  private readonly ctx: MqttContext;
  private readonly publishing: MqttPublisher;
  private readonly requests: MqttRequests;
  private readonly subscriptions = new Set<MqttSubscription>();
  private readonly deps: SubscriptionDeps;
  private readonly takeovers: MqttTakeovers;
  private connecting?: Promise<void>;
  private closing?: Promise<void>;

  /** Throws StartupError (every problem at once) when an option is invalid. */
  constructor(options: MqttTransportOptions) {
    const resolved = resolveMqttOptions(options);
    this.ctx = { options: resolved, clientIds: new ClientIdPolicy(options), events: new SafeEmitter<TransportEvents>() };
    this.requests = new MqttRequests(this.ctx, (this.publishing = new MqttPublisher(this.ctx, (packet) => this.requests.onReply(packet))));
    this.deps = {
      ctx: this.ctx,
      publisher: this.publishing,
      requests: this.requests,
      readsDeadLetters: (spec) => {
        for (const s of this.subscriptions) if (s.dead && s.spec.group === spec.group && s.spec.name === spec.name) return true;
        return false;
      },
    };
    this.takeovers = new MqttTakeovers(this.deps, () => this.subscriptions);
    this.capabilities = {
      durableGroups: true,
      // A persistent session per instance subscription (instanceSessionId), expiring after its grace.
      instanceSubscriptions: true,
      competingConsumers: true,
      patterns: true,
      requeue: true,
      delayedRetry: true,
      deadLetter: true,
      requestReply: true,
      // MQTT shared subscriptions have no weights; the broker picks (Mosquitto: round robin).
      weightedConsumers: false,
      confirmedPublish: true,
      // MQTT 5: a PUBACK / PUBREC with 0x10 ("no matching subscribers") rejects a mandatory publish
      // with UnroutableError. An offline persistent session counts as a subscriber (its session
      // queues the message), as an AMQP queue without consumers does. The broker sends 0x10 only
      // if it knows (Mosquitto 2 does; the spec makes it optional). 3.1.1 has no reason codes.
      mandatory: resolved.version === 5,
      maxMessageBytes: resolved.maxMessageBytes,
    };
  }

  /** 0x10 answers received, and how many of them were sent again. For tests and diagnostics. */
  get noSubscribersStats(): { readonly answered: number; readonly resent: number } {
    return this.publishing.noSubscribersStats;
  }

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.ctx.events.on(event, listener);
    return this;
  }

  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.ctx.events.off(event, listener);
    return this;
  }

  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('connect'));
    this.connecting ??= this.doConnect();
    return this.connecting;
  }

  publish(message: OutgoingMessage, options: PublishOptions = {}): Promise<void> {
    return this.publishing.send({
      topic: typeToTopic(this.ctx.options.prefix, message.topic),
      label: message.topic,
      body: message.body,
      headers: message.headers,
      timeoutMs: options.timeoutMs,
      mandatory: options.mandatory === true,
    });
  }

  subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addSubscription(spec, handler, false);
  }

  subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addSubscription(of, handler, true);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): `message` to the retry topic of `of` alone, PUBACKed (adapters/mqtt/mqtt-admin.ts). */
  sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
    return sendToSubscriptionTopic(this.ctx.options.prefix, this.publishing, of, message);
  }

  /** SessionTakeover (lib/session-takeover.ts): the persistent sessions of this transport's group members. */
  heldSessions(): readonly HeldSession[] {
    return this.takeovers.held();
  }

  /** SessionTakeover: drains and deletes a gone member's session through this transport's own subscription (mqtt-takeover.ts). */
  takeOverSession(session: HeldSession, options?: TakeoverOptions): Promise<TakeoverResult> {
    if (this.closing || !this.connecting) return Promise.reject(new TransportClosedError('takeOverSession'));
    return this.takeovers.takeOver(session, options);
  }

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    return this.requests.request(message, options);
  }

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(options.timeoutMs ?? 10_000);
    return this.closing;
  }

  /** @internal The publisher's mqtt.js client, for tests that watch its packets (test/reliability/mqtt-harness.ts). */
  get publisher(): MqttClient | undefined {
    return this.publishing.client;
  }

  /** @internal The subscriptions, for tests that watch their feeds' packets (test/adapters/mqtt/mqtt-extra.spec.ts). */
  get consumers(): ReadonlySet<MqttSubscription> {
    return this.subscriptions;
  }

  private async doConnect(): Promise<void> {
    try {
      await this.publishing.start();
      await Promise.all([...this.subscriptions].map((s) => s.start()));
    } catch (e) {
      this.publishing.kill();
      for (const s of this.subscriptions) s.stop(true);
      throw e;
    }
  }

  private async addSubscription(spec: SubscriptionSpec, handler: DeliveryHandler, dead: boolean): Promise<Subscription> {
    if (this.closing) throw new TransportClosedError('subscribe');
    if (!(spec.prefetch >= 1)) throw new CourierError(`prefetch must be >= 1 (got ${spec.prefetch})`);
    const subscription = new MqttSubscription(this.deps, spec, handler, dead);
    this.subscriptions.add(subscription);
    // Before connect(), the subscription starts with the transport; after, at once. Either way its
    // handler is installed before its client connects, so no backlog message is PUBACKed unseen.
    if (this.connecting) {
      await this.connecting;
      await subscription.start();
    }
    return {
      close: async () => {
        this.subscriptions.delete(subscription);
        await subscription.close(5000);
      },
    };
  }

  private async doClose(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.publishing.closing = true;
    await this.connecting?.catch(() => undefined);
    await this.takeovers.close(Math.max(0, deadline - Date.now()) / 2);
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    // Stop taking deliveries, let those in flight settle (their retry / dead-letter copies are
    // published through the publisher, which is still up), then wait for unconfirmed publishes.
    await Promise.all(subscriptions.map((s) => s.close(Math.max(0, deadline - Date.now()))));
    await this.publishing.settleAll(deadline);
    this.requests.rejectAll();
    await this.publishing.end();
  }
}

/** `mqttTransport({ url, ...options })`: the factory the bus configuration uses. */
export function mqttTransport(options: MqttTransportOptions): MqttTransport {
  return new MqttTransport(options);
}
