import type { Channel, Message } from 'amqplib';

const UNSEEN = 0;
/** Received, not settled. */
const OPEN = 1;
/** Its ack is asked for and not yet sent. */
const ACK_ASKED = 2;
/** Settled towards the broker (acked singly, or a nack or reject sent by the caller). */
const SETTLED = 3;

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
 *
 * A channel's delivery tags are consecutive (1, 2, 3, ...), so the state of each delivery not yet
 * settled lives in a ring indexed by tag: nothing is allocated per message (a Set of tags
 * reallocated its table as it grew and shrank, and each table outlived a scavenge).
 */
export class AckBatcher {
  /** State per tag, at `tag & mask`, for the tags in [first, next). Grows by doubling. */
  private states = new Uint8Array(1024);
  private mask = 1023;
  /** Every tag below is settled towards the broker. */
  private first = 1;
  /** One past the largest tag received. */
  private next = 1;
  private asked = 0;
  private scheduled = false;
  private closed = false;

  constructor(private readonly ch: Channel) {
    ch.once('close', () => {
      this.closed = true;
      this.asked = 0;
    });
  }

  /** A delivery arrived on the channel. */
  received(msg: Message): void {
    if (this.closed) return;
    const tag = msg.fields.deliveryTag;
    if (tag < this.next) return; // not a new tag (never expected)
    while (tag + 1 - this.first > this.states.length) this.grow();
    for (let t = this.next; t < tag; t++) this.states[t & this.mask] = SETTLED; // tags never seen here
    this.states[tag & this.mask] = OPEN;
    this.next = tag + 1;
  }

  /** Ack `msg` in this turn's flush. */
  ack(msg: Message): void {
    if (this.closed || !this.set(msg.fields.deliveryTag, ACK_ASKED)) return;
    this.asked++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /** Settled by a nack or reject the caller sends itself (at once). */
  settledOtherwise(msg: Message): void {
    if (!this.closed) this.set(msg.fields.deliveryTag, SETTLED);
  }

  /** Sends the acks asked for so far; true when it sent any. Called by the turn's check phase, and before the channel closes. */
  readonly flush = (): boolean => {
    this.scheduled = false;
    if (this.closed || this.asked === 0) return false;
    const { states, mask, next } = this;
    let t = this.first;
    let upTo = -1;
    for (; t < next; t++) {
      const s = states[t & mask];
      if (s === OPEN) break;
      if (s === ACK_ASKED) {
        upTo = t;
        this.asked--;
      }
      states[t & mask] = UNSEEN;
    }
    this.first = t;
    if (upTo >= 0) this.send(upTo, true);
    for (; t < next && this.asked > 0; t++) {
      if (states[t & mask] !== ACK_ASKED) continue;
      states[t & mask] = SETTLED;
      this.asked--;
      this.send(t, false);
    }
    return true;
  };

  /** Moves an open delivery to `state`; false when it was not open. */
  private set(tag: number, state: number): boolean {
    if (tag < this.first || tag >= this.next || this.states[tag & this.mask] !== OPEN) return false;
    this.states[tag & this.mask] = state;
    return true;
  }

  private grow(): void {
    const bigger = new Uint8Array(this.states.length * 2);
    const mask = bigger.length - 1;
    for (let t = this.first; t < this.next; t++) bigger[t & mask] = this.states[t & this.mask];
    this.states = bigger;
    this.mask = mask;
  }

  private send(deliveryTag: number, multiple: boolean): void {
    try {
      this.ch.ack({ fields: { deliveryTag } } as Message, multiple);
    } catch {
      // The channel is closing: the broker gives these messages back.
    }
  }
}
