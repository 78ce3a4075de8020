/** Starts the services of the demo on buses of their own: what a deployment's main() would do. */
import os from 'node:os';
import { Bus, createBus, Logger, Transport } from 'courier-bus';
import { OrderService, OrderStore, ProductReplica } from '../order-service';
import { ProductService } from '../product-service';
import { deadLetterCounter, Reporter } from './reporter';
import { DemoEnvironment } from './transports';

export interface Running {
  readonly buses: Bus[];
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly env: DemoEnvironment;
  readonly logger: Logger;
  /** Wraps each new transport (fault injection); identity by default. */
  readonly wrap?: (t: Transport) => Transport;
}

export async function startProductService(o: StartOptions): Promise<Running & { service: ProductService }> {
  const bus = createBus({ transport: (o.wrap ?? same)(o.env.makeTransport('product')), source: o.env.group('product-service'), logger: o.logger });
  const service = new ProductService();
  const deadLetters = deadLetterCounter(bus);
  bus.register(
    service,
    new Reporter(bus, 'product', 'product', (prefix) => ({
      catalog: service.catalog(),
      ledger: service.stockLedger(prefix),
      stats: service.stats,
      deadLetters,
    })),
  );
  await bus.start();
  return { buses: [bus], service, stop: () => bus.stop() };
}

/** The catalog of a fresh product service: `count` products with a seeded price and stock. */
export async function seedCatalog(service: ProductService, count: number, random: () => number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    await service.createProduct({
      productId: `p-${String(i).padStart(3, '0')}`,
      name: `Product ${i}`,
      priceCents: 100 + Math.floor(random() * 9900),
      stock: 20 + Math.floor(random() * 100),
    });
  }
}

/**
 * K instances of the order service, each on its own bus (its own connection), as K processes
 * would be. They compete for the saga's messages in one group, each keeps its own replica, and
 * they share one order store (the service's database).
 */
export async function startOrderInstances(o: StartOptions & { instances: number; bootstrapTimeoutMs: number }): Promise<Running & { services: OrderService[] }> {
  const store = new OrderStore();
  const buses: Bus[] = [];
  const source = o.env.group('order-service');
  // The replica's instance subscriptions are named from the instance id: stable across restarts of
  // the instance (COURIER_DEMO_INSTANCE, as a pod's name would be), unique among running instances.
  const base = process.env.COURIER_DEMO_INSTANCE ?? `${os.hostname()}-${process.pid}`;
  // A namespaced run's instances never come back: their queues / sessions may go soon.
  const instanceExpiresAfterMs = source === 'order-service' ? 10 * 60_000 : 30_000;
  const services: OrderService[] = [];
  for (let k = 1; k <= o.instances; k++) {
    const name = `order-${k}`;
    const bus = createBus({
      transport: (o.wrap ?? same)(o.env.makeTransport(name)),
      source,
      instanceId: `${base}-${name}`,
      instanceExpiresAfterMs,
      logger: o.logger,
    });
    const replica = new ProductReplica(bus);
    const service = new OrderService(name, replica, store);
    const deadLetters = deadLetterCounter(bus);
    bus.register(
      replica,
      service,
      new Reporter(bus, 'order', name, (prefix) => ({
        replica: replica.snapshot(),
        replicaStats: replica.stats,
        orders: store.summary(prefix),
        stats: service.stats,
        deadLetters,
      })),
    );
    await bus.start();
    buses.push(bus);
    services.push(service);
    try {
      await replica.bootstrap(o.bootstrapTimeoutMs);
    } catch (err) {
      // No product service yet: the events will bring the products as they are created.
      o.logger.warn(`${name}: could not load the catalog at start (${(err as Error).message}); relying on events`);
    }
  }
  return { buses, services, stop: async () => void (await Promise.all(buses.map((b) => b.stop()))) };
}

function same(t: Transport): Transport {
  return t;
}
