/**
 * One message handed to a handler, and how each way of settling it maps to MQTT: ack is the
 * PUBACK; requeue hands the same unacked message out again; retry publishes a copy with a retry
 * time to the subscription's retry topic and then acks; a dead letter is a copy to
 * `<prefix>/dead/...` with the reason headers, then the ack. A copy is stored (PUBACKed by the
 * broker) before the original is acked, so the message is never lost in between.
 */
import type { IPublishPacket } from 'mqtt';
import { deadLetterHeaders, setDeliveryFields, SettleOnce } from '../../lib/adapter-kit';
import type { DeliveryFields } from '../../lib/adapter-kit';
import { CourierError } from '../../lib/errors';
import { DeadLetterInfo, Delivery, Headers, ReplyMessage } from '../../lib/transport';
import { Decoded, InternalHeaders } from './mqtt-mapping';
import type { MqttPublisher } from './mqtt-publisher';
import type { MqttRequests } from './mqtt-requests';
import type { MqttContext } from './mqtt-context';
import { deadLetterTopic, retryCopyTopic } from './mqtt-topology';

/** What a delivery needs of its subscription. */
export interface DeliveryOwner {
  readonly ctx: MqttContext;
  readonly publisher: MqttPublisher;
  readonly requests: MqttRequests;
  readonly spec: { readonly group?: string; readonly name: string };
  readonly retryTopic: string;
  /** Its prefetch slot is free. */
  settled(d: MqttDelivery): void;
  /** Hand `d` to the handler (again), at the front when `front`. */
  enqueue(d: MqttDelivery, front?: boolean): void;
  /** Runs `fn` after `ms` unless the subscription stops first. */
  later(ms: number, fn: () => void): void;
}

/** The broker message behind a delivery: its packet, decoded envelope and PUBACK. */
export interface Received {
  readonly packet: IPublishPacket;
  readonly type: string;
  readonly decoded: Decoded;
  /** Sends the PUBACK once, on the connection it came on (a no-op after a reconnect). */
  readonly ack: () => void;
  /** The feed it came from (its session), to drop it when that feed reconnects. */
  readonly feed: object;
}

// Its data fields (merged into the class): lib/adapter-kit/delivery-fields.ts.
export interface MqttDelivery extends DeliveryFields<IPublishPacket> {}
/** Settled once (the kit's SettleOnce): a settle that fails (a copy the broker did not confirm) leaves it open. */
export class MqttDelivery extends SettleOnce implements Delivery {
  /** Counted in its subscription's prefetch (handed to the handler, not yet settled). */
  dispatched = false;

  constructor(
    private readonly owner: DeliveryOwner,
    readonly received: Received,
    redelivered?: boolean,
  ) {
    super();
    const decoded = received.decoded;
    const a = Number(decoded.headers[Headers.attempt]);
    // raw: the PUBLISH packet as mqtt.js parsed it.
    setDeliveryFields(this, received.type, decoded.body, decoded.headers, Number.isInteger(a) && a >= 1 ? a : 1, redelivered ?? !!received.packet.dup, !!decoded.reply, received.packet);
  }

  /** Settled at once (the PUBACK is written, or queued by mqtt.js): no promise of its own. */
  ack(): Promise<void> {
    return this.settle(this.received.ack);
  }

  requeue(): Promise<void> {
    // MQTT has no nack: the message is still unacked at the broker, so handing it to the
    // dispatcher again is a redelivery that survives a crash in between.
    return this.settle(() => {
      this.owner.settled(this);
      this.owner.enqueue(this.copy(true), true);
    });
  }

  retry(delayMs: number): Promise<void> {
    return this.settle(async () => {
      const o = this.owner;
      const headers = {
        ...this.headers,
        [Headers.attempt]: String(this.attempt + 1),
        [InternalHeaders.retryAt]: String(Date.now() + Math.max(0, delayMs)),
      };
      try {
        // Stored again (PUBACKed) before the original is acked: never lost in between.
        // Mandatory: a copy nobody subscribed to (the retry session's subscription not yet back
        // after a broker restart) fails, and the original stays unacked.
        await o.publisher.send({
          topic: retryCopyTopic(o.retryTopic, this.topic),
          label: this.topic,
          body: this.body,
          headers,
          reply: this.received.decoded.reply,
          whileClosing: true,
          mandatory: true,
        });
      } catch (err) {
        // Cannot store the copy: keep the original unacked and retry it in the adapter.
        o.ctx.events.emit('error', err as Error);
        o.settled(this);
        o.later(delayMs, () => o.enqueue(this.copy(true, this.attempt + 1)));
        return;
      }
      this.received.ack();
    });
  }

  deadLetter(info: DeadLetterInfo): Promise<void> {
    return this.settle(async () => {
      const o = this.owner;
      // The attempt count goes with the dead letter even when the sender did not set the header.
      const headers = deadLetterHeaders(this.headers, { ...info, group: o.spec.group, name: o.spec.name, attempt: this.attempt });
      await o.publisher.send({ topic: deadLetterTopic(o.ctx.options.prefix, this.topic), label: this.topic, body: this.body, headers, whileClosing: true });
      this.received.ack();
    });
  }

  async reply(message: ReplyMessage): Promise<void> {
    const route = this.received.decoded.reply;
    if (!route) throw new CourierError(`Message ${this.topic} expects no reply`);
    await this.owner.requests.sendReply(route, message);
  }

  protected override onSettled(): void {
    this.owner.settled(this);
  }

  /** The same unacked broker message, handed out again. */
  private copy(redelivered: boolean, attempt = this.attempt): MqttDelivery {
    const d = this.received.decoded;
    const decoded = { ...d, headers: { ...d.headers, [Headers.attempt]: String(attempt) } };
    return new MqttDelivery(this.owner, { ...this.received, decoded }, redelivered);
  }
}
