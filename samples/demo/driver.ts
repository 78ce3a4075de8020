/**
 * The driver: places N orders over random products and quantities, changes prices and launches
 * products in between, watches the orders end, then asks every service instance for its state and
 * checks the demo's invariants. It talks to the services only through messages, so it runs the
 * same in-process and as a process of its own (`--role driver`).
 */
import { randomBytes } from 'node:crypto';
import { Bus, Subscribe, Subscriber } from 'courier-bus';
import { OrderConfirmed, OrderRejected, PlaceOrder } from '../order-service';
import { ChangePrice, CreateProduct, ListProducts, ProductCatalog } from '../product-service';
import { ReportRequested, ServiceReport } from './messages';
import { OrderReport, ProductReport, publishedBy } from './reporter';

export interface DriverOptions {
  readonly orders: number;
  /** Order-service instances to wait for (and to expect reports from). */
  readonly instances: number;
  readonly random: () => number;
  /** Most orders placed and not yet ended at once. */
  readonly window?: number;
  /** Called once at half-way (fault injection). */
  readonly halfway?: () => Promise<void>;
  /** Called once the orders ended, before the state is checked (lets injected duplicates arrive). */
  readonly settle?: () => Promise<void>;
  /** Called every 250 ms with the orders ended so far. */
  readonly progress?: (ended: number) => void;
  /** How long to wait for the services, and for progress once the orders are placed. Default 30 s. */
  readonly timeoutMs?: number;
}

export interface Invariant {
  readonly ok: boolean;
  readonly detail: string;
}

export interface DriverResult {
  readonly runId: string;
  /** Products in the catalog when the run began. */
  readonly products: number;
  readonly confirmed: number;
  readonly rejected: number;
  readonly rejectedBy: Record<string, number>;
  readonly ended: number;
  readonly durationMs: number;
  readonly latencyMs: { p50: number | null; p99: number | null };
  readonly messages: number;
  readonly deadLetters: { total: number; bySubscription: Record<string, number> };
  readonly work: Array<{ instance: string } & OrderReport['stats'] & { replicaEvents: number; staleEvents: number; fallbacks: number; bootstrapped: number }>;
  readonly product: ProductReport['stats'] | null;
  readonly convergedAfterMs: number | null;
  readonly invariants: Record<'stockNeverNegative' | 'stockConserved' | 'replicaMatchesCatalog' | 'everyOrderEndedOnce', Invariant>;
}

@Subscriber()
export class DriverObserver {
  readonly finals = new Map<string, Map<'confirmed' | 'rejected', string | undefined>>();
  /** When the first final event of each order arrived (performance.now()). */
  readonly firstSeen = new Map<string, number>();
  readonly reports = new Map<string, ServiceReport[]>();
  private waiters: Array<() => void> = [];

  constructor(private readonly prefix: string) {}

  @Subscribe(OrderConfirmed, { group: null })
  async onConfirmed(e: OrderConfirmed): Promise<void> {
    this.final(e.orderId, 'confirmed');
  }

  @Subscribe(OrderRejected, { group: null })
  async onRejected(e: OrderRejected): Promise<void> {
    this.final(e.orderId, 'rejected', e.reason);
  }

  @Subscribe(ServiceReport, { group: null })
  async onReport(r: ServiceReport): Promise<void> {
    const list = this.reports.get(r.requestId);
    if (list) list.push(r);
    this.wake();
  }

