/**
 * A fresh database per test case for the outbox/inbox specs: a PostgreSQL schema of its own
 * (127.0.0.1:5432 or COURIER_PG_URL; dropped by close()), or a SQLite file of its own in the temp
 * folder (deleted by close()). Holds the outbox and inbox stores and an `orders` and an `effects`
 * table for the application's side of a transaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3, { Database } from 'better-sqlite3';
import { Pool, PoolClient } from 'pg';
import { PgInboxStore, PgOutboxStore } from '../../adapters/postgres';
import { SqliteInboxStore, SqliteOutboxStore } from '../../adapters/sqlite';
import type { InboxStore, OutboxStore } from '../../lib/outbox';
import { uniq } from '../helpers/wait';

export const PG_URL = process.env.COURIER_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export type DbKind = 'postgres' | 'sqlite';

export interface DbKit<Tx = unknown> {
  readonly kind: DbKind;
  /** The schema (postgres) or file (sqlite): what a child process needs to open the same tables. */
  readonly where: string;
  readonly outbox: OutboxStore<Tx>;
  readonly inbox: InboxStore<Tx>;
  /** Runs `fn` in a transaction: commits when it resolves, rolls back when it throws (and rethrows). */
  tx<R>(fn: (tx: Tx) => Promise<R> | R): Promise<R>;
  insertOrder(tx: Tx, id: string): Promise<void>;
  /** Adds one effect row for `key` (no uniqueness: a second apply is a second row). */
  addEffect(tx: Tx, key: string): Promise<void>;
  /** Effect rows per key. */
  effects(): Promise<Map<string, number>>;
  orders(): Promise<string[]>;
  /** The outbox rows, in seq order. */
  rows(): Promise<{ seq: number; id: string; state: string; attempts: number; last_error: string | null; lease_owner: string | null }[]>;
  close(): Promise<void>;
}

export async function openKit(kind: DbKind, where?: string): Promise<DbKit> {
  return kind === 'postgres' ? pgKit(where) : sqliteKit(where);
}

async function pgKit(existing?: string): Promise<DbKit<PoolClient>> {
  const schema = existing ?? uniq('ob').replace(/[^a-z0-9_]/gi, '_').toLowerCase();
  const pool = new Pool({ connectionString: PG_URL, max: 12 });
  if (!existing) {
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(`CREATE TABLE "${schema}".orders (id text PRIMARY KEY); CREATE TABLE "${schema}".effects (k text NOT NULL)`);
  }
  const outbox = new PgOutboxStore({ pool, table: `${schema}.outbox` });
  const inbox = new PgInboxStore({ pool, table: `${schema}.inbox` });
  if (!existing) {
    await outbox.migrate();
    await inbox.migrate();
  }
  return {
    kind: 'postgres',
    where: schema,
    outbox,
    inbox,
    async tx(fn) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const r = await fn(c);
        await c.query('COMMIT');
        return r;
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      } finally {
        c.release();
      }
    },
    insertOrder: async (c, id) => void (await c.query(`INSERT INTO "${schema}".orders (id) VALUES ($1)`, [id])),
    addEffect: async (c, k) => void (await c.query(`INSERT INTO "${schema}".effects (k) VALUES ($1)`, [k])),
    async effects() {
      const r = await pool.query(`SELECT k, count(*)::int AS n FROM "${schema}".effects GROUP BY k`);
      return new Map(r.rows.map((x) => [x.k as string, x.n as number]));
    },
    async orders() {
      return (await pool.query(`SELECT id FROM "${schema}".orders`)).rows.map((r) => r.id as string);
    },
    async rows() {
      const r = await pool.query(`SELECT seq, id, state, attempts, last_error, lease_owner FROM "${schema}".outbox ORDER BY seq`);
      return r.rows.map((x) => ({ ...x, seq: Number(x.seq) }));
    },
    async close() {
      if (!existing) await pool.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => undefined);
      await pool.end();
    },
  };
}

/** A connection to `file` in WAL mode; `timeout`: how long a statement waits (synchronously) for a lock. */
export function openSqlite(file: string, timeout = 5000): Database {
  const db = new BetterSqlite3(file, { timeout });
  db.pragma('journal_mode = WAL');
  return db;
}

async function sqliteKit(existing?: string): Promise<DbKit<Database>> {
  const file = existing ?? path.join(os.tmpdir(), `${uniq('courier-outbox')}.db`);
  // The application's connection, and one of the relay's own (the application may hold a
  // transaction across an await on its connection).
  const app = openSqlite(file);
  const relayDb = openSqlite(file, 0);
  if (!existing) app.exec('CREATE TABLE orders (id TEXT PRIMARY KEY); CREATE TABLE effects (k TEXT NOT NULL)');
  const outbox = new SqliteOutboxStore({ db: relayDb, table: 'outbox' });
  const inbox = new SqliteInboxStore({ db: app, table: 'inbox' });
  if (!existing) {
    await outbox.migrate();
    await inbox.migrate();
  }
  let queue: Promise<unknown> = Promise.resolve();
  return {
    kind: 'sqlite',
    where: file,
    outbox,
    inbox,
    tx(fn) {
      // One transaction at a time on the application's connection.
      const run = queue.then(async () => {
        app.exec('BEGIN IMMEDIATE');
        try {
          const r = await fn(app);
          app.exec('COMMIT');
          return r;
        } catch (err) {
          if (app.inTransaction) app.exec('ROLLBACK');
          throw err;
        }
      });
      queue = run.catch(() => undefined);
      return run;
    },
    insertOrder: async (db, id) => void db.prepare('INSERT INTO orders (id) VALUES (?)').run(id),
    addEffect: async (db, k) => void db.prepare('INSERT INTO effects (k) VALUES (?)').run(k),
    async effects() {
      return new Map((app.prepare('SELECT k, count(*) AS n FROM effects GROUP BY k').all() as { k: string; n: number }[]).map((x) => [x.k, x.n]));
    },
    async orders() {
      return (app.prepare('SELECT id FROM orders').all() as { id: string }[]).map((r) => r.id);
    },
    async rows() {
      return app.prepare('SELECT seq, id, state, attempts, last_error, lease_owner FROM outbox ORDER BY seq').all() as never;
    },
    async close() {
      app.close();
      relayDb.close();
      if (!existing) for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    },
  };
}
