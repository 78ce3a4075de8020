/**
 * The dead letters the dashboard shows: the subscriptions of the handlers it sees, read one at a
 * time through the operations API (lib/ops/dead-letters.ts: a scan gives every dead letter back,
 * nothing is removed) while a page is open: each every `everyMs`, and sooner (at most once a
 * second) when its handler's dead-letter count grew. Only a summary is kept: per subscription the
 * count by reason and the newest `keep` dead letters without their bodies; a page opens one with
 * {@link DeadLetterWatcher.show} and replays it with {@link DeadLetterWatcher.replay}.
 */
import { redactSecrets } from '../errors';
import { DeadLetter, DeadLetterSource, listDeadLetters, replayDeadLetters, showDeadLetter } from '../ops/dead-letters';
import type { Transport } from '../transport';
import type { HandlerView } from './fleet';

export interface DeadLetterSummary {
  readonly id: string | null;
  readonly type: string;
  readonly source: string | null;
  readonly reason: string | null;
  readonly errorName: string | null;
  readonly errorMessage: string | null;
  readonly deadAt: string | null;
  readonly attempt: number;
  readonly replayedBefore: boolean;
}

export interface SubscriptionDeadLetters {
  /** The handler key (fleet.ts). */
  readonly subscription: string;
  /** Dead letters read (at most the scan's limit). */
  readonly count: number;
  readonly byReason: Readonly<Record<string, number>>;
  /** The last ones read, at most `keep`. */
  readonly items: readonly DeadLetterSummary[];
  readonly scannedAt: number;
  /** Why the last scan failed (redacted). */
  readonly error?: string;
}

export interface DeadLettersView {
  readonly total: number;
  readonly byReason: Readonly<Record<string, number>>;
  readonly subscriptions: readonly SubscriptionDeadLetters[];
}

export interface DeadLetterWatcherOptions {
  /** Rescan each subscription this often while a page is open, ms. Default 5000. */
  readonly everyMs?: number;
  /** Dead letters read per subscription and scan. Default 500. */
  readonly limit?: number;
  /** Kept per subscription for the page. Default 20. */
  readonly keep?: number;
}

interface Watched {
  source: DeadLetterSource;
  deadLettered: number;
  scannedAt: number;
  dueNow: boolean;
  view?: SubscriptionDeadLetters;
}

/** The options of a scan from the dashboard: the memory and MQTT brokers tell no count, so a short wait. */
const SCAN = { firstWaitMs: 300, idleMs: 150 } as const;
const SCANS_AT_ONCE = 4;

