/**
 * One delivery of a subscription: settled once (ack, requeue, a retry through a delay queue, a
 * dead letter), on the channel it came from and only while that channel is its subscription's.
 */
import type { ConsumeMessage, Options } from 'amqplib';
import { deadLetterHeaders, SettleOnce } from '../../lib/adapter-kit';
import { CourierError } from '../../lib/errors';
import { DeadLetterInfo, Delivery, Headers, ReplyMessage } from '../../lib/transport';
import type { ConfirmPublisher } from './confirm-publisher';
import type { Consumer } from './subscriptions';
import { deadLetterTarget, delayQueue, QueueDeclaration, TopologyOptions } from './topology';
import { addBrokerDeathReason, copyProperties, decodeAttempt, decodeHeaders, decodeRedeliveries, decodeTopic, encodeProperties, REDELIVERIES_HEADER, TOPIC_HEADER } from './wire';

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

/**
 * A class with its methods on the prototype: per message one object, not one object and a dozen
 * closures. Settled once (SettleOnce of the adapter kit): a retry or dead letter whose copy was
 * not stored gives the message back (a nack) and stays settled.
 */
export class AmqpDelivery extends SettleOnce implements Delivery {
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

  constructor(host: DeliveryHost, consumer: Consumer, msg: ConsumeMessage) {
    super();
    const props = msg.properties;
    const headers = decodeHeaders(props);
    if (consumer.sub.deadLetters) addBrokerDeathReason(headers, props);
    this.topic = decodeTopic(props, msg.fields.routingKey);
    this.body = msg.content;
    this.headers = headers;
    this.attempt = decodeAttempt(headers);
    // A copy Courier put back in place of a redelivery (countRedelivery) is a redelivery too.
    this.redelivered = msg.fields.redelivered || decodeRedeliveries(props) > 0;
    this.replyExpected = !!props.replyTo;
    this.raw = msg;
    this.#host = host;
    this.#consumer = consumer;
  }

  ack(): Promise<void> {
    return this.settle(() => this.#ack());
  }

  requeue(): Promise<void> {
    return this.settle(() => this.#nack());
  }

  retry(delayMs: number): Promise<void> {
    return this.settle(async () => {
      const queue = delayQueue(this.#consumer.sub.queue!, delayMs, this.#host.topology);
      await this.#orGiveBack(this.#host.ensureQueue(queue));
      await this.#moveTo(queue.name, { ...this.headers, [Headers.attempt]: String(this.attempt + 1) });
    });
  }

  /**
   * A redelivered message of a classic queue, before any handler sees it (classic queues count
   * no redeliveries; a message that crashes its consumer would come back without end). The
   * count lives in the message: a copy with REDELIVERIES_HEADER one higher is stored (confirmed)
   * at the back of the same queue, then this delivery is acked; past `limit` redeliveries it is
   * dead-lettered with reason `delivery-limit` instead. Like a quorum queue's `x-delivery-limit`,
   * a message is handed over at most limit + 1 times per attempt; a retry() starts again at 0.
   */
  countRedelivery(limit: number): Promise<void> {
    const count = decodeRedeliveries(this.raw.properties) + 1;
    if (count > limit) {
      return this.deadLetter({
        reason: 'delivery-limit',
        errorName: 'DeliveryLimitError',
        errorMessage: `redelivered ${count} times (limit ${limit}): its consumer may crash on it`,
      });
    }
    return this.settle(async () => {
      const props = this.raw.properties;
      const options = copyProperties(props, { [REDELIVERIES_HEADER]: count, [TOPIC_HEADER]: this.topic });
      const queue = this.#consumer.sub.queue!;
      await this.#orGiveBack(this.#host.publisher.publish({ exchange: '', routingKey: queue, content: this.raw.content, options, topic: this.topic }));
      this.#ack();
    });
  }

  deadLetter(info: DeadLetterInfo): Promise<void> {
    return this.settle(async () => {
      const sub = this.#consumer.sub;
      const target = deadLetterTarget(sub.spec, sub.deadLetters, sub.queue!, this.#host.topology);
      if (target.declare) await this.#orGiveBack(this.#host.ensureQueue(target.declare));
      // The count this delivery was handled with: a message from a plain AMQP client has no
      // attempt header of its own, and its dead letter must still say how often it was tried.
      const { group, name } = sub.spec;
      await this.#moveTo(target.queue, deadLetterHeaders(this.headers, { ...info, group, name, attempt: this.attempt }));
    });
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

  /** The consumer frees its slot; a close() waiting for in-flight deliveries looks again. */
  protected override onSettled(): void {
    // A consumer no longer its subscription's counts nothing in flight any more: harmless.
    this.#consumer.inflight--;
    this.#host.notifySettled();
  }

  /**
   * Acks go to the channel the delivery came from, and only while it is its subscription's: after
   * a reconnect the broker has given the message back already ("unknown delivery tag" otherwise).
   * They leave at the end of the turn, coalesced by the channel's AckBatcher.
   */
  #ack(): void {
    const c = this.#consumer;
    if (c.sub.consumer !== c) return;
    try {
      c.acks.ack(this.raw);
    } catch {
      // The channel closed under us: the broker redelivers it.
    }
  }

  /** Gives the message back to the broker (a nack with requeue), at once. */
  #nack(): void {
    const c = this.#consumer;
    if (c.sub.consumer !== c) return;
    try {
      this.#host.coalesceWrites();
      c.channel.nack(this.raw, false, true);
      c.acks.settledOtherwise(this.raw);
    } catch {
      // The channel closed under us: the broker redelivers it.
    }
  }

  /** Awaits `step`; when it fails the message is given back and the delivery stays settled. */
  async #orGiveBack(step: Promise<void>): Promise<void> {
    try {
      await step;
    } catch (err) {
      this.#nack();
      this.markSettled();
      throw err;
    }
  }

  /** Stores a copy (confirmed) in `queue`, then acks the original: never lost in between. */
  async #moveTo(queue: string, copyHeaders: Record<string, string>): Promise<void> {
    const options = encodeProperties(copyHeaders, { [TOPIC_HEADER]: this.topic });
    await this.#orGiveBack(this.#host.publisher.publish({ exchange: '', routingKey: queue, content: this.raw.content, options, topic: this.topic }));
    this.#ack();
  }
}
