/**
 * The product service owns the catalog and the stock. It is the only writer of both; everyone else
 * learns about them from its events (ProductCreated, ProductPriceChanged, StockChanged) or asks
 * (GetProduct, ListProducts). It takes part in the order saga by reserving stock for each
 * OrderPlaced, answering StockReserved or StockRejected.
 *
 * Consistency (docs/consistency.md): each event handler runs in its database's inbox
 * (`@Subscribe(X, { inbox })`): the bus opens a transaction that records the message id, the
 * handler writes its change with `ctx.tx`, and what it announces goes into the outbox with the
 * same `ctx.tx`. The change, the mark and the announcement commit together or not at all; a
 * redelivery finds the mark and is skipped, a copy with a new envelope id finds the business
 * record (productId, changeId, orderId) and changes nothing. The outbox's relay publishes after
 * the commit, per product in commit order (the ordering key).
 */
import { MessageContext, RejectMessageError, Subscribe, Subscriber } from 'courier-bus';
import { OrderPlaced } from '../order-service/messages';
import type { Announcer } from '../storage/announcer';
import type { Tx } from '../storage/service-database';
import {
  ChangePrice,
  CreateProduct,
  GetProduct,
  ListProducts,
  ProductCatalog,
  ProductCreated,
  ProductDetails,
  ProductPriceChanged,
  StockChanged,
  StockRejected,
  StockReserved,
} from './messages';
import type { CatalogEntry, ProductStore, StockLedger } from './product-store';

export class UnknownProductError extends Error {
  /** What an HTTP gateway answers with. */
  readonly status = 404;
  constructor(readonly productId: string) {
    super(`No product ${productId}`);
    this.name = 'UnknownProductError';
  }
}

// No group here: the group is the bus's source, the service's name (`product-service` in a deployment),
// so that a deployment, or a demo run, can name it.
@Subscriber()
export class ProductService {
  /** What this process did. */
  readonly stats = { reserved: 0, rejected: 0, priceChanges: 0, duplicates: 0 };

  constructor(
    readonly store: ProductStore,
    private readonly out: Announcer,
  ) {}

  /** Creates a product and announces it, in one transaction; a known productId changes nothing. */
  async createProduct(c: CreateProduct, tx?: Tx): Promise<void> {
    if (tx === undefined && this.store.inbox) return this.store.transaction((t) => this.createProduct(c, t));
    if (!(await this.store.create(tx, c))) {
      this.stats.duplicates++;
      return;
    }
    await this.out.publish(tx, ProductCreated, { ...c, version: 1 }, c.productId);
  }

  @Subscribe(CreateProduct, { inbox: (s: ProductService) => s.store.inbox })
  async onCreateProduct(c: CreateProduct, ctx: MessageContext): Promise<void> {
    await this.createProduct(c, ctx.tx);
  }

  @Subscribe(ChangePrice, { inbox: (s: ProductService) => s.store.inbox })
  async onChangePrice(c: ChangePrice, ctx: MessageContext): Promise<void> {
    const version = await this.store.changePrice(ctx.tx, c.changeId, c.productId, c.priceCents);
    if (version === 'duplicate') {
      this.stats.duplicates++;
      return;
    }
    // Retrying cannot make an unknown product known: straight to the dead letter (the record rolls back).
    if (version === 'unknown') throw new RejectMessageError(`ChangePrice ${c.changeId}: no product ${c.productId}`);
    this.stats.priceChanges++;
    await this.out.publish(ctx.tx, ProductPriceChanged, { productId: c.productId, priceCents: c.priceCents, version }, c.productId);
  }

  /** Reserves the stock of an order, or rejects it; the stock never goes below zero. */
  @Subscribe(OrderPlaced, { inbox: (s: ProductService) => s.store.inbox })
  async onOrderPlaced(e: OrderPlaced, ctx: MessageContext): Promise<void> {
    const r = await this.store.reserve(ctx.tx, e);
    const order = { orderId: e.orderId, productId: e.productId, quantity: e.quantity };
    if (r.outcome === 'duplicate') {
      this.stats.duplicates++;
    } else if (r.outcome === 'reserved') {
      this.stats.reserved++;
      await this.out.publish(ctx.tx, StockChanged, { productId: e.productId, stock: r.stock, version: r.version }, e.productId);
      await this.out.publish(ctx.tx, StockReserved, order, e.orderId);
    } else {
      this.stats.rejected++;
      await this.out.publish(ctx.tx, StockRejected, { ...order, reason: r.reason }, e.orderId);
    }
  }

  @Subscribe(GetProduct)
  async getProduct(q: GetProduct): Promise<ProductDetails> {
    const p = await this.store.get(q.productId);
    if (!p) throw new UnknownProductError(q.productId);
    return p;
  }

  @Subscribe(ListProducts)
  async listProducts(q: ListProducts): Promise<ProductCatalog> {
    return this.store.list(q.offset, q.limit);
  }

  /** The catalog as the order service's replica should see it. */
  catalog(): Promise<Record<string, CatalogEntry>> {
    return this.store.catalog();
  }

  /** Per product: initial stock, current stock, and the quantity reserved (all, and for orders whose id starts with `prefix`). */
  stockLedger(prefix = ''): Promise<StockLedger> {
    return this.store.ledger(prefix);
  }
}
