/**
 * Issue 16, point 6 (a), (c), (d), (e): the outbox and inbox under faults, with RabbitMQ (the
 * broker fixture) and real PostgreSQL / SQLite files; relays and consumers in child processes
 * (fixtures/outbox-child.ts) where a SIGKILL is the fault. Every message id is counted (lost,
 * duplicated, unexpected) after the fault healed, and each case has its negative control.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import amqplib from 'amqplib';
import 'reflect-metadata';
import { amqpTransport } from '../../adapters/amqp';
import { deadQueueName, workQueueName } from '../../adapters/amqp';
import { Bus, createBus, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import { createOutbox, OutboxRelay } from '../../lib/outbox';
import { amqpBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { DbKind, DbKit, openKit } from './db-kit';
import { effectsConsumer, naiveRelay } from './fixtures/consumers';
import { orderClass } from './fixtures/order';
import type { Pool } from 'pg';

const ROOT = path.resolve(__dirname, '..', '..');

/** `p`, or a rejection naming `what` after `ms`. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

interface Child {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnChild(env: Record<string, string | number>): Child {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'outbox-child.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    void exited.then(({ code, signal }) => reject(new Error(`child exited (${code ?? signal}) before ready: ${stderr}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited };
}

/** Counts deliveries per order number; reports lost / duplicates / unexpected and per-key order. */
class Tally {
  readonly counts = new Map<number, number>();
  /** First deliveries, in arrival order, per key. */
  readonly firsts = new Map<string, number[]>();
  unexpected = 0;
  constructor(private readonly expected: number) {}
  add(n: number, key: string): void {
    if (!Number.isInteger(n) || n < 0 || n >= this.expected) this.unexpected++;
    const c = (this.counts.get(n) ?? 0) + 1;
    this.counts.set(n, c);
    if (c === 1) {
      let l = this.firsts.get(key);
      if (!l) this.firsts.set(key, (l = []));
      l.push(n);
    }
  }
  /** Deliveries counted so far, copies included. */
  get deliveries(): number {
    let t = 0;
    for (const c of this.counts.values()) t += c;
    return t;
  }
  /** Resolves once no delivery came for `ms` (at most 10 s): late copies are counted too. */
  async quiet(ms = 700): Promise<void> {
    for (let last = -1, until = Date.now() + 10_000; last !== this.deliveries && Date.now() < until; ) {
      last = this.deliveries;
      await sleep(ms);
    }
  }
  get received(): number {
    return this.counts.size;
  }
  figures(sent = this.expected) {
    let duplicates = 0;
    let maxCopies = 0;
    for (const c of this.counts.values()) {
      duplicates += c - 1;
      maxCopies = Math.max(maxCopies, c);
    }
    let lost = 0;
    for (let n = 0; n < sent; n++) if (!this.counts.has(n)) lost++;
    let outOfOrder = 0;
    for (const l of this.firsts.values()) for (let i = 1; i < l.length; i++) if (l[i] < l[i - 1]) outOfOrder++;
    return { sent, received: this.received, lost, duplicates, maxCopies, unexpected: this.unexpected, outOfOrder };
  }
}

