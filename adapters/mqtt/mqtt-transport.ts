/**
 * The MQTT adapter: Courier's transport contract over mqtt.js 5 (Mosquitto and other MQTT 5
 * brokers; MQTT 3.1.1 as an option). The mapping is in docs/wire-format.md, the broker settings
 * durable use needs in docs/brokers.md.
 *
 * Shape: one publisher client per transport (clean session; publishes, request replies), and one
 * client per subscription. A group subscription is a persistent session with a stable client id
 * (clean start off, a session expiry) holding a shared subscription, so the broker queues what
 * arrives while the member is away and shares the work among the members. An instance
 * subscription is a persistent session too, with a plain subscription and a client id derived
 * from its instance (instanceSessionId), expiring after the spec's grace period.
 *
 * Ack after success: mqtt.js hands incoming packets to `handleMessage(packet, cb)` one at a time
 * and sends the QoS 1 PUBACK when `cb()` is called, but it also waits for `cb` before it reads the
 * next packet (PUBACKs of our own publishes and PINGRESPs included). Holding `cb` would therefore
 * cap prefetch at 1 and stall the connection. Instead `cb` is called at once with a marker error,
 * which makes mqtt.js skip its PUBACK and move on, and the adapter sends the PUBACK itself when
 * the delivery is acked (see {@link Feed}).
 */
import type { IClientOptions, IPublishPacket, ISubscriptionMap, MqttClient } from 'mqtt';
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
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
import {
  AccessRefusedError,
  AuthenticationError,
  brokerAddress,
  BrokerRefusedError,
  ConnectionError,
  CourierError,
  NotConnectedError,
  PublishRejectedError,
  PublishTimeoutError,
  RequestTimeoutError,
  SessionTakenOverError,
  StartTimeoutError,
  TransportClosedError,
  UnroutableError,
  redactSecrets,
  redactUrl,
} from '../../lib/errors';
import { sendToSubscriptionTopic } from './mqtt-admin';
import { DeadlineTimer } from '../../lib/deadline-timer';
import { Linked, LinkedList } from '../../lib/linked-list';
import { PendingRequest, RequestTable } from '../../lib/pending-table';
import { matchTopic } from '../../lib/topic';
import {
  Decoded,
  EncodedPublish,
  InternalHeaders,
  ReplyRoute,
  ReservedLevels,
  decode,
  encode,
  instanceSessionId,
  mqttFilterFor,
  safeLevel,
  topicToType,
  typeToTopic,
} from './mqtt-mapping';
import { ClientIdPolicy } from './client-id-policy';
import { encodePublishesOf } from './publish-encoder';
import { coalesceWrites } from './write-coalescer';

export interface MqttTlsOptions {
  readonly ca?: string | Buffer | string[] | Buffer[];
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Verify the broker's certificate. Default true; turn off only for a local test broker. */
  readonly rejectUnauthorized?: boolean;
}

export interface MqttTransportOptions {
  /** `mqtt://host:1883`, `mqtts://host:8883`; several URLs (a cluster's nodes) fail over in turn. */
  readonly url: string | readonly string[];
  readonly username?: string;
  readonly password?: string;
  readonly tls?: MqttTlsOptions;
  /** 5 (default) or 4 (MQTT 3.1.1: structured CloudEvents JSON, no reason codes; see the docs). */
  readonly protocolVersion?: 4 | 5;
  /** First topic level of every Courier topic. Default `courier`. */
  readonly prefix?: string;
  /**
   * Base of the client ids. A group member's session id is `<clientId>:<group>:<name>`: it must be
   * the same when the member restarts (else its queued messages wait in an orphaned session) and
   * differ between members running at once (else they take each other's session over).
   * Required for group subscriptions (they reject with UnstableClientIdError without it or
   * `groupClientId`), unless `allowGeneratedClientId` (see adapters/mqtt/client-id-policy.ts).
   */
  readonly clientId?: string;
  /** Overrides the session id of a group member, for deployments that number their replicas. */
  readonly groupClientId?: (group: string, name: string) => string;
  /**
   * Lets group subscriptions start without `clientId` / `groupClientId`, under a generated id
   * (`courier-<hostname>-<random>`), new at every start: a restarted member then never sees what
   * the broker queued for its previous session, which keeps its share of the group's messages
   * until `sessionExpirySeconds` ends. For throwaway runs only. Default false.
   */
  readonly allowGeneratedClientId?: boolean;
  /** QoS of publishes: 1 (default, resolves on PUBACK) or 2 (resolves on PUBCOMP). */
  readonly qos?: 1 | 2;
  /** Default publish timeout. Default 10,000 ms. */
  readonly publishTimeoutMs?: number;
  /** Publishes awaiting their PUBACK at once; more wait for a slot. Default 1,000. */
  readonly maxInFlight?: number;
  /** Publishes accepted while disconnected; beyond that publish() rejects with NotConnectedError. Default 10,000. */
  readonly maxOffline?: number;
  /** How long the broker keeps a group member's session while it is away. Default 7 days. */
  readonly sessionExpirySeconds?: number;
  /** Reconnect back-off: from `minMs` doubling up to `maxMs`, with +-50 % jitter. Default 250 / 15,000. */
  readonly reconnect?: { readonly minMs?: number; readonly maxMs?: number };
  /** How long one connection attempt waits for the broker's CONNACK. Default 15,000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * How long connect() (and so bus.start()) keeps trying to connect and subscribe every client:
   * a connection that is refused or lost, also during the first CONNECT or SUBSCRIBE, is tried
   * again with the reconnect back-off until then; then connect() rejects with StartTimeoutError.
   * A refused login (CONNACK 4 / 5, MQTT 5 0x86 / 0x87 / 0x8C) rejects at once with
   * AuthenticationError; a refused subscription with its BrokerRefusedError. Default 30,000 ms.
   */
  readonly startTimeoutMs?: number;
  /** Largest body accepted by publish(). Default: the MQTT maximum packet size less 64 KiB. */
  readonly maxMessageBytes?: number;
  readonly keepaliveSeconds?: number;
  /**
   * Publishes the broker answers with "no matching subscribers" (MQTT 5 reason code 0x10 in the
   * PUBACK / PUBREC) within `graceMs` after a reconnect of this transport's publisher or of any of
   * its subscriptions are sent again, first after `intervalMs`, then at doubling intervals up to
   * 1 s, until a subscriber takes them or the grace (or the publish deadline) ends; then they
   * settle as any 0x10: resolved, or `UnroutableError` when `mandatory`. A broker restart is the
   * reason: Mosquitto 2.0.11 restores persistent sessions without their shared subscriptions, and
   * until the members have subscribed again it accepts publishes for nobody. A re-sent 0x10
   * publish makes no duplicate (nobody received it). MQTT 5 only (3.1.1 has no reason codes).
   * Default `{ graceMs: 5000, intervalMs: 100 }`; `false` turns it off.
   */
  readonly noSubscribersRetry?: { readonly graceMs?: number; readonly intervalMs?: number } | false;
}

