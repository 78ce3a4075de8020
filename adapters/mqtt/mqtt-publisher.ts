/**
 * The publisher: the transport's one client for publishes, retry and dead-letter copies, and
 * request replies (a clean session, or a persistent one under QoS 2). Each publish resolves on its
 * PUBACK / PUBCOMP, through the kit's publish window (lib/adapter-kit/publish-window.ts). A publish the broker answers
 * with 0x10 ("no matching subscribers") shortly after a reconnect is sent again (see
 * `MqttTransportOptions.noSubscribersRetry`).
 */
import type { IPublishPacket, MqttClient } from 'mqtt';
import {
  NotConnectedError,
  PublishRejectedError,
  PublishTimeoutError,
  TransportClosedError,
  UnroutableError,
} from '../../lib/errors';
import { MqttConnection } from './mqtt-connection';
import type { MqttContext } from './mqtt-context';
import { EncodedPublish, ReplyRoute, encode } from './mqtt-mapping';
import { publisherTopology } from './mqtt-topology';
import { PublishWindow, WindowEntry } from '../../lib/adapter-kit';

/** One publish, as the adapter's parts ask for it. */
export interface SendRequest {
  /** The MQTT topic. */
  readonly topic: string;
  /** The message type, for errors. */
  readonly label: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** Default the transport's publishTimeoutMs. */
  readonly timeoutMs?: number;
  /** A request's response topic and correlation. */
  readonly reply?: ReplyRoute;
  /** A copy made while the transport closes (a retry or dead letter of a delivery in flight). */
  readonly whileClosing?: boolean;
  /** Reject with UnroutableError when the broker says nobody subscribed (0x10). */
  readonly mandatory?: boolean;
}

/** PUBACK / PUBREC reason code: accepted, but no subscription matched. */
const NO_MATCHING_SUBSCRIBERS = 0x10;
const NO_SUBSCRIBERS_MAX_INTERVAL_MS = 1000;

/** One publish until it is settled: the window's entry and mqtt.js's callback. */
class PendingPublish extends WindowEntry {
  /** Set while waiting to be sent again after a 0x10 answer. */
  resendTimer?: NodeJS.Timeout;
  /** The next wait before sending again after a 0x10 (0: the configured first interval). */
  resendDelay = 0;
  /** mqtt.js's publish callback. */
  readonly onAck: (err?: Error, packet?: { messageId?: number }) => void;

  constructor(
    readonly req: SendRequest,
    timeoutMs: number,
    acked: (p: PendingPublish, err: Error | undefined, packet: { messageId?: number } | undefined) => void,
  ) {
    super(req.label, timeoutMs);
    this.onAck = (err, packet) => acked(this, err, packet);
  }
}

export class MqttPublisher {
  private connection?: MqttConnection;
  private readonly window: PublishWindow<PendingPublish>;
  /** Until then a 0x10 answer is sent again. */
  private graceUntil = 0;
  private connacks = 0;
  /** Message ids whose PUBACK / PUBREC said 0x10, until their callback runs. */
  private readonly answeredNoSubscribers = new Set<number>();
  /** 0x10 answers received, and how many of them were sent again. For tests and diagnostics. */
  readonly noSubscribersStats = { answered: 0, resent: 0 };
  /** Set when the transport closes: only `whileClosing` publishes are taken. */
  closing = false;
  readonly topology: ReturnType<typeof publisherTopology>;
  private readonly ackedBy = (p: PendingPublish, err: Error | undefined, packet: { messageId?: number } | undefined) => this.acked(p, err, packet);

  constructor(
    private readonly ctx: MqttContext,
    /** Every PUBLISH the publisher receives: request replies. */
    private readonly onReply: (packet: IPublishPacket) => void,
  ) {
    this.topology = publisherTopology(ctx.options, ctx.clientIds);
    // Deadlines on Date.now, as the 0x10 grace they are compared with.
    this.window = new PublishWindow<PendingPublish>({ limit: ctx.options.maxInFlight, send: (p) => this.dispatch(p), now: Date.now, unref: true });
  }

  /** The mqtt.js client, once connect() created it. */
  get client(): MqttClient | undefined {
    return this.connection?.client;
  }

