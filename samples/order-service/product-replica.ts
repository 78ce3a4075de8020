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
 *
 * Gaps: every change of a product raises its version by exactly one and is announced by one
 * event (product-store.ts), so an event more than one version ahead of the newest this replica
 * holds shows that it missed something (an instance whose queue expired, a product service
 * restored from a backup). It then asks for the product (GetProduct) and takes its whole state.
 * Events of one product arrive on three topics, so a jump may also be an event overtaking
 * another: the resync costs one request and changes nothing then.
 */
import { Bus, Logger, Subscribe, Subscriber } from 'courier-bus';
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
  /** The newest version seen of this product. */
  version: number;
}

const PAGE = 500;

@Subscriber()
export class ProductReplica {
  private readonly entries = new Map<string, ReplicaEntry>();
  readonly stats = { events: 0, stale: 0, fallbacks: 0, bootstrapped: 0, gaps: 0, resyncs: 0 };
  private readonly resyncing = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly bus: Pick<Bus, 'request'>, private readonly logger?: Logger) {}

  @Subscribe(ProductCreated, { instance: true })
  async onCreated(e: ProductCreated): Promise<void> {
    this.event(e.productId, e.version, e);
  }

  @Subscribe(ProductPriceChanged, { instance: true })
  async onPriceChanged(e: ProductPriceChanged): Promise<void> {
    this.event(e.productId, e.version, { priceCents: e.priceCents });
  }

  @Subscribe(StockChanged, { instance: true })
  async onStockChanged(e: StockChanged): Promise<void> {
    this.event(e.productId, e.version, { stock: e.stock });
  }

  /** Stops resyncing (the bus is stopping). */
  stop(): void {
    this.stopped = true;
  }

  /** Resolves when the resyncs under way are done. */
  async settled(): Promise<void> {
    while (this.resyncing.size) await Promise.allSettled([...this.resyncing.values()]);
  }

  private event(productId: string, version: number, fields: { name?: string; priceCents?: number; stock?: number }): void {
    const known = this.entries.get(productId)?.version ?? 0;
    this.apply(productId, version, fields);
    if (version > known + 1) {
      this.stats.gaps++;
      this.resync(productId);
    }
  }

  /** Asks for the product's whole state (once at a time per product; a failed ask is tried again, up to 5 times). */
  private resync(productId: string, attempt = 1): void {
    if (this.stopped || this.resyncing.has(productId)) return;
    const p = (async () => {
      try {
        const d = await this.bus.request<GetProduct, ProductDetails>(GetProduct, { productId }, { timeoutMs: 5000 });
        this.stats.resyncs++;
        this.applyDetails(d);
      } catch (err) {
        this.logger?.warn(`replica: resync of ${productId} failed (attempt ${attempt}): ${(err as Error).message}`);
        if (attempt < 5) setTimeout(() => this.resync(productId, attempt + 1), 500 * attempt).unref();
      } finally {
        this.resyncing.delete(productId);
      }
    })();
    this.resyncing.set(productId, p);
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
    if (!e) this.entries.set(productId, (e = { nameVersion: 0, priceVersion: 0, stockVersion: 0, version: 0 }));
    e.version = Math.max(e.version, version);
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