  /** Resolves at the next change (or after `ms`). */
  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private final(orderId: string, state: 'confirmed' | 'rejected', reason?: string): void {
    if (!orderId.startsWith(this.prefix)) return; // another run's order
    let states = this.finals.get(orderId);
    if (!states) this.finals.set(orderId, (states = new Map()));
    states.set(state, reason);
    if (!this.firstSeen.has(orderId)) this.firstSeen.set(orderId, performance.now());
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export async function drive(bus: Bus, observer: DriverObserver, runId: string, o: DriverOptions): Promise<DriverResult> {
  const window = o.window ?? 100;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const prefix = `${runId}-`;
  const productIds = await waitForCatalog(bus, timeoutMs);
  const catalogSize = productIds.length;
  await collectReports(bus, observer, prefix, o.instances, timeoutMs, true);

  const placed = new Map<string, { productId: string; quantity: number; at: number }>();
  const latencies: number[] = [];
  const ended = () => observer.finals.size;
  const progress = o.progress ? setInterval(() => o.progress!(ended()), 250) : undefined;
  const started = performance.now();
  let launches = 0;
  try {
    for (let i = 0; i < o.orders; i++) {
      while (placed.size - ended() >= window) await observer.changed(50);
      if (i > 0 && i % 7 === 0) {
        await bus.publish(ChangePrice, { changeId: `${prefix}c${i}`, productId: pick(productIds, o.random), priceCents: 100 + Math.floor(o.random() * 9900) });
      }
      let productId = pick(productIds, o.random);
      if (o.orders >= 3 && (i === Math.floor(o.orders / 3) || i === Math.floor((2 * o.orders) / 3))) {
        // A product launched now and ordered at once: the replicas may not have it yet (fallback).
        productId = `${prefix}new${++launches}`;
        await bus.publish(CreateProduct, { productId, name: `New product ${launches}`, priceCents: 1999, stock: 25 });
        productIds.push(productId);
      }
      if (i === Math.floor(o.orders / 2)) await o.halfway?.();
      const orderId = `${prefix}o${i}`;
      const quantity = 1 + Math.floor(o.random() * 5);
      placed.set(orderId, { productId, quantity, at: performance.now() });
      await bus.publish(PlaceOrder, { orderId, productId, quantity });
      // The memory transport settles everything in microtasks: let timers (retries, the progress bar) run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    let last = ended();
    let lastChange = Date.now();
    while (ended() < o.orders && Date.now() - lastChange < timeoutMs) {
      await observer.changed(250);
      if (ended() !== last) [last, lastChange] = [ended(), Date.now()];
    }
  } finally {
    if (progress) clearInterval(progress);
  }
  o.progress?.(ended());
  const durationMs = performance.now() - started;
  // Latency: from placing an order to the first final event of it.
  for (const [orderId, p] of placed) {
    const seenAt = observer.firstSeen.get(orderId);
    if (seenAt !== undefined) latencies.push(seenAt - p.at);
  }

  await o.settle?.();
  // The replicas converge after the last order ended (stock events may still be on their way).
  const convergeStart = performance.now();
  let reports = await collectReports(bus, observer, prefix, o.instances, 5000, false);
  let invariants = check(reports, observer, placed);
  while (!invariants.replicaMatchesCatalog.ok && performance.now() - convergeStart < 10_000) {
    await new Promise((r) => setTimeout(r, 250));
    reports = await collectReports(bus, observer, prefix, o.instances, 5000, false);
    invariants = check(reports, observer, placed);
  }
  const convergedAfterMs = invariants.replicaMatchesCatalog.ok ? Math.round(performance.now() - convergeStart) : null;

  let confirmed = 0;
  let rejected = 0;
  const rejectedBy: Record<string, number> = {};
  for (const states of observer.finals.values()) {
    if (states.has('confirmed')) confirmed++;
    else {
      rejected++;
      const reason = states.get('rejected') ?? 'unknown';
      rejectedBy[reason] = (rejectedBy[reason] ?? 0) + 1;
    }
  }
  const bySubscription: Record<string, number> = {};
  let messages = publishedBy(bus);
  for (const r of [reports.product, ...reports.orders]) {
    if (!r) continue;
    for (const [k, v] of Object.entries(r.state.deadLetters)) bySubscription[k] = (bySubscription[k] ?? 0) + v;
  }
  for (const r of reports.raw) messages += r.published;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? round(latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]) : null);
  return {
    runId,
    products: catalogSize,
    confirmed,
    rejected,
    rejectedBy,
    ended: ended(),
    durationMs: Math.round(durationMs),
    latencyMs: { p50: at(0.5), p99: at(0.99) },
    messages,
    deadLetters: { total: Object.values(bySubscription).reduce((a, b) => a + b, 0), bySubscription },
    work: reports.orders.map((r) => ({
      instance: r.instance,
      ...r.state.stats,
      replicaEvents: r.state.replicaStats.events,
      staleEvents: r.state.replicaStats.stale,
      fallbacks: r.state.replicaStats.fallbacks,
      bootstrapped: r.state.replicaStats.bootstrapped,
    })),
    product: reports.product?.state.stats ?? null,
    convergedAfterMs,
    invariants,
  };
}

interface Reports {
  product?: { instance: string; state: ProductReport };
  orders: Array<{ instance: string; state: OrderReport }>;
  raw: ServiceReport[];
}

/** Asks every instance for its state; waits for the product service and `instances` order instances. */
async function collectReports(bus: Bus, observer: DriverObserver, prefix: string, instances: number, timeoutMs: number, waitForAll: boolean): Promise<Reports> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const requestId = `${prefix}report-${randomBytes(4).toString('hex')}`;
    const got: ServiceReport[] = [];
    observer.reports.set(requestId, got);
    await bus.publish(ReportRequested, { requestId, orderPrefix: prefix });
    const askedAt = Date.now();
    const complete = () => {
      return got.some((r) => r.role === 'product') && new Set(got.filter((r) => r.role === 'order').map((r) => r.instance)).size >= instances;
    };
    while (!complete() && Date.now() - askedAt < 1000) await observer.changed(100);
    observer.reports.delete(requestId);
    if (complete() || (!waitForAll && Date.now() > deadline)) {
      const byInstance = new Map(got.filter((r) => r.role === 'order').map((r) => [r.instance, r]));
      const product = got.find((r) => r.role === 'product');
      return {
        product: product && { instance: product.instance, state: JSON.parse(product.state) as ProductReport },
        orders: [...byInstance.values()]
          .sort((a, b) => a.instance.localeCompare(b.instance, 'en', { numeric: true }))
          .map((r) => ({ instance: r.instance, state: JSON.parse(r.state) as OrderReport })),
        raw: [...(product ? [product] : []), ...byInstance.values()],
      };
    }
    if (Date.now() > deadline) {
      const orders = new Set(got.filter((r) => r.role === 'order').map((r) => r.instance)).size;
      throw new Error(
        `Waited ${timeoutMs} ms for the services: product service ${got.some((r) => r.role === 'product') ? 'answered' : 'did not answer'}, ` +
          `${orders} of ${instances} order-service instances answered. Are they running (same --transport, --url and --namespace)?`,
      );
    }
  }
}