describe('outbox and inbox under faults (RabbitMQ, PostgreSQL, SQLite)', function () {
  this.timeout(60_000);
  let url: string;
  const kits: DbKit[] = [];
  const buses: Bus[] = [];
  const children: Child[] = [];
  const queues: string[] = [];
  const stoppers: (() => Promise<void>)[] = [];

  before(async () => {
    url = (await amqpBroker()).url;
  });
  afterEach(async function () {
    this.timeout(30_000);
    for (const c of children.splice(0)) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    for (const stop of stoppers.splice(0)) await stop().catch(() => undefined);
    for (const b of buses.splice(0)) await b.stop().catch(() => undefined);
    for (const k of kits.splice(0)) await k.close().catch(() => undefined);
    const conn = await amqplib.connect(url);
    conn.on('error', () => undefined);
    for (const q of queues.splice(0)) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    await conn.close();
  });

  /** A relay in this process (its own lease owner) on the kit's table, with an AMQP transport of its own. */
  async function startRelay(kit: DbKit): Promise<OutboxRelay> {
    const transport = amqpTransport({ url });
    await transport.connect();
    const relay = new OutboxRelay(kit.outbox, { leaseMs: 1000, batchSize: 50, minPollMs: 20, maxPollMs: 200 });
    await relay.start({ transport });
    stoppers.push(async () => {
      await relay.stop();
      await transport.close();
    });
    return relay;
  }

  async function kitFor(kind: DbKind): Promise<DbKit> {
    const k = await openKit(kind);
    kits.push(k);
    return k;
  }

  /** A consumer (group of its own) in this process that tallies order numbers. */
  async function collector(type: string, expected: number, onMessage?: () => void): Promise<Tally> {
    const Order = orderClass(type);
    const tally = new Tally(expected);
    const group = uniq('obc');
    @Subscriber({ group, prefetch: 200 })
    class Collector {
      @Subscribe(Order)
      on(o: InstanceType<typeof Order>, _ctx: MessageContext) {
        tally.add(o.n, o.key);
        onMessage?.();
      }
    }
    queues.push(workQueueName(group, 'Collector.on'), deadQueueName(group, 'Collector.on'));
    const bus = createBus({ transport: amqpTransport({ url }), source: 'collector', logger: silentLogger, meter: false });
    bus.register(new Collector());
    buses.push(bus);
    await bus.start();
    return tally;
  }

  /** Commits `count` orders into the outbox, `perTx` per transaction, keys k0..k(keys-1). */
  async function commitOrders(kit: DbKit, bus: Bus, type: string, count: number, keys: number, perTx = 10): Promise<void> {
    const Order = orderClass(type);
    const outbox = createOutbox(bus, kit.outbox, { relay: false });
    for (let i = 0; i < count; i += perTx) {
      await kit.tx(async (tx) => {
        for (let n = i; n < Math.min(count, i + perTx); n++) {
          await kit.insertOrder(tx, `o${n}`);
          await outbox.publish(tx, Order, { orderId: `o${n}`, n, key: `k${n % keys}` }, { orderingKey: `k${n % keys}` });
        }
      });
    }
  }

  for (const kind of ['postgres', 'sqlite'] as DbKind[]) {
    it(`(6a, ${kind}) relay SIGKILLed after the broker confirmed, before the row was marked: 0 lost, each at most once more`, async () => {
      const kit = await kitFor(kind);
      const type = uniq('ob.a');
      const count = 300;
      const tally = await collector(type, count);
      const writer = createBus({ transport: amqpTransport({ url }), source: 'orders', logger: silentLogger, meter: false });
      await commitOrders(kit, writer, type, count, 10);
      const relay = spawnChild({ OB_MODE: 'relay', OB_DB: kind, OB_WHERE: kit.where, OB_URL: url, OB_TYPE: type, OB_KILL_AFTER_CONFIRM: 120, OB_LEASE_MS: 1000, OB_BATCH: 50 });
      children.push(relay);
      const exit = await relay.exited;
      assert.equal(exit.signal, 'SIGKILL', 'the relay was killed by its own SIGKILL');
      const unmarked = (await kit.rows()).filter((r) => r.state === 'pending').length;
      await waitFor(() => tally.received >= 120, 10_000, 'what the killed relay published');
      // A second relay takes over once the lease of the dead one ends.
      await startRelay(kit);
      await waitFor(() => tally.received === count, 20_000, 'every order');
      for (const until = Date.now() + 20_000; (await kit.rows()).some((r) => r.state !== 'sent') && Date.now() < until; ) await sleep(100);
      await tally.quiet();
      const f = tally.figures();
      console.log(`      [6a ${kind}] ${JSON.stringify(f)}; rows pending after the kill: ${unmarked}`);
      assert.equal(f.lost, 0);
      assert.equal(f.unexpected, 0);
      assert.ok(f.duplicates >= 1, 'the row confirmed and not marked was published again');
      assert.ok(f.maxCopies <= 2, 'once more at most');
      assert.equal(f.outOfOrder, 0, 'per-key order of first deliveries');
      assert.ok((await kit.rows()).every((r) => r.state === 'sent'));
    });

    it(`(6a control, ${kind}) publish after commit, SIGKILL in between: the committed order's event is lost`, async () => {
      const kit = await kitFor(kind);
      const type = uniq('ob.a0');
      const tally = await collector(type, 100);
      const child = spawnChild({ OB_MODE: 'dual-write', OB_DB: kind, OB_WHERE: kit.where, OB_URL: url, OB_TYPE: type, OB_COUNT: 100, OB_KILL_AT: 40 });
      children.push(child);
      assert.equal((await child.exited).signal, 'SIGKILL');
      const orders = (await kit.orders()).length;
      await sleep(500);
      const f = tally.figures(orders);
      console.log(`      [6a control ${kind}] orders committed ${orders}, ${JSON.stringify(f)}`);
      assert.equal(orders, 41);
      assert.equal(f.lost, 1, 'order o40 is in the database and its event was never published');
      assert.equal(tally.counts.has(40), false);
    });
  }

  it('(6c) broker unreachable for 10 s while 1,000 orders commit: all delivered afterwards in per-key order (PostgreSQL and SQLite); control: plain publish after commit loses', async function () {
    this.timeout(90_000);
    const target = new URL(url);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5672));
    await proxy.start();
    const viaProxy = new URL(url);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    const transportOptions = { url: viaProxy.toString(), publishTimeoutMs: 2000, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } };
    const count = 1000;
    const cases = [] as { name: string; tally: Tally; commit: (n: number) => Promise<void> }[];
    for (const kind of ['postgres', 'sqlite'] as DbKind[]) {
      const kit = await kitFor(kind);
      const type = uniq(`ob.c${kind[0]}`);
      const Order = orderClass(type);
      const tally = await collector(type, count);
      const t = amqpTransport(transportOptions);
      t.on('error', () => undefined);
      const bus = createBus({ transport: t, source: 'orders', logger: silentLogger, meter: false });
      const outbox = createOutbox(bus, kit.outbox, { minPollMs: 50, maxPollMs: 1000, retry: { initialDelayMs: 200, maxDelayMs: 2000 }, maxAttempts: 1000 });
      buses.push(bus);
      await bus.start();
      cases.push({
        name: `outbox ${kind}`,
        tally,
        commit: (n) => kit.tx(async (tx) => {
          await kit.insertOrder(tx, `o${n}`);
          await outbox.publish(tx, Order, { orderId: `o${n}`, n, key: `k${n % 20}` }, { orderingKey: `k${n % 20}` });
        }),
      });
    }
    // The control: the same orders, published after the commit by a plain bus.publish.
    {
      const kit = await kitFor('postgres');
      const type = uniq('ob.cx');
      const Order = orderClass(type);
      const tally = await collector(type, count);
      const t = amqpTransport(transportOptions);
      t.on('error', () => undefined);
      const bus = createBus({ transport: t, source: 'orders', logger: silentLogger, meter: false });
      buses.push(bus);
      await bus.start();
      cases.push({
        name: 'control: publish after commit',
        tally,
        commit: async (n) => {
          await kit.tx((tx) => kit.insertOrder(tx, `o${n}`));
          void bus.publish(Order, { orderId: `o${n}`, n, key: `k${n % 20}` }).catch(() => undefined);
        },
      });
    }
    proxy.cut(10_000); // every connection dropped, new ones refused for 10 s
    const downAt = Date.now();
    for (let n = 0; n < count; n++) {
      for (const c of cases) await c.commit(n);
      if (n % 100 === 99) await sleep(Math.max(0, ((n + 1) / count) * 9000 - (Date.now() - downAt)));
    }
    const committedWithin = Date.now() - downAt;
    await waitFor(() => cases.slice(0, 2).every((c) => c.tally.received === count), 40_000, 'every outbox order');
    for (const c of cases) await c.tally.quiet(300);
    for (const c of cases) console.log(`      [6c ${c.name}] commits over ${committedWithin} ms of the outage; ${JSON.stringify(c.tally.figures())}`);
    for (const c of cases.slice(0, 2)) {
      const f = c.tally.figures();
      assert.equal(f.lost, 0, c.name);
      assert.equal(f.unexpected, 0, c.name);
      assert.equal(f.outOfOrder, 0, `${c.name}: per-key order`);
    }
    assert.ok(cases[2].tally.figures().lost > 0, 'the control lost what was committed while the broker was away');
    await proxy.stop();
  });

  it('(6d) three relays on one PostgreSQL table, one SIGKILLed midway: every row published, per-key order kept, duplicates counted; control: hand-written relays duplicate', async function () {
    // Two cases, each with waits bounded at 30 s + 20 s + quiet: the sum, not a typical run (6 s).
    this.timeout(150_000);
    const runCase = async (mode: 'relay' | 'naive-relay') => {
      // The control's hand-written relays are slow (a round trip per row): fewer rows for them.
      const count = mode === 'relay' ? 1000 : 300;
      const kit = await kitFor('postgres');
      const type = uniq('ob.d');
      const tally = await collector(type, count);
      const writer = createBus({ transport: amqpTransport({ url }), source: 'orders', logger: silentLogger, meter: false });
      await commitOrders(kit, writer, type, count, 30, 50);
      const t0 = Date.now();
      let killed: Promise<unknown> = Promise.resolve('none');
      if (mode === 'relay') {
        // One relay in a child process, SIGKILLed by itself after 20 confirms (inside its first
        // batch of 50, before that batch is marked); two in this process. The child prints
        // `ready` once its first claim holds rows and the other two start after that, so that
        // batch is its own and the kill lands whatever the speeds. (Before, `ready` came before
        // the first claim: in loaded CI runs the two in-process relays took every row first and
        // the child never reached its 300th, 120th, then 20th confirm.)
        const child = spawnChild({ OB_MODE: 'relay', OB_DB: 'postgres', OB_WHERE: kit.where, OB_URL: url, OB_TYPE: type, OB_LEASE_MS: 1000, OB_BATCH: 50, OB_KILL_AFTER_CONFIRM: 20 });
        children.push(child);
        await withTimeout(child.ready, 20_000, 'the child relay is ready');
        killed = withTimeout(child.exited.then((e) => e.signal), 40_000, 'the child relay killed itself after 20 confirms');
        killed.catch(() => undefined); // awaited below, after the waits
        await startRelay(kit);
        await startRelay(kit);
      } else {
        const transport = amqpTransport({ url });
        await transport.connect();
        stoppers.push(() => transport.close());
        const pool = (kit.outbox as unknown as { pool: Pool }).pool;
        for (let i = 0; i < 3; i++) void naiveRelay(pool, `"${kit.where}".outbox`, transport).catch(() => undefined);
      }
      const tReady = Date.now() - t0;
      await waitFor(() => tally.received === count, 30_000, `every row (${mode})`);
      const tAll = Date.now() - t0;
      // Count only when every row is marked sent: the killed relay's unmarked rows go out again
      // after its lease, when their first copies have long arrived.
      for (const until = Date.now() + 20_000; (await kit.rows()).some((r) => r.state !== 'sent'); await sleep(100)) {
        if (Date.now() > until) throw new Error(`rows still not sent (${mode})`);
      }
      const tSent = Date.now() - t0;
      await tally.quiet();
      const f = tally.figures();
      if (mode === 'relay') assert.equal(await killed, 'SIGKILL', 'the child relay was SIGKILLed midway');
      console.log(`      [6d ${mode}] ${JSON.stringify(f)}; child relay ended by ${await killed}; relays ready after ${tReady} ms, all received after ${tAll} ms, all marked sent after ${tSent} ms`);
      return f;
    };
    const f = await runCase('relay');
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.equal(f.outOfOrder, 0, 'per-key order');
    assert.ok(f.maxCopies <= 2);
    // The killed relay's unmarked batch goes out again after its lease: at most one batch (50) of
    // duplicates; none when the kill landed after a batch was marked (seen once in CI).
    assert.ok(f.duplicates <= 50, `duplicates: the killed relay's unmarked batch at most (${f.duplicates})`);
    const control = await runCase('naive-relay');
    assert.equal(control.lost, 0);
    assert.ok(control.duplicates > f.duplicates, `the hand-written relays duplicate (${control.duplicates} against ${f.duplicates})`);
  });

  for (const kind of ['postgres', 'sqlite'] as DbKind[]) {
    it(`(6e, ${kind}) inbox: SIGKILL between the effect's commit and the ack: the effect applied once; control without the inbox applies it twice`, async () => {
      const figures: Record<string, { twice: number; missing: number }> = {};
      for (const inbox of ['1', '0']) {
        const kit = await kitFor(kind);
        const type = uniq('ob.e');
        const Order = orderClass(type);
        const group = uniq('obe');
        queues.push(workQueueName(group, 'Effects.on'), deadQueueName(group, 'Effects.on'));
        const common = { OB_MODE: 'consumer', OB_DB: kind, OB_WHERE: kit.where, OB_URL: url, OB_TYPE: type, OB_GROUP: group, OB_INBOX: inbox };
        const first = spawnChild({ ...common, OB_KILL_BEFORE_ACK: 30 });
        children.push(first);
        await first.ready;
        const publisher = createBus({ transport: amqpTransport({ url }), source: 'orders', logger: silentLogger, meter: false });
        buses.push(publisher);
        await publisher.start();
        for (let n = 0; n < 100; n++) await publisher.publish(Order, { orderId: `o${n}`, n, key: 'k' });
        assert.equal((await first.exited).signal, 'SIGKILL');
        // The next consumer of the group (in this process) gets the unacked message again.
        const next = createBus({ transport: amqpTransport({ url }), source: 'effects', logger: silentLogger, meter: false });
        next.register(effectsConsumer(kit, type, group, inbox === '1'));
        buses.push(next);
        await next.start();
        let effects = new Map<string, number>();
        for (const until = Date.now() + 20_000; Date.now() < until; await sleep(100)) {
          effects = await kit.effects();
          if (effects.size === 100) break;
        }
        await sleep(500);
        effects = await kit.effects();
        const twice = [...effects.values()].filter((c) => c > 1).length;
        figures[inbox === '1' ? 'inbox' : 'control'] = { twice, missing: 100 - effects.size };
        await next.stop();
      }
      console.log(`      [6e ${kind}] ${JSON.stringify(figures)}`);
      assert.deepEqual(figures.inbox, { twice: 0, missing: 0 });
      assert.deepEqual(figures.control, { twice: 1, missing: 0 });
    });
  }
});
