/**
 * The order side of the Nest sample: asks the product side for the price (a request), publishes
 * OrderPlaced and follows the answer (StockReserved / StockRejected) to OrderConfirmed or
 * OrderRejected. The bus is injected with @InjectBus(): this repository compiles without
 * decorator metadata (as tsx does), so no constructor parameter is injected by its type alone.
 */
import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { Bus, Publish, Publisher, Subscribe, Subscriber } from 'courier-bus';
import { InjectBus } from 'courier-bus/nest';
import { OrderConfirmed, OrderPlaced, OrderRejected } from '../order-service/messages';
import { GetProduct, ProductDetails, StockRejected, StockReserved } from '../product-service/messages';

export interface OrderOutcome {
  readonly orderId: string;
  readonly productId: string;
  readonly state: 'confirmed' | 'rejected';
  readonly reason?: string;
}

@Injectable()
@Subscriber()
@Publisher()
export class OrdersService implements OnApplicationBootstrap {
  readonly outcomes = new Map<string, OrderOutcome>();
  private readonly placed = new Map<string, OrderPlaced>();

  constructor(@InjectBus() private readonly bus: Bus) {}

  /** The bus runs before any provider's onApplicationBootstrap: the first order goes out here. */
  async onApplicationBootstrap(): Promise<void> {
    await this.placeOrder('o-1', 'p-1', 2);
  }

  async placeOrder(orderId: string, productId: string, quantity: number): Promise<void> {
    const product = await this.bus.request<GetProduct, ProductDetails>(GetProduct, { productId }).catch(() => undefined);
    const order = { orderId, productId, quantity, unitPriceCents: product?.priceCents ?? 0 };
    this.placed.set(orderId, order);
    await this.orderPlaced(order);
  }

  @Publish(OrderPlaced)
  orderPlaced(order: OrderPlaced): OrderPlaced {
    return order;
  }

  @Subscribe(StockReserved)
  async onStockReserved(e: StockReserved): Promise<void> {
    this.outcomes.set(e.orderId, { orderId: e.orderId, productId: e.productId, state: 'confirmed' });
    await this.orderConfirmed(e);
  }

  @Subscribe(StockRejected)
  async onStockRejected(e: StockRejected): Promise<void> {
    this.outcomes.set(e.orderId, { orderId: e.orderId, productId: e.productId, state: 'rejected', reason: e.reason });
    await this.orderRejected(e);
  }

  @Publish(OrderConfirmed)
  orderConfirmed(e: StockReserved): OrderConfirmed {
    return { orderId: e.orderId, productId: e.productId, quantity: e.quantity };
  }

  @Publish(OrderRejected)
  orderRejected(e: StockRejected): OrderRejected {
    return { orderId: e.orderId, productId: e.productId, quantity: e.quantity, reason: e.reason };
  }
}
