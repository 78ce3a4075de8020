/**
 * The outbox table on SQLite (better-sqlite3, version 12). insertSync() runs inside the caller's
 * synchronous `db.transaction(...)` (or between its own BEGIN and COMMIT); claim and settle run
 * in `BEGIN IMMEDIATE` transactions on the store's connection, so relays in several processes on
 * one file still never claim the same row (SQLite has one writer at a time; leases as on
 * PostgreSQL). Commits wake the relay of this process through an in-process signal: after an
 * insert, once the caller's connection has left its transaction. Relays in other processes poll.
 */
import { EventEmitter } from 'node:events';
import type { Database, Statement } from 'better-sqlite3';
import type { BatchOutcome, ClaimedRow, OutboxEntry, OutboxStats, OutboxStore } from '../../lib/outbox/store';
import { isBusy, migrateWhenNotBusy, whenNotBusy } from './busy';
import { checkName, outboxDdl } from './sqlite-schema';

export interface SqliteOutboxStoreOptions {
  /**
   * The relay's connection: the application's own, or better one of its own opened with
   * `{ timeout: 0 }`. better-sqlite3 waits for a lock synchronously (default 5 s), which blocks
   * the event loop, and with it the application transaction that holds the lock. With timeout 0
   * a busy database makes the relay try again later instead.
   */
  readonly db: Database;
  /** Default `courier_outbox`. */
  readonly table?: string;
}

interface Row {
  seq: number;
  id: string;
  topic: string;
  headers: string;
  body: Buffer;
  ordering_key: string | null;
  attempts: number;
}

export class SqliteOutboxStore implements OutboxStore<Database> {
  readonly name: string;
  private readonly t: string;
  private readonly db: Database;
  private readonly commits = new EventEmitter();
  private waiting = false;
  private statements?: Record<'insert' | 'heads' | 'successors' | 'lease' | 'sent' | 'failed' | 'release', Statement>;

  constructor(options: SqliteOutboxStoreOptions) {
    this.db = options.db;
    this.name = options.table ?? 'courier_outbox';
    this.t = checkName(this.name);
  }

  /** Creates the table and its indexes if missing, in one transaction; waits (bounded) while another writer holds the file. */
  async migrate(): Promise<void> {
    await migrateWhenNotBusy(this.db, `outbox ${this.name}`, outboxDdl(this.name));
  }

  private get s() {
    if (this.statements) return this.statements;
    const t = this.t;
    this.statements = {
      insert: this.db.prepare(`INSERT INTO ${t} (id, topic, headers, body, ordering_key, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)`),
      heads: this.db.prepare(`
        SELECT o.seq, o.ordering_key FROM ${t} o
        WHERE o.state = 'pending' AND o.next_attempt_at <= @now AND (o.lease_until IS NULL OR o.lease_until < @now)
          AND (o.ordering_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM ${t} p WHERE p.state = 'pending' AND p.ordering_key = o.ordering_key AND p.seq < o.seq))
        ORDER BY o.seq LIMIT @limit`),
      successors: this.db.prepare(`SELECT seq FROM ${t} WHERE ordering_key = ? AND state = 'pending' AND seq > ? ORDER BY seq LIMIT ?`),
      lease: this.db.prepare(`UPDATE ${t} SET lease_owner = ?, lease_until = ? WHERE seq = ? RETURNING seq, id, topic, headers, body, ordering_key, attempts`),
      sent: this.db.prepare(`UPDATE ${t} SET state = 'sent', sent_at = ?, lease_owner = NULL, lease_until = NULL WHERE seq = ?`),
      failed: this.db.prepare(`UPDATE ${t} SET attempts = attempts + 1, last_error = @error, lease_owner = NULL, lease_until = NULL,
        state = CASE WHEN @retry IS NULL THEN 'dead' ELSE 'pending' END, next_attempt_at = @now + COALESCE(@retry, 0)
        WHERE seq = @seq AND lease_owner = @owner AND state = 'pending'`),
      release: this.db.prepare(`UPDATE ${t} SET lease_owner = NULL, lease_until = NULL WHERE seq = ? AND lease_owner = ? AND state = 'pending'`),
    };
    return this.statements;
  }

