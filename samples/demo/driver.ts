/**
 * The driver: places N orders over random products and quantities, changes prices and launches
 * products in between, watches the orders end, then asks every service instance for its state and
 * checks the demo's invariants. It talks to the services only through messages, so it runs the
 * same in-process and as a process of its own (`--role driver`).
 *
 * Its checks are made from the services' own records (their databases, reported on request):
 * the order service's orders and the product service's catalog and reservations, against the
 * stock the catalog had when the run began. What the driver saw of the events is used for
 * progress and latency only, so a lost event can slow it down but never make a FAIL, and an
 * oversold product is a FAIL even when the product service forgot what it sold.
 * Every wait has a deadline and says what it waited for; `stop` ends the run at once (with a summary).
 */
import { randomBytes } from 'node:crypto';
import { Bus, PayloadClass, PayloadShape, Subscribe, Subscriber } from 'courier-bus';
import { OrderConfirmed, OrderRejected, OrderSummary, PlaceOrder } from '../order-service';
import { ChangePrice, CreateProduct, ListProducts, ProductCatalog } from '../product-service';
import type { DriverJournal } from './driver-journal';
import { ReportRequested, ServiceReport } from './messages';
import { OrderReport, ProductReport, publishedBy } from './reporter';

export interface DriverOptions {
  readonly orders: number;
  /** Order-service instances to wait for (and to expect reports from); undefined: those that answer. */
  readonly instances?: number;
  readonly random: () => number;
  /** Most orders placed and not yet ended at once. */
  readonly window?: number;
  /** Orders placed per second at most (default: as fast as the window lets). */
  readonly rate?: number;
  /** Called once at half-way (fault injection). */
  readonly halfway?: () => Promise<void>;
  /** Called once the orders ended, before the state is checked (lets injected duplicates arrive). */
  readonly settle?: () => Promise<void>;
  /** Called every 250 ms with the orders ended so far. */
  readonly progress?: (ended: number) => void;
  /** How long to wait for the services, and for progress once the orders are placed. Default 30 s. */
  readonly timeoutMs?: number;
  /** Resolves when the run must stop at once (SIGINT / SIGTERM). */
  readonly stop?: Promise<unknown>;
  /**
   * The driver's record of its run (a process of its own): a run found in it is resumed (its
   * start stock, its orders, the final events seen; the orders that did not end are sent again).
   * The observer must have been given it too.
   */
  readonly journal?: DriverJournal;
}

export interface Invariant {
  readonly ok: boolean;
  readonly detail: string;
}

export interface DriverResult {
  readonly runId: string;
  /** Products in the catalog when the run began. */
  readonly products: number;
  /** Orders placed (fewer than asked when the run stopped early). */
  readonly placed: number;
  readonly confirmed: number;
  readonly rejected: number;
  readonly rejectedBy: Record<string, number>;
  readonly ended: number;
  readonly durationMs: number;
  readonly latencyMs: { p50: number | null; p99: number | null };
  readonly messages: number;
  readonly deadLetters: { total: number; bySubscription: Record<string, number> };
  readonly work: Array<{ instance: string } & OrderReport['stats'] & { replicaEvents: number; staleEvents: number; fallbacks: number; bootstrapped: number; gaps: number; resyncs: number }>;
  readonly product: (ProductReport['stats'] & { store: string }) | null;
  /** Where the order service keeps its orders. */
  readonly orderStore: string | null;
  /** Final events the driver saw more than once (duplicated deliveries). */
  readonly duplicateFinals: number;
  readonly convergedAfterMs: number | null;
  /** Why the run ended before its orders did (a signal, a deadline), or null. */
  readonly stopped: string | null;
  /** Driver processes that ran this run (more than 1: it was restarted and resumed); orders they sent again on resuming. */
  readonly driverProcesses: number;
  readonly resent: number;
  readonly invariants: Record<'stockNeverNegative' | 'stockConserved' | 'replicaMatchesCatalog' | 'everyOrderEndedOnce', Invariant>;
}

/**
 * What the driver sees of the run: final events of its orders and the services' reports. Instance
 * subscriptions (the driver's bus needs an instanceId): a cut connection misses nothing.
 */
@Subscriber()
export class DriverObserver {
  readonly finals = new Map<string, Map<'confirmed' | 'rejected', string | undefined>>();
  /** When the first final event of each order arrived (performance.now()). */
  readonly firstSeen = new Map<string, number>();
  readonly reports = new Map<string, ServiceReport[]>();
  duplicateFinals = 0;
  private waiters: Array<() => void> = [];

