/**
 * Where the order service keeps its orders: a stand-in for the database that the instances of a
 * real service would share. Every instance of one process gets the same store, so whichever
 * instance the group hands a saga step to finds the order. Orders are state machines:
 *
 *   placed --StockReserved--> confirmed
 *   placed --StockRejected--> rejected
 *
 * A transition happens once; a repeated event finds the order already in its final state.
 */
export type OrderState = 'placed' | 'confirmed' | 'rejected';

export interface Order {
  readonly orderId: string;
  readonly productId: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
  state: OrderState;
  /** OrderPlaced was published (a retry after a failed publish sends it again). */
  placedAnnounced: boolean;
  /** OrderConfirmed / OrderRejected was published. */
  finalAnnounced: boolean;
  reason?: string;
}

export class OrderStore {
  private readonly orders = new Map<string, Order>();

  get(orderId: string): Order | undefined {
    return this.orders.get(orderId);
  }

  /** Adds an order in state `placed`, unless one with this id exists; returns the stored one. */
  add(order: Omit<Order, 'state' | 'placedAnnounced' | 'finalAnnounced'>): Order {
    let o = this.orders.get(order.orderId);
    if (!o) this.orders.set(order.orderId, (o = { ...order, state: 'placed', placedAnnounced: false, finalAnnounced: false }));
    return o;
  }

  /** Counts by state of the orders whose id starts with `prefix`, and some of those not final. */
  summary(prefix = ''): { placed: number; confirmed: number; rejected: number; notFinal: string[] } {
    const out = { placed: 0, confirmed: 0, rejected: 0, notFinal: [] as string[] };
    for (const o of this.orders.values()) {
      if (!o.orderId.startsWith(prefix)) continue;
      out[o.state]++;
      if (o.state === 'placed' && out.notFinal.length < 20) out.notFinal.push(o.orderId);
    }
    return out;
  }
}