type MqttModule = typeof import('mqtt');

/** Passed to mqtt.js's handleMessage callback: skip your PUBACK, the adapter sends it on ack. */
const DEFER_ACK = Object.assign(new Error('courier: PUBACK deferred until the delivery is settled'), {
  courierDeferred: true,
});

const MQTT_MAX_PACKET = 268_435_455;
/** PUBACK / PUBREC reason code: accepted, but no subscription matched. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
const NO_SUBSCRIBERS_MAX_INTERVAL_MS = 1000;
const SESSION_TAKEN_OVER = 0x8e;
const STABLE_MS = 10_000;
const SHORT_LIVED_MS = 2_000;
const SHORT_LIVED_LIMIT = 4;

const noLog = (): void => undefined;

export class MqttTransport implements Transport {
  readonly name = 'mqtt';
  readonly capabilities: TransportCapabilities;

  private readonly opts: Required<
    Pick<MqttTransportOptions, 'prefix' | 'qos' | 'publishTimeoutMs' | 'maxInFlight' | 'maxOffline'>
  > & { version: 4 | 5; urls: string[] };
  private readonly events = new EventEmitter();
  private mqtt?: MqttModule;
  private publisher?: MqttClient;
  private replyTopic = '';
  private readonly consumers = new Set<Consumer>();
  /** Requests awaiting their reply, by correlation (its bytes are the id's latin1); one timer for all their timeouts. */
  private readonly pendingRequests = new RequestTable<PendingRequest<ReceivedMessage>>(`${randomBytes(8).toString('hex')}.`);
  /** Publishes not yet settled: waiting for a window slot, or handed to mqtt.js. */
  /** Every publish not yet settled (waiting for a slot or for its ack), oldest first. */
  private readonly pending = new LinkedList<PendingPublish>();
  /** Publishes handed to mqtt.js and not yet acked (window slots in use). */
  private sending = 0;
  private readonly waiting: PendingPublish[] = [];
  /** One timer for every pending publish's deadline (on Date.now, as the 0x10 grace), armed for the earliest known. */
  private readonly sweepTimer = new DeadlineTimer(() => this.sweep(), { now: Date.now, unref: true });
  private drained?: () => void;
  /**
   * Publishes handed to mqtt.js at once: maxInFlight, but never above the Receive Maximum the
   * broker announced in its CONNACK (MQTT 5 flow control; Mosquitto announces its
   * max_inflight_messages and disconnects a client with more unreleased QoS 2 publishes, 0x93).
   */
  private window: number;
  private connected = false;
  private connacks = 0;
  /** Until then a 0x10 answer is re-sent (see {@link MqttTransportOptions.noSubscribersRetry}). */
  private graceUntil = 0;
  private readonly noSubscribers: { graceMs: number; intervalMs: number } | undefined;
  /** Message ids of the publisher whose PUBACK / PUBREC said 0x10, until their callback runs. */
  private readonly answeredNoSubscribers = new Set<number>();
  /** 0x10 answers received, and how many of them were sent again. For tests and diagnostics. */
  readonly noSubscribersStats = { answered: 0, resent: 0 };
  private connecting?: Promise<void>;
  private closing?: Promise<void>;
  /** @internal Every client id this transport uses. */
  readonly clientIds: ClientIdPolicy;

  constructor(private readonly options: MqttTransportOptions) {
    const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
    if (!urls.length) throw new ConnectionError('mqttTransport: at least one url is required');
    this.opts = {
      urls,
      version: options.protocolVersion ?? 5,
      prefix: options.prefix ?? 'courier',
      qos: options.qos ?? 1,
      publishTimeoutMs: options.publishTimeoutMs ?? 10_000,
      maxInFlight: options.maxInFlight ?? 1000,
      maxOffline: options.maxOffline ?? 10_000,
    };
    this.window = this.opts.maxInFlight;
    this.clientIds = new ClientIdPolicy(options);
    const retry = options.noSubscribersRetry;
    this.noSubscribers =
      retry === false || this.opts.version !== 5
        ? undefined
        : { graceMs: Math.max(0, retry?.graceMs ?? 5000), intervalMs: Math.max(1, retry?.intervalMs ?? 100) };
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
      mandatory: this.opts.version === 5,
      maxMessageBytes: options.maxMessageBytes ?? MQTT_MAX_PACKET - 65_536,
    };
  }

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.on(event, listener as (...a: unknown[]) => void);
    return this;
  }
  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): this {
    this.events.off(event, listener as (...a: unknown[]) => void);
    return this;
  }

  /** @internal for the adapter's own parts: never throws, even without an 'error' listener. */
  emit<E extends TransportEvent>(event: E, ...args: TransportEvents[E]): void {
    if (event === 'error' && this.events.listenerCount('error') === 0) return;
    this.events.emit(event, ...args);
  }

  get prefix(): string {
    return this.opts.prefix;
  }
  get version(): 4 | 5 {
    return this.opts.version;
  }
  get urls(): readonly string[] {
    return this.opts.urls;
  }
  get startTimeoutMs(): number {
    return this.options.startTimeoutMs ?? 30_000;
  }

  connect(): Promise<void> {
    if (this.closing) return Promise.reject(new TransportClosedError('connect'));
    this.connecting ??= this.doConnect();
    return this.connecting;
  }

  private async doConnect(): Promise<void> {
    this.mqtt = require('mqtt') as MqttModule;
    const id = this.clientIds.transient('pub');
    this.replyTopic = `${this.opts.prefix}/${ReservedLevels.reply}/${safeLevel(id)}`;
    // QoS 2 needs the publisher's session to outlive a reconnect: a broker that sent PUBREC holds
    // the message until our PUBREL (Mosquitto delivers only then). With a clean start it forgets
    // it, answers the PUBREL mqtt.js re-sends with a PUBCOMP all the same, and the publish
    // resolves for a message nobody will receive. The session expires soon after the process.
    const persistent = this.opts.qos === 2 && this.opts.version === 5;
    const client = this.createClient(
      id,
      { clean: !persistent, expirySeconds: Math.max(60, Math.ceil(this.opts.publishTimeoutMs / 1000) * 2) },
      'publisher',
    );
    this.publisher = client;
    client.handleMessage = (packet, cb) => {
      this.onReply(packet);
      cb();
    };
    client.on('connect', (connack) => {
      this.connected = true;
      const max = connack.properties?.receiveMaximum ?? 65_535;
      this.setWindow(Math.max(1, Math.min(this.opts.maxInFlight, max)));
    });
    client.on('close', () => (this.connected = false));
    // The grace starts at the CONNACK, not at 'connect': mqtt.js emits 'connect' only after it has
    // re-sent its stored publishes one by one and each was acked, 0x10 answers included.
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack' && this.connacks++ > 0) this.reconnected();
    });
    if (this.opts.version === 5) {
      // mqtt.js treats 0x10 as success and does not hand the PUBACK / PUBREC to the publish
      // callback; 'packetreceive' runs just before it handles the ack, for the same message id.
      client.on('packetreceive', (packet) => {
        if ((packet.cmd === 'puback' || packet.cmd === 'pubrec') && packet.reasonCode === NO_MATCHING_SUBSCRIBERS && packet.messageId !== undefined) {
          this.answeredNoSubscribers.add(packet.messageId);
        }
      });
      // A message id used again by a new publish starts without a mark.
      client.on('packetsend', (packet) => {
        if (packet.cmd === 'publish' && packet.messageId !== undefined) this.answeredNoSubscribers.delete(packet.messageId);
      });
    }
    try {
      await startClient(client, [this.replyTopic], this.startTimeoutMs, this.opts.urls);
      await Promise.all([...this.consumers].map((c) => c.start()));
    } catch (e) {
      client.end(true);
      for (const c of this.consumers) c.stop(true);
      throw e;
    }
  }

  /** @internal True when this transport has a dead-letter consumer of `spec`'s subscription. */
  readsDeadLetters(spec: SubscriptionSpec): boolean {
    for (const c of this.consumers) if (c.dead && c.spec.group === spec.group && c.spec.name === spec.name) return true;
    return false;
  }

  /** @internal One mqtt.js client with the adapter's reconnect policy, events and TLS. */
  createClient(
    clientId: string,
    session: { clean: boolean; expirySeconds?: number; receiveMaximum?: number },
    role: string,
  ): MqttClient {
    const mqtt = this.mqtt!;
    const o = this.options;
    const minMs = o.reconnect?.minMs ?? 250;
    const maxMs = o.reconnect?.maxMs ?? 15_000;
    let failures = 0;
    const backoff = () => Math.round(Math.min(maxMs, minMs * 2 ** Math.min(failures, 20)) * (0.5 + Math.random()));
    const urls = this.opts.urls.map((u) => new URL(u));
    const clientOptions: IClientOptions = {
      clientId,
      clean: session.clean,
      protocolVersion: this.opts.version,
      username: o.username ?? (decodeURIComponent(urls[0].username) || undefined),
      password: o.password ?? (decodeURIComponent(urls[0].password) || undefined),
      keepalive: o.keepaliveSeconds ?? 30,
      reconnectPeriod: backoff(),
      connectTimeout: o.connectTimeoutMs ?? 15_000,
      manualConnect: true,
      resubscribe: true,
      // mqtt.js gives up for good after a refusing CONNACK ("server unavailable", a refused login):
      // reconnect as after any failure (connect() itself fails at once on a refused login).
      reconnectOnConnackError: true,
      // mqtt.js re-sends unacknowledged QoS 1/2 publishes from its outgoing store on reconnect.
      queueQoSZero: false,
      // mqtt.js logs through the debug package, a dozen calls per packet that each ask whether
      // the namespace is on (5 % of a busy producer). Kept when DEBUG is set, to debug mqtt.js.
      ...(process.env.DEBUG ? {} : { log: noLog }),
      ca: o.tls?.ca,
      cert: o.tls?.cert,
      key: o.tls?.key,
      rejectUnauthorized: o.tls?.rejectUnauthorized ?? true,
      ...(urls.length > 1
        ? {
            servers: urls.map((u) => ({
              host: u.hostname,
              port: Number(u.port) || defaultPort(u.protocol),
              protocol: u.protocol.replace(':', '') as 'mqtt' | 'mqtts',
            })),
          }
        : {}),
      ...(this.opts.version === 5
        ? {
            properties: {
              ...(!session.clean ? { sessionExpiryInterval: session.expirySeconds ?? o.sessionExpirySeconds ?? 7 * 24 * 3600 } : {}),
              ...(session.receiveMaximum ? { receiveMaximum: Math.min(65_535, session.receiveMaximum) } : {}),
            },
          }
        : {}),
    };
    const client = mqtt.connect(this.opts.urls[0], clientOptions);
    client.setMaxListeners(50);
    // Each connection's socket (manualConnect: none is built yet) writes once per turn. mqtt.js
    // keeps its stream builder private; it calls it for every connection attempt.
    const internal = client as unknown as { streamBuilder: (c: MqttClient) => Duplex };
    const build = internal.streamBuilder;
    internal.streamBuilder = (c) => coalesceWrites(build(c), () => c.connected);
    encodePublishesOf(client);
    const url = () => redactUrl(currentUrl(client, this.opts.urls));
    // The back-off is reset only by a connection that stayed up: a connection the broker keeps
    // closing right after CONNACK (another client taking the same session over, when the broker
    // closes without a DISCONNECT 0x8E, as Mosquitto 2.0 does) slows down like a refused one.
    let connectedAt = 0;
    let shortLived = 0;
    client.on('connect', () => {
      connectedAt = Date.now();
      this.emit('connected', { url: url() });
    });
    client.on('close', () => {
      // Runs after mqtt.js scheduled the next attempt; sets the delay of the one after it.
      const upFor = connectedAt ? Date.now() - connectedAt : 0;
      if (upFor >= STABLE_MS) failures = 0;
      failures++;
      if (connectedAt && upFor < SHORT_LIVED_MS && !client.disconnecting) {
        if (++shortLived === SHORT_LIVED_LIMIT && !session.clean) {
          this.emit('error', new SessionTakenOverError(
            `MQTT session ${clientId} (${role}) was closed by the broker right after connecting ${shortLived} times in a row: ` +
              'probably another client uses the same client id; backing off'));
        }
      } else if (connectedAt) shortLived = 0;
      connectedAt = 0;
      client.options.reconnectPeriod = backoff();
    });
    client.on('offline', () => this.emit('disconnected', { url: url() }));
    client.on('disconnect', (packet) => {
      if (packet.reasonCode === SESSION_TAKEN_OVER) {
        // Another process uses this client id. Reconnecting would take the session back and start
        // a storm of mutual take-overs; stop this client and say so instead.
        client.end(true);
        this.emit('error', new SessionTakenOverError(`MQTT session ${clientId} (${role}) was taken over by another client with the same id; this client stopped`));
      }
    });
    client.on('error', (err) => {
      this.emit('error', authenticationError(client, err, this.opts.urls) ??
        new ConnectionError(`MQTT ${role} ${clientId} at ${url()}: ${redactSecrets(err.message)}`, { cause: err }));
    });
    return client;
  }

  publish(message: OutgoingMessage, options: PublishOptions = {}): Promise<void> {
    return this.send(
      typeToTopic(this.opts.prefix, message.topic),
      message.topic,
      message.body,
      message.headers,
      options.timeoutMs,
      undefined,
      false,
      options.mandatory === true,
    );
  }

  /**
   * @internal The publisher or a subscription reconnected: publishes answered 0x10 ("no matching
   * subscribers") during the grace that starts now are sent again. After a broker restart every
   * client reconnects, in no particular order, and the subscriptions of group members (possibly
   * in other processes) are back only once each member subscribed again.
   */
  reconnected(): void {
    if (this.noSubscribers) this.graceUntil = Math.max(this.graceUntil, Date.now() + this.noSubscribers.graceMs);
  }

  /**
   * @internal Publish on the publisher client, resolving on PUBACK / PUBCOMP.
   *
   * The hot path of every publish: one record and one promise per message, no timer of its own
   * (one deadline sweep serves all, see {@link sweep}) and no promise for the window while it
   * has room.
   */
  send(
    mqttTopic: string,
    label: string,
    body: Buffer,
    headers: Readonly<Record<string, string>>,
    timeoutMs = this.opts.publishTimeoutMs,
    reply?: ReplyRoute,
    allowWhileClosing = false,
    mandatory = false,
  ): Promise<void> {
    if ((this.closing && !allowWhileClosing) || !this.publisher) {
      return Promise.reject(new TransportClosedError(this.publisher ? 'publish' : 'publish before connect()'));
    }
    if (body.length > this.capabilities.maxMessageBytes) {
      return Promise.reject(
        new PublishRejectedError(label, `body of ${body.length} bytes exceeds maxMessageBytes ${this.capabilities.maxMessageBytes}`),
      );
    }
    if (!this.connected && this.pending.size >= this.opts.maxOffline) {
      return Promise.reject(
        new NotConnectedError(`MQTT not connected and ${this.pending.size} publishes are already waiting (maxOffline ${this.opts.maxOffline})`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p = new PendingPublish(this, mqttTopic, label, body, headers, reply, timeoutMs, mandatory, resolve, reject);
      this.pending.add(p);
      this.sweepTimer.armBy(p.deadline);
      if (this.sending < this.window) this.dispatch(p);
      else this.waiting.push(p);
    });
  }

  /** Hands a publish to mqtt.js: it holds a window slot until its PUBACK / PUBCOMP (or error). */
  private dispatch(p: PendingPublish): void {
    this.sending++;
    p.sent = true;
    let enc: EncodedPublish;
    try {
      enc = encode(this.opts.version, p.body, p.headers, p.reply);
    } catch (err) {
      return this.finish(p, err as Error);
    }
    this.publisher!.publish(p.topic, enc.payload, { qos: this.opts.qos, properties: enc.properties }, p.onAck);
  }

  /** @internal mqtt.js's publish callback: settles the publish, or sends it again after a 0x10. */
  acked(p: PendingPublish, err: Error | undefined, packet: { messageId?: number } | undefined): void {
    const id = packet?.messageId;
    if (err || id === undefined || !this.answeredNoSubscribers.delete(id)) {
      return this.finish(p, err ? this.publishError(p.label, err) : undefined);
    }
    this.noSubscribersStats.answered++;
    const retry = this.noSubscribers;
    const now = Date.now();
    const delay = retry ? Math.min(Math.max(NO_SUBSCRIBERS_MAX_INTERVAL_MS, retry.intervalMs), p.resendDelay || retry.intervalMs) : 0;
    if (p.done || !retry || now >= this.graceUntil || now + delay >= p.deadline) {
      return this.finish(p, p.mandatory ? new UnroutableError(p.label) : undefined);
    }
    // Nobody received it, so sending it again cannot make a duplicate. Its window slot is free
    // meanwhile; it comes back ahead of the publishes waiting for one.
    this.noSubscribersStats.resent++;
    p.resendDelay = delay * 2;
    p.sent = false;
    this.sending--;
    this.pumpWaiting();
    p.resendTimer = setTimeout(() => {
      p.resendTimer = undefined;
      if (p.done) return;
      if (this.sending < this.window) this.dispatch(p);
      else this.waiting.unshift(p);
    }, delay);
  }

  /** @internal Settles a publish once (ack, error or timeout) and frees its slot. */
  finish(p: PendingPublish, err: Error | undefined): void {
    if (p.done) {
      return;
    }
    p.done = true;
    this.pending.delete(p);
    if (p.resendTimer) {
      clearTimeout(p.resendTimer);
      p.resendTimer = undefined;
    }
    if (p.sent) {
      this.sending--;
      this.pumpWaiting();
    }
    if (this.pending.size === 0) this.drained?.();
    if (err) p.reject(err);
    else p.resolve();
  }

  /** Lets waiting publishes go while the window has room. */
  private pumpWaiting(): void {
    while (this.sending < this.window && this.waiting.length) {
      const next = this.waiting.shift()!;
      if (!next.done) this.dispatch(next);
    }
  }

  /** @internal The error for an mqtt.js publish callback error. */
  publishError(label: string, err: Error): Error {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number' && code >= 0x80) {
      return new PublishRejectedError(label, `reason code 0x${code.toString(16)} (${err.message})`, { cause: err });
    }
    if (this.closing) return new TransportClosedError('publish');
    return new PublishRejectedError(label, err.message, { cause: err });
  }

  /** Rejects the publishes whose deadline passed (waiting for a slot or for their ack), re-arms. */
  private sweep(): void {
    const now = Date.now();
    let next = Infinity;
    const expired: PendingPublish[] = [];
    for (let p = this.pending.head; p; p = p.next) {
      if (p.deadline <= now) expired.push(p);
      else if (p.deadline < next) next = p.deadline;
    }
    if (expired.length) {
      const gone = new Set(expired);
      for (let i = this.waiting.length - 1; i >= 0; i--) if (gone.has(this.waiting[i])) this.waiting.splice(i, 1);
      for (const p of expired) this.finish(p, new PublishTimeoutError(p.label, p.timeoutMs));
    }
    if (next !== Infinity) this.sweepTimer.armBy(next);
  }

  /** Makes the window match a new Receive Maximum, letting waiting publishes go if it grew. */
  private setWindow(size: number): void {
    this.window = size;
    this.pumpWaiting();
  }

  async subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addConsumer(spec, handler, false);
  }

  async subscribeDeadLetters(of: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    return this.addConsumer(of, handler, true);
  }

  /** SubscriptionAdmin (lib/ops/admin.ts): `message` to the retry topic of `of` alone, PUBACKed (adapters/mqtt/mqtt-admin.ts). */
  sendToSubscription(of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
    return sendToSubscriptionTopic(this, of, message);
  }

  private async addConsumer(spec: SubscriptionSpec, handler: DeliveryHandler, dead: boolean): Promise<Subscription> {
    if (this.closing) throw new TransportClosedError('subscribe');
    if (!(spec.prefetch >= 1)) throw new CourierError(`prefetch must be >= 1 (got ${spec.prefetch})`);
    const consumer = new Consumer(this, spec, handler, dead);
    this.consumers.add(consumer);
    // Before connect(), the consumer starts with the transport; after, at once. Either way its
    // handler is installed before its client connects, so no backlog message is PUBACKed unseen.
    if (this.connecting) {
      await this.connecting;
      await consumer.start();
    }
    return {
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.close(5000);
      },
    };
  }

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    const r = new PendingRequest<ReceivedMessage>(message.topic, options.timeoutMs);
    const correlation = Buffer.from(this.pendingRequests.add(r), 'latin1');
    this.send(typeToTopic(this.opts.prefix, message.topic), message.topic, message.body, message.headers, options.timeoutMs, {
      responseTopic: this.replyTopic,
      correlation,
      expiresAt: Date.now() + options.timeoutMs,
    }).catch((err) => {
      // The request's publish shares its deadline: not acked by then (the connection is down) is no reply in time.
      if (this.pendingRequests.delete(r)) r.reject(err instanceof PublishTimeoutError ? new RequestTimeoutError(r.topic, r.timeoutMs, { cause: err }) : err);
    });
    return r.promise;
  }

  private onReply(packet: IPublishPacket): void {
    let d: Decoded;
    try {
      d = decode(this.opts.version, packet);
    } catch (err) {
      this.emit('error', err as Error);
      return;
    }
    // MQTT 3.1.1: the reply names the correlation in hex.
    const correlation = this.opts.version === 5 ? packet.properties?.correlationData : d.replyFor !== undefined ? Buffer.from(d.replyFor, 'hex') : undefined;
    const pending = correlation ? this.pendingRequests.get(correlation.toString('latin1')) : undefined;
    if (!pending || !this.pendingRequests.delete(pending)) return; // late: its caller timed out already
    pending.resolve({ topic: d.headers[Headers.type] ?? packet.topic, body: d.body, headers: d.headers });
  }

  /** @internal Delivery.reply(): to the request's response topic, with its correlation. */
  async sendReply(route: { responseTopic: string; correlation: Buffer }, reply: ReplyMessage): Promise<void> {
    const headers =
      this.opts.version === 5 ? reply.headers : { ...reply.headers, [InternalHeaders.replyFor]: route.correlation.toString('hex') };
    const enc = encode(this.opts.version, reply.body, headers);
    const props = this.opts.version === 5 ? { ...enc.properties, correlationData: route.correlation } : undefined;
    await this.rawPublish(route.responseTopic, reply.headers[Headers.type] ?? 'reply', enc.payload, props);
  }

  private async rawPublish(topic: string, label: string, payload: Buffer, properties: object | undefined): Promise<void> {
    if (!this.publisher) throw new TransportClosedError('reply');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PublishTimeoutError(label, this.opts.publishTimeoutMs)), this.opts.publishTimeoutMs);
      this.publisher!.publish(topic, payload, { qos: 1, properties }, (err) => {
        clearTimeout(timer);
        if (err) reject(new PublishRejectedError(label, err.message, { cause: err }));
        else resolve();
      });
    });
  }

  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.doClose(options.timeoutMs ?? 10_000);
    return this.closing;
  }

  private async doClose(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await this.connecting?.catch(() => undefined);
    const consumers = [...this.consumers];
    this.consumers.clear();
    // Stop taking deliveries, let those in flight settle (their retry / dead-letter copies are
    // published through the publisher, which is still up), then wait for unconfirmed publishes.
    await Promise.all(consumers.map((c) => c.close(Math.max(0, deadline - Date.now()))));
    if (this.pending.size) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
        timer.unref();
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.sweepTimer.stop();
    // Publishes still waiting to be sent again after a 0x10: the broker accepted them for nobody.
    for (const p of this.pending.toArray()) if (p.resendTimer) this.finish(p, p.mandatory ? new UnroutableError(p.label) : undefined);
    this.pendingRequests.rejectAll(() => new TransportClosedError('wait for a reply'));
    // A persistent (QoS 2) publisher session has nothing left to keep: let the broker drop it now.
    await endClient(this.publisher, this.publisher?.options.clean === false ? { properties: { sessionExpiryInterval: 0 } } : undefined);
  }
}

