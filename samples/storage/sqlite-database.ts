/**
 * A service database on SQLite (better-sqlite3 12, an optional peer of courier-bus): a file, or
 * `:memory:` when every role runs in one process. One connection runs the service's
 * transactions and the inbox's, one after the other (SQLite has one writer; better-sqlite3 one
 * transaction per connection); a file gets a second connection for the relay (timeout 0, so a
 * busy file makes the relay try later instead of blocking the event loop). Several processes of
 * one service may share a file (WAL mode; the relays lease rows, docs/consistency.md).
 */
import type { Database } from 'better-sqlite3';
import type { InboxStore } from 'courier-bus';
import { SqliteInboxStore, SqliteOutboxStore } from 'courier-bus/sqlite';
import { ExecResult, ServiceDatabase, Tx } from './service-database';

export class SqliteServiceDatabase implements ServiceDatabase {
  readonly kind = 'sqlite';
  readonly inbox: InboxStore;
  readonly outboxStore: SqliteOutboxStore;
  private readonly relayDb?: Database;
  private readonly innerInbox: SqliteInboxStore;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly db: Database, readonly where: string, open?: (file: string, timeoutMs: number) => Database) {
    if (where !== ':memory:') {
      db.pragma('journal_mode = WAL');
      this.relayDb = open?.(where, 0);
    }
    this.outboxStore = new SqliteOutboxStore({ db: this.relayDb ?? db });
    this.innerInbox = new SqliteInboxStore({ db });
    // The inbox's transactions and the service's own share the connection: one queue for both.
    this.inbox = {
      name: this.innerInbox.name,
      migrate: () => this.innerInbox.migrate(),
      purge: (ms) => this.innerInbox.purge(ms),
      run: (consumer, messageId, fn) => this.serial(() => this.innerInbox.run(consumer, messageId, fn)),
    };
  }

  /** Opens (creates) `file` or `:memory:`; needs better-sqlite3 (throws its MODULE_NOT_FOUND otherwise). */
  static open(file: string): SqliteServiceDatabase {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const BetterSqlite3 = require('better-sqlite3') as typeof import('better-sqlite3');
    const open = (f: string, timeout: number) => new BetterSqlite3(f, { timeout });
    return new SqliteServiceDatabase(open(file, 5000), file, open);
  }

  async exec<T>(tx: Tx | null, sql: string, params: readonly unknown[] = []): Promise<ExecResult<T>> {
    const { text, values } = positional(sql, params);
    const stmt = ((tx as Database | null) ?? this.db).prepare(text);
    if (stmt.reader) {
      const rows = stmt.all(...values) as T[];
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: stmt.run(...values).changes };
  }

  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return this.serial(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const r = await fn(this.db);
        this.db.exec('COMMIT');
        return r;
      } catch (err) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async migrate(ddl: readonly string[]): Promise<void> {
    for (const statement of ddl) this.db.exec(statement);
    await this.outboxStore.migrate();
    await this.innerInbox.migrate();
  }

  async close(): Promise<void> {
    await this.queue;
    this.relayDb?.close();
    this.db.close();
  }

  private serial<R>(fn: () => Promise<R>): Promise<R> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** `$1 ... $n` (PostgreSQL's placeholders) as SQLite's `?`, with the values in the order they appear. */
function positional(sql: string, params: readonly unknown[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    values.push(params[Number(n) - 1]);
    return '?';
  });
  return { text, values };
}
