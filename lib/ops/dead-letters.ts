/**
 * Dead letters of one subscription (group and handler name): list, show, replay, purge. Built on
 * `Transport.subscribeDeadLetters` (docs/failure-policy.md says where each transport keeps them)
 * and, for replay, the optional {@link SubscriptionAdmin} capability.
 *
 * A scan reads the subscription's dead letters without settling them and gives back what it does
 * not act on when it ends (they stay dead letters, in their order). It ends when `limit` dead
 * letters were read, when the broker's count of the dead-letter queue (AMQP) was read, or after
 * `idleMs` without a new one. Replay sends each selected dead letter back to its subscription
 * alone (attempt count 1, header `courierreplayed`), and removes the dead letter only once the
 * broker confirmed the copy: a replay cut short at any point loses nothing (the dead letters not
 * yet removed are still there; one whose copy was confirmed but not yet removed is replayed again
 * by the next run: a duplicate, which the handler's idempotency absorbs).
 */
import { CourierError, redactSecrets } from '../errors';
import { matchTopic } from '../topic';
import { Delivery, Headers, OutgoingMessage, Subscription, SubscriptionSpec, Transport } from '../transport';
import { subscriptionAdmin, SubscriptionAdmin } from './admin';

/** The subscription whose dead letters are meant: its group (none for an instance or broadcast one), name and pattern. */
export interface DeadLetterSource {
  readonly group?: string;
  /** The handler's name in its group, `Class.method`. */
  readonly name: string;
  /** The handler's pattern (MQTT derives the dead-letter filter from it). Default `#`. */
  readonly pattern?: string;
  /** For an instance subscription: `<source>.<instanceId>`. */
  readonly instance?: string;
}

/** One dead letter as read: the envelope, why it died, and its bytes. */
export interface DeadLetter {
  readonly id: string | undefined;
  readonly type: string;
  readonly source: string | undefined;
  readonly time: string | undefined;
  /** The attempt count it died with. */
  readonly attempt: number;
  /** A {@link DeadLetterReason}, or what a foreign dead-letterer wrote. */
  readonly reason: string | undefined;
  readonly errorName: string | undefined;
  /** Redacted: a URL's password never appears. */
  readonly errorMessage: string | undefined;
  /** The subscription that gave up on it (`<group>/<name>`). */
  readonly subscription: string | undefined;
  /** ISO time of the dead-lettering. */
  readonly deadAt: string | undefined;
  /** True when the message was replayed before (header `courierreplayed`). */
  readonly replayedBefore: boolean;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Which dead letters an operation acts on: every listed field must match (values of one field: any of them). */
export interface DeadLetterFilter {
  readonly reason?: readonly string[];
  /** Message types or patterns (`order.*`). */
  readonly type?: readonly string[];
  readonly id?: readonly string[];
}

/** `--where` expressions that do not parse. */
export class DeadLetterFilterError extends CourierError {
  override readonly code = 'FILTER_INVALID';
}

/** A dead-letter operation needs what the transport does not offer (replay on the memory transport). */
export class OperationUnsupportedError extends CourierError {
  override readonly code = 'OPERATION_UNSUPPORTED';
}

const FILTER_KEYS = new Set(['reason', 'type', 'id']);

/**
 * Parses `key=value[,value...]` expressions (keys `reason`, `type`, `id`) into one filter; the
 * expressions must all hold. Throws {@link DeadLetterFilterError}.
 */
export function parseWhere(expressions: readonly string[]): DeadLetterFilter {
  const out: Record<string, string[]> = {};
  for (const e of expressions) {
    const m = /^([a-z]+)=(.+)$/.exec(e.trim());
    if (!m || !FILTER_KEYS.has(m[1])) throw new DeadLetterFilterError(`"${e}" is not a filter: use reason=R, type=T or id=I (values separated by ",")`);
    const values = m[2].split(',').map((v) => v.trim()).filter(Boolean);
    if (!values.length) throw new DeadLetterFilterError(`"${e}" names no value`);
    if (out[m[1]]) throw new DeadLetterFilterError(`${m[1]} is filtered twice: give its values once, separated by ","`);
    out[m[1]] = values;
  }
  return out;
}

/** Does `d` pass `filter`? */
export function matchesFilter(d: DeadLetter, filter: DeadLetterFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.reason && !filter.reason.includes(d.reason ?? '')) return false;
  if (filter.type && !filter.type.some((p) => matchTopic(p, d.type))) return false;
  if (filter.id && !filter.id.includes(d.id ?? '')) return false;
  return true;
}

