/**
 * A service's own database, as the samples use it: SQLite (better-sqlite3) or PostgreSQL (pg),
 * with Courier's outbox and inbox tables beside the service's own. The services write their SQL
 * once, with `$1, $2, ...` placeholders, and run it inside the inbox's transaction (`ctx.tx`) or
 * one of their own (`transaction()`); what they publish goes into the outbox in that same
 * transaction (docs/consistency.md).
 */
import type { InboxStore, OutboxStore } from 'courier-bus';

/** The transaction handle: a better-sqlite3 Database inside BEGIN, or a pg client inside BEGIN. */
export type Tx = unknown;

export interface ExecResult<T> {
  readonly rows: T[];
  /** Rows inserted, updated or deleted. */
  readonly changes: number;
}

export interface ServiceDatabase {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives (a file, `:memory:`, or a PostgreSQL schema), for messages; no secrets. */
  readonly where: string;
  /** Courier's inbox on this database (`@Subscribe(X, { inbox })`). */
  readonly inbox: InboxStore;
  /** Courier's outbox on this database (`createOutbox(bus, store)`). */
  readonly outboxStore: OutboxStore;
  /** Runs one statement with `tx` (inside a transaction) or on its own (`null`). */
  exec<T = Record<string, unknown>>(tx: Tx | null, sql: string, params?: readonly unknown[]): Promise<ExecResult<T>>;
  /** Runs `fn` in a transaction of its own: committed when it resolves, rolled back when it throws. */
  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Creates the tables (the service's statements, then the outbox's and inbox's). Idempotent. */
  migrate(ddl: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