  async start(): Promise<void> {
    const { clientId, clean, expirySeconds, replyTopic } = this.topology;
    const conn = new MqttConnection(this.ctx, { clientId, clean, expirySeconds, role: 'publisher' });
    this.connection = conn;
    const client = conn.client;
    client.handleMessage = (packet, cb) => {
      this.onReply(packet);
      cb();
    };
    // Publishes handed to mqtt.js at once: maxInFlight, but never above the Receive Maximum the
    // broker announced in its CONNACK (MQTT 5 flow control; Mosquitto announces its
    // max_inflight_messages and disconnects a client with more unreleased QoS 2 publishes, 0x93).
    client.on('connect', () => this.window.setLimit(Math.max(1, Math.min(this.ctx.options.maxInFlight, conn.session!.receiveMaximum))));
    // The grace starts at the CONNACK, not at 'connect': mqtt.js emits 'connect' only after it has
    // re-sent its stored publishes one by one and each was acked, 0x10 answers included.
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack' && this.connacks++ > 0) this.reconnected();
    });
    if (this.ctx.options.version === 5) {
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
    await conn.start([replyTopic]);
  }

  /**
   * A client of this transport reconnected: publishes answered 0x10 during the grace that starts
   * now are sent again. After a broker restart every client reconnects, in no particular order,
   * and the subscriptions of group members (possibly in other processes) are back only once each
   * member subscribed again.
   */
  reconnected(): void {
    const retry = this.ctx.options.noSubscribers;
    if (retry) this.graceUntil = Math.max(this.graceUntil, Date.now() + retry.graceMs);
  }

  /**
   * Publishes, resolving on PUBACK / PUBCOMP. The hot path of every publish: one record and one
   * promise per message, no timer of its own and no promise for the window while it has room.
   */
  send(req: SendRequest): Promise<void> {
    const o = this.ctx.options;
    if ((this.closing && !req.whileClosing) || !this.connection) {
      return Promise.reject(new TransportClosedError(this.connection ? 'publish' : 'publish before connect()'));
    }
    if (req.body.length > o.maxMessageBytes) {
      return Promise.reject(new PublishRejectedError(req.label, `body of ${req.body.length} bytes exceeds maxMessageBytes ${o.maxMessageBytes}`));
    }
    if (!this.connection.session && this.window.size >= o.maxOffline) {
      return Promise.reject(
        new NotConnectedError(`MQTT not connected and ${this.window.size} publishes are already waiting (maxOffline ${o.maxOffline})`),
      );
    }
    return this.window.submit(new PendingPublish(req, req.timeoutMs ?? o.publishTimeoutMs, this.ackedBy));
  }

  /** Publishes at once, outside the window (a reply), resolving on its PUBACK within publishTimeoutMs. */
  async publishNow(topic: string, label: string, encoded: EncodedPublish): Promise<void> {
    const client = this.connection?.client;
    if (!client) throw new TransportClosedError('reply');
    const timeoutMs = this.ctx.options.publishTimeoutMs;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PublishTimeoutError(label, timeoutMs)), timeoutMs);
      client.publish(topic, encoded.payload, { qos: 1, properties: encoded.properties }, (err) => {
        clearTimeout(timer);
        if (err) reject(new PublishRejectedError(label, err.message, { cause: err }));
        else resolve();
      });
    });
  }

  /** At close: waits (until `deadline`) for unconfirmed publishes and settles those waiting to be sent again. */
  async settleAll(deadline: number): Promise<void> {
    if (this.window.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.window.whenIdle(), new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()))]);
      clearTimeout(timer);
    }
    // Publishes still waiting to be sent again after a 0x10: the broker accepted them for nobody.
    for (const p of [...this.window.entries()]) if (p.resendTimer) this.finish(p, p.req.mandatory ? new UnroutableError(p.req.label) : undefined);
  }

  /** Ends the client, gracefully and bounded. */
  async end(): Promise<void> {
    // A persistent (QoS 2) publisher session has nothing left to keep: let the broker drop it now.
    const conn = this.connection;
    await conn?.end(conn.client.options.clean === false ? { properties: { sessionExpiryInterval: 0 } } : undefined);
  }

  /** Drops the connection at once (a failed start). */
  kill(): void {
    this.connection?.kill();
  }

  /** mqtt.js's publish callback: settles the publish, or sends it again after a 0x10. */
  private acked(p: PendingPublish, err: Error | undefined, packet: { messageId?: number } | undefined): void {
    const id = packet?.messageId;
    if (err || id === undefined || !this.answeredNoSubscribers.delete(id)) {
      return this.finish(p, err ? this.publishError(p.req.label, err) : undefined);
    }
    this.noSubscribersStats.answered++;
    const retry = this.ctx.options.noSubscribers;
    const now = Date.now();
    const delay = retry ? Math.min(Math.max(NO_SUBSCRIBERS_MAX_INTERVAL_MS, retry.intervalMs), p.resendDelay || retry.intervalMs) : 0;
    if (p.done || !retry || now >= this.graceUntil || now + delay >= p.deadline) {
      return this.finish(p, p.req.mandatory ? new UnroutableError(p.req.label) : undefined);
    }
    // Nobody received it, so sending it again cannot make a duplicate. Its window slot is free
    // meanwhile; it comes back ahead of the publishes waiting for one.
    this.noSubscribersStats.resent++;
    p.resendDelay = delay * 2;
    this.window.release(p, false);
    p.resendTimer = setTimeout(() => {
      p.resendTimer = undefined;
      this.window.resubmit(p);
    }, delay);
  }

  /** Hands a publish to mqtt.js: it holds a window slot until its PUBACK / PUBCOMP (or error). */
  private dispatch(p: PendingPublish): void {
    let enc: EncodedPublish;
    try {
      enc = encode(this.ctx.options.version, p.req.body, p.req.headers, p.req.reply);
    } catch (err) {
      return this.finish(p, err as Error);
    }
    this.connection!.client.publish(p.req.topic, enc.payload, { qos: this.ctx.options.qos, properties: enc.properties }, p.onAck);
  }

  /** Settles a publish once (ack, error or timeout) and frees its slot. */
  private finish(p: PendingPublish, err: Error | undefined): void {
    if (p.resendTimer) {
      clearTimeout(p.resendTimer);
      p.resendTimer = undefined;
    }
    this.window.finish(p, err);
  }

  /** The error for an mqtt.js publish callback error. */
  private publishError(label: string, err: Error): Error {
    const code = (err as { code?: number }).code;
    if (typeof code === 'number' && code >= 0x80) {
      return new PublishRejectedError(label, `reason code 0x${code.toString(16)} (${err.message})`, { cause: err });
    }
    if (this.closing) return new TransportClosedError('publish');
    return new PublishRejectedError(label, err.message, { cause: err });
  }
}
