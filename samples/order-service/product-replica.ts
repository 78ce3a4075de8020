/**
 * The order service's own copy of the catalog, fed by the product service's events, so that
 * placing an order needs no call to the product service.
 *
 * Every instance keeps a complete replica: the handlers are instance subscriptions
 * (`instance: true`, with the bus's `instanceId`), so each instance gets every product event,
 * whereas the order saga's handlers (order-service.ts) share the group's work. Unlike a plain
 * broadcast (`group: null`), an instance subscription misses nothing while its connection is cut
 * or its process restarts with the same instance id: the broker keeps its queue / session for the
 * bus's `instanceExpiresAfterMs`. Events may arrive late, twice or out of order (retries, redeliveries);
 * each carries the product's version, and a field is replaced only by a newer version, so applying
 * an event again, or an old one after a newer one, changes nothing.
 *
 * What the replica cannot have seen (products created before this instance subscribed) it gets
 * once with ListProducts at start, and, for a product still unknown when an order needs it, by
 * request/reply (GetProduct).
 */
import { Bus, Subscribe, Subscriber } from 'courier-bus';
import {
  GetProduct,
  ListProducts,
  ProductCatalog,
  ProductCreated,
  ProductDetails,
  ProductPriceChanged,
  StockChanged,
} from '../product-service/messages';

export interface ReplicaEntry {
  name?: string;
  priceCents?: number;
  stock?: number;
  nameVersion: number;
  priceVersion: number;
  stockVersion: number;
}

const PAGE = 500;

@Subscriber()
export class ProductReplica {
  private readonly entries = new Map<string, ReplicaEntry>();
  readonly stats = { events: 0, stale: 0, fallbacks: 0, bootstrapped: 0 };

  constructor(private readonly bus: Pick<Bus, 'request'>) {}

  @Subscribe(ProductCreated, { instance: true })
  async onCreated(e: ProductCreated): Promise<void> {
    this.apply(e.productId, e.version, e);
  }

  @Subscribe(ProductPriceChanged, { instance: true })
  async onPriceChanged(e: ProductPriceChanged): Promise<void> {
    this.apply(e.productId, e.version, { priceCents: e.priceCents });
  }

  @Subscribe(StockChanged, { instance: true })
  async onStockChanged(e: StockChanged): Promise<void> {
    this.apply(e.productId, e.version, { stock: e.stock });
  }

  /** Loads the whole catalog (after the bus started, so that no event falls in between). */
  async bootstrap(timeoutMs: number): Promise<void> {
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.bus.request<ListProducts, ProductCatalog>(ListProducts, { offset, limit: PAGE }, { timeoutMs });
      for (const d of page.products) this.applyDetails(d);
      this.stats.bootstrapped += page.products.length;
      if (offset + PAGE >= page.total) return;
    }
  }

  /** The product's name and price, from the replica, else asked of the product service. */
  async product(productId: string): Promise<{ name: string; priceCents: number }> {
    const e = this.entries.get(productId);
    if (e?.name !== undefined && e.priceCents !== undefined) return { name: e.name, priceCents: e.priceCents };
    this.stats.fallbacks++;
    const d = await this.bus.request<GetProduct, ProductDetails>(GetProduct, { productId });
    this.applyDetails(d);
    return { name: d.name, priceCents: d.priceCents };
  }

  /** Every fully known product: what the product service's catalog should equal. */
  snapshot(): Record<string, { name: string; priceCents: number; stock: number }> {
    const out: Record<string, { name: string; priceCents: number; stock: number }> = {};
    for (const [id, e] of [...this.entries].sort(([a], [b]) => (a < b ? -1 : 1))) {
      out[id] = { name: e.name ?? '(unknown)', priceCents: e.priceCents ?? -1, stock: e.stock ?? -1 };
    }
    return out;
  }

  private applyDetails(d: ProductDetails): void {
    this.apply(d.productId, d.version, d);
  }

  private apply(productId: string, version: number, fields: { name?: string; priceCents?: number; stock?: number }): void {
    this.stats.events++;
    let e = this.entries.get(productId);
    if (!e) this.entries.set(productId, (e = { nameVersion: 0, priceVersion: 0, stockVersion: 0 }));
    let changed = false;
    if (fields.name !== undefined && version > e.nameVersion) {
      e.name = fields.name;
      e.nameVersion = version;
      changed = true;
    }
    if (fields.priceCents !== undefined && version > e.priceVersion) {
      e.priceCents = fields.priceCents;
      e.priceVersion = version;
      changed = true;
    }
    if (fields.stock !== undefined && version > e.stockVersion) {
      e.stock = fields.stock;
      e.stockVersion = version;
      changed = true;
    }
    if (!changed) this.stats.stale++;
  }
}
