/**
 * A service database on PostgreSQL (pg, an optional peer of courier-bus): one schema per service
 * (and per namespace), its connections' search_path set to it, so the services' unqualified table
 * names resolve there; the outbox and inbox tables live in the same schema.
 */
import type { Pool, PoolClient } from 'pg';
import { PgInboxStore, PgOutboxStore } from 'courier-bus/postgres';
import { ExecResult, ServiceDatabase, Tx } from './service-database';

export class PgServiceDatabase implements ServiceDatabase {
  readonly kind = 'postgres';
  readonly inbox: PgInboxStore;
  readonly outboxStore: PgOutboxStore;

  private constructor(private readonly pool: Pool, readonly schema: string, readonly where: string) {
    this.outboxStore = new PgOutboxStore({ pool, table: `${schema}.courier_outbox` });
    this.inbox = new PgInboxStore({ pool, table: `${schema}.courier_inbox` });
  }

  /** Connects to `url` and creates `schema` if missing. */
  static async open(url: string, schema: string): Promise<PgServiceDatabase> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`not a schema name: ${schema}`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Pool } = require('pg') as typeof import('pg');
    const pool = new Pool({ connectionString: url, max: 8, options: `-c search_path=${schema}` });
    pool.on('error', () => undefined); // an idle client's broken connection: the next query reconnects
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const u = new URL(url);
    return new PgServiceDatabase(pool, schema, `postgres://${u.host}${u.pathname} schema ${schema}`);
  }

  async exec<T>(tx: Tx | null, sql: string, params: readonly unknown[] = []): Promise<ExecResult<T>> {
    const r = await ((tx as PoolClient | null) ?? this.pool).query(sql, params as unknown[]);
    return { rows: r.rows as T[], changes: r.rowCount ?? 0 };
  }

  async transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    const c = await this.pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => (broken = true));
      throw err;
    } finally {
      c.release(broken);
    }
  }

  async migrate(ddl: readonly string[]): Promise<void> {
    for (const statement of ddl) await this.pool.query(statement);
    await this.outboxStore.migrate();
    await this.inbox.migrate();
  }

  /** Drops the schema with everything in it (a run that owned it alone). */
  async drop(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
