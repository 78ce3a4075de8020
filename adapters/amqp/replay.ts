/**
 * Replay from a stream (SubscriptionSpec.replay; docs/scaling.md, "Replay from a stream"): a
 * subscription that reads the history stream of its type (partition-topology.ts) with
 * `x-stream-offset`, and keeps its group's position itself, since AMQP 0.9.1 has no server-side
 * offset tracking: the last offset handled (every offset before it handled too) is written to the
 * group's `.position` queue, a last-value queue of one message (x-max-length 1), every
 * `saveEveryMs` or `saveEvery` messages, whichever comes first, and when the subscription closes; each attach reads it with basic.get and resumes
 * after it. At-least-once: what was handled after the last write is handled again after a crash.
 * A stream cannot take a message back, so requeue() and retry() wait in place (in-place-retry.ts).
 */
import type { Channel } from 'amqplib';
import { InPlaceRetryDelivery } from '../../lib/adapter-kit';
import { Headers } from '../../lib/transport';
import type { DeliveryHandler, HistoryRetention, Subscription, SubscriptionSpec } from '../../lib/transport';
import type { ConfirmPublisher } from './confirm-publisher';
import { toBrokerError } from './broker-errors';
import { HEADER_PREFIX, HEADER_PREFIX_COLON } from './wire';
import { historyTopology, positionQueueName, replayTopology } from './partition-topology';
import type { AmqpSession } from './session';
import type { Subscriptions } from './subscriptions';
import type { TopologyOptions } from './topology';

export interface ReplayHost {
  readonly subscriptions: Subscriptions;
  readonly topology: TopologyOptions;
  /** AmqpTransportOptions.replayClockMarginMs: a replay from a Date attaches this much earlier. */
  readonly replayClockMarginMs: number;
  readonly publisher: ConfirmPublisher;
  error(err: Error): void;
}

/** The position as stored: the last offset handled, with every offset before it. */
interface StoredPosition {
  readonly offset: number;
  readonly time: string;
}

/**
 * `x-stream-offset` of the first attach: a name, an offset, or a time (an AMQP timestamp,
 * seconds), `marginMs` before a Date (the broker's clock may lag the caller's).
 */
export function streamOffsetArgument(from: NonNullable<SubscriptionSpec['replay']>['from'], marginMs: number): unknown {
  if (from instanceof Date) return { '!': 'timestamp', value: Math.floor((from.getTime() - marginMs) / 1000) };
  return from;
}

