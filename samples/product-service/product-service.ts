/**
 * The product service owns the catalog and the stock. It is the only writer of both; everyone else
 * learns about them from its events (ProductCreated, ProductPriceChanged, StockChanged) or asks
 * (GetProduct, ListProducts). It takes part in the order saga by reserving stock for each
 * OrderPlaced, answering StockReserved or StockRejected.
 *
 * Idempotency: every handler records what it did, keyed by the business id of the message
 * (productId, changeId, orderId), before it publishes; a repeated message finds the record and
 * changes nothing. The record also says whether its announcement was published, so that a retry
 * after a failed publish sends it, and a duplicate after a successful one sends nothing.
 * State changes are synchronous (no await between the check and the write), so concurrent
 * deliveries of one message cannot both pass the check.
 */
import { MessageContext, Publish, RejectMessageError, Publisher, Subscribe, Subscriber } from 'courier-bus';
import { OrderPlaced } from '../order-service/messages';
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

interface Product {
  readonly productId: string;
  readonly name: string;
  priceCents: number;
  stock: number;
  readonly initialStock: number;
  version: number;
  announced: boolean;
}

type Reservation = {
  readonly orderId: string;
  readonly productId: string;
  readonly quantity: number;
  announced: boolean;
} & (
  | { readonly outcome: 'reserved'; readonly stockAfter: { stock: number; version: number } }
  | { readonly outcome: 'rejected'; readonly reason: StockRejected['reason'] }
);

/** A product as the rest of the world may see it. */
export interface CatalogEntry {
  readonly name: string;
  readonly priceCents: number;
  readonly stock: number;
}

export class UnknownProductError extends Error {
  constructor(readonly productId: string) {
    super(`No product ${productId}`);
    this.name = 'UnknownProductError';
  }
}

// No group here: the group is the bus's source, the service's name (`product-service` in a deployment),
// so that a deployment, or a demo run, can name it.
@Subscriber()
@Publisher()
export class ProductService {
  private readonly products = new Map<string, Product>();
  private readonly reservations = new Map<string, Reservation>();
  private readonly priceChanges = new Map<string, { event: ProductPriceChanged; announced: boolean }>();
  readonly stats = { reserved: 0, rejected: 0, priceChanges: 0, duplicates: 0 };

  /** Creates a product and announces it; a known productId changes nothing. */
  async createProduct(c: CreateProduct): Promise<void> {
    let p = this.products.get(c.productId);
    if (p?.announced) {
      this.stats.duplicates++;
      return;
    }
    if (!p) {
      p = { ...c, initialStock: c.stock, version: 1, announced: false };
      this.products.set(c.productId, p);
    }
    await this.productCreated(p);
    p.announced = true;
  }

  @Subscribe(CreateProduct)
  async onCreateProduct(c: CreateProduct): Promise<void> {
    await this.createProduct(c);
  }

  @Subscribe(ChangePrice)
  async onChangePrice(c: ChangePrice): Promise<void> {
    let change = this.priceChanges.get(c.changeId);
    if (change?.announced) {
      this.stats.duplicates++;
      return;
    }
    if (!change) {
      const p = this.products.get(c.productId);
      // Retrying cannot make an unknown product known: straight to the dead letter.
      if (!p) throw new RejectMessageError(`ChangePrice ${c.changeId}: no product ${c.productId}`);
      p.priceCents = c.priceCents;
      p.version++;
      change = { event: { productId: p.productId, priceCents: p.priceCents, version: p.version }, announced: false };
      this.priceChanges.set(c.changeId, change);
      this.stats.priceChanges++;
    }
    await this.priceChanged(change.event);
    change.announced = true;
  }

  /** Reserves the stock of an order, or rejects it; the stock never goes below zero. */
  @Subscribe(OrderPlaced)
  async onOrderPlaced(e: OrderPlaced): Promise<void> {
    let r = this.reservations.get(e.orderId);
    if (r?.announced) {
      this.stats.duplicates++;
      return;
    }
    if (!r) {
      r = this.reserve(e);
      this.reservations.set(e.orderId, r);
    }
    if (r.outcome === 'reserved') {
      await this.stockChanged({ productId: r.productId, ...r.stockAfter });
      await this.stockReserved({ orderId: r.orderId, productId: r.productId, quantity: r.quantity });
    } else {
      await this.stockRejected({ orderId: r.orderId, productId: r.productId, quantity: r.quantity, reason: r.reason });
    }
    r.announced = true;
  }

  private reserve(e: OrderPlaced): Reservation {
    const base = { orderId: e.orderId, productId: e.productId, quantity: e.quantity, announced: false };
    const p = this.products.get(e.productId);
    if (!p) {
      this.stats.rejected++;
      return { ...base, outcome: 'rejected', reason: 'unknown-product' };
    }
    if (p.stock < e.quantity) {
      this.stats.rejected++;
      return { ...base, outcome: 'rejected', reason: 'insufficient-stock' };
    }
    p.stock -= e.quantity;
    p.version++;
    this.stats.reserved++;
    return { ...base, outcome: 'reserved', stockAfter: { stock: p.stock, version: p.version } };
  }

  @Subscribe(GetProduct)
  async getProduct(q: GetProduct): Promise<ProductDetails> {
    return this.details(this.product(q.productId));
  }

  @Subscribe(ListProducts)
  async listProducts(q: ListProducts, _ctx: MessageContext): Promise<ProductCatalog> {
    const all = [...this.products.values()].sort((a, b) => (a.productId < b.productId ? -1 : 1));
    return { products: all.slice(q.offset, q.offset + q.limit).map((p) => this.details(p)), total: all.length };
  }

  @Publish(ProductCreated)
  productCreated(p: Product): ProductCreated {
    return { productId: p.productId, name: p.name, priceCents: p.priceCents, stock: p.stock, version: p.version };
  }

  @Publish(ProductPriceChanged)
  priceChanged(e: ProductPriceChanged): ProductPriceChanged {
    return e;
  }

  @Publish(StockChanged)
  stockChanged(e: StockChanged): StockChanged {
    return e;
  }

  @Publish(StockReserved)
  stockReserved(e: StockReserved): StockReserved {
    return e;
  }

  @Publish(StockRejected)
  stockRejected(e: StockRejected): StockRejected {
    return e;
  }

  /** The catalog as the order service's replica should see it. */
  catalog(): Record<string, CatalogEntry> {
    const out: Record<string, CatalogEntry> = {};
    for (const p of this.products.values()) out[p.productId] = { name: p.name, priceCents: p.priceCents, stock: p.stock };
    return out;
  }

  /** Per product: initial stock, current stock, and the quantity reserved for orders whose id starts with `prefix`. */
  stockLedger(prefix = ''): Record<string, { initial: number; stock: number; reservedAll: number; reserved: number }> {
    const out: Record<string, { initial: number; stock: number; reservedAll: number; reserved: number }> = {};
    for (const p of this.products.values()) out[p.productId] = { initial: p.initialStock, stock: p.stock, reservedAll: 0, reserved: 0 };
    for (const r of this.reservations.values()) {
      if (r.outcome !== 'reserved') continue;
      out[r.productId].reservedAll += r.quantity;
      if (r.orderId.startsWith(prefix)) out[r.productId].reserved += r.quantity;
    }
    return out;
  }

  private product(productId: string): Product {
    const p = this.products.get(productId);
    if (!p) throw new UnknownProductError(productId);
    return p;
  }

  private details(p: Product): ProductDetails {
    return { productId: p.productId, name: p.name, priceCents: p.priceCents, stock: p.stock, version: p.version };
  }
}
