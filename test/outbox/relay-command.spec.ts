/**
 * `courier relay` run as a command (bin/courier.js, the built CLI) against an outbox table on
 * PostgreSQL and on a SQLite file, publishing to RabbitMQ and to Mosquitto: the rows committed
 * before it started and while it runs all arrive at a consumer of their own, each once; SIGTERM
 * stops it with exit status 0 and a summary, and every row is marked sent.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import amqplib from 'amqplib';
import { amqpTransport, deadQueueName, workQueueName } from '../../adapters/amqp';
import { mqttTransport } from '../../adapters/mqtt';
import { memoryTransport } from '../../adapters/memory';
import { Bus, createBus, createOutbox, silentLogger, Subscribe, Subscriber } from '../../lib';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { sleep, uniq } from '../helpers/wait';
import { DbKind, DbKit, openKit } from './db-kit';
import { orderClass } from './fixtures/order';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

describe('courier relay (the command)', function () {
  this.timeout(60_000);
  const kits: DbKit[] = [];
  const buses: Bus[] = [];
  const children: ChildProcess[] = [];
  const exchanges: string[] = [];
  const queues: string[] = [];
  let amqpUrl: string;

  before(async function () {
    this.timeout(150_000);
    amqpUrl = (await amqpBroker()).url;
  });
  afterEach(async function () {
    this.timeout(30_000);
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const b of buses.splice(0)) await b.stop().catch(() => undefined);
    for (const k of kits.splice(0)) await k.close().catch(() => undefined);
    const conn = await amqplib.connect(amqpUrl);
    conn.on('error', () => undefined);
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    for (const q of queues.splice(0)) await ch.deleteQueue(q).catch(() => undefined);
    for (const x of exchanges.splice(0)) await ch.deleteExchange(x).catch(() => undefined);
    await conn.close().catch(() => undefined);
  });

  it('bad usage: status 2 and the usage on stderr; --help on stdout', () => {
    for (const args of [['relay'], ['relay', '--db', 'x.db'], ['relay', '--db', 'x.db', '--transport', 'kafka'], ['relay', '--db', 'x.db', '--transport', 'mqtt', '--exchange', 'e']]) {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^courier: .+\n\nUsage: courier relay/);
    }
    const help = spawnSync(process.execPath, [BIN, 'relay', '--help'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: courier relay/);
  });

  for (const [kind, transport] of [
    ['postgres', 'amqp'],
    ['sqlite', 'amqp'],
    ['postgres', 'mqtt'],
    ['sqlite', 'mqtt'],
  ] as const) {
    it(`${kind} -> ${transport}: 200 rows committed before it started and 100 while it runs arrive once each; SIGTERM: exit 0, all rows sent`, async () => {
      const kit = await openKit(kind as DbKind);
      kits.push(kit);
      const type = uniq('relaycmd');
      const Order = orderClass(type);
      const writer = createBus({ transport: memoryTransport(), source: 'orders', logger: silentLogger, meter: false });
      const outbox = createOutbox(writer, kit.outbox, { relay: false });
      const commit = async (from: number, count: number) => {
        for (let i = from; i < from + count; i += 10) {
          await kit.tx(async (tx) => {
            for (let n = i; n < Math.min(from + count, i + 10); n++) await outbox.publish(tx, Order, { orderId: `o${n}`, n, key: `k${n % 5}` }, { orderingKey: `k${n % 5}` });
          });
        }
      };
      await commit(0, 200);

      // The consumer: a bus of its own on the broker, a group of its own.
      const counts = new Map<number, number>();
      const group = uniq('relayc');
      @Subscriber({ group, prefetch: 100 })
      class Collector {
        @Subscribe(Order)
        on(o: InstanceType<typeof Order>) {
          counts.set(o.n, (counts.get(o.n) ?? 0) + 1);
        }
      }
      const exchange = uniq('relayx');
      const prefix = uniq('relayp');
      let brokerArgs: string[];
      let consumer: Bus;
      if (transport === 'amqp') {
        exchanges.push(exchange);
        queues.push(workQueueName(group, 'Collector.on'), deadQueueName(group, 'Collector.on'));
        brokerArgs = ['--url', amqpUrl, '--exchange', exchange];
        consumer = createBus({ transport: amqpTransport({ url: amqpUrl, exchange }), source: 'collector', logger: silentLogger, meter: false });
      } else {
        const url = (await mqttBroker()).url;
        brokerArgs = ['--url', url, '--prefix', prefix];
        consumer = createBus({ transport: mqttTransport({ url, prefix, clientId: uniq('relaycol'), sessionExpirySeconds: 30 }), source: 'collector', logger: silentLogger, meter: false });
      }
      consumer.register(new Collector());
      buses.push(consumer);
      await consumer.start();

      const table = kind === 'postgres' ? `${kit.where}.outbox` : 'outbox';
      const child = spawn(process.execPath, [BIN, 'relay', '--db', kind === 'postgres' ? process.env.COURIER_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' : kit.where, '--table', table, '--transport', transport, ...brokerArgs], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d) => (stdout += String(d)));
      child.stderr!.on('data', (d) => (stderr += String(d)));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

      const until = async (what: string, ok: () => boolean, ms: number) => {
        for (const end = Date.now() + ms; !ok(); await sleep(50)) if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}: ${counts.size} received; relay stderr: ${stderr}`);
      };
      await until('the relay to start', () => /relaying/.test(stderr), 20_000);
      await until('the 200 rows committed before', () => counts.size >= 200, 20_000);
      await commit(200, 100);
      await until('the 100 rows committed while it runs', () => counts.size >= 300, 20_000);
      await sleep(500); // late copies would be counted
      child.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(15_000).then(() => 'no exit within 15 s')]);
      assert.equal(code, 0, `exit ${code}; stderr: ${stderr}`);

      const lost = [...Array(300).keys()].filter((n) => !counts.has(n)).length;
      const duplicates = [...counts.values()].reduce((a, c) => a + c - 1, 0);
      const unexpected = [...counts.keys()].filter((n) => n < 0 || n >= 300).length;
      const rows = await kit.rows();
      const notSent = rows.filter((r) => r.state !== 'sent').length;
      console.log(`      ${kind} -> ${transport}: 300 committed, ${counts.size} received, ${lost} lost, ${duplicates} duplicates, ${unexpected} unexpected; ${notSent} rows not sent; ${stdout.trim()}`);
      assert.deepEqual({ lost, duplicates, unexpected, notSent }, { lost: 0, duplicates: 0, unexpected: 0, notSent: 0 });
      assert.match(stdout, /stopped by SIGTERM after [\d.]+ s: 300 published; 0 pending, 0 dead/);
    });
  }
});
