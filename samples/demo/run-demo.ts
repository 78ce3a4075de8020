/**
 * `courier demo`: the product service, K order-service instances and the driver, in one process
 * over one broker (memory by default), or one of them per process (`--role`).
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Bus, createBus, Logger, silentLogger, Transport } from 'courier-bus';
import { openServiceDatabase, OpenedDatabase } from '../storage/open-database';
import { DriverObserver, DriverResult, drive } from './driver';
import { DriverJournal } from './driver-journal';
import { DuplicatingTransport, poisonMessages, SlowHandlerTransport } from './faults';
import { Running, startOrderInstances, startProductService } from './services';
import { demoEnvironment, TransportName } from './transports';

export interface DemoOptions {
  readonly transport: TransportName;
  readonly url?: string;
  readonly orders: number;
  readonly products: number;
  /** Order-service instances (in this process; for the driver: to wait for, undefined: those that answer). */
  readonly instances?: number;
  /** This process's instance id (order instances: `<id>-<k>`). Default `<host>-<pid>`: unique, but new after a restart. */
  readonly instanceId?: string;
  /** `postgres://...`, `memory`, or undefined: SQLite (`:memory:` in one process, else a file per service). */
  readonly db?: string;
  /** Where the SQLite files go (with --role). Default `<tmp>/courier-demo/<namespace>`. */
  readonly dataDir?: string;
  readonly json: boolean;
  readonly role?: 'product' | 'order' | 'driver';
  /** Isolates a run's groups, exchange / topic prefix. Default: a new one per in-process run on a broker. */
  readonly namespace?: string;
  readonly seed: number;
  /** Orders per second at most (driver). */
  readonly rate?: number;
  /** Duplicate published messages and inject poison messages. */
  readonly faults: boolean;
  readonly verbose: boolean;
  /** Remove the namespace's shared topology and return (no run). */
  readonly removeNamespace?: boolean;
  /** Serve the services over HTTP on this port (samples/demo/http.ts) until stopped, instead of driving orders. */
  readonly http?: number;
  /** Delay each message of the handler named `handler` (`Class.method`) by `ms` (SlowHandlerTransport). */
  readonly slow?: { readonly handler: string; readonly ms: number };
}