async function waitForCatalog(bus: Bus, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const ids: string[] = [];
      for (let offset = 0; ; offset += 1000) {
        const page = await bus.request<ListProducts, ProductCatalog>(ListProducts, { offset, limit: 1000 }, { timeoutMs: 2000 });
        ids.push(...page.products.map((p) => p.productId));
        if (offset + 1000 >= page.total) break;
      }
      if (ids.length) return ids;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`The product service did not answer ListProducts within ${timeoutMs} ms: ${(err as Error).message}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function check(reports: Reports, observer: DriverObserver, placed: Map<string, { productId: string; quantity: number }>): DriverResult['invariants'] {
  const p = reports.product?.state;
  if (!p) {
    const missing = { ok: false, detail: 'the product service did not report' };
    return { stockNeverNegative: missing, stockConserved: missing, replicaMatchesCatalog: missing, everyOrderEndedOnce: missing };
  }
  const negative = Object.entries(p.catalog).filter(([, e]) => e.stock < 0);
  const confirmedQty: Record<string, number> = {};
  for (const [orderId, states] of observer.finals) {
    if (states.has('confirmed')) {
      const o = placed.get(orderId)!;
      confirmedQty[o.productId] = (confirmedQty[o.productId] ?? 0) + o.quantity;
    }
  }
  const unbalanced: string[] = [];
  for (const [id, l] of Object.entries(p.ledger)) {
    if (l.stock + l.reservedAll !== l.initial) unbalanced.push(`${id}: stock ${l.stock} + reserved ${l.reservedAll} != initial ${l.initial}`);
    if (l.reserved !== (confirmedQty[id] ?? 0)) unbalanced.push(`${id}: reserved ${l.reserved} for this run but ${confirmedQty[id] ?? 0} confirmed`);
  }
  const replicaDiffs: string[] = [];
  for (const o of reports.orders) {
    const diff = diffCatalog(p.catalog, o.state.replica);
    if (diff) replicaDiffs.push(`${o.instance}: ${diff}`);
  }
  const notEnded: string[] = [];
  const both: string[] = [];
  for (const orderId of placed.keys()) {
    const states = observer.finals.get(orderId);
    if (!states) notEnded.push(orderId);
    else if (states.size > 1) both.push(orderId);
  }
  const store = reports.orders[0]?.state.orders;
  const storeOk = !!store && store.placed === 0 && store.confirmed + store.rejected === placed.size;
  return {
    stockNeverNegative: { ok: negative.length === 0, detail: negative.length ? negative.map(([id, e]) => `${id}: ${e.stock}`).join(', ') : `${Object.keys(p.catalog).length} products, lowest stock ${Math.min(...Object.values(p.catalog).map((e) => e.stock))}` },
    stockConserved: { ok: unbalanced.length === 0, detail: unbalanced.length ? unbalanced.slice(0, 5).join('; ') : 'final stock + confirmed quantity = initial stock, for every product' },
    replicaMatchesCatalog: {
      ok: replicaDiffs.length === 0 && reports.orders.length > 0,
      detail: replicaDiffs.length ? replicaDiffs.join('; ') : `${reports.orders.length} replica(s) equal the catalog`,
    },
    everyOrderEndedOnce: {
      ok: notEnded.length === 0 && both.length === 0 && storeOk,
      detail:
        notEnded.length || both.length || !storeOk
          ? `${notEnded.length} without a final state (${notEnded.slice(0, 5).join(', ')}), ${both.length} both confirmed and rejected, order store ${JSON.stringify(store)}`
          : `${placed.size} orders, each confirmed or rejected, once`,
    },
  };
}

function diffCatalog(catalog: ProductReport['catalog'], replica: OrderReport['replica']): string | null {
  const diffs: string[] = [];
  for (const id of new Set([...Object.keys(catalog), ...Object.keys(replica)])) {
    const a = catalog[id];
    const b = replica[id];
    if (!a || !b || a.name !== b.name || a.priceCents !== b.priceCents || a.stock !== b.stock) {
      diffs.push(`${id} catalog ${JSON.stringify(a ?? null)} replica ${JSON.stringify(b ?? null)}`);
    }
  }
  return diffs.length ? `${diffs.length} differences, e.g. ${diffs.slice(0, 2).join('; ')}` : null;
}

function pick<T>(list: readonly T[], random: () => number): T {
  return list[Math.floor(random() * list.length)];
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
