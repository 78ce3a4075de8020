/**
 * The inbox on SQLite (better-sqlite3). Each message runs in a `BEGIN IMMEDIATE` transaction on
 * the store's connection that first records (consumer, message id) with `INSERT OR IGNORE`; no
 * row inserted: applied already, the handler is skipped. A connection has one transaction at a
 * time, so the handlers of one store run one after the other (SQLite has one writer anyway);
 * several processes on one file serialize on SQLite's write lock (busy_timeout applies).
 */
import type { Database } from 'better-sqlite3';
import type { InboxStore } from '../../lib/outbox/store';
import { migrateWhenNotBusy } from './busy';
import { checkName, inboxDdl } from './sqlite-schema';

export interface SqliteInboxStoreOptions {
  /** The connection the handlers write their effects with (ctx.tx is this Database). */
  readonly db: Database;
  /** Default `courier_inbox`. */
  readonly table?: string;
}

export class SqliteInboxStore implements InboxStore<Database> {
  readonly name: string;
  private readonly t: string;
  private readonly db: Database;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: SqliteInboxStoreOptions) {
    this.db = options.db;
    this.name = options.table ?? 'courier_inbox';
    this.t = checkName(this.name);
  }

  /** Creates the table if missing, in one transaction; waits (bounded) while another writer holds the file. */
  async migrate(): Promise<void> {
    await migrateWhenNotBusy(this.db, `inbox ${this.name}`, inboxDdl(this.name));
  }

  run(consumer: string, messageId: string, fn: (tx: Database) => unknown): Promise<boolean> {
    const next = this.queue.then(() => this.runNow(consumer, messageId, fn));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(consumer: string, messageId: string, fn: (tx: Database) => unknown): Promise<boolean> {
    const db = this.db;
    db.exec('BEGIN IMMEDIATE');
    try {
      const r = db.prepare(`INSERT OR IGNORE INTO ${this.t} (consumer, message_id, received_at) VALUES (?, ?, ?)`).run(consumer, messageId, Date.now());
      if (r.changes === 0) {
        db.exec('ROLLBACK');
        return false;
      }
      await fn(db);
      db.exec('COMMIT');
      return true;
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }

  async purge(olderThanMs: number): Promise<number> {
    return this.db.prepare(`DELETE FROM ${this.t} WHERE received_at < ?`).run(Date.now() - olderThanMs).changes;
  }
}