/** A delivery of a dead-letter consumer as a {@link DeadLetter}. */
export function toDeadLetter(d: { topic: string; body: Buffer; headers: Readonly<Record<string, string>> }): DeadLetter {
  const h = d.headers;
  const attempt = Number(h[Headers.attempt]);
  return {
    id: h[Headers.id],
    type: h[Headers.type] ?? d.topic,
    source: h[Headers.source],
    time: h[Headers.time],
    attempt: Number.isInteger(attempt) && attempt >= 1 ? attempt : 1,
    reason: h[Headers.deadReason],
    errorName: h[Headers.deadError],
    errorMessage: h[Headers.deadMessage] === undefined ? undefined : redactSecrets(h[Headers.deadMessage]),
    subscription: h[Headers.deadQueue],
    deadAt: h[Headers.deadTime],
    replayedBefore: h[Headers.replayed] !== undefined,
    headers: h,
    body: d.body,
  };
}

const DEAD_HEADERS = [Headers.deadReason, Headers.deadError, Headers.deadMessage, Headers.deadQueue, Headers.deadTime];

/**
 * The message a replay sends for `d`: its envelope and body unchanged (same id, so a handler's
 * idempotency still recognises it), the dead-letter headers removed, the attempt count 1, and
 * `courierreplayed` set to the time of the replay.
 */
export function replayMessage(d: { topic: string; body: Buffer; headers: Readonly<Record<string, string>> }, at: Date = new Date()): OutgoingMessage {
  const headers: Record<string, string> = { ...d.headers };
  for (const k of DEAD_HEADERS) delete headers[k];
  headers[Headers.attempt] = '1';
  headers[Headers.replayed] = at.toISOString();
  return { topic: d.headers[Headers.type] ?? d.topic, body: d.body, headers };
}

/** How a scan reads. */
export interface ScanOptions {
  /** Only these dead letters (see {@link parseWhere}). */
  readonly where?: DeadLetterFilter;
  /** The most dead letters read in one run (each is held unsettled until the run ends). Default 10,000. */
  readonly limit?: number;
  /** The run ends after this long without a new dead letter, ms. Default 500. */
  readonly idleMs?: number;
  /** How long to wait for the first dead letter, ms. Default 2,000. */
  readonly firstWaitMs?: number;
}

/** What a run did. */
export interface DeadLetterRunResult {
  /** Dead letters read. */
  readonly examined: number;
  /** Of those, the ones the filter selected. */
  readonly matched: number;
}

export interface ReplayOptions extends ScanOptions {
  /** Copies in flight to the broker at once. Default 16. */
  readonly concurrency?: number;
  /** At most this many replays per second (0: no limit). Default 0. */
  readonly ratePerSecond?: number;
  /** Called after each dead letter was replayed and removed. */
  readonly onReplayed?: (d: DeadLetter) => void;
  /**
   * @internal For the negative control of the fault test only: remove each dead letter first and
   * send its copy after, the order that loses a message when the process dies in between.
   */
  readonly unsafeRemoveFirst?: boolean;
}

export interface ReplayResult extends DeadLetterRunResult {
  readonly replayed: number;
  /** Selected, but their copy was refused: they are still dead letters. */
  readonly failed: number;
  /** The first refusal, redacted. */
  readonly firstError?: string;
}

export interface PurgeResult extends DeadLetterRunResult {
  readonly purged: number;
}

/**
 * Reads the dead letters of `of` (at most `limit`), calling `onDeadLetter` for each one the filter
 * selects; none is removed. Resolves to the selected ones, in the order read.
 */
export async function listDeadLetters(
  transport: Transport,
  of: DeadLetterSource,
  options: ScanOptions & { readonly onDeadLetter?: (d: DeadLetter) => void } = {},
): Promise<DeadLetter[]> {
  const out: DeadLetter[] = [];
  await scan(transport, of, options, async (dl) => {
    if (matchesFilter(dl, options.where)) {
      out.push(dl);
      options.onDeadLetter?.(dl);
    }
    return 'held';
  });
  return out;
}

/** The dead letter of `of` with envelope id `id` (the first, if several), or undefined; nothing is removed. */
export async function showDeadLetter(transport: Transport, of: DeadLetterSource, id: string, options: ScanOptions = {}): Promise<DeadLetter | undefined> {
  let found: DeadLetter | undefined;
  await scan(transport, of, options, async (dl, _d, stop) => {
    if (!found && dl.id === id && matchesFilter(dl, options.where)) {
      found = dl;
      stop();
    }
    return 'held';
  });
  return found;
}

