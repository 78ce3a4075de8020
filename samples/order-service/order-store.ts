/**
 * Where the order service keeps its orders: its own database (SQLite or PostgreSQL, through
 * samples/storage), shared by every instance and process of the service, so whichever instance the
 * group hands a saga step to finds the order, and a restarted process resumes where it stopped.
 * Orders are state machines:
 *
 *   placed --StockReserved--> confirmed
 *   placed --StockRejected--> rejected
 *
 * A transition happens once (one conditional UPDATE); a repeated event finds the order final.
 */
import { ServiceDatabase, Tx } from '../storage/service-database';

export type OrderState = 'placed' | 'confirmed' | 'rejected';

export interface Order {
  readonly orderId: string;
  readonly productId: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
  readonly state: OrderState;
  readonly reason?: string;
}

/** The orders of one prefix (a driver run) by state, as the service's records have them. */
export interface OrderSummary {
  placed: number;
  confirmed: number;
  rejected: number;
  /** Some of the orders not final (up to 20). */
  notFinal: string[];
  /** Confirmed quantity per product. */
  confirmedQuantity: Record<string, number>;
  /** Rejected orders per reason. */
  rejectedBy: Record<string, number>;
  /** Every order (state, productId, quantity, reason), from a store that is not shared, so that a driver can merge the processes' stores. */
  states?: Record<string, [OrderState, string, number, string | undefined]>;
}

export interface OrderStore {
  /** The inbox of this store's database; undefined for the in-memory store. */
  readonly inbox?: ServiceDatabase['inbox'];
  readonly describe: string;
  /** True when every process of the service sees the same orders. */
  readonly shared: boolean;
  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R>;
  get(tx: Tx | null, orderId: string): Promise<Order | undefined>;
  /** Adds the order unless one with this id exists; true when it added it. */
  add(tx: Tx, order: Order): Promise<boolean>;
  /** placed -> `state`; false when the order is not in state placed (or unknown). */
  transition(tx: Tx, orderId: string, state: 'confirmed' | 'rejected', reason?: string): Promise<boolean>;
  summary(prefix: string): Promise<OrderSummary>;
}

export const ORDER_DDL = [
  `CREATE TABLE IF NOT EXISTS orders (
     order_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price_cents INTEGER NOT NULL,
     state TEXT NOT NULL, reason TEXT)`,
];

interface OrderRow {
  order_id: string;
  product_id: string;
  quantity: number;
  unit_price_cents: number;
  state: OrderState;
  reason: string | null;
}

export class SqlOrderStore implements OrderStore {
  readonly inbox: ServiceDatabase['inbox'];
  readonly describe: string;
  readonly shared = true;

  constructor(private readonly db: ServiceDatabase) {
    this.inbox = db.inbox;
    this.describe = `${db.kind} ${db.where}`;
  }

  transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return this.db.transaction(fn);
  }

  async get(tx: Tx | null, orderId: string): Promise<Order | undefined> {
    const r = await this.db.exec<OrderRow>(tx, 'SELECT * FROM orders WHERE order_id = $1', [orderId]);
    const o = r.rows[0];
    return o && { orderId: o.order_id, productId: o.product_id, quantity: Number(o.quantity), unitPriceCents: Number(o.unit_price_cents), state: o.state, reason: o.reason ?? undefined };
  }

  async add(tx: Tx, o: Order): Promise<boolean> {
    const r = await this.db.exec(
      tx,
      'INSERT INTO orders (order_id, product_id, quantity, unit_price_cents, state, reason) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      [o.orderId, o.productId, o.quantity, o.unitPriceCents, o.state, o.reason ?? null],
    );
    return r.changes === 1;
  }

  async transition(tx: Tx, orderId: string, state: 'confirmed' | 'rejected', reason?: string): Promise<boolean> {
    const r = await this.db.exec(tx, "UPDATE orders SET state = $2, reason = $3 WHERE order_id = $1 AND state = 'placed'", [orderId, state, reason ?? null]);
    return r.changes === 1;
  }

  async summary(prefix: string): Promise<OrderSummary> {
    const r = await this.db.exec<{ state: OrderState; product_id: string; reason: string | null; n: number | string; qty: number | string }>(
      null,
      `SELECT state, product_id, reason, count(*) AS n, sum(quantity) AS qty FROM orders
       WHERE substr(order_id, 1, length($1)) = $1 GROUP BY state, product_id, reason`,
      [prefix],
    );
    const out: OrderSummary = { placed: 0, confirmed: 0, rejected: 0, notFinal: [], confirmedQuantity: {}, rejectedBy: {} };
    for (const row of r.rows) {
      out[row.state] += Number(row.n);
      if (row.state === 'confirmed') out.confirmedQuantity[row.product_id] = (out.confirmedQuantity[row.product_id] ?? 0) + Number(row.qty);
      if (row.state === 'rejected') out.rejectedBy[row.reason ?? 'unknown'] = (out.rejectedBy[row.reason ?? 'unknown'] ?? 0) + Number(row.n);
    }
    if (out.placed) {
      const open = await this.db.exec<{ order_id: string }>(null, "SELECT order_id FROM orders WHERE state = 'placed' AND substr(order_id, 1, length($1)) = $1 ORDER BY order_id LIMIT 20", [prefix]);
      out.notFinal = open.rows.map((o) => o.order_id);
    }
    return out;
  }
}

/**
 * The orders in the process's memory (better-sqlite3 not installed; a restart forgets them). One
 * per process: processes of the service do not share it, so a saga step handed to a process
 * that does not know the order adopts it from the event.
 */
export class MemoryOrderStore implements OrderStore {
  readonly inbox = undefined;
  readonly describe = 'memory (lost when the process ends, not shared between processes)';
  readonly shared = false;
  private readonly orders = new Map<string, Order>();

  async transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return fn(undefined);
  }

  async get(_tx: Tx | null, orderId: string): Promise<Order | undefined> {
    return this.orders.get(orderId);
  }

  async add(_tx: Tx, o: Order): Promise<boolean> {
    if (this.orders.has(o.orderId)) return false;
    this.orders.set(o.orderId, o);
    return true;
  }

  async transition(_tx: Tx, orderId: string, state: 'confirmed' | 'rejected', reason?: string): Promise<boolean> {
    const o = this.orders.get(orderId);
    if (!o || o.state !== 'placed') return false;
    this.orders.set(orderId, { ...o, state, reason });
    return true;
  }

  async summary(prefix: string): Promise<OrderSummary> {
    const out: OrderSummary = { placed: 0, confirmed: 0, rejected: 0, notFinal: [], confirmedQuantity: {}, rejectedBy: {}, states: {} };
    for (const o of this.orders.values()) {
      if (!o.orderId.startsWith(prefix)) continue;
      out.states![o.orderId] = [o.state, o.productId, o.quantity, o.reason];
      out[o.state]++;
      if (o.state === 'placed' && out.notFinal.length < 20) out.notFinal.push(o.orderId);
      if (o.state === 'confirmed') out.confirmedQuantity[o.productId] = (out.confirmedQuantity[o.productId] ?? 0) + o.quantity;
      if (o.state === 'rejected') out.rejectedBy[o.reason ?? 'unknown'] = (out.rejectedBy[o.reason ?? 'unknown'] ?? 0) + 1;
    }
    return out;
  }
}
