/**
 * Publishing with publisher confirms over reconnects: a bounded window of unconfirmed messages on
 * one ConfirmChannel, a local queue for what waits (window full, socket buffer full, no channel),
 * and re-publication of everything unconfirmed when the channel is replaced. A publish promise
 * settles exactly once: on the broker's ack (after a basic.return for a mandatory publish: reject),
 * its nack, a refusal of the channel, or the publish timeout; nothing is retried after a reject.
 *
 * Per message on the hot path: one Pending (which is also the promise's executor target), one
 * promise, one confirm callback. The unconfirmed messages are a list linked through their
 * Pendings (lib/linked-list.ts), not a Set. Publish timeouts share a single timer (a deadline sweep), not one
 * timer per message.
 *
 * Messages are written with publishConfirmedOn (direct-publish.ts): the frame fields are built
 * once per message, not by amqplib on every write, and kept for a re-publication.
 */
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { NotConnectedError, PublishRejectedError, PublishTimeoutError, UnroutableError } from '../../lib/errors';
import { DeadlineTimer } from '../../lib/deadline-timer';
import { Linked, LinkedList } from '../../lib/linked-list';
import { isChannelRefusal } from './broker-errors';
import { isNack } from './amqplib-internals';
import { ConfirmedMessage, publishConfirmedOn, publishFields, PublishFields } from './direct-publish';
import { RETURN_TOKEN_HEADER } from './wire';

/** One publish: where it goes, its body, its options, and what errors name it. */
export interface ConfirmPublish {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
  /** The topic named in errors. */
  readonly topic: string;
  /** Overrides the publisher's publishTimeoutMs. */
  readonly timeoutMs?: number;
}

class Pending implements Linked<Pending>, ConfirmedMessage {
  resolve!: () => void;
  reject!: (err: Error) => void;
  done = false;
  returned = false;
  /** In ConfirmPublisher.queue (waiting to be written). */
  queued = false;
  /** The channel it was last written to; a confirm from any other channel is stale. */
  channel: ConfirmChannel | undefined = undefined;
  /** Neighbours in ConfirmPublisher's list of unconfirmed messages (oldest first), while in it. */
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  /**
   * The basic.publish fields and properties (direct-publish.ts), built once and written again
   * on a re-publication; amqplib's `publish` takes them as its options too.
   */
  readonly fields: PublishFields | undefined;
  /** The caller's options, kept only where no fields can be built (CC, BCC): one object per message, not two. */
  readonly options: Options.Publish | undefined;
  readonly topic: string;
  /** performance.now() after which it fails with PublishTimeoutError. */
  readonly deadline: number;

  /** `token` ties a mandatory publish to its basic.return (a header on the message). */
  constructor(
    readonly seq: number,
    m: ConfirmPublish,
    readonly token: string | undefined,
    readonly timeoutMs: number,
  ) {
    const opts = token ? { ...m.options, headers: { ...(m.options.headers ?? {}), [RETURN_TOKEN_HEADER]: token } } : m.options;
    this.exchange = m.exchange;
    this.routingKey = m.routingKey;
    this.content = m.content;
    this.fields = publishFields(m.exchange, m.routingKey, opts);
    this.options = this.fields ? undefined : opts;
    this.topic = m.topic;
    this.deadline = performance.now() + timeoutMs;
  }
}

export interface ConfirmPublisherOptions {
  /** Most messages written and not yet confirmed. */
  readonly maxUnconfirmed: number;
  /** Most messages held while no channel is open (with `whileDisconnected: 'buffer'`). */
  readonly maxBuffered: number;
  readonly whileDisconnected: 'buffer' | 'reject';
  readonly publishTimeoutMs: number;
  /** Turns a channel refusal (ACCESS_REFUSED on the exchange, ...) into the typed error. */
  readonly refusal: (err: unknown, topic: string) => Error;
}

export class ConfirmPublisher {
  private channel?: ConfirmChannel;
  private waitingForDrain = false;
  private readonly queue: Pending[] = [];
  /** Written and not yet confirmed, oldest first: a list linked through Pending.prev / next. */
  private readonly inflight = new LinkedList<Pending>();
  private readonly byToken = new Map<string, Pending>();
  private seq = 0;
  /** Messages not yet settled (queued or unconfirmed). */
  private unsettled = 0;
  private idle: Array<() => void> = [];
  /** The one publish-timeout timer, never later than the earliest pending deadline. */
  private readonly sweepTimer = new DeadlineTimer(() => this.sweep());

  constructor(private readonly options: ConfirmPublisherOptions) {}

  /** Messages not yet settled (queued or unconfirmed). */
  get pending(): number {
    return this.unsettled;
  }

  publish(m: ConfirmPublish): Promise<void> {
    if (!this.channel) {
      if (this.options.whileDisconnected === 'reject') {
        return Promise.reject(new NotConnectedError(`Not connected: publish of ${m.topic} refused (whileDisconnected: 'reject')`));
      }
      if (this.queue.length >= this.options.maxBuffered) {
        return Promise.reject(new NotConnectedError(`Not connected and ${this.options.maxBuffered} publishes already wait: publish of ${m.topic} refused`));
      }
    }
    const seq = ++this.seq;
    const token = m.options.mandatory ? `${process.pid}-${seq}-${Math.random().toString(36).slice(2, 8)}` : undefined;
    const p = new Pending(seq, m, token, m.timeoutMs ?? this.options.publishTimeoutMs);
    const promise = new Promise<void>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    this.unsettled++;
    this.sweepTimer.armBy(p.deadline);
    if (token) this.byToken.set(token, p);
    p.queued = true;
    this.queue.push(p);
    this.pump();
    return promise;
  }

