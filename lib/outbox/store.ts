/**
 * The contracts between Courier's store-agnostic outbox/inbox code (lib/outbox/) and a database
 * adapter (adapters/postgres/, adapters/sqlite/). The core imports no database driver; an adapter
 * implements these interfaces with its own driver. docs/consistency.md has the schema and the
 * failure cases.
 *
 * `Tx` is the adapter's transaction handle: what the caller already uses inside its own
 * transaction (a `pg` client after `BEGIN`, a better-sqlite3 `Database` inside `db.transaction`).
 */

/** One message as the outbox stores it: the encoded message of `bus.publish`, and its ordering key. */
export interface OutboxEntry {
  /** The envelope's id (CloudEvents `id`). */
  readonly messageId: string;
  readonly topic: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Rows with the same key are published in commit order, one after the other. Null: no order. */
  readonly orderingKey: string | null;
}

/** A row the relay claimed (leased) for publishing. */
export interface ClaimedRow extends OutboxEntry {
  /** The row's position in commit order (per ordering key). */
  readonly seq: number;
  /** Failed publish attempts so far. */
  readonly attempts: number;
}

/** A claimed row that could not be published. */
export interface FailedRow {
  readonly seq: number;
  /** Why (secrets redacted), kept in `last_error`. */
  readonly error: string;
  /** Try again after this long; `null`: give up, the row goes to the `dead` state. */
  readonly retryInMs: number | null;
}

/** What the relay reports back for a claimed batch: every row it claimed is in exactly one list. */
export interface BatchOutcome {
  /** Published (the transport confirmed): state `sent`, whoever holds the lease now. */
  readonly sent: readonly number[];
  /** Not published: attempts + 1, next attempt later or `dead`; lease cleared (only if still ours). */
  readonly failed: readonly FailedRow[];
  /** Not attempted (held back behind a failed row of the same key, or stopping): lease cleared (if ours). */
  readonly released: readonly number[];
}

export interface OutboxStats {
  /** Rows in state `pending`. */
  readonly pending: number;
  /** Age of the oldest pending row, in ms; null when none. */
  readonly oldestPendingMs: number | null;
  /** Rows in state `dead`. */
  readonly dead: number;
}

/**
 * An outbox table. Semantics every implementation keeps:
 *  - insert() writes one `pending` row in the caller's transaction and nothing else: it commits or
 *    rolls back with it. Rows with the same ordering key get increasing `seq` in commit order.
 *  - claim() leases, atomically, up to `limit` rows that are due: the first pending row of each
 *    ordering key that no live lease holds (keyless rows each on their own), plus the pending rows
 *    that follow it in the same key. A row under a live lease is never returned to another owner,
 *    so concurrent relays never get the same row; a lease that expired (its relay crashed) is
 *    claimable again. Returned in `seq` order.
 *  - settle() records a batch's outcome in one transaction.
 *  - onCommit() calls `listener` soon after a transaction that inserted rows committed (best
 *    effort: the relay polls as well).
 */
export interface OutboxStore<Tx = unknown> {
  /** For metrics and logs: the table's name. */
  readonly name: string;
  /** Creates the table, its indexes (and notify trigger) if missing. Idempotent. */
  migrate(): Promise<void>;
  /** Inserts `entry` with the caller's transaction handle. */
  insert(tx: Tx, entry: OutboxEntry): Promise<void>;
  /** The synchronous insert, for drivers whose transactions are synchronous (better-sqlite3). */
  insertSync?(tx: Tx, entry: OutboxEntry): void;
  claim(owner: string, limit: number, leaseMs: number): Promise<ClaimedRow[]>;
  settle(owner: string, outcome: BatchOutcome): Promise<void>;
  /** Deletes `sent` rows sent more than `olderThanMs` ago; resolves to how many. */
  purgeSent(olderThanMs: number): Promise<number>;
  stats(): Promise<OutboxStats>;
  /** Subscribes to commits of inserted rows; resolves to the unsubscribe function. */
  onCommit(listener: () => void): Promise<() => Promise<void>>;
}

/**
 * An inbox table: (consumer, message id) rows, recorded in the handler's own transaction.
 * run() opens a transaction, inserts the pair (ON CONFLICT DO NOTHING); when it was there already
 * it rolls back and resolves to false without calling `fn` (the message was applied before); else
 * it calls `fn(tx)`, commits, and resolves to true. When `fn` throws, it rolls back (the mark
 * with it) and rethrows. Two copies at once: the second insert waits for the first transaction
 * (the primary key), then finds the row and skips, or inserts if the first rolled back.
 */
export interface InboxStore<Tx = unknown> {
  readonly name: string;
  migrate(): Promise<void>;
  run(consumer: string, messageId: string, fn: (tx: Tx) => unknown): Promise<boolean>;
  /** Deletes marks recorded more than `olderThanMs` ago (after that, a redelivery would apply again). */
  purge(olderThanMs: number): Promise<number>;
}
