/**
 * The outbox relay: moves committed outbox rows to the transport. Store-agnostic (an
 * {@link OutboxStore} does the SQL). One loop per relay:
 *   claim a batch (a lease on its rows) -> publish, per ordering key one row after the other
 *   (keys in parallel), each with the transport's confirm -> settle the batch (sent / failed /
 *   released) -> again at once while rows come; when the table is empty, sleep until a commit
 *   signal (LISTEN/NOTIFY, an in-process signal) or the poll delay, which doubles up to
 *   `maxPollMs` while nothing comes.
 * A failed publish holds back its own key only: the rest of that key in the batch is released,
 * the row is retried after an exponential backoff, and after `maxAttempts` failures it goes to
 * the `dead` state with the reason (the key then moves on). stop() lets the publishes in flight
 * finish, settles them, releases what was not started.
 * A relay crashed between the broker's confirm and settle() leaves rows leased and not marked:
 * after the lease they are published again (at-least-once: a consumer sees them twice at most
 * per crash; the inbox makes that harmless).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { backoffDelay } from '../adapter-kit/backoff';
import { redactSecrets } from '../errors';
import type { Logger } from '../bus';
import type { Meter } from '../meter';
import type { OutgoingMessage, Transport } from '../transport';
import type { BatchOutcome, ClaimedRow, FailedRow, OutboxStore } from './store';

export interface RelayOptions {
  /** Rows per claim. Default 100. */
  readonly batchSize?: number;
  /** How long a claim holds its rows; a crashed relay's rows are taken over after it. Default 30 s. */
  readonly leaseMs?: number;
  /** Failed publishes of a row before it goes to `dead`. Default 10. */
  readonly maxAttempts?: number;
  /** Backoff between a row's attempts: from initialDelayMs, times factor, up to maxDelayMs, with jitter. */
  readonly retry?: { readonly initialDelayMs?: number; readonly factor?: number; readonly maxDelayMs?: number };
  /** First poll delay of an idle relay (reset by every batch or commit signal). Default 100 ms. */
  readonly minPollMs?: number;
  /** Longest poll delay of an idle relay. Default 5 s. */
  readonly maxPollMs?: number;
  /** Sent rows older than this are deleted. Default 1 h. */
  readonly retainSentMs?: number;
  /** How often sent rows are purged; 0: never. Default 60 s. */
  readonly purgeEveryMs?: number;
  /** How often the meter's outbox gauges (rows waiting, oldest age) are refreshed. Default 1 s. */
  readonly statsEveryMs?: number;
  /** This relay's lease owner name. Default `<host>:<pid>:<random>`. */
  readonly owner?: string;
  readonly logger?: Logger;
}

/** What a relay publishes with: a transport (its publish resolves on the broker's confirm). */
export type RelayTarget = Pick<Transport, 'publish'>;

const defaults = {
  batchSize: 100,
  leaseMs: 30_000,
  maxAttempts: 10,
  minPollMs: 100,
  maxPollMs: 5_000,
  retainSentMs: 3_600_000,
  purgeEveryMs: 60_000,
  statsEveryMs: 1_000,
};

export class OutboxRelay {
  readonly owner: string;
  private readonly o: typeof defaults;
  private readonly retry: { initialDelayMs: number; factor: number; maxDelayMs: number };
  private target?: RelayTarget;
  private meter?: Meter;
  private log?: Logger;
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private signalled = false;
  private unlisten?: () => Promise<void>;
  private lastPurge = 0;
  private lastStats = 0;
  /** Rows published (confirmed) by this relay. */
  published = 0;

  constructor(readonly store: OutboxStore, options: RelayOptions = {}) {
    this.o = { ...defaults, ...stripUndefined(options) } as typeof defaults;
    this.retry = { initialDelayMs: 500, factor: 2, maxDelayMs: 30_000, ...stripUndefined(options.retry ?? {}) };
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.log = options.logger;
  }

  /** Starts the loop; `target` publishes (the bus's transport). Idempotent while running. */
  async start(host: { transport: RelayTarget; meter?: Meter; logger?: Logger }): Promise<void> {
    if (this.running) return;
    this.target = host.transport;
    this.meter = host.meter;
    this.log ??= host.logger;
    this.running = true;
    this.unlisten = await this.store.onCommit(() => this.kick()).catch((err) => {
      this.log?.warn(`outbox ${this.store.name}: no commit signal, polling only`, { error: describe(err) });
      return undefined;
    });
    this.loop = this.run();
  }

  /** Wakes an idle relay now (a commit happened). */
  kick(): void {
    this.signalled = true;
    this.wake?.();
  }