  /** `journal`: where final events are recorded as they arrive (a driver that can resume). */
  constructor(
    private readonly prefix: string,
    private readonly journal?: DriverJournal,
  ) {
    if (!journal) return;
    // A resumed run: what the earlier processes saw.
    for (const f of journal.finals()) {
      let states = this.finals.get(f.orderId);
      if (!states) this.finals.set(f.orderId, (states = new Map()));
      states.set(f.state, f.reason);
    }
    this.duplicateFinals = journal.duplicates();
  }

  @Subscribe(OrderConfirmed, { instance: true })
  async onConfirmed(e: OrderConfirmed): Promise<void> {
    this.final(e.orderId, 'confirmed');
  }

  @Subscribe(OrderRejected, { instance: true })
  async onRejected(e: OrderRejected): Promise<void> {
    this.final(e.orderId, 'rejected', e.reason);
  }

  @Subscribe(ServiceReport, { instance: true })
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
    const duplicate = states !== undefined;
    if (!states) this.finals.set(orderId, (states = new Map()));
    else this.duplicateFinals++;
    states.set(state, reason);
    this.journal?.final(orderId, state, reason, duplicate);
    if (!this.firstSeen.has(orderId)) this.firstSeen.set(orderId, performance.now());
    this.wake();
  }

  wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** A wait that ran out: says what it waited for. */
export class DriverWaitError extends Error {
  override readonly name = 'DriverWaitError';
}

