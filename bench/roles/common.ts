/**
 * What the raw and plain client roles share: counting the messages a consumer receives, the
 * replies of direct reply-to matched to their requests, and the request loop of an RPC client.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import amqplib, { Channel } from 'amqplib';
import type { ChildIo } from '../child';
import { benchEvent } from '../payload';
import { measureRequests, now } from '../window';

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

/**
 * The raw request/reply client loop (plain-amqp.ts and raw-amqp.ts): `p.inflight` requests at a
 * time, each published by `publish(ch, body, id)` (false: wait for 'drain' before the next one),
 * its reply from direct reply-to checked against its request.
 */
export async function rpcClient(io: ChildIo, publish: (ch: Channel, body: Buffer, correlationId: string) => boolean) {
  const p = io.params;
  const conn = await amqplib.connect(p.url, { noDelay: true });
  const ch = await conn.createChannel();
  const replyTo = await directReplies(ch);
  let drain: Promise<unknown> | undefined;
  const call = async (i: number) => {
    while (drain) await drain;
    const id = randomUUID();
    const reply = replyTo(id);
    if (!publish(ch, Buffer.from(JSON.stringify(benchEvent(i))), id)) drain = once(ch, 'drain').then(() => (drain = undefined));
    const r = JSON.parse((await reply).toString('utf8'));
    if (r.seq !== i) throw new Error(`reply ${r.seq} to request ${i}`);
  };
  io.ready();
  await io.go;
  const result = await measureRequests(p.inflight, p.warmup, p.n, call);
  await conn.close();
  return result;
}
