/**
 * A delivery whose retry waits in place: `retry(delay)` does not move the message anywhere (a
 * delay queue would let the messages behind it overtake it); it keeps the original unsettled and,
 * after the delay, hands the same message to the handler again with the attempt count one
 * higher. What must stay in order (a partition of per-key order, a stream read from a position)
 * uses it; the price is that the message blocks what follows it meanwhile. `requeue()` may wait
 * in place too (a stream cannot take a message back). If the process dies meanwhile, the broker
 * delivers the original again, counted from its own attempt header.
 */
import type { DeadLetterInfo, Delivery, DeliveryHandler, ReplyMessage } from '../transport';
import { Headers } from '../transport';

export interface InPlaceRetryOptions {
  /** requeue() hands the message to the handler again at once, in place, instead of giving it back. */
  readonly requeueInPlace?: boolean;
  /** Called once the original is settled for good (acked, dead-lettered, given back). */
  readonly settled?: () => void;
}

export class InPlaceRetryDelivery implements Delivery {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly redelivered: boolean;
  readonly replyExpected: boolean;
  readonly raw: unknown;
  #done = false;

  constructor(
    private readonly inner: Delivery,
    private readonly handler: DeliveryHandler,
    private readonly options: InPlaceRetryOptions = {},
    readonly attempt = inner.attempt,
    redelivered = inner.redelivered,
  ) {
    this.topic = inner.topic;
    this.body = inner.body;
    this.headers = attempt === inner.attempt ? inner.headers : { ...inner.headers, [Headers.attempt]: String(attempt) };
    this.redelivered = redelivered;
    this.replyExpected = inner.replyExpected;
    this.raw = inner.raw;
  }

  ack(): Promise<void> {
    return this.final(() => this.inner.ack());
  }

  requeue(): Promise<void> {
    if (!this.options.requeueInPlace) return this.final(() => this.inner.requeue());
    return this.again(0, this.attempt);
  }

  retry(delayMs: number): Promise<void> {
    return this.again(delayMs, this.attempt + 1);
  }

  deadLetter(info: DeadLetterInfo): Promise<void> {
    return this.final(() => this.inner.deadLetter(info));
  }

  reply(message: ReplyMessage): Promise<void> {
    return this.inner.reply(message);
  }

  private async final(settle: () => Promise<void>): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      await settle();
    } finally {
      this.options.settled?.();
    }
  }

  private async again(delayMs: number, attempt: number): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    const next = new InPlaceRetryDelivery(this.inner, this.handler, this.options, attempt, true);
    // unref: a process that stops meanwhile leaves the original unsettled; the broker delivers it again.
    setTimeout(() => void this.handler(next).catch(() => undefined), Math.max(0, delayMs)).unref();
  }
}