  /** Use this channel from now on; everything unconfirmed on the previous one is written again first. */
  attach(channel: ConfirmChannel): void {
    this.channel = channel;
    this.waitingForDrain = false;
    channel.on('return', (msg: Message) => this.onReturn(msg));
    channel.on('drain', () => {
      if (this.channel !== channel) return;
      this.waitingForDrain = false;
      this.pump();
    });
    this.pump();
  }

  /**
   * The channel is gone. After a lost connection what it had not confirmed goes back to the front
   * of the queue, in order, to be published again (the broker may have stored some: duplicates,
   * never loss). After a refusal of the channel itself those messages are rejected with it, since
   * publishing them again would be refused again.
   */
  detach(channel: ConfirmChannel, refusal?: unknown): void {
    if (this.channel === channel) this.channel = undefined;
    const unconfirmed: Pending[] = [];
    for (const p of this.inflight.toArray()) {
      if (p.channel !== channel) continue;
      this.inflight.delete(p);
      p.channel = undefined;
      if (p.done) continue;
      if (refusal !== undefined && isChannelRefusal(refusal)) this.finish(p, this.options.refusal(refusal, p.topic));
      else unconfirmed.push(p);
    }
    unconfirmed.sort((a, b) => a.seq - b.seq);
    for (const p of unconfirmed) p.queued = true;
    this.queue.unshift(...unconfirmed);
    this.notifyIdle();
  }

  /** Resolves once nothing is queued or unconfirmed (each publish ends by its timeout at the latest). */
  whenIdle(): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Rejects everything not yet settled (used by close once nothing more can be sent). */
  failAll(err: Error): void {
    const all = [...this.queue, ...this.inflight.toArray()];
    for (const p of all) p.queued = false; // emptied below; finish() need not search the queue
    for (const p of all) this.finish(p, err);
    this.queue.length = 0;
    for (const p of all) this.inflight.delete(p);
    this.notifyIdle();
  }

  private pump(): void {
    const ch = this.channel;
    while (ch && !this.waitingForDrain && this.inflight.size < this.options.maxUnconfirmed && this.queue.length) {
      const p = this.queue.shift()!;
      p.queued = false;
      if (p.done) continue;
      p.channel = ch;
      p.returned = false;
      this.inflight.add(p);
      let ok: boolean;
      const onConfirm = (err: unknown) => this.onConfirm(p, ch, err);
      try {
        ok = publishConfirmedOn(ch, p, onConfirm);
      } catch {
        // The channel is closing; its 'close' will detach it and put this message back in the queue.
        return;
      }
      if (!ok) this.waitingForDrain = true;
    }
    this.notifyIdle();
  }

  private onConfirm(p: Pending, ch: ConfirmChannel, err: unknown): void {
    if (p.channel !== ch) return;
    // A closed channel is handled by detach() (publish again), so only the broker's answers
    // settle here; amqplib tells them apart only by the error's text (amqplib-internals.ts).
    if (err && !isNack(err)) return;
    this.inflight.delete(p);
    p.channel = undefined;
    if (err) this.finish(p, new PublishRejectedError(p.topic, 'the broker nacked it (basic.nack)', { cause: err }));
    else if (p.returned) this.finish(p, new UnroutableError(p.topic));
    else this.finish(p);
    this.pump();
  }

  private onReturn(msg: Message): void {
    const token = (msg.properties.headers as Record<string, unknown> | undefined)?.[RETURN_TOKEN_HEADER];
    const p = typeof token === 'string' ? this.byToken.get(token) : undefined;
    if (p) p.returned = true;
  }

  private finish(p: Pending, err?: Error): void {
    if (p.done) return;
    p.done = true;
    this.unsettled--;
    if (p.token) this.byToken.delete(p.token);
    if (p.queued) {
      p.queued = false;
      const i = this.queue.indexOf(p);
      if (i >= 0) this.queue.splice(i, 1);
    }
    if (err) p.reject(err);
    else p.resolve();
    if (this.unsettled === 0) this.sweepTimer.stop();
    this.notifyIdle();
  }

  // ---- publish timeouts: one timer for all --------------------------------------------------

  /** Fails what is past its deadline and re-arms the timer for the earliest deadline left. */
  private sweep(): void {
    const now = performance.now();
    const expired: Pending[] = [];
    let next = Infinity;
    const scan = (p: Pending) => {
      if (p.done) return;
      if (p.deadline <= now) expired.push(p);
      else if (p.deadline < next) next = p.deadline;
    };
    for (const p of this.queue) scan(p);
    for (let p = this.inflight.head; p; p = p.next) scan(p);
    // Settled in publication order, as the timers of each message did.
    expired.sort((a, b) => a.seq - b.seq);
    for (const p of expired) this.finish(p, new PublishTimeoutError(p.topic, p.timeoutMs));
    if (next !== Infinity && this.unsettled > 0) this.sweepTimer.armBy(next);
  }

  private notifyIdle(): void {
    if (!this.idle.length || this.unsettled !== 0) return;
    const waiters = this.idle;
    this.idle = [];
    for (const w of waiters) w();
  }
}

