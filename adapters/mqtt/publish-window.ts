/**
 * The publish window: every publish from its call until it is settled. At most `size` are handed
 * to the client at once (a slot each until its ack); the rest wait, oldest first. One deadline
 * timer serves them all, armed for the earliest known deadline, and expires whatever passed it,
 * waiting or sent. No timer or promise per publish: this runs once per message.
 */
import { DeadlineTimer } from '../../lib/deadline-timer';
import { Linked, LinkedList } from '../../lib/linked-list';

/** What the window keeps per publish. */
export interface WindowEntry<T> extends Linked<T> {
  /** Epoch ms (Date.now) after which the publish expires. */
  readonly deadline: number;
  /** Holds a slot: handed to the client, not yet acked. */
  sent: boolean;
  /** Settled; a settled entry is skipped wherever it still waits. */
  done: boolean;
}

export interface WindowHooks<T> {
  /** Hand `entry` to the client (it holds a slot until {@link PublishWindow.remove} or {@link PublishWindow.release}). */
  dispatch(entry: T): void;
  /** `entry` passed its deadline (it is still in the window: settle it). */
  expired(entry: T): void;
}

export class PublishWindow<T extends WindowEntry<T>> {
  /** Every entry not yet settled, oldest first. */
  private readonly pending = new LinkedList<T>();
  private readonly waiting: T[] = [];
  /** Slots in use. */
  private sending = 0;
  private readonly timer = new DeadlineTimer(() => this.sweep(), { now: Date.now, unref: true });
  private drained?: () => void;

  constructor(
    /** Entries handed to the client at once. */
    private size: number,
    private readonly hooks: WindowHooks<T>,
  ) {}

  /** Entries not yet settled. */
  get count(): number {
    return this.pending.size;
  }

  add(entry: T): void {
    this.pending.add(entry);
    this.timer.armBy(entry.deadline);
    if (this.sending < this.size) this.send(entry);
    else this.waiting.push(entry);
  }

  /** `entry` is settled: it leaves the window and frees its slot. */
  remove(entry: T): void {
    this.pending.delete(entry);
    if (entry.sent) this.release(entry);
    if (this.pending.size === 0) this.drained?.();
  }

  /** `entry` gives its slot back but stays in the window (to be sent again with {@link resend}). */
  release(entry: T): void {
    entry.sent = false;
    this.sending--;
    this.pump();
  }

  /** Sends `entry` again, ahead of those waiting for a slot. */
  resend(entry: T): void {
    if (this.sending < this.size) this.send(entry);
    else this.waiting.unshift(entry);
  }

  /** A new size (a broker's Receive Maximum); waiting entries go if it grew. */
  resize(size: number): void {
    this.size = size;
    this.pump();
  }

  /** Resolves when every entry is settled, or after `timeoutMs`. */
  whenDrained(timeoutMs: number): Promise<void> {
    if (!this.pending.size) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, timeoutMs));
      timer.unref();
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** The entries not yet settled, oldest first. */
  entries(): T[] {
    return this.pending.toArray();
  }

  /** Stops the deadline timer (at close). */
  stop(): void {
    this.timer.stop();
  }

  private send(entry: T): void {
    this.sending++;
    entry.sent = true;
    this.hooks.dispatch(entry);
  }

  private pump(): void {
    while (this.sending < this.size && this.waiting.length) {
      const next = this.waiting.shift()!;
      if (!next.done) this.send(next);
    }
  }

  /** Expires the entries whose deadline passed, re-arms for the next. */
  private sweep(): void {
    const now = Date.now();
    let next = Infinity;
    const expired: T[] = [];
    for (let p = this.pending.head; p; p = p.next) {
      if (p.deadline <= now) expired.push(p);
      else if (p.deadline < next) next = p.deadline;
    }
    if (expired.length) {
      const gone = new Set(expired);
      for (let i = this.waiting.length - 1; i >= 0; i--) if (gone.has(this.waiting[i])) this.waiting.splice(i, 1);
      for (const p of expired) this.hooks.expired(p);
    }
    if (next !== Infinity) this.timer.armBy(next);
  }
}
