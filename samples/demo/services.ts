/** Starts the services of the demo on buses of their own: what a deployment's main() would do. */
import os from 'node:os';
import { Bus, createBus, createOutbox, Logger, Outbox, Transport } from 'courier-bus';
import { MemoryOrderStore, ORDER_DDL, OrderService, OrderStore, ProductReplica, SqlOrderStore } from '../order-service';
import { MemoryProductStore, PRODUCT_DDL, ProductService, SqlProductStore } from '../product-service';
import { Announcer } from '../storage/announcer';
import type { ServiceDatabase } from '../storage/service-database';
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
  /** The service's database; undefined: its state in memory. */
  readonly db?: ServiceDatabase;
}

/**
 * The demo's relays: an idle one looks for rows it was not told of (commits in other processes)
 * after 20 ms, up to 500 ms; a killed one's claimed rows are taken over after 6 s (its lease, well
 * above the transports' 2 s publish timeout), at most 20 of them published again.
 */
const RELAY = { minPollMs: 20, maxPollMs: 500, leaseMs: 6000, batchSize: 20 };

/**
 * The product service. With a database, the catalog is created (when the database has none) in
 * transactions before the bus starts, its ProductCreated events in the outbox; a restarted
 * service finds catalog, stock and reservations where they were and consumes at once.
 */
export async function startProductService(o: StartOptions & { products: number; random: () => number }): Promise<Running & { service: ProductService }> {
  const bus = createBus({ transport: (o.wrap ?? same)(o.env.makeTransport('product')), source: o.env.group('product-service'), logger: o.logger });
  let outbox: Outbox | undefined;
  if (o.db) {
    await o.db.migrate(PRODUCT_DDL);
    outbox = createOutbox(bus, o.db.outboxStore, { ...RELAY, logger: o.logger });
  }
  const service = new ProductService(o.db ? new SqlProductStore(o.db) : new MemoryProductStore(), new Announcer(bus, outbox));
  const deadLetters = deadLetterCounter(bus);
  bus.register(
    service,
    new Reporter(bus, 'product', 'product', async (prefix) => ({
      catalog: await service.catalog(),
      ledger: await service.stockLedger(prefix),
      stats: service.stats,
      deadLetters,
      store: service.store.describe,
    })),
  );
  // In memory, the events of the catalog can only be published by a started bus.
  if (o.db) await seedCatalog(service, o.products, o.random);
  await bus.start();
  if (!o.db) await seedCatalog(service, o.products, o.random);
  return { buses: [bus], service, stop: () => bus.stop() };
}

/** The catalog of a fresh product service: `count` products with a seeded price and stock; nothing when it has products. */
export async function seedCatalog(service: ProductService, count: number, random: () => number): Promise<void> {
  if ((await service.store.count()) > 0) return;
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
 * they share the service's database (with every other process of the service). Instance k's id
 * is `<instanceId>-<k>`: its replica's instance subscriptions (and MQTT sessions) are named
 * after it, so a process restarted with the same `--instance-id` finds what was kept for it.
 */
export async function startOrderInstances(
  o: StartOptions & { instances: number; instanceId: string; bootstrapTimeoutMs: number },
): Promise<Running & { services: OrderService[]; store: OrderStore }> {
  if (o.db) await o.db.migrate(ORDER_DDL);
  const store = o.db ? new SqlOrderStore(o.db) : new MemoryOrderStore();
  const buses: Bus[] = [];
  const replicas: ProductReplica[] = [];
  const source = o.env.group('order-service');
  // A namespaced run's instances never come back: their queues / sessions may go soon.
  const instanceExpiresAfterMs = source === 'order-service' ? 10 * 60_000 : 60_000;
  const services: OrderService[] = [];
  let outbox: Outbox | undefined;
  for (let k = 1; k <= o.instances; k++) {
    const name = `${o.instanceId}-${k}`;
    const bus = createBus({ transport: (o.wrap ?? same)(o.env.makeTransport(name)), source, instanceId: name, instanceExpiresAfterMs, logger: o.logger });
    // One relay per process, on the first instance's bus; every instance announces through it.
    if (o.db && !outbox) outbox = createOutbox(bus, o.db.outboxStore, { ...RELAY, logger: o.logger });
    const replica = new ProductReplica(bus, o.logger);
    const service = new OrderService(name, replica, store, new Announcer(bus, outbox));
    const deadLetters = deadLetterCounter(bus);
    bus.register(
      replica,
      service,
      new Reporter(bus, 'order', name, async (prefix) => ({
        replica: replica.snapshot(),
        replicaStats: replica.stats,
        orders: await store.summary(prefix),
        stats: service.stats,
        deadLetters,
        store: store.describe,
        shared: store.shared,
        process: `${os.hostname()}:${process.pid}`,
      })),
    );
    await bus.start();
    buses.push(bus);
    replicas.push(replica);
    services.push(service);
    try {
      await replica.bootstrap(o.bootstrapTimeoutMs);
    } catch (err) {
      // No product service yet: the events will bring the products as they are created.
      o.logger.warn(`${name}: could not load the catalog at start (${(err as Error).message}); relying on events`);
    }
  }
  return {
    buses,
    services,
    store,
    stop: async () => {
      for (const r of replicas) r.stop();
      await Promise.all(buses.map((b) => b.stop()));
    },
  };
}

function same(t: Transport): Transport {
  return t;
}
