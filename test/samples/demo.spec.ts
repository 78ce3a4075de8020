import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { DemoOptions, DemoSummary, runDemo } from '../../samples/demo/run-demo';
import { main } from '../../cli';
import { Pool } from 'pg';
import { DeliveryHandler, SubscriptionSpec, Transport, TransportWrapper } from 'courier-bus';
import { GROUP_HANDLERS } from '../../samples/demo/transports';
import { check } from '../../samples/demo/driver';
import { describeEachBroker } from '../helpers/brokers';
import { PG_URL } from '../outbox/db-kit';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

async function demo(options: Partial<DemoOptions>): Promise<DemoSummary> {
  const summary = await runDemo(
    { transport: 'memory', orders: 300, products: 10, instances: 2, json: true, seed: 7, faults: false, verbose: false, ...options },
    { stdout: sink(), stderr: sink() },
  );
  assert.ok(summary);
  return summary;
}

function assertInvariants(s: DemoSummary): void {
  for (const [name, i] of Object.entries(s.invariants)) assert.ok(i.ok, `${name}: ${i.detail}`);
  assert.equal(s.ok, true);
  assert.equal(s.ended, s.orders);
  assert.equal(s.confirmed + s.rejected, s.orders);
  assert.ok(s.confirmed > 0 && s.rejected > 0, `a mix of outcomes: ${s.confirmed} confirmed, ${s.rejected} rejected`);
}

function assertShared(s: DemoSummary): void {
  assert.equal(s.work.length, s.instances);
  for (const w of s.work) assert.ok(w.placed > 0, `every instance placed orders: ${JSON.stringify(s.work)}`);
  assert.equal(s.work.reduce((n, w) => n + w.placed, 0), s.orders);
  assert.equal(s.work.reduce((n, w) => n + w.confirmed + w.rejected, 0), s.orders);
}

function assertPoisonDeadLettered(s: DemoSummary): void {
  assert.ok(s.faults && s.faults.poison === 2 && s.faults.duplicated > 0, JSON.stringify(s.faults));
  const poisoned = Object.entries(s.deadLetters.bySubscription).filter(([k]) => k.endsWith('.ProductService.onOrderPlaced'));
  assert.deepEqual(poisoned.map(([, n]) => n), [2], JSON.stringify(s.deadLetters));
  assert.equal(s.deadLetters.total, 2);
  const ignored = (s.product?.duplicates ?? 0) + s.work.reduce((n, w) => n + w.duplicates, 0);
  assert.ok(ignored > 0, 'duplicates reached the handlers and were ignored');
}

