/**
 * Issue 14, point 11: a replica kept from broadcast events must not miss any across reconnects.
 * A consumer bus behind a TCP proxy whose connections are cut 5 times while 2,000 events are
 * published (the publisher talks to the broker directly, so whatever is lost is lost on the
 * subscription's side). An instance subscription (`@Subscribe(..., { instance: true })`) misses
 * none; the negative control, a plain broadcast (`group: null`), loses what was published while
 * it reconnected, and the ledger sees it. AMQP against the fixture's RabbitMQ, MQTT against a
 * Mosquitto of the test's own (no queue limits: docs/brokers.md). Counted by envelope id.
 */
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import { createBus, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import type { Bus } from '../../lib';
import { instanceQueueName, deadQueueName } from '../../adapters/amqp';
import { amqpBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq } from '../helpers/wait';
import { MqttFixture } from '../adapters/mqtt/mqtt-fixture';
import { amqpBus, bounded, CaseBus, countingTransport, tickClass, TickClass, viaProxy } from './amqp-harness';
import { Ledger } from './ledger';
import { MqttBroker } from './mqtt-broker';
import { countedBus, CountedBus, Tick as MqttTick } from './mqtt-harness';

const TOTAL = 2000;
const CUTS = 5;
const BATCH = 100;
/** A cut every this many batches, landing while the batch is in flight. */
const CUT_EVERY = TOTAL / BATCH / CUTS;
const HANDLER = 'InstanceCutReplica.onTick';

/** A replica's subscriber: an instance subscription, or (the control) a plain broadcast. */
function replica(Tick: TickClass | typeof MqttTick, ledger: Ledger, instance: boolean): object {
  @Subscriber({ prefetch: 100 })
  class InstanceCutReplica {
    @Subscribe(Tick, instance ? { instance: true } : { group: null })
    async onTick(_tick: unknown, ctx: MessageContext): Promise<void> {
      ledger.received(ctx.id);
    }
  }
  return new InstanceCutReplica();
}

/** Publishes TOTAL ticks in batches, cutting the consumer's proxy CUTS times mid-batch. */
async function publishThroughCuts(bus: Bus, Tick: TickClass | typeof MqttTick, ledger: Ledger, proxy: TcpProxy): Promise<number> {
  let failed = 0;
  for (let b = 0; b < TOTAL / BATCH; b++) {
    if (b % CUT_EVERY === CUT_EVERY / 2) setTimeout(() => proxy.cut(150), 2);
    await Promise.all(
      Array.from({ length: BATCH }, (_, k) =>
        bus.publish(Tick as TickClass, { n: b * BATCH + k }).then(
          (id) => ledger.confirmed(id),
          () => void failed++,
        ),
      ),
    );
    await sleep(20);
  }
  return failed;
}

/** Waits until every confirmed id arrived (bounded), or until nothing new arrives for a second. */
async function drain(ledger: Ledger, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let quietSince = Date.now();
  while (!ledger.complete && Date.now() < deadline) {
    const now = ledger.figures().received;
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince > 3000) break;
    await sleep(50);
  }
  await sleep(300); // late redeliveries count as duplicates
}

interface CutRun {
  f: ReturnType<Ledger['report']>;
  failed: number;
  cuts: number;
  reconnects: number;
}

/** The protected case and its negative control, the same for every transport. */
function cutCases(run: (instance: boolean) => Promise<CutRun>): void {
  it(`${TOTAL} events, ${CUTS} cuts of the replica's connection: an instance subscription misses 0`, async () => {
    const { f, failed, cuts, reconnects } = await run(true);
    assert.equal(failed, 0);
    assert.equal(f.confirmed, TOTAL);
    assert.equal(cuts, CUTS);
    assert.ok(reconnects >= 1, `the consumer reconnected (${reconnects})`);
    assert.equal(f.lost, 0, 'no event missed');
    assert.equal(f.unexpected, 0);
  });

  it('negative control: a plain broadcast through the same cuts misses events, and the ledger sees it', async () => {
    const { f, cuts } = await run(false);
    assert.equal(cuts, CUTS);
    assert.equal(f.unexpected, 0);
    assert.ok(f.lost > 0, `the checker sees the loss (lost ${f.lost})`);
  });
}

