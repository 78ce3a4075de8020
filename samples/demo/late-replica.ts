/**
 * `courier demo --late-replica` (AMQP): a replica that starts late and builds itself from history
 * (docs/scaling.md, "Replay from a stream"). A sales ledger publishes `demo.sale-recorded` events,
 * a type declared with `history`, so its stream keeps them; no replica exists yet. After `orders`
 * sales a sales-report replica starts with `replay: { from: 'first' }`, reads the history, and is
 * compared with the ledger's own totals; it then follows new sales live; it is stopped, misses
 * more sales, and restarts from its stored position (what it handles twice is counted).
 * Everything is in a namespace of its own (exchange, stream, queues), removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { IsInt, IsString, Matches, Min } from 'class-validator';
import { Bus, createBus, Message, silentLogger, Subscribe, Subscriber } from 'courier-bus';
import type { AmqpTransportOptions } from 'courier-bus/amqp';

@Message('demo.sale-recorded', { history: { maxAge: '1D' } })
class SaleRecorded {
  @IsInt() @Min(0) n!: number;
  @Matches(/^p-\d+$/) productId!: string;
  @IsInt() @Min(0) amountCents!: number;
  @IsString() at!: string;
}

export interface LateReplicaOptions {
  readonly url: string;
  readonly orders: number;
  readonly products: number;
  readonly seed: number;
}

export interface LateReplicaSummary {
  readonly ok: boolean;
  readonly publishedBeforeReplica: number;
  /** Sales the replica read from the stream when it started late. */
  readonly caughtUp: number;
  readonly caughtUpMs: number;
  readonly liveAfterStart: number;
  readonly missedWhileStopped: number;
  readonly handledTwiceAfterRestart: number;
  readonly totalsEqual: boolean;
}

/** The replica: totals per product, and what it handled (by sale number). */
@Subscriber()
class SalesReport {
  readonly totals = new Map<string, number>();
  readonly seen = new Set<number>();
  handled = 0;
  twice = 0;
  @Subscribe(SaleRecorded, { replay: { from: 'first' }, prefetch: 50 })
  onSale(s: SaleRecorded): void {
    this.handled++;
    // At-least-once: after a restart the last few sales come again; a report keyed by sale applies each once.
    if (this.seen.has(s.n)) {
      this.twice++;
      return;
    }
    this.seen.add(s.n);
    this.totals.set(s.productId, (this.totals.get(s.productId) ?? 0) + s.amountCents);
  }
}

export async function runLateReplicaDemo(o: LateReplicaOptions, say: (line: string) => void): Promise<LateReplicaSummary> {
  const { amqpTransport } = require('courier-bus/amqp') as typeof import('courier-bus/amqp');
  const ns = `late${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const exchange = `courier.demo.${ns}`;
  const transport = (): ReturnType<typeof amqpTransport> => amqpTransport({ url: o.url, exchange } satisfies AmqpTransportOptions);
  const ledgerTotals = new Map<string, number>();
  let seed = o.seed >>> 0;
  const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  let n = 0;
  const ledger = createBus({ transport: transport(), source: 'sales-ledger', logger: silentLogger });
  const sell = async (count: number) => {
    const all: Promise<string>[] = [];
    for (let i = 0; i < count; i++) {
      const productId = `p-${Math.floor(random() * o.products)}`;
      const amountCents = 100 + Math.floor(random() * 9900);
      ledgerTotals.set(productId, (ledgerTotals.get(productId) ?? 0) + amountCents);
      all.push(ledger.publish(SaleRecorded, { n: n++, productId, amountCents, at: new Date().toISOString() }));
    }
    await Promise.all(all);
  };
  const group = `sales-report-${ns}`;
  const startReplica = async (report: SalesReport): Promise<Bus> => {
    const bus = createBus({ transport: transport(), source: group, logger: silentLogger });
    bus.register(report);
    await bus.start();
    return bus;
  };
  const until = async (test: () => boolean, what: string, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!test()) {
      if (Date.now() > deadline) throw new Error(`late replica: ${what} not within ${ms / 1000} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  let replica: Bus | undefined;
  try {
    await ledger.start();
    await sell(o.orders);
    say(`ledger: ${o.orders} sales published to ${exchange}; their history is kept in the stream ${exchange}.history.demo.sale-recorded; no replica exists yet`);
    const report = new SalesReport();
    const started = Date.now();
    replica = await startReplica(report);
    await until(() => report.seen.size >= o.orders, 'catching up');
    const caughtUpMs = Date.now() - started;
    say(`late replica (group ${group}) started from the first message: caught up with ${report.seen.size} sales in ${caughtUpMs} ms`);
    const live = Math.max(1, Math.floor(o.orders / 10));
    await sell(live);
    await until(() => report.seen.size >= n, 'following live sales');
    say(`it follows live: ${live} more sales, ${report.seen.size} in all`);
    await replica.stop();
    replica = undefined;
    await sell(live);
    say(`replica stopped; ${live} sales published meanwhile`);
    const handledBefore = report.handled;
    const twiceBefore = report.twice;
    replica = await startReplica(report);
    await until(() => report.seen.size >= n, 'resuming');
    const again = report.twice - twiceBefore;
    say(`replica restarted: resumed from its stored position, ${report.handled - handledBefore} handled, ${again} of them twice`);
    const totalsEqual = ledgerTotals.size === report.totals.size && [...ledgerTotals].every(([p, t]) => report.totals.get(p) === t);
    say(`totals per product, replica vs ledger: ${totalsEqual ? 'equal' : 'DIFFERENT'} (${report.totals.size} products, ${n} sales)`);
    return {
      ok: totalsEqual,
      publishedBeforeReplica: o.orders,
      caughtUp: o.orders,
      caughtUpMs,
      liveAfterStart: live,
      missedWhileStopped: live,
      handledTwiceAfterRestart: again,
      totalsEqual,
    };
  } finally {
    await replica?.stop().catch(() => undefined);
    await ledger.stop().catch(() => undefined);
    await removeNamespace(o.url, exchange, group);
  }
}

async function removeNamespace(url: string, exchange: string, group: string): Promise<void> {
  const amqplib = require('amqplib') as typeof import('amqplib');
  const conn = await amqplib.connect(url);
  try {
    const name = `${group}.SalesReport.onSale`;
    for (const q of [`${exchange}.history.demo.sale-recorded`, `${name}.position`, `${name}.dead`]) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    await ch.deleteExchange(exchange).catch(() => undefined);
    await ch.close().catch(() => undefined);
  } finally {
    await conn.close().catch(() => undefined);
  }
}