/** `mqttTransport({ url, ...options })`: the factory the bus configuration uses. */
export function mqttTransport(options: MqttTransportOptions): MqttTransport {
  return new MqttTransport(options);
}

/** One publish until it is settled: the sweep's record, the window's queue entry, the ack callback. */
class PendingPublish implements Linked<PendingPublish> {
  readonly deadline: number;
  prev: PendingPublish | undefined = undefined;
  next: PendingPublish | undefined = undefined;
  sent = false;
  done = false;
  /** Set while waiting to be sent again after a 0x10 answer. */
  resendTimer?: NodeJS.Timeout;
  /** The next wait before sending again after a 0x10 (0: the configured first interval). */
  resendDelay = 0;
  /** mqtt.js's publish callback. */
  readonly onAck: (err?: Error, packet?: { messageId?: number }) => void;

  constructor(
    t: MqttTransport,
    readonly topic: string,
    readonly label: string,
    readonly body: Buffer,
    readonly headers: Readonly<Record<string, string>>,
    readonly reply: ReplyRoute | undefined,
    readonly timeoutMs: number,
    readonly mandatory: boolean,
    readonly resolve: () => void,
    readonly reject: (e: Error) => void,
  ) {
    this.deadline = Date.now() + timeoutMs;
    this.onAck = (err, packet) => t.acked(this, err, packet);
  }
}

