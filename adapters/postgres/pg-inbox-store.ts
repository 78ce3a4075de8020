/**
 * The inbox on PostgreSQL: each message runs in a transaction on a client of the pool that first
 * records (consumer, message id) with `INSERT ... ON CONFLICT DO NOTHING`. No row inserted: the
 * message was applied already (or a copy is being applied: the insert waits on the primary key
 * until that transaction ends), so the handler is skipped.
 */
import type { Pool, PoolClient } from 'pg';
import type { InboxStore } from '../../lib/outbox/store';
import { inboxDdl, migrationLock, qualifiedName } from './pg-schema';

export interface PgInboxStoreOptions {
  readonly pool: Pool;
  /** `[schema.]name`. Default `courier_inbox`. */
  readonly table?: string;
}

export class PgInboxStore implements InboxStore<PoolClient> {
  readonly name: string;
  private readonly t: string;
  private readonly pool: Pool;

  constructor(options: PgInboxStoreOptions) {
    this.pool = options.pool;
    this.name = options.table ?? 'courier_inbox';
    this.t = qualifiedName(this.name);
  }

  async migrate(): Promise<void> {
    await this.pool.query(migrationLock(this.name) + inboxDdl(this.name));
  }

  async run(consumer: string, messageId: string, fn: (tx: PoolClient) => unknown): Promise<boolean> {
    const c = await this.pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const r = await c.query(`INSERT INTO ${this.t} (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [consumer, messageId]);
      if (r.rowCount === 0) {
        await c.query('ROLLBACK');
        return false;
      }
      await fn(c);
      await c.query('COMMIT');
      return true;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      c.release(broken);
    }
  }

  async purge(olderThanMs: number): Promise<number> {
    const r = await this.pool.query(`DELETE FROM ${this.t} WHERE received_at < now() - $1 * interval '1 millisecond'`, [olderThanMs]);
    return r.rowCount ?? 0;
  }
}