export interface DemoSummary extends DriverResult {
  readonly transport: TransportName;
  readonly orders: number;
  readonly products: number;
  readonly instances: number;
  /** What the user should know about the run's set-up (state in memory because better-sqlite3 is missing). */
  readonly notices: string[];
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
  /** Wraps every transport the run creates (tests: to see what it subscribes). */
  readonly wrapTransport?: (t: Transport) => Transport;
  /** Makes a new transport to the run's broker (the CLI's `--dashboard` reads dead letters with it); told once, before the services start. */
  readonly onTransportFactory?: (make: (name: string) => Transport) => void;
  /** Called with the summary of a driven run before its services stop; the run ends when it resolves (`--dashboard` keeps the page up). */
  readonly beforeStop?: (summary: DemoSummary) => Promise<void>;
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
  const owned = o.namespace === undefined && o.transport !== 'memory' && !o.role;
  const namespace = o.namespace ?? (owned ? `run${Date.now().toString(36)}${randomBytes(2).toString('hex')}` : undefined);
  const env = demoEnvironment(o.transport, o.url, namespace);
  if (o.removeNamespace) {
    await env.removeNamespace();
    say(io, `removed the shared topology of namespace ${namespace} on ${o.transport}`);
    return null;
  }
  const logger: Logger = o.verbose ? stderrLogger(io.stderr) : silentLogger;
  const random = mulberry32(o.seed);
  // An in-process run on memory has no namespace, but its PostgreSQL schemas need one of their own.
  const dbNamespace = o.transport === 'memory' && !o.role && !o.namespace ? `run${Date.now().toString(36)}${randomBytes(2).toString('hex')}` : undefined;
  const instanceId = o.instanceId ?? `${os.hostname()}-${process.pid}`;
  const duplicating: DuplicatingTransport[] = [];
  io.onTransportFactory?.((name) => env.makeTransport(name));
  const wrap = (inner: Transport): Transport => {
    const wrapped = io.wrapTransport ? io.wrapTransport(inner) : inner;
    const t = o.slow ? new SlowHandlerTransport(wrapped, o.slow.handler, o.slow.ms) : wrapped;
    if (!o.faults) return t;
    const d = new DuplicatingTransport(t, 0.2, random, DUPLICATED_TYPES);
    duplicating.push(d);
    return d;
  };
  const running: Running[] = [];
  const databases: OpenedDatabase[] = [];
  const notices: string[] = [];
  const open = async (service: 'product-service' | 'order-service') => {
    const d = await openServiceDatabase(service, { db: o.db, dataDir: o.dataDir, inProcess: !o.role, namespace: namespace ?? dbNamespace, owned: owned || dbNamespace !== undefined });
    databases.push(d);
    if (d.notice) {
      notices.push(d.notice);
      say(io, d.notice);
    }
    return d.db;
  };
  let cleanup: 'own' | 'namespace' | null = null;
  let journal: DriverJournal | undefined;
  try {
    if (o.role === 'product' || o.role === 'order') {
      if (o.role === 'product') {
        const db = await open('product-service');
        const product = await startProductService({ env, logger, wrap, db, products: o.products, random });
        running.push(product);
        io.onBuses?.(product.buses);
        say(io, `product service ready on ${o.transport}: ${await product.service.store.count()} products in ${product.service.store.describe} (group ${env.group('product-service')}). Ctrl-C stops it.`);
      } else {
        const db = await open('order-service');
        const order = await startOrderInstances({ env, logger, wrap, db, instances: o.instances ?? 1, instanceId, bootstrapTimeoutMs: 3000 });
        running.push(order);
        io.onBuses?.(order.buses);
        say(io, `order-service instance(s) ${order.services.map((s) => s.instance).join(', ')} ready on ${o.transport}, orders in ${order.store.describe} (group ${env.group('order-service')}). Ctrl-C stops them.`);
      }
      await (io.stopSignal ?? new Promise<void>(() => undefined));
      return null;
    }

    const instances = o.role ? o.instances : o.instances ?? 2;
    if (!o.role) {
      const product = await startProductService({ env, logger, wrap, db: await open('product-service'), products: o.products, random });
      running.push(product);
      running.push(await startOrderInstances({ env, logger, wrap, db: await open('order-service'), instances: instances ?? 2, instanceId, bootstrapTimeoutMs: 5000 }));
    }
    if (o.http !== undefined) {
      const { serveDemoHttp } = await import('./http');
      const httpBus = createBus({ transport: wrap(env.makeTransport(`http-${instanceId}`)), source: env.group('demo-http'), instanceId: `http-${instanceId}`, logger });
      await httpBus.start();
      running.push({ buses: [httpBus], stop: () => httpBus.stop() });
      io.onBuses?.(running.flatMap((r) => r.buses));
      const { gateway, url } = await serveDemoHttp(httpBus, o.http);
      say(io, `HTTP gateway on ${url}: GET /products/:id, POST /orders, GET /orders/:id (products p-001 to p-${String(o.products).padStart(3, '0')}). Ctrl-C stops it.`);
      await (io.stopSignal ?? new Promise<void>(() => undefined));
      await gateway.close();
      cleanup = owned ? 'namespace' : 'own';
      return null;
    }
    const driverId = `driver-${instanceId}`;
    const driverTransport = env.makeTransport(driverId);
    const bus = createBus({ transport: wrap(driverTransport), source: env.group('demo-driver'), instanceId: driverId, instanceExpiresAfterMs: 60_000, logger });
    // A driver of its own keeps its run in a file (driver-journal.ts): started again, it resumes.
    if (o.role === 'driver') journal = openJournal(o.dataDir ?? path.join(os.tmpdir(), 'courier-demo', namespace ?? 'shared'), instanceId, notices, io);
    const fresh = `r${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
    const { runId, resumed } = journal?.runId(fresh) ?? { runId: fresh, resumed: false };
    if (resumed) say(io, `resuming run ${runId} from ${journal!.where}`);
    const observer = new DriverObserver(`${runId}-`, journal);
    bus.register(observer);
    await bus.start();
    running.push({ buses: [bus], stop: () => bus.stop() });
    cleanup = owned ? 'namespace' : 'own';
    let poison = 0;
    const buses = running.flatMap((r) => r.buses);
    io.onBuses?.(buses);
    const bar = io.stderr.isTTY ? progressBar(io.stderr, o.orders, buses) : undefined;
    const started = performance.now();
    const result = await drive(bus, observer, runId, {
      orders: o.orders,
      instances,
      random,
      rate: o.rate,
      progress: bar,
      stop: io.stopSignal,
      journal,
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
    const ok = result.stopped === null && Object.values(result.invariants).every((i) => i.ok);
    // A run that ended is forgotten (the next start begins a new one); a stopped one can be resumed.
    if (result.stopped === null) journal?.finish();
    const summary: DemoSummary = {
      transport: o.transport,
      orders: o.orders,
      instances: result.work.length,
      ...result,
      notices,
      faults: o.faults ? { duplicated: duplicating.reduce((n, d) => n + d.duplicated, 0), poison } : null,
      throughput: Math.round(result.messages / Math.max(seconds, 0.001)),
      ordersPerSecond: Math.round(result.ended / Math.max(result.durationMs / 1000, 0.001)),
      ok,
    };
    await io.beforeStop?.(summary);
    return summary;
  } finally {
    for (const r of running.reverse()) await r.stop().catch(() => undefined);
    journal?.close();
    for (const d of databases) await d.close().catch((err) => logger.warn(`closing a database failed: ${(err as Error).message}`));
    // Only what this process alone owns (docs/demo.md); a service role deletes nothing.
    if (cleanup) await env.cleanup(cleanup).catch((err) => logger.warn(`cleanup failed: ${(err as Error).message}`));
  }
}

export function formatSummary(s: DemoSummary): string {
  const lines = [
    `courier demo on ${s.transport}: ${s.orders} orders over ${s.products} products, ${s.instances} order-service instance(s)${s.faults ? `, faults: ${s.faults.duplicated} duplicated messages, ${s.faults.poison} poison` : ''}`,
    ...s.notices.map((n) => `  note        ${n}`),
    ...(s.stopped ? [`  STOPPED     ${s.stopped} (${s.placed} of ${s.orders} orders placed)`] : []),
    `  state       products in ${s.product?.store ?? '-'}; orders in ${s.orderStore ?? '-'}`,
    ...(s.driverProcesses > 1 ? [`  driver      resumed: ${s.driverProcesses} driver processes ran this run, ${s.resent} orders sent again on resuming`] : []),
    `  orders      ${s.confirmed} confirmed, ${s.rejected} rejected${Object.keys(s.rejectedBy).length ? ` (${Object.entries(s.rejectedBy).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}, ${s.ended} of ${s.placed} placed ended (the order service's records); ${s.duplicateFinals} final events seen twice`,
    `  messages    ${s.messages} in ${(s.durationMs / 1000).toFixed(2)} s: ${s.throughput} msg/s, ${s.ordersPerSecond} orders/s`,
    `  latency     p50 ${s.latencyMs.p50 ?? '-'} ms, p99 ${s.latencyMs.p99 ?? '-'} ms (order placed -> confirmed/rejected)`,
    `  dead letters ${s.deadLetters.total}${s.deadLetters.total ? ` (${Object.entries(s.deadLetters.bySubscription).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''}`,
    `  work shared between the order-service instances:`,
    ...s.work.map(
      (w) =>
        `    ${w.instance.padEnd(10)} placed ${String(w.placed).padStart(6)}  confirmed ${String(w.confirmed).padStart(6)}  rejected ${String(w.rejected).padStart(6)}  duplicates ignored ${w.duplicates}  replica: ${w.bootstrapped} loaded, ${w.replicaEvents} events (${w.staleEvents} stale), ${w.fallbacks} fallback requests, ${w.gaps} gaps, ${w.resyncs} resyncs`,
    ),
    s.product ? `  product     ${s.product.reserved} reserved, ${s.product.rejected} rejected, ${s.product.priceChanges} price changes, ${s.product.duplicates} duplicates ignored` : '  product     (no report)',
    `  invariants${s.convergedAfterMs !== null ? ` (replicas converged ${s.convergedAfterMs} ms after the last order)` : ''}`,
    ...Object.entries(s.invariants).map(([name, i]) => `    ${i.ok ? 'ok  ' : 'FAIL'} ${name}: ${i.detail}`),
    s.ok ? 'All invariants hold.' : s.stopped ? 'THE RUN STOPPED EARLY.' : 'AN INVARIANT FAILED.',
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

/** The driver's journal, or undefined (with a notice) when better-sqlite3 is missing. */
function openJournal(dir: string, instanceId: string, notices: string[], io: DemoIo): DriverJournal | undefined {
  try {
    return DriverJournal.open(dir, instanceId);
  } catch (err) {
    if ((err as { code?: string }).code !== 'MODULE_NOT_FOUND' || !/better-sqlite3/.test((err as Error).message)) throw err;
    const notice = 'better-sqlite3 is not installed: the driver keeps its run in memory (a restarted driver begins a new run).';
    notices.push(notice);
    say(io, notice);
    return undefined;
  }
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