/**
 * One subscription: its mqtt.js clients ("feeds": the main one and, for retries, a second one so
 * that messages waiting for their retry time never occupy the main connection's in-flight window)
 * and the dispatcher that hands at most `prefetch` deliveries at a time to the handler.
 */
class Consumer {
  private readonly queue: MqttDelivery[] = [];
  private readonly feeds: Feed[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Deliveries handed to the handler and not yet settled (each marks itself `dispatched`). */
  private active = 0;
  private pumping = false;
  private stopped = false;
  private started?: Promise<void>;
  private idle?: () => void;
  readonly queueName: string;
  readonly retryTopic: string;
  /** A group subscription's dead-letter session, held from its start (see {@link holdDeadLetters}). */
  private readonly deadSession?: { id: string; filter: string };
  private readonly matcher?: (type: string) => boolean;

  constructor(
    readonly transport: MqttTransport,
    readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    readonly dead: boolean,
  ) {
    const t = transport;
    this.queueName = spec.group ? `${spec.group}/${spec.name}` : spec.name;
    const share = spec.group ? safeLevel(`${spec.group}:${spec.name}${dead ? ':dead' : ''}`) : undefined;
    const memberId = spec.group
      ? t.clientIds.member(spec.group, spec.name) + (dead ? ':dead' : '')
      : spec.instance
        ? instanceSessionId(t.prefix, spec.instance, spec.name) + (dead ? ':dead' : '')
        : t.clientIds.transient(dead ? 'bcdead' : 'bc');
    if (spec.group && !dead) {
      const deadShare = safeLevel(`${spec.group}:${spec.name}:dead`);
      this.deadSession = { id: `${memberId}:dead`, filter: `$share/${deadShare}/${mqttFilterFor(`${t.prefix}/${ReservedLevels.dead}`, spec.pattern).filter}` };
    }
    const retryLevel = share ?? safeLevel(memberId);
    this.retryTopic = `${t.prefix}/${ReservedLevels.retry}/${retryLevel}`;
    const { filter, exact } = mqttFilterFor(dead ? `${t.prefix}/${ReservedLevels.dead}` : t.prefix, spec.pattern);
    if (!exact) this.matcher = (type) => matchTopic(spec.pattern, type);
    const shared = (f: string) => (share ? `$share/${share}/${f}` : f);
    // An instance subscription is a broadcast in a persistent session (no $share): the broker
    // queues what arrives while it reconnects or restarts, until the session expires.
    const clean = !spec.group && !spec.instance;
    const expirySeconds = !spec.group && spec.instance && spec.expiresAfterMs !== undefined ? Math.max(1, Math.ceil(spec.expiresAfterMs / 1000)) : undefined;
    // The main feed announces a Receive Maximum of `prefetch` (MQTT 5): the broker then holds at
    // most that many deliveries unacked with this member, instead of its own max_inflight_messages,
    // and the rest stays queued at the broker (or goes to other members) rather than waiting here.
    // The retry feed has none: its copies wait unacked for their retry time.
    this.feeds.push(new Feed(this, memberId, clean, [shared(filter)], spec.prefetch, expirySeconds));
    this.feeds.push(new Feed(this, `${memberId}:retry`, clean, [shared(`${this.retryTopic}/#`)], undefined, expirySeconds));
  }

  start(): Promise<void> {
    this.started ??= Promise.all(this.feeds.map((f) => f.start())).then(() => this.holdDeadLetters());
    return this.started;
  }

  /**
   * Makes the broker keep this subscription's dead letters from now on, before anyone reads them:
   * the member's dead-letter session (the one its subscribeDeadLetters resumes) is created with
   * its subscription and left offline, so Mosquitto queues what is dead-lettered meanwhile.
   * Skipped when this transport reads those dead letters itself (that session is connected).
   */
  private async holdDeadLetters(): Promise<void> {
    const d = this.deadSession;
    if (!d || this.transport.readsDeadLetters(this.spec)) return;
    const client = this.transport.createClient(d.id, { clean: false }, `dead-letter session of ${this.queueName}`);
    // Never PUBACK here: what arrives stays queued for the dead-letter consumer.
    client.handleMessage = () => undefined;
    try {
      await startClient(client, [d.filter], this.transport.startTimeoutMs, this.transport.urls);
    } finally {
      await endClient(client);
    }
  }

  /** Called by a feed for each incoming PUBLISH, in the order received. */
  accept(feed: Feed, packet: IPublishPacket): void {
    const t = this.transport;
    const route = topicToType(t.prefix, packet.topic);
    const ack = feed.acker(packet);
    if (!route || (this.matcher && !this.matcher(route.type)) || (!this.dead && route.via === 'dead')) {
      ack(); // not ours (a `#` filter also sees the adapter's own topics): drop it
      return;
    }
    let decoded: Decoded;
    try {
      decoded = decode(t.version, packet);
    } catch (err) {
      // Undecodable bytes cannot be handed to the bus as a Delivery; keep them readable.
      t.emit('error', err as Error);
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
    const delivery = new MqttDelivery(this, packet, route.type, decoded, ack, undefined, feed);
    const wait = decoded.retryAt !== undefined ? decoded.retryAt - Date.now() : 0;
    if (wait > 0) {
      // A retry copy that is not due yet: hold it (unacked, so the broker keeps it) on the retry
      // feed, whose in-flight window is separate from the main feed's.
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.enqueue(delivery);
      }, wait);
      this.timers.add(timer);
      return;
    }
    this.enqueue(delivery);
  }

