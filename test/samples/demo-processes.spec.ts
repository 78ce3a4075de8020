/**
 * The demo as docs/demo.md lays it out: one process per role (bin/courier.js demo --role ...),
 * the product service, two order processes (instance ids oa and ob, one SQLite file per service
 * in a temp folder) and the driver, on RabbitMQ and Mosquitto. The product service is SIGKILLed
 * while orders flow and restarted with the same arguments: every invariant holds, checked by the
 * driver from the services' own records (issue 16 point 6f). Negative control: the same with the
 * services' state in memory (`--db memory`): the restarted product service has forgotten what it
 * sold, and the driver FAILs (oversold stock, unbalanced ledger).
 * The chaos run (issue 17 point 6): every role through a TCP proxy cut every 300-800 ms for 15 s,
 * then the driver (it resumes its run from its journal), product, oa and ob SIGKILLed and
 * restarted in turn; its negative control (on AMQP) runs the same with the services' state in memory.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Bus, createBus, silentLogger, Subscribe, Subscriber } from 'courier-bus';
import { OrderConfirmed, OrderPlaced, OrderRejected } from '../../samples/order-service';
import type { DemoSummary } from '../../samples/demo/run-demo';
import { DemoEnvironment, demoEnvironment } from '../../samples/demo/transports';
import { describeEachBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq } from '../helpers/wait';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

/** Counts every order's final events, on a connection of its own straight to the broker (an instance subscription: it misses nothing). */
@Subscriber()
class Observer {
  readonly outcomes = new Map<string, string[]>();
  /** Orders the order service recorded as placed (its OrderPlaced events; an order rejected at placement, "unknown-product", has none), by id. */
  readonly placed = new Set<string>();
  @Subscribe(OrderPlaced, { instance: true })
  async orderPlaced(e: OrderPlaced): Promise<void> {
    this.placed.add(e.orderId);
  }
  @Subscribe(OrderConfirmed, { instance: true })
  async confirmed(e: OrderConfirmed): Promise<void> {
    this.add(e.orderId, 'confirmed');
  }
  @Subscribe(OrderRejected, { instance: true })
  async rejected(e: OrderRejected): Promise<void> {
    this.add(e.orderId, `rejected:${e.reason}`);
  }
  private add(id: string, outcome: string): void {
    const l = this.outcomes.get(id) ?? [];
    l.push(outcome);
    this.outcomes.set(id, l);
  }
  /** Orders placed (seen in OrderPlaced) and ended, final events seen more than once, orders with two different outcomes. */
  figures(): { placed: number; ended: number; copies: number; contradictory: number } {
    let copies = 0;
    let contradictory = 0;
    for (const l of this.outcomes.values()) {
      copies += l.length - 1;
      if (new Set(l).size > 1) contradictory++;
    }
    return { placed: this.placed.size, ended: this.outcomes.size, copies, contradictory };
  }
}

interface Role {
  readonly name: string;
  readonly child: ChildProcess;
  stderr: string;
  stdout: string;
  readonly exited: Promise<number | null>;
}