  async insert(tx: Database, e: OutboxEntry): Promise<void> {
    this.insertSync(tx, e);
  }

  insertSync(tx: Database, e: OutboxEntry): void {
    const now = Date.now();
    const stmt = tx === this.db ? this.s.insert : tx.prepare(this.s.insert.source);
    stmt.run(e.messageId, e.topic, JSON.stringify(e.headers), e.body, e.orderingKey, now, now);
    this.signalAfterCommit(tx);
  }

  /** Emits `commit` once `tx` is out of its transaction (checked each turn of the event loop, up to 10 s). */
  private signalAfterCommit(tx: Database): void {
    if (this.waiting) return;
    this.waiting = true;
    const deadline = Date.now() + 10_000;
    const check = () => {
      if (tx.inTransaction && Date.now() < deadline) return void setTimeout(check, 1);
      this.waiting = false;
      this.commits.emit('commit');
    };
    setImmediate(check);
  }

  async claim(owner: string, limit: number, leaseMs: number): Promise<ClaimedRow[]> {
    // The connection is inside someone's transaction (shared with the application): try later.
    if (this.db.inTransaction) return [];
    const s = this.s;
    let rows: Row[];
    try {
      rows = this.db
      .transaction(() => {
        const now = Date.now();
        const heads = s.heads.all({ now, limit }) as { seq: number; ordering_key: string | null }[];
        const seqs: number[] = [];
        for (const h of heads) {
          seqs.push(h.seq);
          if (h.ordering_key === null) continue;
          for (const f of s.successors.all(h.ordering_key, h.seq, limit - 1) as { seq: number }[]) seqs.push(f.seq);
        }
        // At most `limit` rows in all, in seq order: a row's head always comes before it.
        seqs.sort((a, b) => a - b);
        return seqs.slice(0, limit).map((seq) => s.lease.get(owner, now + leaseMs, seq) as Row);
      })
      .immediate();
    } catch (err) {
      if (isBusy(err)) return [];
      throw err;
    }
    return rows
      .map((r) => ({
        seq: r.seq,
        messageId: r.id,
        topic: r.topic,
        headers: JSON.parse(r.headers) as Record<string, string>,
        body: r.body,
        orderingKey: r.ordering_key,
        attempts: r.attempts,
      }))
      .sort((a, b) => a.seq - b.seq);
  }

  async settle(owner: string, o: BatchOutcome): Promise<void> {
    const s = this.s;
    const settle = this.db.transaction(() => {
      const now = Date.now();
      for (const seq of o.sent) s.sent.run(now, seq);
      for (const f of o.failed) s.failed.run({ seq: f.seq, owner, error: f.error, retry: f.retryInMs, now });
      for (const seq of o.released) s.release.run(seq, owner);
    });
    // Wait (asynchronously) while the connection is in someone's transaction or the file is locked.
    return whenNotBusy(this.db, `outbox ${this.name}`, () => settle.immediate());
  }

  async purgeSent(olderThanMs: number): Promise<number> {
    try {
      return this.db.prepare(`DELETE FROM ${this.t} WHERE state = 'sent' AND sent_at < ?`).run(Date.now() - olderThanMs).changes;
    } catch (err) {
      if (isBusy(err) || this.db.inTransaction) return 0; // next time
      throw err;
    }
  }

  async stats(): Promise<OutboxStats> {
    const r = this.db
      .prepare(
        `SELECT sum(state = 'pending') AS pending, sum(state = 'dead') AS dead, min(CASE WHEN state = 'pending' THEN created_at END) AS oldest
         FROM ${this.t} WHERE state <> 'sent'`,
      )
      .get() as { pending: number | null; dead: number | null; oldest: number | null };
    return { pending: r.pending ?? 0, dead: r.dead ?? 0, oldestPendingMs: r.oldest === null ? null : Math.max(0, Date.now() - r.oldest) };
  }

  async onCommit(listener: () => void): Promise<() => Promise<void>> {
    this.commits.on('commit', listener);
    return async () => void this.commits.off('commit', listener);
  }
}