  /** A feed reconnected: what it had not yet handed out will be redelivered by the broker. */
  forget(feed: Feed): void {
    if (!feed.persistent) return;
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].feed === feed) this.queue.splice(i, 1);
  }

  enqueue(d: MqttDelivery, front = false): void {
    if (front) this.queue.unshift(d);
    else this.queue.push(d);
    this.pump();
  }

  /** Hands out queued deliveries while the prefetch allows; a settle from inside a handler frees its slot for this same loop. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.active < this.spec.prefetch && this.queue.length) {
        const d = this.queue.shift()!;
        this.active++;
        d.dispatched = true;
        this.handler(d).catch((err) => {
          // The bus settles deliveries itself; a handler that throws anyway gets its message back.
          this.transport.emit('error', new CourierError(`Handler of ${this.queueName} threw: ${(err as Error)?.message}`, { cause: err }));
          if (!d.settled) void d.requeue();
        });
      }
    } finally {
      this.pumping = false;
    }
  }

  /** A delivery was settled: its prefetch slot is free. */
  settled(d: MqttDelivery): void {
    if (!d.dispatched) return;
    d.dispatched = false;
    this.active--;
    if (this.active === 0) this.idle?.();
    this.pump();
  }

  /** Dead-letter a message whose bytes could not be decoded. */
  private async deadLetterRaw(packet: IPublishPacket, type: string, err: Error): Promise<void> {
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    await this.transport.send(
      `${this.transport.prefix}/${ReservedLevels.dead}/${type.split('.').join('/')}`,
      type,
      payload,
      deadHeaders({ [Headers.attempt]: '1' }, this.queueName, { reason: 'malformed', errorName: err.name, errorMessage: err.message }),
      undefined,
      undefined,
      true,
    );
  }

  later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  async close(timeoutMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.active) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.stop(false);
    await Promise.all(this.feeds.map((f) => f.end()));
  }

  stop(force: boolean): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    if (force) for (const f of this.feeds) f.kill();
  }
}