describe('courier demo, one process per role: SIGKILLs, restarts and cut connections', function () {
  this.timeout(180_000);
  const roles: Role[] = [];
  const dirs: string[] = [];
  const namespaces: Array<{ transport: 'amqp' | 'mqtt'; url: string; ns: string }> = [];
  const observers: Array<{ bus: Bus; env: DemoEnvironment }> = [];
  const proxies: TcpProxy[] = [];

  afterEach(async function () {
    this.timeout(60_000);
    for (const r of roles.splice(0)) {
      if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
      r.child.kill('SIGTERM');
      await Promise.race([r.exited, sleep(10_000)]);
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    }
    for (const p of proxies.splice(0)) await p.stop().catch(() => undefined);
    for (const o of observers.splice(0)) {
      await o.bus.stop().catch(() => undefined);
      await o.env.cleanup('own').catch(() => undefined);
    }
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
    // The namespace's shared topology, as `courier demo --remove-namespace` removes it.
    for (const n of namespaces.splice(0)) await demoEnvironment(n.transport, n.url, n.ns).removeNamespace().catch(() => undefined);
  });

  function start(name: string, args: string[]): Role {
    const child = spawn(process.execPath, [BIN, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const role: Role = { name, child, stderr: '', stdout: '', exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))) };
    child.stdout!.on('data', (d) => (role.stdout += String(d)));
    child.stderr!.on('data', (d) => (role.stderr += String(d)));
    roles.push(role);
    return role;
  }

  async function ready(r: Role, ms = 60_000): Promise<void> {
    for (const end = Date.now() + ms; !/ready on/.test(r.stderr); await sleep(50)) {
      if (r.child.exitCode !== null) throw new Error(`${r.name} exited ${r.child.exitCode} before it was ready: ${r.stderr}`);
      if (Date.now() > end) throw new Error(`waited ${ms} ms for ${r.name} to be ready: ${r.stderr}`);
    }
  }

  async function run(
    transport: 'amqp' | 'mqtt',
    url: string,
    db: string[],
  ): Promise<{ summary: DemoSummary; killedAfterMs: number; observed: ReturnType<Observer['figures']>; endedAtKill: number; restartFailed: string | null }> {
    const ns = uniq('mp').toLowerCase().replace(/[^a-z0-9-]/g, '');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-demo-mp-'));
    dirs.push(dir);
    namespaces.push({ transport, url, ns });
    const common = ['--transport', transport, '--url', url, '--namespace', ns, '--data-dir', dir, ...db];
    const productArgs = [...common, '--role', 'product', '--products', '10', '--verbose'];
    const env = demoEnvironment(transport, url, ns);
    const observer = new Observer();
    const bus = createBus({ transport: env.makeTransport(`observer-${ns}`), source: 'observer', instanceId: `observer-${ns}`, instanceExpiresAfterMs: 60_000, logger: silentLogger });
    bus.register(observer);
    observers.push({ bus, env });
    await bus.start();
    let product = start('product', productArgs);
    await ready(product);
    const orders = [start('order oa', [...common, '--role', 'order', '--instances', '1', '--instance-id', 'oa']), start('order ob', [...common, '--role', 'order', '--instances', '1', '--instance-id', 'ob'])];
    for (const o of orders) await ready(o);
    const driver = start('driver', [...common, '--role', 'driver', '--orders', '500', '--instances', '2', '--instance-id', 'drv', '--json']);
    const startedAt = Date.now();
    // The kill lands while orders flow: once the observer saw 100 of the 500 end.
    for (const end = Date.now() + 60_000; observer.outcomes.size < 100; await sleep(20)) {
      if (Date.now() > end || driver.child.exitCode !== null) throw new Error(`waited 60 s for 100 orders to end (${observer.outcomes.size} did): ${driver.stderr}`);
    }
    const endedAtKill = observer.outcomes.size;
    product.child.kill('SIGKILL');
    await product.exited;
    const killedAfterMs = Date.now() - startedAt;
    await sleep(500);
    product = start('product (restarted)', productArgs);
    // With its state in memory, the restarted service may not even start (the control records why).
    let restartFailed: string | null = null;
    try {
      await ready(product);
    } catch (err) {
      if (!db.includes('memory')) throw err;
      restartFailed = (/courier demo failed: .*/.exec((err as Error).message) ?? [(err as Error).message.slice(0, 200)])[0];
    }
    const code = await Promise.race([driver.exited, sleep(120_000).then(() => 'no exit within 120 s')]);
    assert.ok(code === 0 || code === 1, `driver exit ${code}: ${driver.stderr}`);
    await sleep(1000); // the last final events reach the observer
    return { summary: JSON.parse(driver.stdout) as DemoSummary, killedAfterMs, observed: observer.figures(), endedAtKill, restartFailed };
  }

  function figures(label: string, r: Awaited<ReturnType<typeof run>>): void {
    const s = r.summary;
    const failed = Object.entries(s.invariants).filter(([, i]) => !i.ok);
    console.log(
      `      ${label}: product SIGKILLed ${r.killedAfterMs} ms into the run (${r.endedAtKill} orders ended)${r.restartFailed ? `, its restart failed: ${r.restartFailed}` : ''}; observer: ${r.observed.ended} orders ended, ${r.observed.copies} copies, ${r.observed.contradictory} contradictory; driver: ${s.placed} placed, ${s.confirmed} confirmed, ${s.rejected} rejected ${JSON.stringify(s.rejectedBy)}, ` +
        `${s.ended} ended; ${s.duplicateFinals} final events seen twice; dead letters ${s.deadLetters.total}; stopped: ${s.stopped ?? 'no'}; ` +
        `replicas: ${s.work.map((w) => `${w.instance} ${w.gaps} gaps/${w.resyncs} resyncs`).join(', ')}; ` +
        (failed.length ? `FAILED ${failed.map(([k, i]) => `${k} (${i.detail.slice(0, 160)})`).join('; ')}` : 'every invariant holds'),
    );
  }

  /**
   * The chaos run: product, oa, ob and the driver as processes of their own, each through a TCP
   * proxy; 15 s of cuts every 300-800 ms on every proxy; then the driver, product, oa and ob in
   * turn SIGKILLed and restarted with the same arguments (the driver resumes its run from its
   * journal). `db`: extra arguments of the service roles (the control: `--db memory`).
   */
  async function chaos(transport: 'amqp' | 'mqtt', url: string, db: string[]) {
    const ns = uniq('cx').toLowerCase().replace(/[^a-z0-9-]/g, '');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-demo-cx-'));
    dirs.push(dir);
    namespaces.push({ transport, url, ns });
    const broker = new URL(url);
    const proxied = async () => {
      const p = new TcpProxy(broker.hostname, Number(broker.port || (transport === 'amqp' ? 5672 : 1883)));
      proxies.push(p);
      const port = await p.start();
      const u = new URL(url);
      u.port = String(port);
      return { proxy: p, url: u.toString().replace(/\/$/, '') };
    };
    const via = { product: await proxied(), oa: await proxied(), ob: await proxied(), driver: await proxied() };
    const args = (who: keyof typeof via) => ['--transport', transport, '--url', via[who].url, '--namespace', ns, '--data-dir', dir];
    const roleArgs = {
      product: [...args('product'), ...db, '--role', 'product', '--products', '40'],
      oa: [...args('oa'), ...db, '--role', 'order', '--instances', '1', '--instance-id', 'oa'],
      ob: [...args('ob'), ...db, '--role', 'order', '--instances', '1', '--instance-id', 'ob'],
      driver: [...args('driver'), '--role', 'driver', '--orders', '1400', '--rate', '40', '--instances', '2', '--instance-id', 'drv', '--json'],
    };
    const env = demoEnvironment(transport, url, ns);
    const observer = new Observer();
    const obus = createBus({ transport: env.makeTransport(`observer-${ns}`), source: 'observer', instanceId: `observer-${ns}`, instanceExpiresAfterMs: 60_000, logger: silentLogger });
    obus.register(observer);
    observers.push({ bus: obus, env });
    await obus.start();
    const running: Record<string, Role> = {};
    for (const who of ['product', 'oa', 'ob'] as const) {
      running[who] = start(who, roleArgs[who]);
      await ready(running[who]);
    }
    const started = Date.now();
    running.driver = start('driver', roleArgs.driver);
    for (const end = Date.now() + 60_000; observer.outcomes.size < 20; await sleep(20)) {
      if (Date.now() > end || running.driver.child.exitCode !== null) throw new Error(`waited for orders to flow (${observer.outcomes.size} ended): ${running.driver.stderr}`);
    }
    // 15 s of cuts: each role's connections, every 300-800 ms at random.
    let cuts = 0;
    const cutUntil = Date.now() + 15_000;
    await Promise.all(
      Object.values(via).map(async ({ proxy }) => {
        while (Date.now() < cutUntil) {
          await sleep(300 + Math.floor(Math.random() * 500));
          proxy.cut();
          cuts++;
        }
      }),
    );
    const endedAfterCuts = observer.outcomes.size;
    // Then each role in turn: SIGKILL, restart with the same arguments. The driver first, while
    // most of its orders are still to be placed.
    const kills: string[] = [];
    const restartFailed: string[] = [];
    for (const who of ['driver', 'product', 'oa', 'ob'] as const) {
      if (running.driver.child.exitCode !== null) break;
      const before = observer.outcomes.size;
      running[who].child.kill('SIGKILL');
      await running[who].exited;
      running[who] = start(`${who} (restarted)`, roleArgs[who]);
      kills.push(`${who} at ${before} ended`);
      if (who === 'driver') {
        for (const end = Date.now() + 30_000; !/resuming run/.test(running.driver.stderr) && running.driver.child.exitCode === null && Date.now() < end; ) await sleep(50);
      } else {
        try {
          await ready(running[who]);
        } catch (err) {
          // With the services' state in memory, a restarted service may not even start (the control records why).
          if (!db.includes('memory')) throw err;
          restartFailed.push(`${who}: ${(/courier demo failed: .*/.exec((err as Error).message) ?? [(err as Error).message.slice(0, 160)])[0]}`);
        }
      }
      await sleep(1500);
    }
    const driverExit = await Promise.race([running.driver.exited, sleep(150_000).then(() => 'no exit within 150 s')]);
    const seconds = Math.round((Date.now() - started) / 1000);
    await sleep(1000);
    const summary = JSON.parse(running.driver.stdout || '{}') as DemoSummary;
    const observed = observer.figures();
    const failed = Object.entries(summary.invariants ?? {}).filter(([, i]) => !i.ok);
    console.log(
      `      ${transport} chaos${db.length ? ` (${db.join(' ')})` : ''}: ${cuts} cuts in 15 s (${endedAfterCuts} orders ended by then); SIGKILL + restart: ${kills.join(', ')}${restartFailed.length ? ` (restart failed: ${restartFailed.join('; ')})` : ''}; ` +
        `driver exit ${driverExit} after ${seconds} s (${summary.driverProcesses} driver processes, ${summary.resent} orders sent again on resuming); ` +
        `observer: ${observed.placed} OrderPlaced, ${observed.ended} orders ended, ${observed.copies} final events delivered more than once, ${observed.contradictory} contradictory; driver: ${summary.placed} placed, ${summary.confirmed} confirmed, ${summary.rejected} rejected, ` +
        `${summary.ended} ended, ${summary.duplicateFinals} duplicates seen, dead letters ${summary.deadLetters?.total}, replicas converged after ${summary.convergedAfterMs} ms, stopped: ${summary.stopped ?? 'no'}; ` +
        (!summary.invariants ? `no summary: ${JSON.stringify(summary).slice(0, 200)}` : failed.length ? `FAILED ${failed.map(([k, i]) => `${k} (${i.detail.slice(0, 200)})`).join('; ')}` : 'every invariant holds'),
    );
    return { summary, observed, endedIds: [...observer.outcomes.keys()], kills, restartFailed, driverExit, driverStderr: running.driver.stderr, failed };
  }

  describeEachBroker((transport, broker) => {
    it('state in SQLite files: every order ends once, no overselling, stock conserved, the replicas equal the catalog', async () => {
      const r = await run(transport, broker().url, []);
      const s = r.summary;
      figures(`${transport} sqlite`, r);
      assert.deepEqual(r.observed, { placed: r.observed.placed, ended: 500, copies: r.observed.copies, contradictory: 0 });
      assert.match(s.product?.store ?? '', /^sqlite .*product-service\.db$/);
      for (const [name, i] of Object.entries(s.invariants)) assert.ok(i.ok, `${name}: ${i.detail}`);
      assert.equal(s.stopped, null);
      assert.deepEqual([s.placed, s.ended], [500, 500]);
      assert.ok(!s.rejectedBy['unknown-product'] || s.rejectedBy['unknown-product'] <= 2, `no "unknown product" beyond the two launches: ${JSON.stringify(s.rejectedBy)}`);
      assert.equal(s.ok, true);
    });

    it('chaos: every role through a proxy cut every 300-800 ms for 15 s, then the driver, product, oa and ob each SIGKILLed and restarted while orders flow', async () => {
      const r = await chaos(transport, broker().url, []);
      const sum = r.summary;
      assert.equal(r.driverExit, 0, r.driverStderr.slice(-2000));
      assert.equal(r.kills.length, 4, 'the four kills landed while the driver ran');
      for (const [name, i] of Object.entries(sum.invariants)) assert.ok(i.ok, `${name}: ${i.detail}`);
      // The orders of the killed driver included: one run, resumed by the second driver process.
      assert.equal(sum.driverProcesses, 2);
      assert.deepEqual([sum.placed, sum.ended, r.observed.ended, r.observed.contradictory], [1400, 1400, 1400, 0]);
      // Exactly the run's orders ended, o0..o1399, those the killed driver placed included.
      assert.deepEqual(new Set(r.endedIds), new Set(Array.from({ length: 1400 }, (_, i) => `${sum.runId}-o${i}`)));
    });

    it('negative control, state in memory (--db memory): the restarted product service has lost what it sold (or cannot start), the driver FAILs', async () => {
      const r = await run(transport, broker().url, ['--db', 'memory']);
      const s = r.summary;
      figures(`${transport} memory`, r);
      assert.equal(s.ok, false);
      // Lost state shows as unbalanced or oversold stock, or the service never comes back.
      assert.ok(!s.invariants.stockConserved.ok || !s.invariants.stockNeverNegative.ok || r.restartFailed, JSON.stringify(s.invariants));
    });

    // On one transport, to keep the spec near 5 min (AMQP: ~70 s). On MQTT the restarted product
    // service with its state in memory sometimes cannot start at all (StartTimeoutError) and the
    // driver then fails without a summary; when it starts, stock is oversold.
    if (transport === 'amqp') it('negative control of the chaos run, the services\' state in memory (--db memory): the same cuts and kills break an invariant', async () => {
      const r = await chaos(transport, broker().url, ['--db', 'memory']);
      // The driver ends by itself (it has deadlines) and an invariant FAILs: lost stock or orders.
      assert.ok(r.driverExit === 1, `driver exit ${r.driverExit}: ${r.driverStderr.slice(-1000)}`);
      assert.equal(r.summary.ok, false);
      assert.ok(r.failed.length > 0, `an invariant FAILs: ${JSON.stringify(r.summary.invariants)}`);
    });
  });
});