describe('courier demo', function () {
  this.timeout(30_000);

  describe('memory', () => {
    it('300 orders over 2 instances: the invariants hold and the work is shared', async () => {
      const s = await demo({});
      assertInvariants(s);
      assertShared(s);
      assert.equal(s.deadLetters.total, 0);
      assert.ok(s.latencyMs.p50 !== null && s.latencyMs.p99 !== null && s.messages >= 4 * s.orders);
    });

    it('with duplicated events and poison messages: the invariants still hold, the poison is in the dead letter', async () => {
      const s = await demo({ faults: true, instances: 3 });
      assertInvariants(s);
      assertPoisonDeadLettered(s);
    });

    it('the services keep their state in SQLite (:memory:) by default, in memory with --db memory; both hold the invariants', async () => {
      const sqlite = await demo({});
      assert.match(sqlite.product?.store ?? '', /^sqlite :memory:/);
      assert.match(sqlite.orderStore ?? '', /^sqlite :memory:/);
      const memory = await demo({ db: 'memory' });
      assert.match(memory.product?.store ?? '', /^memory/);
      assertInvariants(memory);
    });

    it('--db postgres://: state in a schema per service, the invariants hold, the run drops the schemas it created', async () => {
      const s = await demo({ db: PG_URL, faults: true });
      assertInvariants(s);
      assert.match(s.product?.store ?? '', /^postgres .* schema demo_product_run[a-z0-9]+$/);
      const schema = s.product!.store.split(' schema ')[1];
      const pool = new Pool({ connectionString: PG_URL });
      try {
        const left = await pool.query("SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ($1, $2)", [schema, schema.replace('product', 'order')]);
        assert.deepEqual(left.rows, []);
      } finally {
        await pool.end();
      }
    });

    it('the command prints one JSON object with --json and exits 0', () => {
      const r = spawnSync(process.execPath, [BIN, 'demo', '--orders', '200', '--products', '8', '--json'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as DemoSummary;
      assert.equal(s.orders, 200);
      assertInvariants(s);
      assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
    });

    it('SIGTERM stops the driver at once: a summary of what it placed, status 1', async () => {
      const child = spawn(process.execPath, [BIN, 'demo', '--orders', '100000', '--rate', '50', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += String(d)));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      await new Promise((r) => setTimeout(r, 2500));
      const signalledAt = Date.now();
      child.kill('SIGTERM');
      const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('no exit within 10 s'), 10_000))]);
      if (code === 'no exit within 10 s') child.kill('SIGKILL');
      const tookMs = Date.now() - signalledAt;
      assert.equal(code, 1);
      const s = JSON.parse(out) as DemoSummary;
      console.log(`      SIGTERM after 2.5 s: exit ${code} ${tookMs} ms later, ${s.placed} placed, ${s.ended} ended, stopped: ${s.stopped}`);
      assert.equal(s.stopped, 'stopped by a signal');
      assert.ok(s.placed > 0 && s.placed < 100_000, `${s.placed} placed`);
      assert.equal(s.ok, false);
    });

    it("the group subscriptions --remove-namespace deletes are the services' own", async () => {
      const specs: SubscriptionSpec[] = [];
      const record = (t: Transport) => new (class extends TransportWrapper {
        override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler) {
          specs.push(spec);
          return this.inner.subscribe(spec, handler);
        }
      })(t);
      const summary = await runDemo(
        { transport: 'memory', orders: 20, products: 4, instances: 2, json: true, seed: 7, faults: false, verbose: false },
        { stdout: sink(), stderr: sink(), wrapTransport: record },
      );
      assert.ok(summary?.ok);
      const groups = specs.filter((x) => x.group);
      const byService = (g: string) => groups.filter((x) => x.group === g).map((x) => x.name).sort();
      assert.deepEqual(byService('product-service'), [...GROUP_HANDLERS['product-service']].sort());
      assert.deepEqual([...new Set(byService('order-service'))].sort(), [...GROUP_HANDLERS['order-service']].sort());
    });

    it('stockNeverNegative sees overselling from the records: more confirmed than the stock at start, though the product service reports stock >= 0', () => {
      // A product service restarted with its stock in memory: back at 20, it sold 15 more, and
      // remembers only those; the order service's records confirm 30 of a product that had 20.
      const placed = new Map([...Array(6).keys()].map((i) => [`r-o${i}`, { productId: 'p-1', quantity: 5 }] as const));
      const orders = { placed: 0, confirmed: 6, rejected: 0, notFinal: [], confirmedQuantity: { 'p-1': 30 }, rejectedBy: {} };
      const report = (stock: number, reservedAll: number, initial = 20) => ({
        product: { instance: 'product', state: { catalog: { 'p-1': { name: 'P', priceCents: 1, stock } }, ledger: { 'p-1': { initial, stock, reservedAll, reserved: reservedAll } }, stats: { reserved: 0, rejected: 0, priceChanges: 0, duplicates: 0 }, deadLetters: {}, store: 'memory' } },
        orders: [{ instance: 'oa-1', state: { replica: { 'p-1': { name: 'P', priceCents: 1, stock } }, replicaStats: { events: 0, stale: 0, fallbacks: 0, bootstrapped: 0, gaps: 0, resyncs: 0 }, orders, stats: { placed: 6, confirmed: 6, rejected: 0, duplicates: 0 }, deadLetters: {}, store: 'sqlite', shared: true, process: 'h:1' } }],
        raw: [],
      });
      const oversold = check(report(5, 15), { placed, startStock: new Map([['p-1', 20]]), observer: { finals: new Map() } });
      assert.equal(oversold.stockNeverNegative.ok, false);
      assert.match(oversold.stockNeverNegative.detail, /p-1: 30 confirmed of 20 in stock \(1 oversold\)/);
      assert.equal(oversold.stockConserved.ok, false);
      // Control: the same records with 30 in stock at start hold.
      const fine = check(report(0, 30, 30), { placed, startStock: new Map([['p-1', 30]]), observer: { finals: new Map() } });
      assert.equal(fine.stockNeverNegative.ok, true, fine.stockNeverNegative.detail);
    });

    it('bad flags: the command prints the usage on stderr and exits 2', () => {
      const r = spawnSync(process.execPath, [BIN, 'demo', '--orders', 'many'], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--orders must be an integer/);
      assert.match(r.stderr, /Usage: courier demo/);
      assert.equal(r.stdout, '');
    });

    for (const args of [['demo', '--transport', 'kafka'], ['demo', '--bogus'], ['deploy'], [], ['demo', '--role', 'order'], ['demo', '--orders'], ['demo', '--json=yes'], ['demo', '--instances', '0']]) {
      it(`bad usage (${args.join(' ') || 'nothing'}): usage on stderr, status 2`, async () => {
        const stdout = sink();
        const stderr = sink();
        assert.equal(await main(args, { stdout, stderr } as never), 2);
        // A bad demo option gets the demo's usage; no or an unknown command the overview.
        assert.match(stderr.text, args[0] === 'demo' ? /^courier: .+\n\nUsage: courier demo/ : /^courier: .+\n\nUsage: courier <command>[^]*\n  demo /);
        assert.equal(stdout.text, '');
      });
    }

    it('courier --help lists the commands; courier demo --help prints the demo usage on stdout, status 0', async () => {
      for (const [args, usage] of [[['--help'], /^Usage: courier <command>[^]*\n  demo /], [['demo', '--help'], /^Usage: courier demo/]] as const) {
        const stdout = sink();
        const stderr = sink();
        assert.equal(await main(args, { stdout, stderr } as never), 0);
        assert.match(stdout.text, usage);
        assert.equal(stderr.text, '');
      }
    });
  });

  describeEachBroker((transport, broker) => {
    it('300 orders over 2 instances: the invariants hold', async () => {
      const s = await demo({ transport, url: broker().url });
      assertInvariants(s);
      assertShared(s);
    });

    it('with duplicated events and poison messages: the invariants still hold, the poison is in the dead letter', async () => {
      const s = await demo({ transport, url: broker().url, faults: true });
      assertInvariants(s);
      assertPoisonDeadLettered(s);
    });
  });
});
