/**
 * The driver's own record of its run, in a SQLite file of its own (`<data-dir>/driver-<instance-id>.db`),
 * so that a driver killed mid-run and started again with the same --data-dir and --instance-id
 * resumes the same run: same run id (so the same order ids), the catalog's stock when the run
 * began, the orders placed so far and the final events seen. An order is written before it is
 * sent (the resumed driver sends again those that did not end; commands are idempotent by id), a
 * final event when it arrives (before the broker gets its ack). A run that ended is removed from
 * the file, so the next start begins a new one; a run stopped by a signal stays, to be resumed.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Database } from 'better-sqlite3';

export interface JournalOrder {
  readonly productId: string;
  readonly quantity: number;
}

export class DriverJournal {
  private constructor(
    private readonly db: Database,
    /** The file, for messages. */
    readonly where: string,
  ) {
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS orders (idx INTEGER PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, product_id TEXT NOT NULL, quantity INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS finals (order_id TEXT NOT NULL, state TEXT NOT NULL, reason TEXT, PRIMARY KEY (order_id, state));`);
  }

  /** Opens (creates) `<dir>/driver-<instanceId>.db`; needs better-sqlite3 (throws its MODULE_NOT_FOUND otherwise). */
  static open(dir: string, instanceId: string): DriverJournal {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const BetterSqlite3 = require('better-sqlite3') as typeof import('better-sqlite3');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `driver-${instanceId}.db`);
    return new DriverJournal(new BetterSqlite3(file, { timeout: 5000 }), file);
  }

  private get<T>(key: string): T | undefined {
    const row = this.db.prepare('SELECT value FROM run WHERE key = ?').get(key) as { value: string } | undefined;
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  private set(key: string, value: unknown): void {
    this.db.prepare('INSERT INTO run (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, JSON.stringify(value));
  }

  /** The run id of the run in the file, or `fresh` recorded as the run's (a new run). */
  runId(fresh: string): { runId: string; resumed: boolean } {
    const had = this.get<string>('runId');
    if (had) return { runId: had, resumed: true };
    this.set('runId', fresh);
    this.set('startedAt', Date.now());
    return { runId: fresh, resumed: false };
  }

  /** When the run began (ms since the epoch), in its first process. */
  startedAt(): number {
    return this.get<number>('startedAt') ?? Date.now();
  }

  /** The stock of every product when the run began, with the products the run launched (in order). */
  startStock(): Array<[string, number]> | undefined {
    return this.get<Array<[string, number]>>('startStock');
  }

  saveStartStock(stock: ReadonlyMap<string, number>): void {
    this.set('startStock', [...stock]);
  }

  /** The orders placed so far, in the order they were placed (index = position in the run). */
  orders(): Array<[string, JournalOrder]> {
    const rows = this.db.prepare('SELECT order_id, product_id, quantity FROM orders ORDER BY idx').all() as Array<{ order_id: string; product_id: string; quantity: number }>;
    return rows.map((r) => [r.order_id, { productId: r.product_id, quantity: r.quantity }]);
  }

  /** Records order number `idx` before it is sent. */
  place(idx: number, orderId: string, o: JournalOrder): void {
    this.db.prepare('INSERT OR IGNORE INTO orders (idx, order_id, product_id, quantity) VALUES (?, ?, ?, ?)').run(idx, orderId, o.productId, o.quantity);
  }

  /** The final events seen so far. */
  finals(): Array<{ orderId: string; state: 'confirmed' | 'rejected'; reason?: string }> {
    const rows = this.db.prepare('SELECT order_id, state, reason FROM finals').all() as Array<{ order_id: string; state: 'confirmed' | 'rejected'; reason: string | null }>;
    return rows.map((r) => ({ orderId: r.order_id, state: r.state, reason: r.reason ?? undefined }));
  }

  /** Records a final event (a copy of one already recorded changes nothing) and counts duplicates. */
  final(orderId: string, state: 'confirmed' | 'rejected', reason: string | undefined, duplicate: boolean): void {
    this.db.prepare('INSERT OR IGNORE INTO finals (order_id, state, reason) VALUES (?, ?, ?)').run(orderId, state, reason ?? null);
    if (duplicate) this.set('duplicates', this.duplicates() + 1);
  }

  /** Final events seen more than once over the whole run (all its processes). */
  duplicates(): number {
    return this.get<number>('duplicates') ?? 0;
  }

  /** How many processes ran this run so far (1 for a run that was never restarted). */
  countProcess(): number {
    const n = (this.get<number>('processes') ?? 0) + 1;
    this.set('processes', n);
    return n;
  }

  /** The run ended: forget it, so that the next start begins a new run. */
  finish(): void {
    this.db.exec('DELETE FROM run; DELETE FROM orders; DELETE FROM finals;');
  }

  close(): void {
    this.db.close();
  }
}
