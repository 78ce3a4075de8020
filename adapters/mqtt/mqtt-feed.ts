/**
 * One client of a subscription (its main feed or its retry feed) and the PUBACKs it owes.
 *
 * Ack after success: mqtt.js hands incoming packets to `handleMessage(packet, cb)` one at a time
 * and sends the QoS 1 PUBACK when `cb()` is called, but it also waits for `cb` before it reads the
 * next packet (PUBACKs of our own publishes and PINGRESPs included). Holding `cb` would therefore
 * cap prefetch at 1 and stall the connection. Instead `cb` is called at once with a marker error
 * (DEFER_ACK), which makes mqtt.js skip its PUBACK and move on, and the feed sends the PUBACK
 * itself when the delivery is settled (mqtt-internals.ts). Without mqtt.js's private
 * `_sendPacket` it falls back to holding `cb`. A PUBACK is owed to the connection that received
 * the message: after a reconnect the broker sends that message again and the old ack is dropped.
 */
import type { IPublishPacket } from 'mqtt';
import { ConnectionError, redactSecrets } from '../../lib/errors';
import { MqttConnection } from './mqtt-connection';
import type { MqttContext } from './mqtt-context';
import { DEFER_ACK, forcedSubscription, pubackSender } from './mqtt-internals';
import type { FeedTopology } from './mqtt-topology';

/** What a feed reports to its subscription. */
export interface FeedOwner {
  /** An incoming PUBLISH, in the order received, with its once-only PUBACK. */
  accept(feed: Feed, packet: IPublishPacket, ack: () => void): void;
  /** The feed reconnected: what it had not handed out yet will be redelivered by the broker. */
  forget(feed: Feed): void;
}

const noAck = (): void => undefined;

export class Feed {
  private connection?: MqttConnection;
  readonly persistent: boolean;

  constructor(
    private readonly ctx: MqttContext,
    private readonly topology: FeedTopology & { readonly role: string },
    private readonly owner: FeedOwner,
    /** Called when the feed reconnected (the publisher's 0x10 grace). */
    private readonly reconnected: () => void,
  ) {
    this.persistent = !topology.clean;
  }

  /** The mqtt.js client, once started. */
  get client(): import('mqtt').MqttClient | undefined {
    return this.connection?.client;
  }

  async start(): Promise<void> {
    const t = this.topology;
    const conn = new MqttConnection(this.ctx, t);
    this.connection = conn;
    const client = conn.client;
    client.on('connect', (connack) => {
      this.owner.forget(this);
      const again = conn.session!.number > 1;
      if (again) this.reconnected();
      // mqtt.js resubscribes only when the broker lost the session. Mosquitto 2.0.11 restores a
      // persistent session from its store without its shared subscriptions ($share/...) and says
      // "session present": the member would stay connected and deaf. Subscribing again is
      // idempotent for a subscription the broker did keep. (test/reliability/mqtt-faults.spec.ts)
      if (again && connack.sessionPresent) {
        client.subscribe(forcedSubscription(t.filters), (err) => {
          if (err) this.ctx.events.emit('error', new ConnectionError(`MQTT resubscription of ${t.clientId} failed: ${redactSecrets(err.message)}`, { cause: err }));
        });
      }
    });
    const puback = pubackSender(client);
    client.handleMessage = (packet, cb) => {
      if (packet.cmd !== 'publish' || !packet.qos) {
        if (packet.cmd === 'publish') this.owner.accept(this, packet, noAck);
        return cb();
      }
      if (!puback) return this.owner.accept(this, packet, this.once(packet, cb));
      this.owner.accept(this, packet, this.once(packet, () => puback(packet.messageId!)));
      cb(DEFER_ACK);
    };
    await conn.start(t.filters);
  }

  /** `send` (the PUBACK of this packet) once, and only on the connection that received it. */
  private once(packet: IPublishPacket, send: () => void): () => void {
    const conn = this.connection!;
    const session = conn.session;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (!session || !session.open || session !== conn.session || !conn.client.connected || packet.messageId === undefined) return;
      send();
    };
  }

  end(): Promise<void> {
    return this.connection?.end() ?? Promise.resolve();
  }

  kill(): void {
    this.connection?.kill();
  }
}
