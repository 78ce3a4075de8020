/**
 * `courier demo`: the product service, K order-service instances and the driver, in one process
 * over one broker (memory by default), or one of them per process (`--role`).
 */
import { randomBytes } from 'node:crypto';
import { Bus, createBus, Logger, silentLogger, Transport } from 'courier-bus';
import { DriverObserver, DriverResult, drive } from './driver';
import { DuplicatingTransport, poisonMessages } from './faults';
import { Running, seedCatalog, startOrderInstances, startProductService } from './services';
import { demoEnvironment, TransportName } from './transports';

export interface DemoOptions {
  readonly transport: TransportName;
  readonly url?: string;
  readonly orders: number;
  readonly products: number;
  readonly instances: number;
  readonly json: boolean;
  readonly role?: 'product' | 'order' | 'driver';
  /** Isolates a run's groups, exchange / topic prefix. Default: a new one per in-process run on a broker. */
  readonly namespace?: string;
  readonly seed: number;
  /** Duplicate published messages and inject poison messages. */
  readonly faults: boolean;
  readonly verbose: boolean;
}

export interface DemoSummary extends DriverResult {
  readonly transport: TransportName;
  readonly orders: number;
  readonly products: number;
  readonly instances: number;
  readonly faults: { readonly duplicated: number; readonly poison: number } | null;
  /** Messages published per second over the run. */
  readonly throughput: number;
  readonly ordersPerSecond: number;
  readonly ok: boolean;
}

export interface DemoIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Resolves when a long-running role should stop (SIGINT / SIGTERM). */
  readonly stopSignal?: Promise<void>;
  /** Told of the buses this run started, once they run (the CLI's `--metrics-port` reports them). */
  readonly onBuses?: (buses: readonly Bus[]) => void;
}

const DUPLICATED_TYPES = new Set([
  'order.place',
  'order.placed',
  'stock.reserved',
  'stock.rejected',
  'product.create',
  'product.created',
  'product.change-price',
  'product.price-changed',
  'product.stock-changed',
]);