export class DeadLetterWatcher {
  private readonly watched = new Map<string, Watched>();
  private readonly everyMs: number;
  private readonly limit: number;
  private readonly keep: number;
  private busy = false;
  /** Per subscription, scans, shows and replays run one at a time: two readers of one dead-letter queue would each miss what the other holds. */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly transport: Transport,
    options: DeadLetterWatcherOptions = {},
  ) {
    this.everyMs = options.everyMs ?? 5000;
    this.limit = options.limit ?? 500;
    this.keep = options.keep ?? 20;
  }

  /** Takes the handlers of the latest frame; scans at most one subscription that is due (call once a second). */
  tick(handlers: Readonly<Record<string, HandlerView>>, now: number, pagesOpen: boolean): void {
    for (const h of Object.values(handlers)) {
      if (!h.group && !h.instance) continue;
      let w = this.watched.get(h.key);
      if (!w) {
        if (this.watched.size >= 1000) continue;
        this.watched.set(h.key, (w = { source: { group: h.group ?? undefined, name: h.name, pattern: h.pattern ?? '#', instance: h.instance ?? undefined }, deadLettered: -1, scannedAt: 0, dueNow: true }));
      }
      if (h.deadLettered !== w.deadLettered) {
        if (w.deadLettered !== -1) w.dueNow = true;
        w.deadLettered = h.deadLettered;
      }
    }
    if (this.busy || !pagesOpen) return;
    const due = [...this.watched].filter(([, w]) => (w.dueNow ? now - w.scannedAt >= 1000 : now - w.scannedAt >= this.everyMs));
    if (!due.length) return;
    // One round at a time, SCANS_AT_ONCE subscriptions in parallel.
    this.busy = true;
    const next = async (): Promise<void> => {
      const e = due.shift();
      if (!e) return;
      await this.exclusive(e[0], () => this.scanNow(e[0], e[1]));
      return next();
    };
    void Promise.all(Array.from({ length: SCANS_AT_ONCE }, next)).finally(() => (this.busy = false));
  }

  private exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  private async scanNow(key: string, w: Watched): Promise<void> {
    w.dueNow = false;
    try {
      const list = await listDeadLetters(this.transport, w.source, { limit: this.limit, ...SCAN });
      const byReason: Record<string, number> = {};
      for (const d of list) byReason[d.reason ?? 'unknown'] = (byReason[d.reason ?? 'unknown'] ?? 0) + 1;
      w.view = { subscription: key, count: list.length, byReason, items: list.slice(-this.keep).reverse().map(summary), scannedAt: Date.now() };
    } catch (err) {
      w.view = { subscription: key, count: w.view?.count ?? 0, byReason: w.view?.byReason ?? {}, items: w.view?.items ?? [], scannedAt: Date.now(), error: describe(err) };
    } finally {
      w.scannedAt = Date.now();
    }
  }

  view(): DeadLettersView {
    const subscriptions = [...this.watched.values()].map((w) => w.view).filter((v): v is SubscriptionDeadLetters => !!v && (v.count > 0 || !!v.error));
    const byReason: Record<string, number> = {};
    let total = 0;
    for (const s of subscriptions) {
      total += s.count;
      for (const [r, n] of Object.entries(s.byReason)) byReason[r] = (byReason[r] ?? 0) + n;
    }
    return { total, byReason, subscriptions: subscriptions.sort((a, b) => a.subscription.localeCompare(b.subscription)) };
  }

  private sourceOf(subscription: string): DeadLetterSource | undefined {
    return this.watched.get(subscription)?.source;
  }

  /** One dead letter with its headers and body (as text, at most 64 KiB), or undefined. */
  async show(subscription: string, id: string): Promise<(DeadLetterSummary & { headers: Record<string, string>; body: string; bodyBytes: number }) | undefined> {
    const source = this.sourceOf(subscription);
    if (!source) return undefined;
    const d = await this.exclusive(subscription, () => showDeadLetter(this.transport, source, id, { limit: this.limit, ...SCAN }));
    if (!d) return undefined;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(d.headers)) headers[k] = redactSecrets(String(v));
    return { ...summary(d), headers, body: redactSecrets(d.body.subarray(0, 64 * 1024).toString('utf8')), bodyBytes: d.body.length };
  }

  /** Replays the dead letter `id` of `subscription` to it alone (lib/ops); it is rescanned next. */
  async replay(subscription: string, id: string): Promise<{ replayed: number; failed: number; error?: string } | undefined> {
    const w = this.watched.get(subscription);
    if (!w) return undefined;
    const r = await this.exclusive(subscription, () => replayDeadLetters(this.transport, w.source, { where: { id: [id] }, limit: this.limit, ...SCAN }));
    w.dueNow = true;
    w.scannedAt = 0;
    return { replayed: r.replayed, failed: r.failed, ...(r.firstError ? { error: r.firstError } : {}) };
  }
}

function summary(d: DeadLetter): DeadLetterSummary {
  return {
    id: d.id ?? null,
    type: d.type,
    source: d.source ?? null,
    reason: d.reason ?? null,
    errorName: d.errorName ?? null,
    errorMessage: d.errorMessage === undefined ? null : redactSecrets(d.errorMessage).slice(0, 500),
    deadAt: d.deadAt ?? null,
    attempt: d.attempt,
    replayedBefore: d.replayedBefore,
  };
}

function describe(err: unknown): string {
  const e = err as Error;
  return redactSecrets(`${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`).slice(0, 500);
}