  /** Finishes the publishes in flight, settles them, releases the rest of the batch, stops. */
  async stop(): Promise<void> {
    if (!this.running) return this.loop;
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.unlisten?.().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let pollMs = this.o.minPollMs;
    while (this.running) {
      let claimed = 0;
      try {
        await this.housekeeping();
        this.signalled = false;
        const rows = await this.store.claim(this.owner, this.o.batchSize, this.o.leaseMs);
        claimed = rows.length;
        if (claimed) await this.publishBatch(rows);
      } catch (err) {
        this.log?.error(`outbox ${this.store.name}: relay step failed`, { error: describe(err) });
      }
      if (claimed) {
        pollMs = this.o.minPollMs;
        continue;
      }
      if (this.signalled) {
        pollMs = this.o.minPollMs;
        continue;
      }
      if (!this.running) break;
      await this.sleep(pollMs);
      pollMs = this.signalled ? this.o.minPollMs : Math.min(this.o.maxPollMs, pollMs * 2);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private async housekeeping(): Promise<void> {
    const now = Date.now();
    if (this.o.purgeEveryMs > 0 && now - this.lastPurge >= this.o.purgeEveryMs) {
      this.lastPurge = now;
      await this.store.purgeSent(this.o.retainSentMs);
    }
    if (this.meter && now - this.lastStats >= this.o.statsEveryMs) {
      this.lastStats = now;
      this.meter.outboxStats(this.store.name, await this.store.stats());
    }
  }

  /** Publishes a claimed batch, per key in order, keys in parallel; settles it in one call. */
  private async publishBatch(rows: ClaimedRow[]): Promise<void> {
    const groups = new Map<string | number, ClaimedRow[]>();
    for (const r of rows) {
      const k = r.orderingKey ?? r.seq;
      let g = groups.get(k);
      if (!g) groups.set(k, (g = []));
      g.push(r);
    }
    const sent: number[] = [];
    const failed: FailedRow[] = [];
    const released: number[] = [];
    await Promise.all(
      [...groups.values()].map(async (group) => {
        for (let i = 0; i < group.length; i++) {
          const row = group[i];
          if (!this.running) {
            for (const r of group.slice(i)) released.push(r.seq);
            return;
          }
          try {
            await this.target!.publish(toMessage(row));
            sent.push(row.seq);
            this.published++;
            this.meter?.outboxPublished(this.store.name);
          } catch (err) {
            const attempts = row.attempts + 1;
            failed.push({ seq: row.seq, error: describe(err).slice(0, 1000), retryInMs: attempts >= this.o.maxAttempts ? null : this.backoff(attempts) });
            if (attempts >= this.o.maxAttempts) {
              this.log?.error(`outbox ${this.store.name}: row ${row.seq} (${row.messageId}) is dead after ${attempts} attempts`, { error: describe(err) });
            }
            for (const r of group.slice(i + 1)) released.push(r.seq);
            return;
          }
        }
      }),
    );
    const outcome: BatchOutcome = { sent, failed, released };
    // Settling must not be lost to one failed statement: retry a few times (the rows would
    // otherwise be published again after the lease, which is allowed but wasteful).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.store.settle(this.owner, outcome);
        return;
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  private backoff(attempts: number): number {
    return backoffDelay({ ...this.retry, jitter: 0.5 }, attempts);
  }
}

/** Runs a relay in a process of its own (`courier relay`): connects, relays until stop() or a signal. */
export async function runRelay(options: RelayOptions & {
  readonly store: OutboxStore;
  readonly transport: Transport;
  readonly meter?: Meter;
  /** Stop on these signals (then exit 0). Default SIGTERM and SIGINT; [] for none. */
  readonly signals?: readonly NodeJS.Signals[];
}): Promise<{ relay: OutboxRelay; stop: () => Promise<void> }> {
  const { store, transport, meter, signals = ['SIGTERM', 'SIGINT'], ...relayOptions } = options;
  const relay = new OutboxRelay(store, relayOptions);
  await transport.connect();
  await relay.start({ transport, meter });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (const s of signals) process.off(s, onSignal);
      await relay.stop();
      await transport.close();
    })();
    return stopping;
  };
  const onSignal = () => {
    void stop().finally(() => process.exit());
  };
  for (const s of signals) process.on(s, onSignal);
  return { relay, stop };
}

function toMessage(row: ClaimedRow): OutgoingMessage {
  return { topic: row.topic, headers: row.headers, body: row.body };
}

function describe(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  return redactSecrets(`${e.name}: ${e.message}`);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
