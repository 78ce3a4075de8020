/**
 * Where the product service keeps the catalog, the stock and what it did for each command: its own
 * database (SQLite or PostgreSQL, through samples/storage). Every write takes the transaction it
 * runs in (the inbox's `ctx.tx`, or one of `transaction()`), and what the service announces goes
 * into the outbox in that same transaction, so a restarted service resumes where it stopped:
 * nothing to rebuild, nothing reserved twice, nothing announced that did not commit.
 *
 * Idempotency by business id on top of the inbox's by message id: a command sent again with a
 * new envelope id (productId, changeId and orderId are the caller's) finds its record and changes
 * nothing. Every change raises the product's `version` by one and is announced by exactly one
 * event carrying it, so a replica sees a gap as a jump of more than one.
 */
import type { ProductDetails, StockRejected } from './messages';
import { ServiceDatabase, Tx } from '../storage/service-database';

/** A product as the rest of the world may see it. */
export interface CatalogEntry {
  readonly name: string;
  readonly priceCents: number;
  readonly stock: number;
}

export type ReserveOutcome =
  | { readonly outcome: 'reserved'; readonly stock: number; readonly version: number }
  | { readonly outcome: 'rejected'; readonly reason: StockRejected['reason'] }
  | { readonly outcome: 'duplicate' };

/** Per product: initial stock, current stock, reserved quantity (all orders, and the orders of one prefix). */
export type StockLedger = Record<string, { initial: number; stock: number; reservedAll: number; reserved: number }>;

export interface ProductStore {
  /** The inbox of this store's database; undefined for the in-memory store. */
  readonly inbox?: ServiceDatabase['inbox'];
  /** What it is, for the demo's messages: `sqlite file ...`, `postgres ...`, `memory (lost on restart)`. */
  readonly describe: string;
  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  /** Adds the product at version 1; false when it exists. */
  create(tx: Tx, p: { productId: string; name: string; priceCents: number; stock: number }): Promise<boolean>;
  /** Applies a price change once per changeId; resolves to the new version, 'duplicate', or 'unknown' (no such product). */
  changePrice(tx: Tx, changeId: string, productId: string, priceCents: number): Promise<number | 'duplicate' | 'unknown'>;
  /** Reserves an order's quantity once per orderId; the stock never goes below zero. */
  reserve(tx: Tx, o: { orderId: string; productId: string; quantity: number }): Promise<ReserveOutcome>;
  get(productId: string): Promise<ProductDetails | undefined>;
  list(offset: number, limit: number): Promise<{ products: ProductDetails[]; total: number }>;
  catalog(): Promise<Record<string, CatalogEntry>>;
  ledger(prefix: string): Promise<StockLedger>;
  count(): Promise<number>;
}

export const PRODUCT_DDL = [
  `CREATE TABLE IF NOT EXISTS products (
     product_id TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL,
     stock INTEGER NOT NULL CHECK (stock >= 0), initial_stock INTEGER NOT NULL, version INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS price_changes (change_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, price_cents INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS reservations (
     order_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, quantity INTEGER NOT NULL, outcome TEXT NOT NULL, reason TEXT)`,
];

interface ProductRow {
  product_id: string;
  name: string;
  price_cents: number;
  stock: number;
  initial_stock: number;
  version: number;
}

export class SqlProductStore implements ProductStore {
  readonly inbox: ServiceDatabase['inbox'];
  readonly describe: string;

