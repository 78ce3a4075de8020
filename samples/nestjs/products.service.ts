/**
 * The product side of the Nest sample: owns a small catalog and its stock, answers GetProduct and
 * reserves stock for each OrderPlaced. A plain Nest provider; CourierModule finds it by its
 * Courier decorators.
 */
import { Injectable } from '@nestjs/common';
import { Publish, Publisher, RejectMessageError, Subscribe, Subscriber } from 'courier-bus';
import { OrderPlaced } from '../order-service/messages';
import { GetProduct, ProductDetails, StockRejected, StockReserved } from '../product-service/messages';

interface Product {
  readonly name: string;
  readonly priceCents: number;
  stock: number;
}

@Injectable()
@Subscriber()
@Publisher()
export class ProductsService {
  private readonly catalog = new Map<string, Product>([
    ['p-1', { name: 'Espresso beans', priceCents: 1490, stock: 5 }],
    ['p-2', { name: 'Grinder', priceCents: 8900, stock: 1 }],
  ]);
  /** orderId -> outcome, so a redelivered OrderPlaced changes nothing twice. */
  private readonly reservations = new Map<string, 'reserved' | 'rejected'>();

  @Subscribe(GetProduct)
  product(query: GetProduct): ProductDetails {
    const p = this.catalog.get(query.productId);
    // The caller gets the error as a RemoteHandlerError; nothing is retried.
    if (!p) throw new RejectMessageError(`No product ${query.productId}`);
    return { productId: query.productId, name: p.name, priceCents: p.priceCents, stock: p.stock, version: 1 };
  }

  @Subscribe(OrderPlaced)
  async onOrderPlaced(e: OrderPlaced): Promise<void> {
    const p = this.catalog.get(e.productId);
    let outcome = this.reservations.get(e.orderId);
    if (!outcome) {
      outcome = p && p.stock >= e.quantity ? 'reserved' : 'rejected';
      if (outcome === 'reserved') p!.stock -= e.quantity;
      this.reservations.set(e.orderId, outcome);
    }
    if (outcome === 'reserved') await this.stockReserved(e);
    else await this.stockRejected(e, p ? 'insufficient-stock' : 'unknown-product');
  }

  @Publish(StockReserved)
  stockReserved(e: OrderPlaced): StockReserved {
    return { orderId: e.orderId, productId: e.productId, quantity: e.quantity };
  }

  @Publish(StockRejected)
  stockRejected(e: OrderPlaced, reason: StockRejected['reason']): StockRejected {
    return { orderId: e.orderId, productId: e.productId, quantity: e.quantity, reason };
  }
}