/** One mqtt.js client of a consumer, and the PUBACKs it owes. */
class Feed {
  private client?: MqttClient;
  /** Bumped on every (re)connect: a PUBACK owed on an older connection is not sent. */
  private generation = 0;
  readonly persistent: boolean;

  constructor(
    private readonly consumer: Consumer,
    readonly clientId: string,
    clean: boolean,
    private readonly filters: string[],
    private readonly receiveMaximum?: number,
    /** The session expiry of a persistent feed; default the transport's sessionExpirySeconds. */
    private readonly expirySeconds?: number,
  ) {
    this.persistent = !clean;
  }

  async start(): Promise<void> {
    const t = this.consumer.transport;
    const client = t.createClient(
      this.clientId,
      { clean: !this.persistent, receiveMaximum: this.receiveMaximum, expirySeconds: this.expirySeconds },
      `subscriber ${this.consumer.queueName}`,
    );
    this.client = client;
    client.on('connect', (connack) => {
      this.generation++;
      this.consumer.forget(this);
      if (this.generation > 1) t.reconnected();
      // mqtt.js resubscribes only when the broker lost the session. Mosquitto 2.0.11 restores a
      // persistent session from its store without its shared subscriptions ($share/...) and says
      // "session present": the member would stay connected and deaf. Subscribing again is
      // idempotent for a subscription the broker did keep. (test/reliability/mqtt-faults.spec.ts)
      if (this.generation > 1 && connack.sessionPresent) {
        // The map form with `resubscribe` makes mqtt.js send it although it thinks it is subscribed.
        const map = Object.fromEntries(this.filters.map((f) => [f, { qos: 1 as const }]));
        client.subscribe({ ...map, resubscribe: true } as unknown as ISubscriptionMap, (err) => {
          if (err) t.emit('error', new ConnectionError(`MQTT resubscription of ${this.clientId} failed: ${redactSecrets(err.message)}`, { cause: err }));
        });
      }
    });
    client.handleMessage = (packet, cb) => {
      if (packet.cmd !== 'publish' || !packet.qos) {
        if (packet.cmd === 'publish') this.consumer.accept(this, packet);
        return cb();
      }
      this.consumer.accept(this, packet);
      cb(DEFER_ACK);
    };
    await startClient(client, this.filters, t.startTimeoutMs, t.urls);
  }

