/**
 * The product store in the process's memory: what the demo uses when better-sqlite3 is not
 * installed (it says so), and the negative control of the restart test. Same contract as the
 * database store while the process lives; a restart loses everything: the catalog comes back at
 * its initial stock, reservations are forgotten (so stock is sold twice), versions start again.
 * No inbox and no outbox: the service publishes directly after each change (a dual write).
 */
import type { ProductDetails } from './messages';
import type { Tx } from '../storage/service-database';
import { CatalogEntry, ProductStore, ReserveOutcome, StockLedger } from './product-store';

interface Product {
  readonly productId: string;
  readonly name: string;
  priceCents: number;
  stock: number;
  readonly initial: number;
  version: number;
}

export class MemoryProductStore implements ProductStore {
  readonly inbox = undefined;
  readonly describe = 'memory (lost when the process ends)';
  private readonly products = new Map<string, Product>();
  private readonly changes = new Set<string>();
  private readonly reservations = new Map<string, { productId: string; quantity: number; reserved: boolean }>();

  // No await between a check and its write: concurrent deliveries cannot both pass a check.
  async transaction<R>(fn: (tx: Tx) => Promise<R>): Promise<R> {
    return fn(undefined);
  }

  async create(_tx: Tx, p: { productId: string; name: string; priceCents: number; stock: number }): Promise<boolean> {
    if (this.products.has(p.productId)) return false;
    this.products.set(p.productId, { ...p, initial: p.stock, version: 1 });
    return true;
  }

  async changePrice(_tx: Tx, changeId: string, productId: string, priceCents: number): Promise<number | 'duplicate' | 'unknown'> {
    if (this.changes.has(changeId)) return 'duplicate';
    const p = this.products.get(productId);
    if (!p) return 'unknown';
    this.changes.add(changeId);
    p.priceCents = priceCents;
    return ++p.version;
  }

  async reserve(_tx: Tx, o: { orderId: string; productId: string; quantity: number }): Promise<ReserveOutcome> {
    if (this.reservations.has(o.orderId)) return { outcome: 'duplicate' };
    const p = this.products.get(o.productId);
    const reserved = !!p && p.stock >= o.quantity;
    this.reservations.set(o.orderId, { productId: o.productId, quantity: o.quantity, reserved });
    if (!p) return { outcome: 'rejected', reason: 'unknown-product' };
    if (!reserved) return { outcome: 'rejected', reason: 'insufficient-stock' };
    p.stock -= o.quantity;
    return { outcome: 'reserved', stock: p.stock, version: ++p.version };
  }

  async get(productId: string): Promise<ProductDetails | undefined> {
    const p = this.products.get(productId);
    return p && details(p);
  }

  async list(offset: number, limit: number): Promise<{ products: ProductDetails[]; total: number }> {
    const all = [...this.products.values()].sort((a, b) => (a.productId < b.productId ? -1 : 1));
    return { products: all.slice(offset, offset + limit).map(details), total: all.length };
  }

  async catalog(): Promise<Record<string, CatalogEntry>> {
    const out: Record<string, CatalogEntry> = {};
    for (const p of [...this.products.values()].sort((a, b) => (a.productId < b.productId ? -1 : 1))) {
      out[p.productId] = { name: p.name, priceCents: p.priceCents, stock: p.stock };
    }
    return out;
  }

  async ledger(prefix: string): Promise<StockLedger> {
    const out: StockLedger = {};
    for (const p of this.products.values()) out[p.productId] = { initial: p.initial, stock: p.stock, reservedAll: 0, reserved: 0 };
    for (const [orderId, r] of this.reservations) {
      if (!r.reserved || !out[r.productId]) continue;
      out[r.productId].reservedAll += r.quantity;
      if (orderId.startsWith(prefix)) out[r.productId].reserved += r.quantity;
    }
    return out;
  }

  async count(): Promise<number> {
    return this.products.size;
  }
}

function details(p: Product): ProductDetails {
  return { productId: p.productId, name: p.name, priceCents: p.priceCents, stock: p.stock, version: p.version };
}
