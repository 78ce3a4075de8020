/**
 * Which database a demo service gets (`courier demo --db`):
 *   - SQLite by default: `:memory:` when every role runs in one process, else a file per service
 *     (`<data dir>/<service>.db`, the data dir by default `<tmp>/courier-demo/<namespace>`), which
 *     every process of that service on this host shares and a restarted process finds again;
 *   - PostgreSQL with `--db postgres://...`: a schema per service and namespace
 *     (`demo_product_<namespace>`);
 *   - none with `--db memory`, or when better-sqlite3 is not installed (it is an optional peer of
 *     courier-bus): the services then keep their state in memory, which a restart loses; the
 *     notice says so.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PgServiceDatabase } from './postgres-database';
import type { ServiceDatabase } from './service-database';
import { SqliteServiceDatabase } from './sqlite-database';

export interface DatabaseChoice {
  /** `postgres://...`, `memory`, or undefined (SQLite). */
  readonly db?: string;
  /** Where the SQLite files go. */
  readonly dataDir?: string;
  /** Every role in this process: SQLite `:memory:`. */
  readonly inProcess: boolean;
  readonly namespace?: string;
  /** The run created its namespace and is its only user: drop a PostgreSQL schema at close. */
  readonly owned: boolean;
}

export interface OpenedDatabase {
  /** Undefined: keep the state in memory. */
  readonly db?: ServiceDatabase;
  /** Said to the user when the choice was not what they asked for. */
  readonly notice?: string;
  close(): Promise<void>;
}

export async function openServiceDatabase(service: 'product-service' | 'order-service', c: DatabaseChoice): Promise<OpenedDatabase> {
  if (c.db === 'memory') return { close: async () => undefined };
  if (c.db !== undefined && /^postgres(ql)?:\/\//.test(c.db)) {
    const schema = `demo_${service.replace('-service', '')}_${(c.namespace ?? 'shared').replace(/[^a-z0-9]/g, '_')}`;
    const db = await PgServiceDatabase.open(c.db, schema);
    return {
      db,
      close: async () => {
        if (c.owned) await db.drop().catch(() => undefined);
        await db.close();
      },
    };
  }
  let file = ':memory:';
  if (!c.inProcess) {
    const dir = c.dataDir ?? path.join(os.tmpdir(), 'courier-demo', c.namespace ?? 'shared');
    fs.mkdirSync(dir, { recursive: true });
    file = path.join(dir, `${service}.db`);
  }
  let db: SqliteServiceDatabase;
  try {
    db = SqliteServiceDatabase.open(file);
  } catch (err) {
    if ((err as { code?: string }).code !== 'MODULE_NOT_FOUND' || !/better-sqlite3/.test((err as Error).message)) throw err;
    return {
      notice: `better-sqlite3 is not installed: the ${service} keeps its state in memory (a restart loses it). npm install better-sqlite3@12 to use SQLite.`,
      close: async () => undefined,
    };
  }
  return { db, close: () => db.close() };
}
