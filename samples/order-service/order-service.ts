/**
 * The order service: places orders from its replica of the catalog and follows the saga
 *
 *   PlaceOrder -> OrderPlaced -> (product service) StockReserved | StockRejected
 *              -> OrderConfirmed | OrderRejected
 *
 * Its saga handlers share the work of the `order-service` group: with K instances, each step of an
 * order goes to one of them, whichever it is, so the orders live in a store they share
 * (order-store.ts). Each handler is idempotent through the order's state machine: a repeated
 * command or event finds the transition done and publishes nothing new.
 */
import { Publish, Publisher, RemoteHandlerError, Subscribe, Subscriber } from 'courier-bus';
import { StockRejected, StockReserved } from '../product-service/messages';
import { OrderConfirmed, OrderPlaced, OrderRejected, PlaceOrder } from './messages';
import { Order, OrderStore } from './order-store';
import { ProductReplica } from './product-replica';

// No group here: the group is the bus's source, the service's name (`order-service` in a deployment),
// so that a deployment, or a demo run, can name it.
@Subscriber()
@Publisher()
export class OrderService {
  /** What this instance did (orders it created, transitions it made): how the group shared the work. */
  readonly stats = { placed: 0, confirmed: 0, rejected: 0, duplicates: 0 };

  constructor(
    readonly instance: string,
    private readonly replica: ProductReplica,
    private readonly store: OrderStore,
  ) {}

  @Subscribe(PlaceOrder)
  async onPlaceOrder(c: PlaceOrder): Promise<void> {
    if (this.store.get(c.orderId)?.placedAnnounced) {
      this.stats.duplicates++;
      return;
    }
    let product;
    try {
      product = await this.replica.product(c.productId);
    } catch (err) {
      if (!(err instanceof RemoteHandlerError && err.remoteName === 'UnknownProductError')) throw err;
      product = undefined;
    }
    // Another delivery of this command may have added the order while we waited for the product.
    if (!this.store.get(c.orderId)) this.stats.placed++;
    const order = this.store.add({ orderId: c.orderId, productId: c.productId, quantity: c.quantity, unitPriceCents: product?.priceCents ?? 0 });
    if (!product && order.state === 'placed' && !order.placedAnnounced) {
      // Nothing to reserve: the saga ends here.
      return this.finish(c, 'rejected', 'unknown-product');
    }
    if (order.state !== 'placed' || order.placedAnnounced) {
      this.stats.duplicates++;
      return;
    }
    await this.orderPlaced(order);
    order.placedAnnounced = true;
  }

  @Subscribe(StockReserved)
  async onStockReserved(e: StockReserved): Promise<void> {
    await this.finish(e, 'confirmed');
  }

  @Subscribe(StockRejected)
  async onStockRejected(e: StockRejected): Promise<void> {
    await this.finish(e, 'rejected', e.reason);
  }

  private async finish(e: { orderId: string; productId: string; quantity: number }, state: 'confirmed' | 'rejected', reason?: string): Promise<void> {
    // An order placed by another process's store: adopt it from the event, which says all we need.
    const order = this.store.get(e.orderId) ?? this.store.add({ orderId: e.orderId, productId: e.productId, quantity: e.quantity, unitPriceCents: 0 });
    if (order.state === 'placed') {
      order.state = state;
      order.reason = reason;
      this.stats[state]++;
    } else if (order.finalAnnounced || order.state !== state) {
      // Already final: a duplicate (or, were the product service to contradict itself, ignored).
      this.stats.duplicates++;
      return;
    }
    if (state === 'confirmed') await this.orderConfirmed(order);
    else await this.orderRejected(order);
    order.finalAnnounced = true;
  }

  @Publish(OrderPlaced)
  orderPlaced(o: Order): OrderPlaced {
    return { orderId: o.orderId, productId: o.productId, quantity: o.quantity, unitPriceCents: o.unitPriceCents };
  }

  @Publish(OrderConfirmed)
  orderConfirmed(o: Order): OrderConfirmed {
    return { orderId: o.orderId, productId: o.productId, quantity: o.quantity };
  }

  @Publish(OrderRejected)
  orderRejected(o: Order): OrderRejected {
    return { orderId: o.orderId, productId: o.productId, quantity: o.quantity, reason: (o.reason ?? 'insufficient-stock') as OrderRejected['reason'] };
  }
}
