/**
 * One delivery of a subscription: settled once (ack, requeue, a retry through a delay queue, a
 * dead letter), on the channel it came from and only while that channel is its subscription's.
 */
import type { ConsumeMessage, Options } from 'amqplib';
import { CourierError, redactSecrets } from '../../lib/errors';
import { DeadLetterInfo, Delivery, Headers, ReplyMessage } from '../../lib/transport';
import type { ConfirmPublisher } from './confirm-publisher';
import type { Consumer } from './subscriptions';
import { deadLetterTarget, delayQueue, QueueDeclaration, TopologyOptions } from './topology';
import { addBrokerDeathReason, decodeAttempt, decodeHeaders, decodeTopic, encodeProperties, TOPIC_HEADER } from './wire';

/** What a delivery needs from its transport (one object per transport, not per message). */
export interface DeliveryHost {
  readonly publisher: ConfirmPublisher;
  readonly topology: TopologyOptions;
  /** Declares a queue made on the fly, on the current connection. */
  ensureQueue(queue: QueueDeclaration): Promise<void>;
  /** A delivery settled: waiters for a subscription's in-flight deliveries look again. */
  notifySettled(): void;
  sendReply(replyTo: string, body: Buffer, props: Options.Publish, topic: string): Promise<void>;
  /** Corks the current connection's socket for this turn (write-coalescer.ts). */
  coalesceWrites(): void;
}

const OPEN = 0;
const SETTLING = 1;
const DONE = 2;
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * A class with its methods on the prototype: per message one object, not one object and a dozen
 * closures.
 */
export class AmqpDelivery implements Delivery {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  readonly attempt: number;
  readonly redelivered: boolean;
  readonly replyExpected: boolean;
  readonly raw: ConsumeMessage;
  readonly #host: DeliveryHost;
  /** The consumer (one channel of one subscription) that delivered it. */
  readonly #consumer: Consumer;
  #state: number = OPEN;

  constructor(host: DeliveryHost, consumer: Consumer, msg: ConsumeMessage) {
    const props = msg.properties;
    const headers = decodeHeaders(props);
    if (consumer.sub.deadLetters) addBrokerDeathReason(headers, props);
    this.topic = decodeTopic(props, msg.fields.routingKey);
    this.body = msg.content;
    this.headers = headers;
    this.attempt = decodeAttempt(headers);
    this.redelivered = msg.fields.redelivered;
    this.replyExpected = !!props.replyTo;
    this.raw = msg;
    this.#host = host;
    this.#consumer = consumer;
  }

  ack(): Promise<void> {
    if (this.#state === OPEN) this.#settle(true);
    return RESOLVED;
  }

  requeue(): Promise<void> {
    if (this.#state === OPEN) this.#settle(false);
    return RESOLVED;
  }

  async retry(delayMs: number): Promise<void> {
    if (this.#state !== OPEN) return;
    const queue = delayQueue(this.#consumer.sub.queue!, delayMs);
    if (!(await this.#declare(queue))) return;
    await this.#moveTo(queue.name, { ...this.headers, [Headers.attempt]: String(this.attempt + 1) });
  }

  async deadLetter(info: DeadLetterInfo): Promise<void> {
    if (this.#state !== OPEN) return;
    const sub = this.#consumer.sub;
    const target = deadLetterTarget(sub.spec, sub.deadLetters, sub.queue!, this.#host.topology);
    if (target.declare && !(await this.#declare(target.declare))) return;
    const { group, name } = sub.spec;
    const dead: Record<string, string> = {
      ...this.headers,
      [Headers.deadReason]: info.reason,
      [Headers.deadQueue]: group ? `${group}/${name}` : name,
      [Headers.deadTime]: new Date().toISOString(),
      // The count this delivery was handled with: a message from a plain AMQP client has no
      // attempt header of its own, and its dead letter must still say how often it was tried.
      [Headers.attempt]: String(this.attempt),
    };
    if (info.errorName !== undefined) dead[Headers.deadError] = info.errorName;
    else delete dead[Headers.deadError];
    if (info.errorMessage !== undefined) dead[Headers.deadMessage] = redactSecrets(info.errorMessage);
    else delete dead[Headers.deadMessage];
    await this.#moveTo(target.queue, dead);
  }

  async reply(message: ReplyMessage): Promise<void> {
    const msg = this.raw;
    const replyTo = msg.properties.replyTo as string | undefined;
    if (!replyTo) throw new CourierError(`Cannot reply to ${this.topic}: the sender expects no reply`);
    const props = encodeProperties(message.headers);
    props.correlationId = msg.properties.correlationId;
    props.persistent = false;
    await this.#host.sendReply(replyTo, message.body, props, this.topic);
  }

  /** Declares `queue` while settling; a refusal gives the delivery back and is thrown. True when declared. */
  async #declare(queue: QueueDeclaration): Promise<boolean> {
    this.#state = SETTLING;
    try {
      await this.#host.ensureQueue(queue);
    } catch (err) {
      this.#settle(false);
      throw err;
    }
    this.#state = OPEN;
    return true;
  }

  /**
   * Acks go to the channel the delivery came from, and only while it is its subscription's: after
   * a reconnect the broker has given the message back already ("unknown delivery tag" otherwise).
   * They leave at the end of the turn, coalesced by the channel's AckBatcher; a nack leaves at once.
   */
  #settle(ack: boolean): void {
    const c = this.#consumer;
    if (c.sub.consumer === c) {
      try {
        if (ack) c.acks.ack(this.raw);
        else {
          this.#host.coalesceWrites();
          c.channel.nack(this.raw, false, true);
          c.acks.settledOtherwise(this.raw);
        }
      } catch {
        // The channel closed under us: the broker redelivers it.
      }
    }
    this.#state = DONE;
    // A consumer no longer its subscription's counts nothing in flight any more: harmless.
    c.inflight--;
    this.#host.notifySettled();
  }

  /** Stores a copy (confirmed) in `queue`, then acks the original: never lost in between. */
  async #moveTo(queue: string, copyHeaders: Record<string, string>): Promise<void> {
    if (this.#state !== OPEN) return;
    this.#state = SETTLING;
    try {
      const options = encodeProperties(copyHeaders, { [TOPIC_HEADER]: this.topic });
      await this.#host.publisher.publish({ exchange: '', routingKey: queue, content: this.raw.content, options, topic: this.topic });
    } catch (err) {
      this.#settle(false);
      throw err;
    }
    this.#settle(true);
  }
}
