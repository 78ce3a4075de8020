/**
 * Waiting out a locked SQLite file without blocking the event loop. better-sqlite3 waits for a
 * lock synchronously (its `timeout`), and a connection opened with `timeout: 0` (the relay's, as
 * SqliteOutboxStoreOptions recommends) gets SQLITE_BUSY at once while another connection or
 * process writes. What must happen anyway (a settle, the schema at start-up) is tried again here,
 * a few milliseconds apart, up to a bound.
 */
import type { Database } from 'better-sqlite3';

/** How long a step waits for the file or the connection at most (ms). */
export const BUSY_WAIT_MS = 10_000;

/** The file is locked by another connection (SQLITE_BUSY), or a table by this one (SQLITE_LOCKED). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/**
 * Runs `step` once `db` is in no transaction, again every 2 ms while it throws SQLITE_BUSY or
 * SQLITE_LOCKED, for up to `waitMs`; then the last error (or, for a connection that stayed in
 * someone's transaction, an Error naming `what`) is thrown. Any other error is thrown at once.
 */
export async function whenNotBusy<T>(db: Database, what: string, step: () => T, waitMs = BUSY_WAIT_MS): Promise<T> {
  for (const until = Date.now() + waitMs; ; ) {
    if (!db.inTransaction) {
      try {
        return step();
      } catch (err) {
        if (!isBusy(err) || Date.now() > until) throw err;
      }
    } else if (Date.now() > until) throw new Error(`${what}: the connection stayed in a transaction for ${waitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Runs `ddl` in one BEGIN IMMEDIATE transaction on `db`, waiting as whenNotBusy does: the stores' migrate(). */
export function migrateWhenNotBusy(db: Database, what: string, ddl: string): Promise<void> {
  return whenNotBusy(db, `${what}: migrate`, () => void db.transaction(() => db.exec(ddl)).immediate());
}