/** Runs the demo; resolves to the summary (null for the product and order roles). */
export async function runDemo(o: DemoOptions, io: DemoIo): Promise<DemoSummary | null> {
  const namespace = o.namespace ?? (o.transport === 'memory' || o.role ? undefined : `run${Date.now().toString(36)}${randomBytes(2).toString('hex')}`);
  const env = demoEnvironment(o.transport, o.url, namespace);
  const logger: Logger = o.verbose ? stderrLogger(io.stderr) : silentLogger;
  const random = mulberry32(o.seed);
  const duplicating: DuplicatingTransport[] = [];
  const wrap = (t: Transport): Transport => {
    if (!o.faults) return t;
    const d = new DuplicatingTransport(t, 0.2, random, DUPLICATED_TYPES);
    duplicating.push(d);
    return d;
  };
  const running: Running[] = [];
  try {
    if (o.role === 'product' || o.role === 'order') {
      if (o.role === 'product') {
        const product = await startProductService({ env, logger, wrap });
        running.push(product);
        io.onBuses?.(product.buses);
        await seedCatalog(product.service, o.products, random);
        say(io, `product service ready on ${o.transport}: ${o.products} products (group ${env.group('product-service')}). Ctrl-C stops it.`);
      } else {
        running.push(await startOrderInstances({ env, logger, wrap, instances: o.instances, bootstrapTimeoutMs: 3000 }));
        io.onBuses?.(running[running.length - 1].buses);
        say(io, `${o.instances} order-service instance(s) ready on ${o.transport} (group ${env.group('order-service')}). Ctrl-C stops them.`);
      }
      await (io.stopSignal ?? new Promise<void>(() => undefined));
      return null;
    }

    if (!o.role) {
      const product = await startProductService({ env, logger, wrap });
      running.push(product);
      await seedCatalog(product.service, o.products, random);
      running.push(await startOrderInstances({ env, logger, wrap, instances: o.instances, bootstrapTimeoutMs: 5000 }));
    }
    const driverTransport = env.makeTransport('driver');
    const bus = createBus({ transport: wrap(driverTransport), source: env.group('demo-driver'), logger });
    const runId = `r${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
    const observer = new DriverObserver(`${runId}-`);
    bus.register(observer);
    await bus.start();
    running.push({ buses: [bus], stop: () => bus.stop() });
    let poison = 0;
    const buses = running.flatMap((r) => r.buses);
    io.onBuses?.(buses);
    const bar = io.stderr.isTTY ? progressBar(io.stderr, o.orders, buses) : undefined;
    const started = performance.now();
    const result = await drive(bus, observer, runId, {
      orders: o.orders,
      instances: o.instances,
      random,
      progress: bar,
      settle: async () => void (await Promise.all(duplicating.map((d) => d.flush()))),
      halfway: o.faults
        ? async () => {
            for (const m of poisonMessages('order.placed', { orderId: `${runId}-poison`, productId: 'p-001', quantity: 0, unitPriceCents: 1 })) {
              await driverTransport.publish(m);
              poison++;
            }
          }
        : undefined,
    });
    if (bar) io.stderr.write('\n');
    const seconds = (performance.now() - started) / 1000;
    const ok = Object.values(result.invariants).every((i) => i.ok);
    return {
      transport: o.transport,
      orders: o.orders,
      instances: o.instances,
      ...result,
      faults: o.faults ? { duplicated: duplicating.reduce((n, d) => n + d.duplicated, 0), poison } : null,
      throughput: Math.round(result.messages / Math.max(seconds, 0.001)),
      ordersPerSecond: Math.round(result.ended / Math.max(result.durationMs / 1000, 0.001)),
      ok,
    };
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    await env.cleanup().catch((err) => logger.warn(`cleanup failed: ${(err as Error).message}`));
  }
}

export function formatSummary(s: DemoSummary): string {
  const lines = [
    `courier demo on ${s.transport}: ${s.orders} orders over ${s.products} products, ${s.instances} order-service instance(s)${s.faults ? `, faults: ${s.faults.duplicated} duplicated messages, ${s.faults.poison} poison` : ''}`,
    `  orders      ${s.confirmed} confirmed, ${s.rejected} rejected${Object.keys(s.rejectedBy).length ? ` (${Object.entries(s.rejectedBy).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}, ${s.ended} of ${s.orders} ended`,
    `  messages    ${s.messages} in ${(s.durationMs / 1000).toFixed(2)} s: ${s.throughput} msg/s, ${s.ordersPerSecond} orders/s`,
    `  latency     p50 ${s.latencyMs.p50 ?? '-'} ms, p99 ${s.latencyMs.p99 ?? '-'} ms (order placed -> confirmed/rejected)`,
    `  dead letters ${s.deadLetters.total}${s.deadLetters.total ? ` (${Object.entries(s.deadLetters.bySubscription).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`,
    `  work shared between the order-service instances:`,
    ...s.work.map(
      (w) =>
        `    ${w.instance.padEnd(10)} placed ${String(w.placed).padStart(6)}  confirmed ${String(w.confirmed).padStart(6)}  rejected ${String(w.rejected).padStart(6)}  duplicates ignored ${w.duplicates}  replica: ${w.bootstrapped} loaded, ${w.replicaEvents} events (${w.staleEvents} stale), ${w.fallbacks} fallback requests`,
    ),
    s.product ? `  product     ${s.product.reserved} reserved, ${s.product.rejected} rejected, ${s.product.priceChanges} price changes, ${s.product.duplicates} duplicates ignored` : '  product     (no report)',
    `  invariants${s.convergedAfterMs !== null ? ` (replicas converged ${s.convergedAfterMs} ms after the last order)` : ''}`,
    ...Object.entries(s.invariants).map(([name, i]) => `    ${i.ok ? 'ok  ' : 'FAIL'} ${name}: ${i.detail}`),
    s.ok ? 'All invariants hold.' : 'AN INVARIANT FAILED.',
  ];
  return lines.join('\n') + '\n';
}

function progressBar(out: NodeJS.WritableStream, total: number, buses: Bus[]): (ended: number) => void {
  return (ended) => {
    let ps = 0;
    let pd = 0;
    let backlog = 0;
    for (const b of buses) {
      for (const t of Object.values(b.metrics().topics)) {
        ps += t.publishRate['1s'];
        pd += t.consumeRate['1s'];
        backlog += t.backlog;
      }
    }
    const width = 30;
    const done = Math.round((ended / Math.max(total, 1)) * width);
    out.write(`\r[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${ended}/${total} orders  publish ${Math.round(ps)}/s  consume ${Math.round(pd)}/s  backlog ${backlog}   `);
  };
}

function say(io: DemoIo, line: string): void {
  io.stderr.write(`${line}\n`);
}

function stderrLogger(out: NodeJS.WritableStream): Logger {
  const write = (level: string) => (m: string, f?: Record<string, unknown>) => out.write(`[courier ${level}] ${m}${f ? ` ${JSON.stringify(f)}` : ''}\n`);
  return { warn: write('warn'), error: write('error') };
}

/** A small seeded PRNG, so that `--seed` reproduces a run's orders. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
