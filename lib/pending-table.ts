/**
 * Operations awaiting an answer (a request its reply), each under an id that names its slot, with
 * one timer for all their deadlines.
 *
 * Per entry nothing is allocated but the entry and its id: no Map and no timer per entry. A Map
 * with entries coming and going rehashes into a new table every so often, and V8 links each old
 * table to its successor; once one of them has been promoted, the dead chain keeps the young
 * tables and their entries alive through every scavenge until the next full GC, which made the
 * young generation grow (docs/benchmarks.md). Slots in an array are overwritten in place.
 */
import { DeadlineTimer } from './deadline-timer';
import { RequestTimeoutError } from './errors';

export interface PendingEntry {
  /** Set by add(): `<prefix><slot>.<sequence>`, unique for the table's life. */
  id: string;
  /** Set by add(). */
  slot: number;
  /** performance.now() after which the entry expires. */
  readonly deadline: number;
}

export class PendingTable<T extends PendingEntry> {
  private readonly slots: Array<T | undefined> = [];
  private readonly free: number[] = [];
  private seq = 0;
  private count = 0;
  /**
   * Keeps the process alive while an entry is stored (a caller awaits it: its deadline must come
   * even when nothing else runs, e.g. on the memory transport), and not once the table is empty.
   */
  private readonly timer = new DeadlineTimer(() => this.sweep(), { unref: true });

  /** `prefix` must not end in a digit; `onExpired` is called for an entry past its deadline, after its removal. */
  constructor(
    private readonly prefix: string,
    private readonly onExpired: (entry: T) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Stores `entry` under a new id (returned, and set as `entry.id`). */
  add(entry: T): string {
    const slot = this.free.length > 0 ? this.free.pop()! : this.slots.length;
    if (slot === this.slots.length) this.slots.push(entry);
    else this.slots[slot] = entry;
    entry.slot = slot;
    entry.id = `${this.prefix}${slot}.${++this.seq}`;
    if (this.count++ === 0) this.timer.keepAlive(true);
    this.timer.armBy(entry.deadline);
    return entry.id;
  }

  /** The entry stored under `id`, if it is still there. */
  get(id: unknown): T | undefined {
    if (typeof id !== 'string' || !id.startsWith(this.prefix)) return undefined;
    let slot = 0;
    let i = this.prefix.length;
    for (; i < id.length; i++) {
      const c = id.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      slot = slot * 10 + c;
    }
    if (i === this.prefix.length || id.charCodeAt(i) !== 46 /* . */) return undefined;
    const entry = this.slots[slot];
    return entry !== undefined && entry.id === id ? entry : undefined;
  }

  /** Removes `entry`; false when it was not stored (any more). */
  delete(entry: T): boolean {
    if (this.slots[entry.slot] !== entry) return false;
    this.slots[entry.slot] = undefined;
    this.free.push(entry.slot);
    // The timer stays armed when the table empties (unref'd): one request at a time would
    // otherwise cost a setTimeout and a clearTimeout each. A sweep of an empty table re-arms nothing.
    if (--this.count === 0) this.timer.keepAlive(false);
    return true;
  }

  /** The entries stored now, oldest id first. */
  entries(): T[] {
    const all: T[] = [];
    for (const e of this.slots) if (e !== undefined) all.push(e);
    return all.sort((a, b) => seqOf(a.id) - seqOf(b.id));
  }

  /** Clears the timer (the owner closes; call once nothing is stored). */
  stop(): void {
    this.timer.stop();
  }

  /** Expires what is past its deadline (oldest first) and re-arms for the earliest deadline left. */
  private sweep(): void {
    const now = performance.now();
    const expired: T[] = [];
    let next = Infinity;
    for (const e of this.slots) {
      if (e === undefined) continue;
      if (e.deadline <= now) expired.push(e);
      else if (e.deadline < next) next = e.deadline;
    }
    expired.sort((a, b) => seqOf(a.id) - seqOf(b.id));
    for (const e of expired) {
      this.delete(e);
      this.onExpired(e);
    }
    if (next !== Infinity && this.count > 0) this.timer.armBy(next);
  }
}

function seqOf(id: string): number {
  return Number(id.slice(id.lastIndexOf('.') + 1));
}

/** A request awaiting its reply: the table's entry, the caller's promise and its deadline. */
export class PendingRequest<R> implements PendingEntry {
  id = '';
  slot = 0;
  readonly deadline: number;
  readonly promise: Promise<R>;
  resolve!: (reply: R) => void;
  reject!: (err: Error) => void;

  constructor(
    /** The request's topic, for the timeout's error. */
    readonly topic: string,
    readonly timeoutMs: number,
  ) {
    this.deadline = performance.now() + timeoutMs;
    this.promise = new Promise<R>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** The requests of a transport by correlation id: each one still waiting at its deadline rejects with RequestTimeoutError. */
// Any reply type: the table only rejects, and `resolve` takes the reply type contravariantly.
export class RequestTable<T extends PendingRequest<any>> extends PendingTable<T> {
  constructor(prefix: string) {
    super(prefix, (r) => r.reject(new RequestTimeoutError(r.topic, r.timeoutMs)));
  }

  /** The transport closes: every request still waiting rejects with `error()`, and the timer stops. */
  rejectAll(error: () => Error): void {
    for (const r of this.entries()) {
      this.delete(r);
      r.reject(error());
    }
    this.stop();
  }
}