/** Replays the selected dead letters of `of` to `of` (see the module comment); the others stay. */
export async function replayDeadLetters(transport: Transport, of: DeadLetterSource, options: ReplayOptions = {}): Promise<ReplayResult> {
  const admin = subscriptionAdmin(transport);
  if (!admin) throw new OperationUnsupportedError(`The ${transport.name} transport cannot send a message to one subscription: replay needs the AMQP, MQTT or memory adapter`);
  const spec = subscriptionOf(of, 1);
  const gate = new Gate(Math.max(1, options.concurrency ?? 16), options.ratePerSecond ?? 0);
  let replayed = 0;
  let failed = 0;
  let firstError: string | undefined;
  // A copy this run replayed that died again comes back to this run's reader (memory and MQTT
  // tell no count to stop at): it is left for the next run, not replayed over and over.
  const replayedNow = new Set<string>();
  const run = await scan(transport, of, options, async (dl, d) => {
    if (!matchesFilter(dl, options.where)) return 'held';
    if (dl.id !== undefined && dl.replayedBefore && replayedNow.has(dl.id)) return 'held';
    await gate.enter();
    try {
      if (options.unsafeRemoveFirst) await d.ack();
      await gate.paced();
      try {
        await (admin as SubscriptionAdmin).sendToSubscription(spec, replayMessage(d));
      } catch (err) {
        failed++;
        firstError ??= redactSecrets(`${(err as Error).name}: ${(err as Error).message}`);
        return 'held';
      }
      // Only now: the copy is stored at the broker.
      await d.ack();
      if (dl.id !== undefined) replayedNow.add(dl.id);
      replayed++;
      options.onReplayed?.(dl);
      return 'settled';
    } finally {
      gate.leave();
    }
  });
  return { ...run, replayed, failed, firstError };
}

/** Removes the selected dead letters of `of` for good; the others stay. */
export async function purgeDeadLetters(transport: Transport, of: DeadLetterSource, options: ScanOptions & { readonly onPurged?: (d: DeadLetter) => void } = {}): Promise<PurgeResult> {
  let purged = 0;
  const run = await scan(transport, of, options, async (dl, d) => {
    if (!matchesFilter(dl, options.where)) return 'held';
    await d.ack();
    purged++;
    options.onPurged?.(dl);
    return 'settled';
  });
  return { ...run, purged };
}

/** The subscription spec of a dead-letter source. */
function subscriptionOf(of: DeadLetterSource, prefetch: number): SubscriptionSpec {
  if (!of.name) throw new CourierError('A dead-letter operation needs the subscription name (Class.method)');
  return { group: of.group, name: of.name, pattern: of.pattern ?? '#', instance: of.group ? undefined : of.instance, prefetch };
}

type Visit = (dl: DeadLetter, d: Delivery, stop: () => void) => Promise<'held' | 'settled'>;

/**
 * The one reading loop: each dead letter once, `visit` decides; what it holds is given back
 * (requeued, after the consumer stopped, so it is not delivered to this run again) at the end.
 */
async function scan(transport: Transport, of: DeadLetterSource, options: ScanOptions, visit: Visit): Promise<DeadLetterRunResult> {
  const limit = Math.max(1, Math.min(options.limit ?? 10_000, 65_000));
  const idleMs = options.idleMs ?? 500;
  const firstWaitMs = options.firstWaitMs ?? 2000;
  const spec = subscriptionOf(of, limit);
  const depth = await subscriptionAdmin(transport)?.queueDepth?.(spec, 'dead').catch(() => undefined);
  const expected = depth === undefined ? undefined : Math.min(depth.messages, limit);
  const held: Delivery[] = [];
  let done = false;
  let stopped = false;
  let examined = 0;
  let matched = 0;
  let busy = 0;
  let last = Date.now();
  let failure: unknown;
  const stop = () => (stopped = true);
  const sub: Subscription = await transport.subscribeDeadLetters(spec, async (d) => {
    if (done || stopped || examined >= limit) {
      held.push(d);
      if (done) void d.requeue();
      return;
    }
    examined++;
    last = Date.now();
    busy++;
    try {
      const dl = toDeadLetter(d);
      if (matchesFilter(dl, options.where)) matched++;
      if ((await visit(dl, d, stop)) === 'held') held.push(d);
    } catch (err) {
      failure ??= err;
      held.push(d);
    } finally {
      busy--;
      last = Date.now();
    }
  });
  try {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      if (busy > 0) continue;
      if (stopped || failure !== undefined || examined >= limit) break;
      if (expected !== undefined && examined >= expected) break;
      if (Date.now() - last >= (examined === 0 ? firstWaitMs : idleMs)) break;
    }
  } finally {
    done = true;
    // Stop the consumer first: what is given back then is not delivered to it again.
    const closing = sub.close();
    for (const d of held) void d.requeue().catch(() => undefined);
    await closing;
  }
  if (failure !== undefined) throw failure;
  return { examined, matched };
}

/** Bounds the copies in flight and, optionally, their rate. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private next = 0;
  constructor(
    private readonly concurrency: number,
    private readonly ratePerSecond: number,
  ) {}
  async enter(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  leave(): void {
    const w = this.waiting.shift();
    if (w) w();
    else this.active--;
  }
  /** Waits for the next slot of the rate limit. */
  async paced(): Promise<void> {
    if (!this.ratePerSecond) return;
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.ratePerSecond;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}