  /** The PUBACK of this packet, sent once, on the connection that received it. */
  acker(packet: IPublishPacket): () => void {
    const gen = this.generation;
    let done = packet.qos === 0;
    return () => {
      if (done) return;
      done = true;
      const client = this.client;
      if (!client || !client.connected || gen !== this.generation || packet.messageId === undefined) return;
      // mqtt.js has no public "send this PUBACK": its own handlers call _sendPacket the same way.
      (client as unknown as { _sendPacket(p: object, cb?: () => void): void })._sendPacket(
        this.consumer.transport.version === 5
          ? { cmd: 'puback', messageId: packet.messageId, reasonCode: 0 }
          : { cmd: 'puback', messageId: packet.messageId },
      );
    };
  }

  end(): Promise<void> {
    return endClient(this.client);
  }

  kill(): void {
    this.client?.end(true);
  }
}

const SETTLED: Promise<void> = Promise.resolve();

class MqttDelivery implements Delivery {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly replyExpected: boolean;
  settled = false;
  /** Counted in its consumer's prefetch (handed to the handler, not yet settled). */
  dispatched = false;

  constructor(
    private readonly consumer: Consumer,
    readonly raw: IPublishPacket,
    type: string,
    private readonly decoded: Decoded,
    private readonly ackPacket: () => void,
    redelivered?: boolean,
    readonly feed?: Feed,
  ) {
    this.topic = type;
    this.body = decoded.body;
    this.headers = decoded.headers;
    const a = Number(decoded.headers[Headers.attempt]);
    this.attempt = Number.isInteger(a) && a >= 1 ? a : 1;
    this.redelivered = redelivered ?? !!raw.dup;
    this.replyExpected = !!decoded.reply;
  }

  /** Settle once; a failed settle (a copy the broker did not confirm) leaves it unsettled. */
  private async settle(fn: () => Promise<void> | void): Promise<void> {
    if (this.settled) return;
    this.settled = true;
    try {
      await fn();
    } catch (err) {
      this.settled = false;
      throw err;
    }
    this.consumer.settled(this);
  }

  /** Settled at once (the PUBACK is written, or queued by mqtt.js): no promise of its own. */
  ack(): Promise<void> {
    if (this.settled) return SETTLED;
    this.settled = true;
    try {
      this.ackPacket();
    } catch (err) {
      this.settled = false;
      return Promise.reject(err);
    }
    this.consumer.settled(this);
    return SETTLED;
  }

  requeue(): Promise<void> {
    // MQTT has no nack: the message is still unacked at the broker, so handing it to the
    // dispatcher again is a redelivery that survives a crash in between.
    return this.settle(() => {
      this.consumer.settled(this);
      this.consumer.enqueue(this.copy(true), true);
    });
  }

