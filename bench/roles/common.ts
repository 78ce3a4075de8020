/**
 * What the raw and plain client roles share: counting the messages a consumer receives, and the
 * replies of direct reply-to matched to their requests.
 */
import type { Channel } from 'amqplib';
import { now } from '../window';

/** Counts received messages; `done` resolves at the n-th, `result()` gives the count and the first and last arrival. */
export class ArrivalCounter {
  count = 0;
  private first = 0;
  private last = 0;
  private finish!: () => void;
  readonly done = new Promise<void>((resolve) => (this.finish = resolve));
  constructor(private readonly n: number) {}
  arrived(): void {
    if (++this.count === 1) this.first = now();
    if (this.count === this.n) {
      this.last = now();
      this.finish();
    }
  }
  /** `last` is now when fewer than n arrived (an open-ended consumer stopped early). */
  result(): { count: number; first: number; last: number } {
    return { count: this.count, first: this.first, last: this.last || now() };
  }
}

/** Consumes direct reply-to on `ch`; `expect(id)` resolves with the body of the reply whose correlation id is `id`. */
export async function directReplies(ch: Channel): Promise<(correlationId: string) => Promise<Buffer>> {
  const pending = new Map<string, (body: Buffer) => void>();
  await ch.consume(
    'amq.rabbitmq.reply-to',
    (msg) => {
      if (!msg) return;
      const resolve = pending.get(msg.properties.correlationId);
      pending.delete(msg.properties.correlationId);
      resolve?.(msg.content);
    },
    { noAck: true },
  );
  return (id) => new Promise<Buffer>((resolve) => pending.set(id, resolve));
}
