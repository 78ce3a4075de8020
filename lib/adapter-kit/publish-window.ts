/**
 * The publish window of an adapter: publishes not yet settled, at most `limit` of them sent at
 * once (AMQP's unconfirmed messages, MQTT's Receive Maximum), the rest waiting in order; each
 * settled exactly once (the broker's answer, an error, or its deadline), with one
 * {@link DeadlineTimer} for all deadlines instead of a timer per publish.
 */
import { DeadlineTimer } from '../deadline-timer';
import { PublishTimeoutError } from '../errors';
import { Linked, LinkedList } from '../linked-list';

/**
 * One publish in a {@link PublishWindow}. An adapter extends it with what it writes (topic, body,
 * headers); the window uses only these fields.
 */
export class WindowEntry implements Linked<WindowEntry> {
  /** Set by the window: the order of {@link PublishWindow.add}. */
  seq = 0;
  /** The clock's time (the window's `now`) after which the publish fails with a timeout. Set by add(). */
  deadline = Infinity;
  /** Holds a slot: handed to the client, not yet answered. */
  sent = false;
  /** Waiting for a slot. */
  queued = false;
  /** Settled (resolved or rejected); nothing happens to it any more. */
  done = false;
  resolve: () => void = noop;
  reject: (err: Error) => void = noop;
  prev: WindowEntry | undefined = undefined;
  next: WindowEntry | undefined = undefined;

  /**
   * @param label     what errors name (the message type)
   * @param timeoutMs how long it may stay unsettled
   */
  constructor(
    readonly label: string,
    readonly timeoutMs: number,
  ) {}
}

function noop(): void {}

export interface PublishWindowOptions<E extends WindowEntry> {
  /** Most publishes sent and not yet settled at once (>= 1). Changed later with {@link PublishWindow.setLimit}. */
  readonly limit: number;
  /**
   * Hands `entry` to the client; it holds a slot until {@link PublishWindow.finish} or
   * {@link PublishWindow.release}. May call finish() itself (an encoding error). Must not throw.
   */
  readonly send: (entry: E) => void;
  /** The clock of the deadlines. Default `performance.now`. */
  readonly now?: () => number;
  /** The error of a publish past its deadline. Default `PublishTimeoutError(label, timeoutMs)`. */
  readonly timeoutError?: (entry: E) => Error;
  /** The deadline timer does not keep the process alive (see DeadlineTimer). Default false. */
  readonly unref?: boolean;
}

/**
 * The contract:
 * - {@link add} / {@link submit} take a publish; it is sent at once while fewer than `limit` are
 *   sent and the window is not {@link pause}d, else it waits, in order.
 * - {@link finish} settles a publish once (later calls are no-ops) and frees its slot, which the
 *   oldest waiting publish takes.
 * - A publish still unsettled at its deadline is finished with the timeout error, whether sent or
 *   waiting (settled in the order they were added).
 * - {@link release} gives a sent publish's slot back without settling it (to be sent again).
 */
export class PublishWindow<E extends WindowEntry> {
  /** Every unsettled publish, in the order added. */
  readonly #pending = new LinkedList<WindowEntry>();
  #waiting: E[] = [];
  #sending = 0;
  #limit: number;
  #paused = false;
  #seq = 0;
  #idle: Array<() => void> = [];
  readonly #timer: DeadlineTimer;
  readonly #now: () => number;

  constructor(private readonly options: PublishWindowOptions<E>) {
    this.#limit = Math.max(1, options.limit);
    this.#now = options.now ?? (() => performance.now());
    this.#timer = new DeadlineTimer(() => this.#sweep(), { now: this.#now, unref: options.unref });
  }

  /** Publishes not yet settled (sent or waiting). */
  get size(): number {
    return this.#pending.size;
  }

  /** Publishes holding a slot. */
  get sending(): number {
    return this.#sending;
  }

