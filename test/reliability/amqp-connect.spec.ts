/**
 * Issue 14, points 7 and 10 for AMQP: what connect() / bus.start() do at the edges.
 *   7.  A wrong password fails at once with AuthenticationError naming user and broker, never the
 *       password (not after the attempts, not as a generic ConnectionError).
 *   10. A connection cut during the first topology declaration is retried like a reconnect,
 *       within startTimeoutMs; kept down beyond it, start() rejects with StartTimeoutError; a
 *       real refusal (a queue declared before with other arguments) fails at once, typed. A
 *       failed start never deletes the group's durable queues.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import amqplib from 'amqplib';
import { amqpTransport } from '../../adapters/amqp';
import { deadQueueName, workQueueName } from '../../adapters/amqp/wire';
import { AuthenticationError, PreconditionFailedError, StartTimeoutError } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';
import { uniq, waitFor } from '../helpers/wait';
import { urlAs } from '../adapters/amqp/amqp-fixture';
import { amqpBus, bounded, CaseBus, COUNTER_HANDLER, counterClass, deleteQueuesByPrefix, tickClass, viaProxy } from './amqp-harness';
import { assertRefusedAtOnce, errorTexts } from './auth-checks';
import { Ledger } from './ledger';

describe('reliability, AMQP: authentication and start-up (issue 14)', function () {
  this.timeout(60_000);
  const groups: string[] = [];
  const buses: CaseBus[] = [];
  let proxy: TcpProxy | undefined;

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.bus.stop({ timeoutMs: 1000 }).catch(() => undefined)));
    await proxy?.stop();
    proxy = undefined;
  });

  after(async () => {
    const { url } = await amqpBroker();
    const queues = groups.flatMap((g) => [workQueueName(g, COUNTER_HANDLER), deadQueueName(g, COUNTER_HANDLER)]);
    await deleteQueuesByPrefix(url, groups, async () => queues);
  });

  /** Whether a queue exists, asked on a connection of its own. */
  async function queueExists(name: string): Promise<boolean> {
    const conn = await amqplib.connect((await amqpBroker()).url);
    conn.on('error', () => undefined);
    try {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      return await ch.checkQueue(name).then(() => true, () => false);
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  it('7. a wrong password: AuthenticationError at once, naming user and host:port, never the password; bus.start() surfaces it', async () => {
    const broker = await amqpBroker();
    const canary = `cAnArY${randomBytes(6).toString('hex')}`;
    const url = await urlAs('guest', canary);
    const connectTimeoutMs = 10_000;
    const t = amqpTransport({ url, connectTimeoutMs, startTimeoutMs: 20_000, reconnect: { initialDelayMs: 200 } });
    await assertRefusedAtOnce(t, { user: 'guest', broker: `${broker.host}:${broker.port}`, canary, connectTimeoutMs });

    // bus.start() rejects with the same typed error.
    const Tick = tickClass(uniq('rel.auth.'));
    const group = uniq('relauth');
    groups.push(group);
    const b = amqpBus(url, { transport: { connectTimeoutMs, startTimeoutMs: 20_000 } });
    buses.push(b);
    b.bus.register(new (counterClass(Tick, undefined, { group }))());
    const t1 = Date.now();
    const startErr = await bounded(b.bus.start(), 30_000, 'start with a wrong password').catch((e: unknown) => e);
    assert.ok(startErr instanceof AuthenticationError, `${startErr}`);
    assert.ok(Date.now() - t1 < connectTimeoutMs / 2);
    assert.ok(!errorTexts(startErr).includes(canary));

    // A virtual host that does not exist: refused as well, at once.
    const noVhost = new URL(broker.url);
    const vhost = uniq('novhost');
    noVhost.pathname = `/${vhost}`;
    const tv = amqpTransport({ url: noVhost.toString(), connectTimeoutMs, startTimeoutMs: 20_000 });
    const t2 = Date.now();
    const vErr = await bounded(tv.connect(), 30_000, 'connect to a missing vhost').catch((e: unknown) => e);
    await tv.close({ timeoutMs: 500 });
    console.log(`      after ${Date.now() - t2} ms: ${(vErr as Error).name}: ${(vErr as Error).message}`);
    assert.ok(vErr instanceof AuthenticationError, `${vErr}`);
    assert.ok(Date.now() - t2 < connectTimeoutMs / 2);
    assert.match(vErr.message, new RegExp(`virtual host '${vhost}'`));
  });

  describe('10. a connection cut during the first topology declaration', () => {
    const Tick = tickClass(uniq('rel.start.'));
    const group = uniq('relstart');
    groups.push(group);
    const queue = workQueueName(group, COUNTER_HANDLER);

    it('is retried within startTimeoutMs: start() resolves once the proxy lets traffic through, then a round trip works', async () => {
      const broker = await amqpBroker();
      proxy = new TcpProxy(broker.host, broker.port);
      await proxy.start();
      // The first declaration that names the group's queues (its dead-letter queue, then the work
      // queue) is cut before it reaches the broker; new connections are refused for 1.5 s.
      proxy.cutOnClientData(queue, { refuseMs: 1500 });
      const ledger = new Ledger('amqp: cut during the first declaration');
      const b = amqpBus(viaProxy(broker.url, proxy), { ledger, transport: { startTimeoutMs: 20_000 } });
      buses.push(b);
      b.bus.register(new (counterClass(Tick, ledger, { group }))());
      const t0 = Date.now();
      await bounded(b.bus.start(), 25_000, 'start through the cut');
      console.log(`      started after ${Date.now() - t0} ms and ${proxy.cuts} cut(s)`);
      assert.equal(proxy.cuts, 1, 'the cut happened during start');
      for (let i = 0; i < 20; i++) await b.bus.publish(Tick, { n: i });
      await waitFor(() => ledger.complete, 10_000, 'the round trip');
      assert.equal(ledger.report().lost, 0);
    });

    it('kept down beyond startTimeoutMs: StartTimeoutError in bounded time; the durable group queues are kept', async () => {
      const broker = await amqpBroker();
      assert.ok(await queueExists(queue), 'declared by the previous case');
      proxy = new TcpProxy(broker.host, broker.port);
      await proxy.start();
      // Every connection is cut as it declares the group's queues: start never completes.
      proxy.cutOnClientData(queue, { times: Infinity });
      const startTimeoutMs = 2500;
      const b = amqpBus(viaProxy(broker.url, proxy), { transport: { startTimeoutMs, reconnect: { initialDelayMs: 100, maxDelayMs: 400 } } });
      buses.push(b);
      b.bus.register(new (counterClass(Tick, undefined, { group }))());
      const t0 = Date.now();
      const err = await bounded(b.bus.start(), 20_000, 'start that cannot succeed').catch((e: unknown) => e);
      const ms = Date.now() - t0;
      console.log(`      after ${ms} ms and ${proxy.cuts} cuts: ${(err as Error).name}: ${(err as Error).message.slice(0, 200)}`);
      assert.ok(err instanceof StartTimeoutError, `${err}`);
      assert.ok(proxy.cuts >= 2, 'it was retried');
      assert.ok(ms >= startTimeoutMs - 100 && ms < startTimeoutMs + 5000, `bounded by startTimeoutMs (${ms} ms)`);
      assert.ok(await queueExists(queue), 'the work queue survives the failed start');
      assert.ok(await queueExists(deadQueueName(group, COUNTER_HANDLER)), 'the dead-letter queue survives the failed start');
    });
  });

  it('10. a real refusal (the work queue exists with other arguments) fails at once, typed, and deletes nothing', async () => {
    const { url } = await amqpBroker();
    const Tick = tickClass(uniq('rel.clash.'));
    const group = uniq('relclash');
    groups.push(group);
    const queue = workQueueName(group, COUNTER_HANDLER);
    const conn = await amqplib.connect(url);
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 7 } });
    } finally {
      await conn.close();
    }
    const startTimeoutMs = 20_000;
    const b = amqpBus(url, { transport: { startTimeoutMs } });
    buses.push(b);
    b.bus.register(new (counterClass(Tick, undefined, { group }))());
    const t0 = Date.now();
    const err = await bounded(b.bus.start(), 30_000, 'the refused start').catch((e: unknown) => e);
    const ms = Date.now() - t0;
    console.log(`      after ${ms} ms: ${(err as Error).name}: ${(err as Error).message}`);
    assert.ok(err instanceof PreconditionFailedError, `${err}`);
    assert.equal(err.resource, `queue '${queue}'`);
    assert.ok(ms < startTimeoutMs / 4, `not retried for the start timeout (${ms} ms)`);
    assert.ok(await queueExists(queue), 'the clashing queue is left as it was');
    assert.ok(await queueExists(deadQueueName(group, COUNTER_HANDLER)), 'the dead-letter queue is kept');
  });
});
