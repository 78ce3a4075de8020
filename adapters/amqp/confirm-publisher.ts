/**
 * Publishing with publisher confirms over reconnects: the adapter kit's PublishWindow (at most
 * `maxUnconfirmed` written and not yet confirmed, the rest waiting in order, one deadline timer
 * for every publish timeout) on one ConfirmChannel, paused while there is no channel or its
 * buffer is full, and re-publication of everything unconfirmed when the channel is replaced. A
 * publish promise settles exactly once: on the broker's ack (after a basic.return for a mandatory
 * publish: reject), a refusal of the channel, or the publish timeout. A nack (the broker did not
 * store the message) is published again after a back-off, until the publish timeout: on a
 * cluster RabbitMQ nacks what was in flight to a quorum queue whose leader went down (issue 21:
 * a third of the publishes of a stream through three leader kills), and a queue full with
 * `x-overflow: reject-publish` nacks until there is room; the caller gets PublishTimeoutError
 * (not PublishRejectedError) when it never was stored.
 *
 * Per message on the hot path: one Pending (a WindowEntry, also the promise's executor target),
 * one promise, one confirm callback.
 *
 * Messages are written with publishConfirmedOn (direct-publish.ts): the frame fields are built
 * once per message, not by amqplib on every write, and kept for a re-publication.
 */
import type { ConfirmChannel, Message, Options } from 'amqplib';
import { PublishWindow, WindowEntry } from '../../lib/adapter-kit';
import { NotConnectedError, PublishTimeoutError, UnroutableError } from '../../lib/errors';
import { isNack } from './amqplib-internals';
import { isChannelRefusal } from './broker-errors';
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

/** The first wait before a nacked message is published again, and the longest. */
const NACK_RESEND_AFTER_MS = 50;
const NACK_RESEND_AT_MOST_MS = 1000;

class Pending extends WindowEntry implements ConfirmedMessage {
  returned = false;
  /** The broker's nacks of it so far (each one published again after a back-off). */
  nacks = 0;
  /** The channel it was last written to; a confirm from any other channel is stale. */
  channel: ConfirmChannel | undefined = undefined;
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

  /** `token` ties a mandatory publish to its basic.return (a header on the message). */
  constructor(m: ConfirmPublish, readonly token: string | undefined, timeoutMs: number) {
    super(m.topic, timeoutMs);
    const opts = token ? { ...m.options, headers: { ...(m.options.headers ?? {}), [RETURN_TOKEN_HEADER]: token } } : m.options;
    this.exchange = m.exchange;
    this.routingKey = m.routingKey;
    this.content = m.content;
    this.fields = publishFields(m.exchange, m.routingKey, opts);
    this.options = this.fields ? undefined : opts;
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
  private readonly window: PublishWindow<Pending>;
  private readonly byToken = new Map<string, Pending>();
  private tokens = 0;

  constructor(private readonly options: ConfirmPublisherOptions) {
    this.window = new PublishWindow<Pending>({
      limit: options.maxUnconfirmed,
      send: (p) => this.write(p),
      timeoutError: (p) => {
        if (p.token) this.byToken.delete(p.token);
        return new PublishTimeoutError(p.label, p.timeoutMs);
      },
    });
    // No channel yet: what is published waits.
    this.window.pause();
  }

  publish(m: ConfirmPublish): Promise<void> {
    if (!this.channel) {
      if (this.options.whileDisconnected === 'reject') {
        return Promise.reject(new NotConnectedError(`Not connected: publish of ${m.topic} refused (whileDisconnected: 'reject')`));
      }
      if (this.window.waiting >= this.options.maxBuffered) {
        return Promise.reject(new NotConnectedError(`Not connected and ${this.options.maxBuffered} publishes already wait: publish of ${m.topic} refused`));
      }
    }
    const token = m.options.mandatory ? `${process.pid}-${++this.tokens}-${Math.random().toString(36).slice(2, 8)}` : undefined;
    const p = new Pending(m, token, m.timeoutMs ?? this.options.publishTimeoutMs);
    if (token) this.byToken.set(token, p);
    return this.window.submit(p);
  }

  /** Use this channel from now on; everything unconfirmed on the previous one is written again first. */
  attach(channel: ConfirmChannel): void {
    this.channel = channel;
    channel.on('return', (msg: Message) => this.onReturn(msg));
    channel.on('drain', () => {
      if (this.channel === channel) this.window.resume();
    });
    this.window.resume();
  }

  /**
   * The channel is gone. After a lost connection what it had not confirmed goes back to the front
   * of the queue, in order, to be published again (the broker may have stored some: duplicates,
   * never loss). After a refusal of the channel itself those messages are rejected with it, since
   * publishing them again would be refused again.
   */
  detach(channel: ConfirmChannel, refusal?: unknown): void {
    if (this.channel === channel) {
      this.channel = undefined;
      this.window.pause();
    }
    const on = [...this.window.entries()].filter((p) => p.channel === channel);
    if (refusal !== undefined && isChannelRefusal(refusal)) {
      for (const p of on) this.finish(p, this.options.refusal(refusal, p.label));
    } else {
      this.window.releaseAll((p) => p.channel === channel);
    }
    for (const p of on) p.channel = undefined;
  }

  /** Resolves once nothing is queued or unconfirmed (each publish ends by its timeout at the latest). */
  whenIdle(): Promise<void> {
    return this.window.whenIdle();
  }

  /** Rejects everything not yet settled (used by close once nothing more can be sent). */
  failAll(err: Error): void {
    this.byToken.clear();
    this.window.failAll(err);
  }

  /** The window's send: writes `p` to the channel (the window is paused whenever there is none). */
  private write(p: Pending): void {
    const ch = this.channel!;
    p.channel = ch;
    p.returned = false;
    let ok: boolean;
    try {
      ok = publishConfirmedOn(ch, p, (err: unknown) => this.onConfirm(p, ch, err));
    } catch {
      // The channel is closing; its 'close' will detach it and put this message back in the queue.
      this.window.pause();
      return;
    }
    if (!ok) this.window.pause(); // until the channel's 'drain'
  }

  private onConfirm(p: Pending, ch: ConfirmChannel, err: unknown): void {
    if (p.channel !== ch) return;
    // A closed channel is handled by detach() (publish again), so only the broker's answers
    // settle here; amqplib tells them apart only by the error's text (amqplib-internals.ts).
    if (err && !isNack(err)) return;
    p.channel = undefined;
    if (err) this.resendLater(p);
    else if (p.returned) this.finish(p, new UnroutableError(p.label));
    else this.finish(p);
  }

  /** A nacked publish: its slot freed, written again after 50 ms, doubling up to 1 s; its deadline still holds. */
  private resendLater(p: Pending): void {
    this.window.release(p, false);
    const wait = Math.min(NACK_RESEND_AT_MOST_MS, NACK_RESEND_AFTER_MS * 2 ** p.nacks++);
    setTimeout(() => this.window.resubmit(p), wait).unref();
  }

  private onReturn(msg: Message): void {
    const token = (msg.properties.headers as Record<string, unknown> | undefined)?.[RETURN_TOKEN_HEADER];
    const p = typeof token === 'string' ? this.byToken.get(token) : undefined;
    if (p) p.returned = true;
  }

  private finish(p: Pending, err?: Error): void {
    if (p.token) this.byToken.delete(p.token);
    this.window.finish(p, err);
  }
}