  /** Publishes waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  get limit(): number {
    return this.#limit;
  }

  /** The unsettled publishes, oldest first. */
  *entries(): IterableIterator<E> {
    for (let p = this.#pending.head; p; p = p.next) yield p as E;
  }

  /** Takes `entry`, whose promise callbacks are set by the caller; see {@link submit}. */
  add(entry: E): void {
    entry.seq = ++this.#seq;
    entry.deadline = this.#now() + entry.timeoutMs;
    entry.done = false;
    this.#pending.add(entry);
    this.#timer.armBy(entry.deadline);
    if (!this.#paused && this.#sending < this.#limit && this.#waiting.length === 0) this.#send(entry);
    else {
      entry.queued = true;
      this.#waiting.push(entry);
    }
  }

  /** {@link add}, returning the promise that {@link finish} settles. */
  submit(entry: E): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.add(entry);
    return promise;
  }

  /** Settles `entry` (rejects with `err` if given), once; frees its slot or its place in the queue. */
  finish(entry: E, err?: Error): void {
    if (entry.done) return;
    entry.done = true;
    this.#pending.delete(entry);
    if (entry.queued) {
      entry.queued = false;
      const i = this.#waiting.indexOf(entry);
      if (i >= 0) this.#waiting.splice(i, 1);
    }
    if (err) entry.reject(err);
    else entry.resolve();
    if (entry.sent) {
      entry.sent = false;
      this.#sending--;
      this.#pump();
    }
    if (this.#pending.size === 0) this.#becameIdle();
  }

  /**
   * Frees the slot of a sent, unsettled `entry` without settling it. With `requeue` (default) it
   * goes back to the front of the queue, ahead of what waits; without, the caller gives it back
   * later with {@link resubmit} (a resend after a delay). No-op for an entry not sent.
   */
  release(entry: E, requeue = true): void {
    if (entry.done || !entry.sent) return;
    entry.sent = false;
    this.#sending--;
    if (requeue) {
      entry.queued = true;
      this.#waiting.unshift(entry);
    }
    this.#pump();
  }

  /**
   * Releases every sent, unsettled entry that `which` selects (all by default) back to the front
   * of the queue, in the order they were added: a replaced connection sends them again.
   */
  releaseAll(which: (entry: E) => boolean = () => true): void {
    const back: E[] = [];
    for (let p = this.#pending.head; p; p = p.next) {
      const e = p as E;
      if (e.sent && !e.done && which(e)) back.push(e);
    }
    for (const e of back) {
      e.sent = false;
      e.queued = true;
    }
    this.#sending -= back.length;
    this.#waiting = [...back, ...this.#waiting];
    this.#pump();
  }

  /** Sends a released, unsettled `entry` again: now if a slot is free, else at the front of the queue. */
  resubmit(entry: E): void {
    if (entry.done || entry.sent || entry.queued) return;
    if (!this.#paused && this.#sending < this.#limit) this.#send(entry);
    else {
      entry.queued = true;
      this.#waiting.unshift(entry);
    }
  }

  /** Stops sending (no connection, or the socket's buffer is full); what comes waits. */
  pause(): void {
    this.#paused = true;
  }

  /** Sends again, oldest waiting first. */
  resume(): void {
    this.#paused = false;
    this.#pump();
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** A new limit (a new Receive Maximum); waiting publishes go if it grew. */
  setLimit(limit: number): void {
    this.#limit = Math.max(1, limit);
    this.#pump();
  }

  /** Resolves once nothing is unsettled (each publish ends by its deadline at the latest). */
  whenIdle(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Rejects every unsettled publish with `err` (close, once nothing more can be sent). */
  failAll(err: Error): void {
    const all = [...this.entries()];
    for (const e of all) e.queued = false;
    this.#waiting = [];
    for (const e of all) this.finish(e, err);
  }

  #send(entry: E): void {
    entry.queued = false;
    entry.sent = true;
    this.#sending++;
    this.options.send(entry);
  }

  #pump(): void {
    while (!this.#paused && this.#sending < this.#limit && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      next.queued = false;
      if (!next.done) this.#send(next);
    }
  }

  #becameIdle(): void {
    this.#timer.stop();
    if (this.#idle.length === 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  /** Fails what is past its deadline, in the order added, and re-arms for the earliest left. */
  #sweep(): void {
    const now = this.#now();
    const expired: E[] = [];
    let next = Infinity;
    for (let p = this.#pending.head; p; p = p.next) {
      if (p.deadline <= now) expired.push(p as E);
      else if (p.deadline < next) next = p.deadline;
    }
    if (expired.length > 0) {
      const gone = new Set<WindowEntry>(expired);
      this.#waiting = this.#waiting.filter((e) => !gone.has(e));
      for (const e of expired) e.queued = false;
      const timeoutError = this.options.timeoutError ?? ((e: E) => new PublishTimeoutError(e.label, e.timeoutMs));
      for (const e of expired) this.finish(e, timeoutError(e));
    }
    if (next !== Infinity) this.#timer.armBy(next);
  }
}