export class ReplaySubscription implements Subscription {
  private sub?: Subscription;
  private readonly queue: string;
  /** Offsets delivered on the current attach, in order, and which of them are settled. */
  private pending: number[] = [];
  private readonly done = new Set<number>();
  /** Deliveries before this offset are skipped (a stream may start a read at its chunk's beginning). */
  private startAt = 0;
  /**
   * On the first attach from a Date (its time in ms): the leading deliveries published before it
   * are skipped. A stream attaches at the first chunk stored in the second `replayClockMarginMs`
   * before it (by the broker's clock; AMQP timestamps are seconds), so it hands over messages
   * published earlier; the first message whose CloudEvents `time` is at or after the Date (or
   * that has none; a time that is only a plain publisher's AMQP timestamp counts as any moment of
   * its second: certainlyBefore) ends the skipping, so a later message from a publisher whose
   * clock lags is never dropped.
   */
  private notBefore?: number;
  private handled?: number;
  private saved?: number;
  /** One write at a time: a later one never lands before an earlier one. */
  private saving = false;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly host: ReplayHost,
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly saveEveryMs = 1000,
    private readonly saveEvery = 100,
  ) {
    this.queue = positionQueueName(spec.group!, spec.name);
  }

  async open(): Promise<this> {
    const topology = replayTopology(this.spec, this.host.topology);
    const onRetry: DeliveryHandler = (d) => this.handler(d);
    const onDelivery: DeliveryHandler = (d) => {
      const offset = offsetOf(d.raw);
      if (offset === undefined || offset < this.startAt) return d.ack();
      if (this.notBefore !== undefined) {
        if (certainlyBefore(d.headers[Headers.time], !hasCloudEventsTime(d.raw), this.notBefore)) return d.ack();
        this.notBefore = undefined;
      }
      this.pending.push(offset);
      return this.handler(new InPlaceRetryDelivery(d, onRetry, { requeueInPlace: true, settled: () => this.settled(offset) }));
    };
    this.sub = await this.host.subscriptions.add(this.spec, onDelivery, false, { topology, consumeArguments: (ch) => this.consumeArguments(ch) });
    this.timer = setInterval(() => void this.save().catch((err) => this.host.error(err as Error)), this.saveEveryMs).unref();
    return this;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.sub?.close();
    await this.save().catch((err) => this.host.error(err as Error));
  }

  /** Reads the stored position (on every attach: a reconnect resumes from it too). */
  private async consumeArguments(ch: Channel): Promise<Record<string, unknown>> {
    const msg = await ch.get(this.queue, { noAck: false });
    let stored: StoredPosition | undefined;
    if (msg) {
      try {
        stored = JSON.parse(msg.content.toString('utf8')) as StoredPosition;
      } catch {
        stored = undefined;
      }
      ch.nack(msg, false, true); // it stays: the position is read, not taken
    }
    // What this process handled and has not written yet counts too (a reconnect, not a restart).
    const resume = Math.max(Number.isInteger(stored?.offset) ? stored!.offset : -1, this.handled ?? -1);
    this.pending = [];
    this.done.clear();
    this.notBefore = undefined;
    if (resume >= 0) {
      this.startAt = resume + 1;
      return { 'x-stream-offset': resume + 1 };
    }
    const from = this.spec.replay!.from;
    this.startAt = typeof from === 'number' ? from : 0;
    if (from instanceof Date) this.notBefore = from.getTime();
    return { 'x-stream-offset': streamOffsetArgument(from, this.host.replayClockMarginMs) };
  }

  private settled(offset: number): void {
    this.done.add(offset);
    while (this.pending.length && this.done.has(this.pending[0])) {
      this.handled = this.pending.shift()!;
      this.done.delete(this.handled);
    }
    if (!this.saving && this.handled !== undefined && this.handled - (this.saved ?? -1) >= this.saveEvery) {
      void this.save().catch((err) => this.host.error(err as Error));
    }
  }

  /** Writes the position when it moved (confirmed: once this resolves, a restart resumes after it). */
  private async save(): Promise<void> {
    const offset = this.handled;
    if (offset === undefined || offset === this.saved || this.saving) return;
    const position: StoredPosition = { offset, time: new Date().toISOString() };
    this.saving = true;
    try {
      await this.host.publisher.publish({
        exchange: '',
        routingKey: this.queue,
        content: Buffer.from(JSON.stringify(position)),
        options: { persistent: true, contentType: 'application/json' },
        topic: this.queue,
      });
      this.saved = offset;
    } finally {
      this.saving = false;
    }
  }
}

/**
 * Whether an ISO `time` is before `ms`. One that stands for an AMQP `timestamp` (`wholeSeconds`:
 * a plain publisher's, in seconds; wire.ts decodeHeaders) is before only when its whole second
 * is; no time, or one that does not parse, is not before.
 */
function certainlyBefore(time: string | undefined, wholeSeconds: boolean, ms: number): boolean {
  const t = Date.parse(time ?? '');
  return (wholeSeconds ? t + 999 : t) < ms;
}

/** The headers table of a stream delivery (`raw`: amqplib's message). */
function tableOf(raw: unknown): Record<string, unknown> | undefined {
  return (raw as { properties?: { headers?: Record<string, unknown> } } | undefined)?.properties?.headers;
}

/** Whether the delivery's headers table carries the CloudEvents `time` (in ms), not only a `timestamp`. */
function hasCloudEventsTime(raw: unknown): boolean {
  const table = tableOf(raw);
  return table !== undefined && (table[`${HEADER_PREFIX}time`] !== undefined || table[`${HEADER_PREFIX_COLON}time`] !== undefined);
}

function offsetOf(raw: unknown): number | undefined {
  const v = tableOf(raw)?.['x-stream-offset'];
  return typeof v === 'number' ? v : undefined;
}

/** Declares the history stream of `type` and binds it (on the session's topology channel). */
export async function declareHistory(session: AmqpSession, exchange: string, type: string, retention: HistoryRetention): Promise<void> {
  const { queue, binding } = historyTopology(exchange, type, retention);
  const ch = await session.channels.get('topology');
  try {
    await ch.assertQueue(queue.name, queue.options);
    await ch.bindQueue(queue.name, binding.exchange, binding.pattern);
  } catch (err) {
    throw toBrokerError(err, { user: session.user, action: `keep the history of ${type}`, resource: `queue '${queue.name}'` });
  }
}