  constructor(private readonly db: ServiceDatabase) {
    this.inbox = db.inbox;
    this.describe = `${db.kind} ${db.where}`;
  }

  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return this.db.transaction(fn);
  }

  async create(tx: Tx, p: { productId: string; name: string; priceCents: number; stock: number }): Promise<boolean> {
    const r = await this.db.exec(
      tx,
      'INSERT INTO products (product_id, name, price_cents, stock, initial_stock, version) VALUES ($1, $2, $3, $4, $4, 1) ON CONFLICT DO NOTHING',
      [p.productId, p.name, p.priceCents, p.stock],
    );
    return r.changes === 1;
  }

  async changePrice(tx: Tx, changeId: string, productId: string, priceCents: number): Promise<number | 'duplicate' | 'unknown'> {
    const rec = await this.db.exec(tx, 'INSERT INTO price_changes (change_id, product_id, price_cents) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [changeId, productId, priceCents]);
    if (rec.changes === 0) return 'duplicate';
    const r = await this.db.exec<{ version: number }>(tx, 'UPDATE products SET price_cents = $2, version = version + 1 WHERE product_id = $1 RETURNING version', [productId, priceCents]);
    // The caller rejects the command, which rolls the record back with the transaction.
    return r.rows.length ? Number(r.rows[0].version) : 'unknown';
  }

  async reserve(tx: Tx, o: { orderId: string; productId: string; quantity: number }): Promise<ReserveOutcome> {
    const rec = await this.db.exec(tx, "INSERT INTO reservations (order_id, product_id, quantity, outcome) VALUES ($1, $2, $3, 'pending') ON CONFLICT DO NOTHING", [o.orderId, o.productId, o.quantity]);
    if (rec.changes === 0) return { outcome: 'duplicate' };
    // One statement checks and takes the stock: concurrent reservations cannot both pass the check.
    const r = await this.db.exec<{ stock: number; version: number }>(
      tx,
      'UPDATE products SET stock = stock - $2, version = version + 1 WHERE product_id = $1 AND stock >= $2 RETURNING stock, version',
      [o.productId, o.quantity],
    );
    if (r.rows.length) {
      await this.db.exec(tx, "UPDATE reservations SET outcome = 'reserved' WHERE order_id = $1", [o.orderId]);
      return { outcome: 'reserved', stock: Number(r.rows[0].stock), version: Number(r.rows[0].version) };
    }
    const known = await this.db.exec(tx, 'SELECT 1 AS one FROM products WHERE product_id = $1', [o.productId]);
    const reason = known.rows.length ? 'insufficient-stock' : 'unknown-product';
    await this.db.exec(tx, "UPDATE reservations SET outcome = 'rejected', reason = $2 WHERE order_id = $1", [o.orderId, reason]);
    return { outcome: 'rejected', reason };
  }

  async get(productId: string): Promise<ProductDetails | undefined> {
    const r = await this.db.exec<ProductRow>(null, 'SELECT * FROM products WHERE product_id = $1', [productId]);
    return r.rows.length ? details(r.rows[0]) : undefined;
  }

  async list(offset: number, limit: number): Promise<{ products: ProductDetails[]; total: number }> {
    const r = await this.db.exec<ProductRow>(null, 'SELECT * FROM products ORDER BY product_id LIMIT $1 OFFSET $2', [limit, offset]);
    return { products: r.rows.map(details), total: await this.count() };
  }

  async catalog(): Promise<Record<string, CatalogEntry>> {
    const r = await this.db.exec<ProductRow>(null, 'SELECT * FROM products ORDER BY product_id');
    return Object.fromEntries(r.rows.map((p) => [p.product_id, { name: p.name, priceCents: Number(p.price_cents), stock: Number(p.stock) }]));
  }

  async ledger(prefix: string): Promise<StockLedger> {
    const r = await this.db.exec<{ product_id: string; initial_stock: number; stock: number; reserved_all: number | string | null; reserved: number | string | null }>(
      null,
      `SELECT p.product_id, p.initial_stock, p.stock,
              SUM(CASE WHEN r.outcome = 'reserved' THEN r.quantity ELSE 0 END) AS reserved_all,
              SUM(CASE WHEN r.outcome = 'reserved' AND substr(r.order_id, 1, length($1)) = $1 THEN r.quantity ELSE 0 END) AS reserved
       FROM products p LEFT JOIN reservations r ON r.product_id = p.product_id
       GROUP BY p.product_id, p.initial_stock, p.stock ORDER BY p.product_id`,
      [prefix],
    );
    return Object.fromEntries(
      r.rows.map((l) => [l.product_id, { initial: Number(l.initial_stock), stock: Number(l.stock), reservedAll: Number(l.reserved_all ?? 0), reserved: Number(l.reserved ?? 0) }]),
    );
  }

  async count(): Promise<number> {
    const r = await this.db.exec<{ n: number | string }>(null, 'SELECT count(*) AS n FROM products');
    return Number(r.rows[0].n);
  }
}

function details(p: ProductRow): ProductDetails {
  return { productId: p.product_id, name: p.name, priceCents: Number(p.price_cents), stock: Number(p.stock), version: Number(p.version) };
}
