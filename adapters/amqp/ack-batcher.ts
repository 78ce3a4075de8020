import type { Channel, Message } from 'amqplib';

/**
 * Coalesces the acks of one consuming channel: what is acked in one turn of the event loop goes
 * out, in the check phase of that turn, as one `basic.ack` with `multiple` set for the longest run
 * of settled deliveries from the oldest one still open, and as single acks for the rest.
 *
 * RabbitMQ handles each ack frame on its own; at 1,000 deliveries in flight most acks of a turn
 * are contiguous, so the broker (which shares the machine's cores with its clients) and the
 * consumer both do less per message. The guarantee does not change: `multiple` covers a delivery
 * only once its own ack was asked for here, or once it was settled otherwise (a nack or reject,
 * sent at once, ends its delivery at the broker: `multiple` acks only what is still outstanding).
 * No ack waits on a slower message for longer than the turn: what cannot join the run leaves as a
 * single ack in the same flush. A closed channel's pending acks are dropped; the broker redelivers
 * those messages, as it would had the connection dropped a moment earlier.
 */
export class AckBatcher {
  /** Delivery tags received and not yet settled towards the broker, oldest first (tags grow). */
  private readonly open = new Set<number>();
  /** Tags whose ack is asked for and not yet sent. */
  private readonly acked = new Set<number>();
  private scheduled = false;
  private closed = false;

  constructor(private readonly ch: Channel) {
    ch.once('close', () => {
      this.closed = true;
      this.open.clear();
      this.acked.clear();
    });
  }

  /** A delivery arrived on the channel. */
  received(msg: Message): void {
    if (!this.closed) this.open.add(msg.fields.deliveryTag);
  }

  /** Ack `msg` in this turn's flush. */
  ack(msg: Message): void {
    if (this.closed) return;
    this.acked.add(msg.fields.deliveryTag);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Settled by a nack or reject the caller sends itself (at once). */
  settledOtherwise(msg: Message): void {
    this.open.delete(msg.fields.deliveryTag);
  }

  /** Sends the acks asked for so far. Called by the turn's check phase, and before the channel closes. */
  readonly flush = (): void => {
    this.scheduled = false;
    if (this.closed || this.acked.size === 0) return;
    let upTo = -1;
    for (const tag of this.open) {
      if (!this.acked.has(tag)) break;
      upTo = tag;
      this.open.delete(tag);
      this.acked.delete(tag);
    }
    if (upTo >= 0) this.send(upTo, true);
    for (const tag of this.acked) {
      this.open.delete(tag);
      this.send(tag, false);
    }
    this.acked.clear();
  };

  private send(deliveryTag: number, multiple: boolean): void {
    try {
      this.ch.ack({ fields: { deliveryTag } } as Message, multiple);
    } catch {
      // The channel is closing: the broker gives these messages back.
    }
  }
}
