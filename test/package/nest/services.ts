/**
 * The order and product providers of the Nest test app: found by discovery (nobody lists them),
 * constructed by Nest's injector (Ledger by its type: the app is compiled with
 * emitDecoratorMetadata), publishing, subscribing and requesting through one bus.
 */
import { Controller, Injectable, NotFoundException, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Bus, Publish, Publisher, Subscribe, Subscriber } from 'courier-bus';
import { InjectBus } from 'courier-bus/nest';
import { GetPrice, OrderPlaced, PriceQuote, RefundRequested, RUN, SlowJob, StockReserved } from './messages.js';

/** What happened, for the test's report; `until` waits (bounded) for a condition. */
@Injectable()
export class Ledger implements OnApplicationShutdown {
  readonly entries: string[] = [];
  refundAttempts = 0;
  slowStarted = false;
  slowFinished = false;
  readonly slowMs = Number(process.env['COURIER_NEST_SLOW_MS'] ?? '400');

  /** Runs after the bus stopped (CourierModule stops it in onModuleDestroy). */
  onApplicationShutdown(signal?: string): void {
    if (signal) console.log(JSON.stringify({ shutdownSignal: signal, slowFinished: this.slowFinished }));
  }

  record(entry: string): void {
    this.entries.push(entry);
  }

  async until(what: string, test: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ledger: ${JSON.stringify(this.entries)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

@Injectable()
@Publisher()
@Subscriber({ group: `nest-${RUN}-orders` })
export class OrderService implements OnApplicationBootstrap {
  constructor(
    private readonly ledger: Ledger,
    @InjectBus() private readonly bus: Bus,
  ) {}

  /** A user provider's bootstrap hook publishes: the bus runs by then. */
  async onApplicationBootstrap(): Promise<void> {
    await this.placeOrder('o-boot', 'p1', 1);
    this.ledger.record('bootstrap published o-boot');
  }

  @Publish(OrderPlaced)
  placeOrder(orderId: string, productId: string, quantity: number) {
    return { orderId, productId, quantity };
  }

  @Subscribe(StockReserved)
  onReserved(event: StockReserved): void {
    this.ledger.record(`reserved ${event.orderId} ${event.productId}`);
  }

  quote(productId: string): Promise<PriceQuote> {
    return this.bus.request(GetPrice, { productId }, { timeoutMs: 5000 });
  }
}

@Injectable()
@Publisher()
@Subscriber({ group: `nest-${RUN}-products` })
export class ProductService {
  /** The bus by its type alone (no decorator): the token is the Bus class. */
  constructor(
    private readonly ledger: Ledger,
    readonly bus: Bus,
  ) {}

  @Subscribe(OrderPlaced)
  async onOrderPlaced(event: OrderPlaced): Promise<void> {
    this.ledger.record(`product saw ${event.orderId}`);
    await this.reserve(event.orderId, event.productId);
  }

  @Publish(StockReserved)
  reserve(orderId: string, productId: string) {
    return { orderId, productId };
  }

  @Subscribe(GetPrice)
  price(query: GetPrice): PriceQuote {
    return { productId: query.productId, priceCents: query.productId === 'p1' ? 1250 : 99 };
  }
}

/** A controller is discovered too; its handler throws Nest's HttpException kind. */
@Controller()
@Subscriber({ group: `nest-${RUN}-refunds` })
export class RefundController {
  constructor(private readonly ledger: Ledger) {}

  @Subscribe(RefundRequested, { retry: { attempts: 2, initialDelayMs: 20 } })
  refund(event: RefundRequested): void {
    this.ledger.refundAttempts++;
    throw new NotFoundException(`order ${event.orderId} has no payment`);
  }
}

/** Holds its message for `slowMs`: the one in flight when the app closes. */
@Injectable()
@Subscriber({ group: `nest-${RUN}-slow` })
export class SlowWorker {
  constructor(private readonly ledger: Ledger) {}

  @Subscribe(SlowJob)
  async work(job: SlowJob): Promise<void> {
    this.ledger.slowStarted = true;
    this.ledger.record(`slow started ${job.jobId}`);
    await new Promise((resolve) => setTimeout(resolve, this.ledger.slowMs));
    this.ledger.slowFinished = true;
  }
}