export async function drive(bus: Bus, observer: DriverObserver, runId: string, o: DriverOptions): Promise<DriverResult> {
  const window = o.window ?? 100;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const prefix = `${runId}-`;
  let stopped: string | null = null;
  void o.stop?.then(() => {
    stopped ??= 'stopped by a signal';
    observer.wake();
  });
  const interrupted = () => stopped !== null;
  // A publish that fails (a cut connection) is sent again: commands carry their own ids (orderId,
  // changeId, productId), so a copy changes nothing. Up to `timeoutMs`, then the run stops.
  const send = async <T>(type: PayloadClass<T>, payload: PayloadShape<T>, what: string): Promise<void> => {
    for (let attempt = 1, until = Date.now() + timeoutMs; ; attempt++) {
      try {
        return void (await bus.publish(type, payload));
      } catch (err) {
        if (Date.now() > until || interrupted()) throw new DriverWaitError(`${what}: publish failed for ${timeoutMs} ms (${attempt} attempts): ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
      }
    }
  };
  const journal = o.journal;
  const driverProcesses = journal?.countProcess() ?? 1;
  // A resumed run keeps the stock its first process found (the products it launched included).
  const saved = journal?.startStock();
  const start = saved ? saved.filter(([id]) => !id.startsWith(prefix)).map(([productId, stock]) => ({ productId, stock })) : await waitForCatalog(bus, timeoutMs, interrupted);
  const startStock = new Map(saved ?? start.map((p) => [p.productId, p.stock]));
  const productIds = [...startStock.keys()];
  if (journal && !saved) journal.saveStartStock(startStock);
  const first = await collectReports(bus, observer, prefix, o.instances, timeoutMs, true, interrupted);
  const instances = o.instances ?? first.orders.length;

  const placed = new Map<string, { productId: string; quantity: number; at: number }>();
  for (const [orderId, p] of journal?.orders() ?? []) placed.set(orderId, { ...p, at: Number.NaN });
  const latencies: number[] = [];
  const ended = () => observer.finals.size;
  const progress = o.progress ? setInterval(() => o.progress!(ended()), 250) : undefined;
  const started = performance.now();
  const startedAt = journal?.startedAt() ?? Date.now();
  const firstIndex = placed.size;
  let resent = 0;
  /** Waits until `done()` or `timeoutMs` without progress; false when the deadline passed or the run stopped. */
  const waitProgress = async (done: () => boolean, what: () => string): Promise<boolean> => {
    let last = ended();
    let lastChange = Date.now();
    while (!done()) {
      if (interrupted()) return false;
      if (Date.now() - lastChange > timeoutMs) {
        stopped = `no order ended for ${timeoutMs} ms while waiting for ${what()}`;
        return false;
      }
      await observer.changed(250);
      if (ended() !== last) [last, lastChange] = [ended(), Date.now()];
    }
    return true;
  };
  try {
    // Resuming: the orders placed by the earlier processes that did not end are sent again (a
    // copy of one that arrived changes nothing: the order service knows its id).
    for (const [orderId, p] of placed) {
      if (interrupted()) break;
      if (observer.finals.has(orderId)) continue;
      await send(PlaceOrder, { orderId, productId: p.productId, quantity: p.quantity }, `PlaceOrder ${orderId} (again)`);
      resent++;
    }
    for (let i = firstIndex; i < o.orders && !interrupted(); i++) {
      const open = () => placed.size - ended();
      if (!(await waitProgress(() => open() < window, () => `${open()} open orders to fall below the window of ${window}`))) break;
      if (o.rate) {
        const due = started + (1000 * (i - firstIndex)) / o.rate - performance.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
      }
      if (i > 0 && i % 7 === 0) {
        await send(ChangePrice, { changeId: `${prefix}c${i}`, productId: pick(productIds, o.random), priceCents: 100 + Math.floor(o.random() * 9900) }, `ChangePrice ${i}`);
      }
      let productId = pick(productIds, o.random);
      if (o.orders >= 3 && (i === Math.floor(o.orders / 3) || i === Math.floor((2 * o.orders) / 3))) {
        // A product launched now and ordered at once: the replicas may not have it yet (fallback).
        const launch = i === Math.floor(o.orders / 3) ? 1 : 2;
        productId = `${prefix}new${launch}`;
        if (!startStock.has(productId)) {
          productIds.push(productId);
          startStock.set(productId, 25);
          journal?.saveStartStock(startStock); // before it is sent: a resumed run counts its stock
        }
        await send(CreateProduct, { productId, name: `New product ${launch}`, priceCents: 1999, stock: 25 }, `CreateProduct ${productId}`);
      }
      if (i === Math.floor(o.orders / 2)) await o.halfway?.();
      const orderId = `${prefix}o${i}`;
      const quantity = 1 + Math.floor(o.random() * 5);
      placed.set(orderId, { productId, quantity, at: performance.now() });
      journal?.place(i, orderId, { productId, quantity });
      await send(PlaceOrder, { orderId, productId, quantity }, `PlaceOrder ${orderId}`);
      // The memory transport settles everything in microtasks: let timers (retries, the progress bar) run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!stopped) await waitProgress(() => ended() >= placed.size, () => `${placed.size - ended()} of ${placed.size} orders to end`);
  } finally {
    if (progress) clearInterval(progress);
  }
  o.progress?.(ended());
  const durationMs = Date.now() - startedAt;
  // Latency: from placing an order to the first final event of it.
  for (const [orderId, p] of placed) {
    const seenAt = observer.firstSeen.get(orderId);
    if (seenAt !== undefined && !Number.isNaN(p.at)) latencies.push(seenAt - p.at);
  }

  if (!interrupted()) await o.settle?.();
  // The replicas converge after the last order ended (stock events may still be on their way);
  // the services' records too, when the driver lost patience before they did.
  const convergeStart = performance.now();
  const ctx = { placed, startStock, duplicateFinals: observer.duplicateFinals, observer };
  let reports = await collectReports(bus, observer, prefix, instances, interrupted() ? 1000 : 5000, false, () => false);
  let invariants = check(reports, ctx);
  while (!interrupted() && !Object.values(invariants).every((i) => i.ok) && performance.now() - convergeStart < 15_000) {
    await observer.changed(250);
    reports = await collectReports(bus, observer, prefix, instances, 5000, false, interrupted);
    invariants = check(reports, ctx);
  }
  const convergedAfterMs = invariants.replicaMatchesCatalog.ok ? Math.round(performance.now() - convergeStart) : null;

  const orders = orderRecords(reports);
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
    products: start.length,
    placed: placed.size,
    confirmed: orders?.confirmed ?? 0,
    rejected: orders?.rejected ?? 0,
    rejectedBy: orders?.rejectedBy ?? {},
    ended: (orders?.confirmed ?? 0) + (orders?.rejected ?? 0),
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
      gaps: r.state.replicaStats.gaps,
      resyncs: r.state.replicaStats.resyncs,
    })),
    product: reports.product ? { ...reports.product.state.stats, store: reports.product.state.store } : null,
    orderStore: reports.orders[0]?.state.store ?? null,
    duplicateFinals: observer.duplicateFinals,
    convergedAfterMs,
    stopped,
    driverProcesses,
    resent,
    invariants,
  };
}

/** The services' reports of one collection: what check() reads. */
export interface Reports {
  product?: { instance: string; state: ProductReport };
  orders: Array<{ instance: string; state: OrderReport }>;
  raw: ServiceReport[];
}

/**
 * Asks every instance for its state, once a second until the product service and `instances`
 * order instances answered (undefined: every instance that answers within the first second after
 * the product service and one order instance did). `waitForAll`: throw after `timeoutMs`, naming
 * who did not answer; else return what came.
 */
async function collectReports(
  bus: Bus,
  observer: DriverObserver,
  prefix: string,
  instances: number | undefined,
  timeoutMs: number,
  waitForAll: boolean,
  interrupted: () => boolean,
): Promise<Reports> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const requestId = `${prefix}report-${randomBytes(4).toString('hex')}`;
    const got: ServiceReport[] = [];
    observer.reports.set(requestId, got);
    await bus.publish(ReportRequested, { requestId, orderPrefix: prefix }).catch(() => undefined); // asked again in a second
    const askedAt = Date.now();
    const orderInstances = () => new Set(got.filter((r) => r.role === 'order').map((r) => r.instance)).size;
    const complete = () => got.some((r) => r.role === 'product') && (instances === undefined ? orderInstances() > 0 : orderInstances() >= instances);
    // Learning who is there: the whole second; else until complete.
    while ((instances === undefined || !complete()) && Date.now() - askedAt < 1000 && !interrupted()) await observer.changed(100);
    observer.reports.delete(requestId);
    if (complete() || (!waitForAll && Date.now() > deadline) || (!waitForAll && interrupted())) {
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
    if (Date.now() > deadline || interrupted()) {
      throw new DriverWaitError(
        `${interrupted() ? 'Stopped' : `Waited ${timeoutMs} ms`} for the services' reports: product service ${got.some((r) => r.role === 'product') ? 'answered' : 'did not answer'}, ` +
          `${orderInstances()} of ${instances ?? 'at least 1'} order-service instances answered. Are they running (same --transport, --url and --namespace)?`,
      );
    }
  }
}

async function waitForCatalog(bus: Bus, timeoutMs: number, interrupted: () => boolean): Promise<Array<{ productId: string; stock: number }>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const all: Array<{ productId: string; stock: number }> = [];
      for (let offset = 0; ; offset += 1000) {
        const page = await bus.request<ListProducts, ProductCatalog>(ListProducts, { offset, limit: 1000 }, { timeoutMs: 2000 });
        all.push(...page.products.map((p) => ({ productId: p.productId, stock: p.stock })));
        if (offset + 1000 >= page.total) break;
      }
      if (all.length) return all;
    } catch (err) {
      if (Date.now() > deadline || interrupted()) {
        throw new DriverWaitError(`${interrupted() ? 'Stopped while waiting' : `Waited ${timeoutMs} ms`} for the product service's catalog (ListProducts): ${(err as Error).message}`);
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The order records of the run: one report when the instances share a database, else the sum over the processes' stores. */
function orderRecords(reports: Reports): OrderSummary | undefined {
  const first = reports.orders[0]?.state;
  if (!first) return undefined;
  if (first.shared) return first.orders;
  // Stores of their own (in memory): an order placed by one process may have ended in another's
  // (adopted from the event). Per order, a final state wins over `placed`; two finals that differ
  // are both counted (everyOrderEndedOnce then fails).
  const merged = new Map<string, { state: string; productId: string; quantity: number; reason?: string; finals: Set<string> }>();
  for (const r of reports.orders) {
    for (const [id, [state, productId, quantity, reason]] of Object.entries(r.state.orders.states ?? {})) {
      let m = merged.get(id);
      if (!m) merged.set(id, (m = { state, productId, quantity, reason, finals: new Set() }));
      if (state !== 'placed') {
        m.finals.add(state);
        if (m.state === 'placed') Object.assign(m, { state, reason });
      }
    }
  }
  const out: OrderSummary = { placed: 0, confirmed: 0, rejected: 0, notFinal: [], confirmedQuantity: {}, rejectedBy: {} };
  for (const [id, m] of merged) {
    const states = m.state === 'placed' ? ['placed'] : [...m.finals];
    for (const state of states as Array<'placed' | 'confirmed' | 'rejected'>) {
      out[state]++;
      if (state === 'placed' && out.notFinal.length < 20) out.notFinal.push(id);
      if (state === 'confirmed') out.confirmedQuantity[m.productId] = (out.confirmedQuantity[m.productId] ?? 0) + m.quantity;
      if (state === 'rejected') out.rejectedBy[m.reason ?? 'unknown'] = (out.rejectedBy[m.reason ?? 'unknown'] ?? 0) + 1;
    }
  }
  return out;
}

/** The invariants, from the services' reports, the orders placed and the stock each product had when the run began. */
export function check(
  reports: Reports,
  c: { placed: Map<string, { productId: string; quantity: number }>; startStock: Map<string, number>; observer: Pick<DriverObserver, 'finals'> },
): DriverResult['invariants'] {
  const p = reports.product?.state;
  const orders = orderRecords(reports);
  if (!p || !orders) {
    const missing = { ok: false, detail: `${p ? 'the order service' : 'the product service'} did not report` };
    return { stockNeverNegative: missing, stockConserved: missing, replicaMatchesCatalog: missing, everyOrderEndedOnce: missing };
  }
  // Oversold: more confirmed (by the order service's records) than the product had when the run began.
  const oversold: string[] = [];
  for (const [id, qty] of Object.entries(orders.confirmedQuantity)) {
    const had = c.startStock.get(id);
    if (had !== undefined && qty > had) oversold.push(`${id}: ${qty} confirmed of ${had} in stock`);
  }
  for (const [id, l] of Object.entries(p.ledger)) if (l.reservedAll > l.initial) oversold.push(`${id}: ${l.reservedAll} reserved of ${l.initial} ever in stock`);
  const negative = Object.entries(p.catalog).filter(([, e]) => e.stock < 0);
  const unbalanced: string[] = [];
  for (const [id, had] of c.startStock) {
    const confirmed = orders.confirmedQuantity[id] ?? 0;
    const now = p.catalog[id]?.stock;
    const reserved = p.ledger[id]?.reserved ?? 0;
    if (now === undefined) unbalanced.push(`${id}: not in the catalog`);
    else if (had - confirmed !== now) unbalanced.push(`${id}: ${had} at start - ${confirmed} confirmed != ${now} now`);
    if (reserved !== confirmed) unbalanced.push(`${id}: ${reserved} reserved by the product service for this run, ${confirmed} confirmed by the order service`);
  }
  for (const [id, l] of Object.entries(p.ledger)) if (l.stock + l.reservedAll !== l.initial) unbalanced.push(`${id}: stock ${l.stock} + reserved ${l.reservedAll} != initial ${l.initial}`);
  const replicaDiffs: string[] = [];
  for (const o of reports.orders) {
    const diff = diffCatalog(p.catalog, o.state.replica);
    if (diff) replicaDiffs.push(`${o.instance}: ${diff}`);
  }
  // Contradictions the driver saw (an order announced both confirmed and rejected).
  const both = [...c.observer.finals].filter(([, s]) => s.size > 1).map(([id]) => id);
  const recorded = orders.placed + orders.confirmed + orders.rejected;
  const ended = orders.confirmed + orders.rejected;
  const endedOk = orders.placed === 0 && recorded === c.placed.size && ended === c.placed.size && both.length === 0;
  return {
    stockNeverNegative: {
      ok: negative.length === 0 && oversold.length === 0,
      detail:
        negative.length || oversold.length
          ? [...negative.map(([id, e]) => `${id}: stock ${e.stock}`), ...oversold].slice(0, 6).join(', ') + ` (${oversold.length} oversold)`
          : `${Object.keys(p.catalog).length} products, lowest stock ${Math.min(...Object.values(p.catalog).map((e) => e.stock))}, none sold beyond its stock`,
    },
    stockConserved: {
      ok: unbalanced.length === 0,
      detail: unbalanced.length ? `${unbalanced.length} problems, e.g. ${unbalanced.slice(0, 4).join('; ')}` : 'stock at start - confirmed quantity = stock now, for every product; reservations = confirmed orders',
    },
    replicaMatchesCatalog: {
      ok: replicaDiffs.length === 0 && reports.orders.length > 0,
      detail: replicaDiffs.length ? replicaDiffs.join('; ') : `${reports.orders.length} replica(s) equal the catalog`,
    },
    everyOrderEndedOnce: {
      ok: endedOk,
      detail: endedOk
        ? `${c.placed.size} orders, each confirmed or rejected, once (the order service's records)`
        : `${c.placed.size} placed; the order service's records: ${recorded} orders, ${ended} ended, ${orders.placed} not final (${orders.notFinal.slice(0, 5).join(', ')}); ${both.length} announced both confirmed and rejected`,
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