  retry(delayMs: number): Promise<void> {
    return this.settle(async () => {
      const t = this.consumer.transport;
      const headers = {
        ...this.headers,
        [Headers.attempt]: String(this.attempt + 1),
        [InternalHeaders.retryAt]: String(Date.now() + Math.max(0, delayMs)),
      };
      try {
        // Stored again (PUBACKed) before the original is acked: never lost in between.
        // Mandatory: a copy nobody subscribed to (the retry session's subscription not yet back
        // after a broker restart) fails, and the original stays unacked.
        await t.send(`${this.consumer.retryTopic}/${this.topic.split('.').join('/')}`, this.topic, this.body, headers, undefined, this.decoded.reply, true, true);
      } catch (err) {
        // Cannot store the copy: keep the original unacked and retry it in the adapter.
        t.emit('error', err as Error);
        this.consumer.settled(this);
        this.consumer.later(delayMs, () => this.consumer.enqueue(this.copy(true, this.attempt + 1)));
        return;
      }
      this.ackPacket();
    });
  }

  deadLetter(info: DeadLetterInfo): Promise<void> {
    return this.settle(async () => {
      const t = this.consumer.transport;
      // The attempt count goes with the dead letter even when the sender did not set the header.
      const headers = deadHeaders({ ...this.headers, [Headers.attempt]: String(this.attempt) }, this.consumer.queueName, info);
      await t.send(`${t.prefix}/${ReservedLevels.dead}/${this.topic.split('.').join('/')}`, this.topic, this.body, headers, undefined, undefined, true);
      this.ackPacket();
    });
  }

  async reply(message: ReplyMessage): Promise<void> {
    if (!this.decoded.reply) throw new CourierError(`Message ${this.topic} expects no reply`);
    await this.consumer.transport.sendReply(this.decoded.reply, message);
  }

  /** The same unacked broker message, handed out again. */
  private copy(redelivered: boolean, attempt = this.attempt): MqttDelivery {
    const decoded = { ...this.decoded, headers: { ...this.decoded.headers, [Headers.attempt]: String(attempt) } };
    return new MqttDelivery(this.consumer, this.raw, this.topic, decoded, this.ackPacket, redelivered, this.feed);
  }
}

function deadHeaders(headers: Readonly<Record<string, string>>, queue: string, info: DeadLetterInfo): Record<string, string> {
  return {
    ...headers,
    [Headers.deadReason]: info.reason,
    ...(info.errorName ? { [Headers.deadError]: info.errorName } : {}),
    ...(info.errorMessage ? { [Headers.deadMessage]: redactSecrets(info.errorMessage) } : {}),
    [Headers.deadQueue]: queue,
    [Headers.deadTime]: new Date().toISOString(),
  };
}

/** CONNACK codes of a refused login: 3.1.1 bad user name or password, not authorized; MQTT 5 0x86, 0x87, bad authentication method. */
const AUTH_REFUSED: Record<4 | 5, readonly number[]> = { 4: [4, 5], 5: [0x86, 0x87, 0x8c] };

/** The AuthenticationError of a CONNACK that refused the login (mqtt.js puts its code on the error), else undefined. */
function authenticationError(client: MqttClient, err: Error, urls: readonly string[]): AuthenticationError | undefined {
  const code = (err as { code?: unknown }).code;
  const version = client.options.protocolVersion === 4 ? 4 : 5;
  if (typeof code !== 'number' || !AUTH_REFUSED[version].includes(code)) return undefined;
  const at = currentUrl(client, urls);
  const broker = brokerAddress(at, defaultPort(new URL(at).protocol));
  return new AuthenticationError(client.options.username, broker, `${err.message} (CONNACK code ${code})`, { cause: err });
}

/**
 * Connect (manualConnect clients) and subscribe the filters at QoS 1, within `timeoutMs`: a
 * connection lost before the CONNACK or the SUBACK is waited for again (mqtt.js reconnects), a
 * refused login or subscription rejects at once.
 */
async function startClient(client: MqttClient, filters: string[], timeoutMs: number, urls: readonly string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const failures = new Set<string>();
  const connected = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new StartTimeoutError(timeoutMs, [`MQTT at ${urls.map(redactUrl).join(', ')}`, ...failures]));
      }, Math.max(0, deadline - Date.now()));
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (err: Error) => {
        const refused = authenticationError(client, err, urls);
        if (refused) {
          cleanup();
          reject(refused);
        } else failures.add(redactSecrets(err.message));
      };
      const onDisconnect = (packet: { reasonCode?: number }) => {
        if (packet.reasonCode === SESSION_TAKEN_OVER) {
          cleanup();
          reject(new SessionTakenOverError(`MQTT session ${client.options.clientId} was taken over while connecting`));
        }
      };
      const cleanup = () => {
        clearTimeout(timer);
        client.off('connect', onConnect);
        client.off('error', onError);
        client.off('disconnect', onDisconnect);
      };
      client.on('connect', onConnect);
      client.on('error', onError);
      client.on('disconnect', onDisconnect);
    });
  const first = connected();
  client.connect();
  await first;
  if (!filters.length) return;
  let granted: Awaited<ReturnType<MqttClient['subscribeAsync']>>;
  for (let again = false; ; again = true) {
    try {
      // Again: mqtt.js counts a filter as subscribed once its SUBSCRIBE was sent, and would skip
      // it without the map form's `resubscribe`, resolving with no SUBACK at all.
      const map = Object.fromEntries(filters.map((f) => [f, { qos: 1 as const }]));
      granted = again
        ? await client.subscribeAsync({ ...map, resubscribe: true } as unknown as ISubscriptionMap)
        : await client.subscribeAsync(filters, { qos: 1 });
      break;
    } catch (err) {
      // mqtt.js fails a SUBSCRIBE in flight when the connection goes, and reconnects by itself.
      if (client.connected || client.disconnecting) throw err;
      failures.add(`subscription lost with the connection: ${redactSecrets((err as Error).message)}`);
      await connected();
    }
  }
  const refused = granted.filter((g) => g.qos >= 0x80);
  if (refused.length) {
    const what = refused.map((g) => `${g.topic} (reason 0x${g.qos.toString(16)})`).join(', ');
    const Err = refused.some((g) => (g.qos as number) === 0x87) ? AccessRefusedError : BrokerRefusedError;
    throw new Err(`MQTT broker refused subscription ${what}`, refused[0].topic, client.options.username);
  }
}

function endClient(client: MqttClient | undefined, disconnect?: object): Promise<void> {
  if (!client) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, 2000);
    client.end(false, disconnect ?? {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function currentUrl(client: MqttClient, urls: readonly string[]): string {
  const o = client.options;
  if (urls.length === 1) return urls[0];
  return `${o.protocol ?? 'mqtt'}://${o.host}:${o.port}`;
}

function defaultPort(protocol: string): number {
  return protocol === 'mqtts:' || protocol === 'ssl:' ? 8883 : 1883;
}
