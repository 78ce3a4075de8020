/**
 * The order service: places orders from its replica of the catalog and follows the saga
 *
 *   PlaceOrder -> OrderPlaced -> (product service) StockReserved | StockRejected
 *              -> OrderConfirmed | OrderRejected
 *
 * Its saga handlers share the work of the `order-service` group: with K instances (in one process
 * or many), each step of an order goes to one of them, whichever it is, so the orders live in the
 * service's database (order-store.ts). Each handler runs in the database's inbox: the order's
 * transition, the inbox's mark of the message and the event it announces (into the outbox) commit
 * together. A repeated command or event finds the transition done and announces nothing new.
 */
import { MessageContext, RemoteHandlerError, Subscribe, Subscriber } from 'courier-bus';
import { StockRejected, StockReserved } from '../product-service/messages';
import type { Announcer } from '../storage/announcer';
import type { Tx } from '../storage/service-database';
import { GetOrder, OrderConfirmed, OrderDetails, OrderPlaced, OrderRejected, PlaceOrder } from './messages';
import type { OrderStore } from './order-store';
import type { ProductReplica } from './product-replica';

/** No order with this id; `status` 404 is what an HTTP gateway answers with. */
export class UnknownOrderError extends Error {
  readonly status = 404;
  constructor(readonly orderId: string) {
    super(`No order ${orderId}`);
    this.name = 'UnknownOrderError';
  }
}

// No group here: the group is the bus's source, the service's name (`order-service` in a deployment),
// so that a deployment, or a demo run, can name it.
@Subscriber()
export class OrderService {
  /** What this instance did (orders it created, transitions it made): how the group shared the work. */
  readonly stats = { placed: 0, confirmed: 0, rejected: 0, duplicates: 0 };

  constructor(
    readonly instance: string,
    private readonly replica: ProductReplica,
    readonly store: OrderStore,
    private readonly out: Announcer,
  ) {}

  /** An order from the service's records (any instance: they share the database). */
  @Subscribe(GetOrder)
  async getOrder(q: GetOrder): Promise<OrderDetails> {
    const o = await this.store.get(null, q.orderId);
    if (!o) throw new UnknownOrderError(q.orderId);
    return { orderId: o.orderId, productId: o.productId, quantity: o.quantity, unitPriceCents: o.unitPriceCents, state: o.state, ...(o.reason ? { reason: o.reason as OrderDetails['reason'] } : {}) };
  }

  @Subscribe(PlaceOrder, { inbox: (s: OrderService) => s.store.inbox })
  async onPlaceOrder(c: PlaceOrder, ctx: MessageContext): Promise<void> {
    if (await this.store.get(ctx.tx, c.orderId)) {
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
    const order = { orderId: c.orderId, productId: c.productId, quantity: c.quantity, unitPriceCents: product?.priceCents ?? 0 };
    // Nothing to reserve for an unknown product: the saga ends here.
    const state = product ? 'placed' : 'rejected';
    // A copy of this command with another envelope id may have added the order meanwhile.
    if (!(await this.store.add(ctx.tx, { ...order, state, reason: product ? undefined : 'unknown-product' }))) {
      this.stats.duplicates++;
      return;
    }
    this.stats.placed++;
    if (product) await this.out.publish(ctx.tx, OrderPlaced, order, c.orderId);
    else {
      this.stats.rejected++;
      await this.out.publish(ctx.tx, OrderRejected, { orderId: c.orderId, productId: c.productId, quantity: c.quantity, reason: 'unknown-product' }, c.orderId);
    }
  }

  @Subscribe(StockReserved, { inbox: (s: OrderService) => s.store.inbox })
  async onStockReserved(e: StockReserved, ctx: MessageContext): Promise<void> {
    await this.finish(ctx.tx, e, 'confirmed');
  }

  @Subscribe(StockRejected, { inbox: (s: OrderService) => s.store.inbox })
  async onStockRejected(e: StockRejected, ctx: MessageContext): Promise<void> {
    await this.finish(ctx.tx, e, 'rejected', e.reason);
  }

  private async finish(tx: Tx, e: { orderId: string; productId: string; quantity: number }, state: 'confirmed' | 'rejected', reason?: StockRejected['reason']): Promise<void> {
    if (!(await this.store.transition(tx, e.orderId, state, reason))) {
      // An order another process placed in a store of its own (the in-memory store): adopt it from
      // the event, which says all the step needs. Else it is final already: a duplicate.
      if ((await this.store.get(tx, e.orderId)) || !(await this.store.add(tx, { ...e, unitPriceCents: 0, state, reason }))) {
        this.stats.duplicates++;
        return;
      }
    }
    this.stats[state]++;
    const order = { orderId: e.orderId, productId: e.productId, quantity: e.quantity };
    if (state === 'confirmed') await this.out.publish(tx, OrderConfirmed, order, e.orderId);
    else await this.out.publish(tx, OrderRejected, { ...order, reason: reason ?? 'insufficient-stock' }, e.orderId);
  }
}