describe('reliability: instance subscriptions through connection cuts', function () {
  this.timeout(60_000);

  describe('AMQP', () => {
    const buses: CaseBus[] = [];
    const proxies: TcpProxy[] = [];
    const queues: string[] = [];
    afterEach(async function () {
      this.timeout(20_000);
      await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
      buses.length = 0;
      await Promise.all(proxies.map((p) => p.stop()));
      proxies.length = 0;
      const conn = await amqplib.connect((await amqpBroker()).url);
      for (const q of queues.splice(0)) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        await ch.deleteQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
      await conn.close().catch(() => undefined);
    });

    async function run(instance: boolean) {
      const b = await amqpBroker();
      const proxy = new TcpProxy(b.host, b.port);
      await proxy.start();
      proxies.push(proxy);
      const Tick = tickClass(uniq('rel.inst.'));
      const instanceId = uniq('i');
      const source = 'reliability';
      if (instance) queues.push(instanceQueueName(`${source}.${instanceId}`, HANDLER));
      queues.push(deadQueueName(undefined, HANDLER));
      const ledger = new Ledger(`amqp: ${instance ? 'instance subscription' : 'negative control, plain broadcast'}, ${CUTS} cuts of the consumer`);
      const consumer = amqpBus(viaProxy(b.url, proxy), { source, bus: { instanceId } });
      buses.push(consumer);
      consumer.bus.register(replica(Tick, ledger, instance));
      await consumer.bus.start();
      const publisher = amqpBus(b.url, { ledger, source });
      buses.push(publisher);
      await publisher.bus.start();
      const failed = await bounded(publishThroughCuts(publisher.bus, Tick, ledger, proxy), 40_000, 'the publishes');
      await drain(ledger, 20_000);
      ledger.reconnects = consumer.reconnects();
      return { f: ledger.report(), failed, cuts: proxy.cuts, reconnects: consumer.reconnects() };
    }

    cutCases((instance) => run(instance));
  });

  describe('MQTT (own Mosquitto)', () => {
    let broker: MqttBroker;
    let fixture: MqttFixture;
    const open: Array<{ bus: Bus }> = [];
    const proxies: TcpProxy[] = [];
    const instances: string[] = [];
    before(async () => {
      broker = new MqttBroker({ persistence: false });
      await broker.start();
      fixture = new MqttFixture(broker.url);
    });
    afterEach(async function () {
      this.timeout(20_000);
      await Promise.all(open.map((b) => b.bus.stop({ timeoutMs: 1000 }).catch(() => undefined)));
      open.length = 0;
      await Promise.all(proxies.map((p) => p.stop()));
      proxies.length = 0;
      await fixture.purge(instances.splice(0).map((instance) => ({ pattern: '#', name: HANDLER, prefetch: 1, instance })));
    });
    after(() => broker?.dispose());

    async function run(instance: boolean) {
      const proxy = new TcpProxy('127.0.0.1', broker.port);
      await proxy.start();
      proxies.push(proxy);
      const instanceId = uniq('i');
      const source = 'rel-mqtt';
      instances.push(`${source}.${instanceId}`);
      const ledger = new Ledger(`mqtt: ${instance ? 'instance subscription' : 'negative control, plain broadcast'}, ${CUTS} cuts of the consumer`);
      const transport = fixture.create({ url: `mqtt://127.0.0.1:${proxy.port}`, reconnect: { minMs: 50, maxMs: 400 } });
      transport.on('error', () => undefined);
      let connects = 0;
      transport.on('connected', () => connects++);
      const consumer = createBus({ transport: countingTransport(transport), source, instanceId, logger: silentLogger, meter: false });
      open.push({ bus: consumer });
      consumer.register(replica(MqttTick, ledger, instance));
      await consumer.start();
      const started = connects;
      const publisher: CountedBus = countedBus(fixture, ledger);
      open.push(publisher);
      await publisher.bus.start();
      const failed = await bounded(publishThroughCuts(publisher.bus, MqttTick, ledger, proxy), 40_000, 'the publishes');
      await drain(ledger, 20_000);
      ledger.reconnects = connects - started;
      return { f: ledger.report(), failed, cuts: proxy.cuts, reconnects: connects - started };
    }

    cutCases((instance) => run(instance));
  });
});
