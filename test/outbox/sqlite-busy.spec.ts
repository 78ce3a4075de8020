/**
 * A SQLite file another connection is writing: the stores' migrate() waits for it (bounded)
 * instead of failing at once on a relay connection opened with `timeout: 0`. Two demo processes
 * of one service start on one file and migrate at the same moment (a CI run failed with
 * "database is locked" there).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Database } from 'better-sqlite3';
import { SqliteInboxStore, SqliteOutboxStore } from '../../adapters/sqlite';
import { whenNotBusy } from '../../adapters/sqlite/busy';
import { outboxDdl } from '../../adapters/sqlite/sqlite-schema';
import { uniq } from '../helpers/wait';
import { openSqlite } from './db-kit';

describe('SQLite stores on a file another connection is writing', () => {
  let file: string;
  let holder: Database;
  let other: Database;

  beforeEach(() => {
    file = path.join(os.tmpdir(), `${uniq('courier-busy')}.db`);
    holder = openSqlite(file);
    other = openSqlite(file, 0);
    holder.exec('CREATE TABLE t (x INTEGER)');
  });

  afterEach(() => {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    other.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  });

  /** Holds the file's write lock for `ms`, then commits. */
  function holdLock(ms: number): Promise<void> {
    holder.exec('BEGIN IMMEDIATE');
    holder.prepare('INSERT INTO t VALUES (1)').run();
    return new Promise((resolve) =>
      setTimeout(() => {
        holder.exec('COMMIT');
        resolve();
      }, ms),
    );
  }

  const tables = () => (other.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name).sort();

  it('negative control: the DDL on a timeout-0 connection fails at once while the lock is held', async () => {
    const released = holdLock(100);
    assert.throws(() => other.exec(outboxDdl('outbox')), (err: { code?: string }) => err.code === 'SQLITE_BUSY');
    await released;
  });

  it('outbox and inbox migrate() wait for the lock, then create their tables', async () => {
    const released = holdLock(300);
    const t0 = Date.now();
    await Promise.all([new SqliteOutboxStore({ db: other, table: 'outbox' }).migrate(), new SqliteInboxStore({ db: other, table: 'inbox' }).migrate()]);
    const waited = Date.now() - t0;
    await released;
    assert.ok(waited >= 250, `migrate returned after ${waited} ms, while the lock was held`);
    assert.deepEqual(tables().filter((n) => n !== 'sqlite_sequence'), ['inbox', 'outbox', 't']);
    // Once more, on tables that exist: nothing changes.
    await new SqliteOutboxStore({ db: other, table: 'outbox' }).migrate();
  });

  it('the wait is bounded: still locked after it, the SQLITE_BUSY comes through', async () => {
    const released = holdLock(400);
    const t0 = Date.now();
    await assert.rejects(
      whenNotBusy(other, 'test', () => other.exec(outboxDdl('outbox')), 100),
      (err: { code?: string }) => err.code === 'SQLITE_BUSY',
    );
    const waited = Date.now() - t0;
    assert.ok(waited >= 100 && waited < 350, `gave up after ${waited} ms`);
    await released;
  });

  it('any other error is thrown at once', async () => {
    const t0 = Date.now();
    await assert.rejects(whenNotBusy(other, 'test', () => other.exec('CREATE TABLE (')), /syntax error/);
    assert.ok(Date.now() - t0 < 50);
  });
});
