/**
 * Processes of one service that start together all run migrate() on one PostgreSQL database.
 * Concurrent `CREATE TABLE IF NOT EXISTS` of one table fails in all but one session (a unique
 * violation in pg_type or pg_class, or "already exists"); the stores take an advisory lock per
 * table first (pg-schema.ts `migrationLock`). Each round: a fresh schema, four pools of one
 * connection each, the outbox's and the inbox's migrate in every one at once.
 */
import assert from 'node:assert/strict';
import { Pool } from 'pg';
import { PgInboxStore, PgOutboxStore } from '../../adapters/postgres';
import { inboxDdl, outboxDdl } from '../../adapters/postgres/pg-schema';
import { uniq } from '../helpers/wait';
import { PG_URL } from './db-kit';

const ROUNDS = 10;
const PROCESSES = 4;

/** Runs `migrations(pool, schema)` of PROCESSES pools at once per round; the failures' messages. */
async function race(migrations: (pool: Pool, schema: string) => Array<Promise<unknown>>): Promise<string[]> {
  const failures: string[] = [];
  const admin = new Pool({ connectionString: PG_URL, max: 1 });
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const schema = uniq('courier_migrate').replace(/[^a-z0-9_]/gi, '_');
      await admin.query(`CREATE SCHEMA "${schema}"`);
      const pools = Array.from({ length: PROCESSES }, () => new Pool({ connectionString: PG_URL, max: 1 }));
      try {
        const settled = await Promise.allSettled(pools.flatMap((p) => migrations(p, schema)));
        for (const s of settled) if (s.status === 'rejected') failures.push(String((s.reason as Error).message));
      } finally {
        await Promise.all(pools.map((p) => p.end()));
        await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    }
  } finally {
    await admin.end();
  }
  return failures;
}

describe('PostgreSQL stores: migrate() from several processes at once', function () {
  this.timeout(60_000);

  it(`negative control: the plain DDL run at once by ${PROCESSES} sessions fails in some of them`, async () => {
    const failures = await race((pool, schema) => [pool.query(outboxDdl(`${schema}.outbox`, `${schema}_outbox_commit`)), pool.query(inboxDdl(`${schema}.inbox`))]);
    assert.ok(failures.length > 0, 'no concurrent DDL failed: this control shows nothing on this server');
    console.log(`      plain DDL: ${failures.length} of ${ROUNDS * PROCESSES * 2} failed (${[...new Set(failures)].slice(0, 3).join('; ')})`);
  });

  it(`the stores' migrate() all succeed (${ROUNDS} rounds)`, async () => {
    const failures = await race((pool, schema) => [
      new PgOutboxStore({ pool, table: `${schema}.outbox` }).migrate(),
      new PgInboxStore({ pool, table: `${schema}.inbox` }).migrate(),
    ]);
    assert.deepEqual(failures, []);
  });
});
