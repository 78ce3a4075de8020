/**
 * Cases f (issue 16): the transactional outbox against a plain bus.publish, in the same run, over
 * AMQP with confirms. In this process (not the children of the other cases): one bus publishes
 * and consumes; each message carries its publish time.
 *   f-plain     bus.publish, `window` publishes in flight: publish rate, publish-to-handler latency.
 *   f-postgres  per message one transaction (an order row + outbox.publish), `window` transactions
 *               at once on a pool; the bus's relay publishes. Rate: commits/s; latency: from the
 *               publish call (before the commit) to the handler.
 *   f-sqlite    the same with better-sqlite3's synchronous transactions (publishSync), one at a
 *               time (SQLite has one writer), on a file in the temp folder.
 * The rate of f-postgres/f-sqlite is the application's commit rate; the relay keeps up when the
 * latency stays flat (all messages are delivered before the case ends).
 */
import 'reflect-metadata';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IsInt, IsNumber } from 'class-validator';
import BetterSqlite3 from 'better-sqlite3';
import { Pool } from 'pg';
import { amqpTransport } from '../adapters/amqp';
import { PgOutboxStore } from '../adapters/postgres';
import { SqliteOutboxStore } from '../adapters/sqlite';
import { createBus, Message, silentLogger, Subscribe, Subscriber } from '../lib';
import { createOutbox, OutboxStore } from '../lib/outbox';

export interface OutboxSample {
  rate: number;
  p50: number;
  p99: number;
  rssMb: number;
  detail: Record<string, number>;
}

export async function outboxCase(kind: 'plain' | 'postgres' | 'sqlite', o: { amqpUrl: string; pgUrl: string; n: number; window: number; tag: string }): Promise<OutboxSample> {
  const type = `${o.tag}.order`;
  @Message(type)
  class Placed {
    @IsInt() n!: number;
    @IsNumber() at!: number;
  }
  const latencies: number[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  @Subscriber({ group: o.tag, prefetch: 1000 })
  class Sink {
    @Subscribe(Placed)
    on(p: Placed) {
      latencies.push(performance.now() - p.at);
      if (latencies.length === o.n) done();
    }
  }
  const transport = amqpTransport({ url: o.amqpUrl });
  const bus = createBus({ transport, source: o.tag, logger: silentLogger, meter: false });
  bus.register(new Sink());
  let cleanup = async () => undefined as void;
  let store: OutboxStore | undefined;
  let publishOne: (n: number) => Promise<unknown> | unknown;
  const schema = o.tag.replace(/[^a-z0-9]/gi, '_').toLowerCase();
  if (kind === 'postgres') {
    const pool = new Pool({ connectionString: o.pgUrl, max: o.window + 4 });
    await pool.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".orders (n int PRIMARY KEY)`);
    store = new PgOutboxStore({ pool, table: `${schema}.outbox` });
    await store.migrate();
    const outbox = createOutbox(bus, store as PgOutboxStore);
    publishOne = async (n) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        await c.query(`INSERT INTO "${schema}".orders (n) VALUES ($1)`, [n]);
        await outbox.publish(c, Placed, { n, at: performance.now() });
        await c.query('COMMIT');
      } finally {
        c.release();
      }
    };
    cleanup = async () => {
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
      await pool.end();
    };
  } else if (kind === 'sqlite') {
    const file = path.join(os.tmpdir(), `${schema}.db`);
    const db = new BetterSqlite3(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const relayDb = new BetterSqlite3(file, { timeout: 0 });
    db.exec('CREATE TABLE orders (n INTEGER PRIMARY KEY)');
    const sqlite = new SqliteOutboxStore({ db: relayDb, table: 'outbox' });
    store = sqlite;
    await store.migrate();
    const outbox = createOutbox(bus, sqlite);
    const insert = db.prepare('INSERT INTO orders (n) VALUES (?)');
    const tx = db.transaction((n: number) => {
      insert.run(n);
      outbox.publishSync(db, Placed, { n, at: performance.now() });
    });
    publishOne = (n) => tx.immediate(n);
    cleanup = async () => {
      db.close();
      relayDb.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
    };
  } else {
    publishOne = (n) => bus.publish(Placed, { n, at: performance.now() });
  }
  await bus.start();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
  const started = performance.now();
  try {
    if (kind === 'sqlite') {
      // Synchronous transactions: yield to the event loop every `window` commits so the relay runs.
      for (let n = 0; n < o.n; n++) {
        publishOne(n);
        if (n % o.window === o.window - 1) await new Promise((r) => setImmediate(r));
      }
    } else {
      let next = 0;
      await Promise.all(Array.from({ length: o.window }, async () => {
        while (next < o.n) await publishOne(next++);
      }));
    }
    const published = performance.now();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`f-${kind}: not all delivered in 120 s (${latencies.length}/${o.n})`)), 120_000)))]).finally(() => clearTimeout(timer));
    const delivered = performance.now();
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
    return {
      rate: (o.n * 1000) / (published - started),
      p50: at(0.5),
      p99: at(0.99),
      rssMb: peakRss / 1024 / 1024,
      detail: { deliveredPerS: (o.n * 1000) / (delivered - started), count: latencies.length },
    };
  } finally {
    clearInterval(sampler);
    await bus.stop();
    await cleanup();
  }
}
