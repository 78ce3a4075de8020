/**
 * The outbox table on PostgreSQL (node-postgres). insert() runs on the caller's client inside its
 * transaction; the relay's statements run on the store's own pool. Claims use
 * `FOR UPDATE SKIP LOCKED` on the first pending row of each ordering key, plus a lease
 * (lease_owner, lease_until) on it and on the rows of the key behind it: concurrent relays skip
 * what another one holds, and a crashed relay's rows become claimable when the lease ends.
 * Inserts with an ordering key take a transaction-scoped advisory lock on the key, so that rows
 * of one key get their `seq` in commit order. Commits wake the relay through LISTEN/NOTIFY (a
 * statement trigger created by migrate()).
 */
import type { Pool, PoolClient, QueryResult } from 'pg';
import type { BatchOutcome, ClaimedRow, OutboxEntry, OutboxStats, OutboxStore } from '../../lib/outbox/store';
import { baseName, migrationLock, outboxDdl, qualifiedName } from './pg-schema';

/** What insert() needs of the caller's client: a `pg` Client or PoolClient inside BEGIN. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<QueryResult>;
}

export interface PgOutboxStoreOptions {
  /** The relay's connections (claim, settle, LISTEN). */
  readonly pool: Pool;
  /** `[schema.]name`. Default `courier_outbox`. */
  readonly table?: string;
}

export class PgOutboxStore implements OutboxStore<PgQueryable> {
  readonly name: string;
  private readonly t: string;
  readonly channel: string;
  private readonly pool: Pool;
  private readonly sql: { insert: string; insertKeyed: string; claim: string };

  constructor(options: PgOutboxStoreOptions) {
    this.pool = options.pool;
    this.name = options.table ?? 'courier_outbox';
    this.t = qualifiedName(this.name);
    this.channel = `${baseName(this.name)}_commit`.toLowerCase();
    const t = this.t;
    const cols = 'id, topic, headers, body, ordering_key';
    this.sql = {
      insert: `INSERT INTO ${t} (${cols}) VALUES ($1, $2, $3, $4, NULL)`,
      insertKeyed: `INSERT INTO ${t} (${cols}) SELECT $1, $2, $3, $4, $5::text FROM (SELECT pg_advisory_xact_lock(hashtextextended($5::text, 7741))) l`,
      claim: `
WITH heads AS (
  SELECT o.seq, o.ordering_key FROM ${t} o
  WHERE o.state = 'pending' AND o.next_attempt_at <= now() AND (o.lease_until IS NULL OR o.lease_until < now())
    AND (o.ordering_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM ${t} p WHERE p.state = 'pending' AND p.ordering_key = o.ordering_key AND p.seq < o.seq))
  ORDER BY o.seq LIMIT $2
  FOR UPDATE OF o SKIP LOCKED
), batch AS (
  -- At most $2 rows in all, in seq order: a row's head always comes before it.
  SELECT seq FROM (
    SELECT seq FROM heads
    UNION ALL
    SELECT f.seq FROM ${t} f JOIN heads h ON f.ordering_key = h.ordering_key AND f.seq > h.seq WHERE f.state = 'pending'
  ) a ORDER BY seq LIMIT $2
)
UPDATE ${t} u SET lease_owner = $1, lease_until = now() + $3 * interval '1 millisecond'
FROM batch WHERE u.seq = batch.seq
RETURNING u.seq, u.id, u.topic, u.headers, u.body, u.ordering_key, u.attempts`,
    };
  }

  async migrate(): Promise<void> {
    await this.pool.query(migrationLock(this.name) + outboxDdl(this.name, this.channel));
  }

  async insert(tx: PgQueryable, e: OutboxEntry): Promise<void> {
    const values: unknown[] = [e.messageId, e.topic, e.headers, e.body];
    if (e.orderingKey === null) await tx.query(this.sql.insert, values);
    else await tx.query(this.sql.insertKeyed, [...values, e.orderingKey]);
  }

  async claim(owner: string, limit: number, leaseMs: number): Promise<ClaimedRow[]> {
    const r = await this.pool.query(this.sql.claim, [owner, limit, leaseMs]);
    return r.rows
      .map((row) => ({
        seq: Number(row.seq),
        messageId: row.id as string,
        topic: row.topic as string,
        headers: row.headers as Record<string, string>,
        body: row.body as Buffer,
        orderingKey: row.ordering_key as string | null,
        attempts: row.attempts as number,
      }))
      .sort((a, b) => a.seq - b.seq);
  }

  async settle(owner: string, o: BatchOutcome): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      if (o.sent.length) {
        await c.query(`UPDATE ${this.t} SET state = 'sent', sent_at = now(), lease_owner = NULL, lease_until = NULL WHERE seq = ANY($1::bigint[])`, [o.sent]);
      }
      for (const f of o.failed) {
        await c.query(
          `UPDATE ${this.t} SET attempts = attempts + 1, last_error = $3, lease_owner = NULL, lease_until = NULL,
             state = CASE WHEN $4::bigint IS NULL THEN 'dead' ELSE 'pending' END,
             next_attempt_at = now() + COALESCE($4::bigint, 0) * interval '1 millisecond'
           WHERE seq = $1 AND lease_owner = $2 AND state = 'pending'`,
          [f.seq, owner, f.error, f.retryInMs],
        );
      }
      if (o.released.length) {
        await c.query(`UPDATE ${this.t} SET lease_owner = NULL, lease_until = NULL WHERE seq = ANY($1::bigint[]) AND lease_owner = $2 AND state = 'pending'`, [o.released, owner]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async purgeSent(olderThanMs: number): Promise<number> {
    const r = await this.pool.query(`DELETE FROM ${this.t} WHERE state = 'sent' AND sent_at < now() - $1 * interval '1 millisecond'`, [olderThanMs]);
    return r.rowCount ?? 0;
  }

  async stats(): Promise<OutboxStats> {
    const r = await this.pool.query(
      `SELECT count(*) FILTER (WHERE state = 'pending') AS pending, count(*) FILTER (WHERE state = 'dead') AS dead,
         extract(epoch FROM now() - min(created_at) FILTER (WHERE state = 'pending')) * 1000 AS oldest
       FROM ${this.t} WHERE state <> 'sent'`,
    );
    const row = r.rows[0];
    return { pending: Number(row.pending), dead: Number(row.dead), oldestPendingMs: row.oldest === null ? null : Math.round(Number(row.oldest)) };
  }

  /** LISTEN on a connection of its own; re-listens (after 1 s) when that connection fails. */
  async onCommit(listener: () => void): Promise<() => Promise<void>> {
    let client: PoolClient | undefined;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    const listen = async (): Promise<void> => {
      const c = await this.pool.connect();
      c.on('notification', listener);
      c.on('error', () => {
        c.release(true);
        if (client === c) client = undefined;
        if (!closed) timer = setTimeout(() => void listen().catch(() => undefined), 1000);
      });
      await c.query(`LISTEN "${this.channel}"`);
      if (closed) return c.release(true);
      client = c;
      listener(); // rows committed while not listening
    };
    await listen();
    return async () => {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      if (c) {
        await c.query(`UNLISTEN "${this.channel}"`).catch(() => undefined);
        c.release();
      }
    };
  }
}
