/** Answers the driver's ReportRequested with this instance's state (one per bus). */
import { Bus, Subscribe, Subscriber } from 'courier-bus';
import { OrderService, OrderSummary, ProductReplica } from '../order-service';
import { CatalogEntry, ProductService, StockLedger } from '../product-service';
import { ReportRequested, ServiceReport } from './messages';

export interface ProductReport {
  readonly catalog: Record<string, CatalogEntry>;
  readonly ledger: StockLedger;
  readonly stats: ProductService['stats'];
  readonly deadLetters: Record<string, number>;
  /** Where the service keeps its state. */
  readonly store: string;
}

export interface OrderReport {
  readonly replica: ReturnType<ProductReplica['snapshot']>;
  readonly replicaStats: ProductReplica['stats'];
  readonly orders: OrderSummary;
  readonly stats: OrderService['stats'];
  readonly deadLetters: Record<string, number>;
  readonly store: string;
  /** True when every process of the service shares the store (a database). */
  readonly shared: boolean;
  /** `<host>:<pid>` of the reporting process (to add up stores that are not shared). */
  readonly process: string;
}

/** Counts a bus's dead letters per subscription. */
export function deadLetterCounter(bus: Bus): Record<string, number> {
  const counts: Record<string, number> = {};
  bus.on('deadLetter', (e: { subscription: string }) => {
    counts[e.subscription] = (counts[e.subscription] ?? 0) + 1;
  });
  return counts;
}

export function publishedBy(bus: Bus): number {
  return Object.values(bus.metrics().topics).reduce((n, t) => n + t.published, 0);
}

@Subscriber()
export class Reporter {
  constructor(
    private readonly bus: Bus,
    private readonly role: 'product' | 'order',
    private readonly instance: string,
    private readonly state: (orderPrefix: string) => Promise<ProductReport | OrderReport>,
  ) {}

  @Subscribe(ReportRequested, { group: null })
  async onReportRequested(r: ReportRequested): Promise<void> {
    await this.bus.publish(ServiceReport, {
      requestId: r.requestId,
      role: this.role,
      instance: this.instance,
      published: publishedBy(this.bus),
      state: JSON.stringify(await this.state(r.orderPrefix)),
    });
  }
}
