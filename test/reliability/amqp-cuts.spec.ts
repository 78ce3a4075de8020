/**
 * Issue 7, points 1 and 4 for AMQP: TCP connection cuts (a proxy in front of both the publishing
 * and the consuming bus) lose no confirmed message; the negative control (the same cuts, plain
 * amqplib publishes without confirms) shows loss, so the checker can see it.
 */
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import type { Channel, ChannelModel } from 'amqplib';
import { encode } from '../../lib/codec';
import { encodeProperties } from '../../adapters/amqp/wire';
import { amqpBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { amqpBus, bounded, CaseBus, counterClass, tickClass, viaProxy, deleteListedQueues } from './amqp-harness';
import { Ledger } from './ledger';

const CUTS = 5;
const CUT_EVERY_MS = 300;
const REFUSE_MS = 100;

/** Cuts every connection through `proxy` CUTS times, CUT_EVERY_MS apart. */
async function cutRepeatedly(proxy: TcpProxy): Promise<void> {
  for (let i = 0; i < CUTS; i++) {
    await sleep(CUT_EVERY_MS);
    proxy.cut(REFUSE_MS);
  }
}

describe('reliability, AMQP: connection cuts', function () {
  this.timeout(60_000);
  const buses: CaseBus[] = [];
  const groups: string[] = [];
  const proxies: TcpProxy[] = [];

  after(async function () {
    this.timeout(30_000);
    await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    await Promise.all(proxies.map((p) => p.stop()));
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  async function proxy(): Promise<TcpProxy> {
    const b = await amqpBroker();
    const p = new TcpProxy(b.host, b.port);
    await p.start();
    proxies.push(p);
    return p;
  }

  it('10,000 messages through 5 cuts of publisher and consumer: lost 0, unexpected 0, duplicates counted', async () => {
    const { url } = await amqpBroker();
    const cut = await proxy();
    const type = uniq('rel.cut.');
    const group = uniq('relcut');
    groups.push(group);
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: connection cuts (publish + consume)');

    const consumer = amqpBus(viaProxy(url, cut));
    buses.push(consumer);
    consumer.bus.register(new (counterClass(Tick, ledger, { group, prefetch: 200 }))());
    await consumer.bus.start();
    const publisher = amqpBus(viaProxy(url, cut), { ledger });
    buses.push(publisher);
    await publisher.bus.start();

    const total = 10_000;
    const faults = cutRepeatedly(cut);
    const publishes: Promise<unknown>[] = [];
    let failed = 0;
    for (let i = 0; i < total; i++) {
      publishes.push(publisher.bus.publish(Tick, { n: i }).catch(() => void failed++));
      if (i % 500 === 499) await sleep(60); // spread the stream over the cuts
    }
    await bounded(Promise.all(publishes), 45_000, 'the publishes');
    await faults;
    // The final drain only after the last cut healed.
    await waitFor(() => ledger.complete, 30_000, 'every confirmed id to arrive');
    await sleep(300); // late redeliveries count as duplicates
    ledger.reconnects = publisher.reconnects() + consumer.reconnects();
    const f = ledger.report();
    assert.equal(failed, 0, 'no publish failed');
    assert.equal(f.sent, total);
    assert.equal(f.confirmed, total);
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.equal(cut.cuts, CUTS);
    // A cut that lands while a bus is still reconnecting costs it a retry, not a new connection.
    assert.ok(publisher.reconnects() >= 1 && consumer.reconnects() >= 1, `both reconnected (${publisher.reconnects()}, ${consumer.reconnects()})`);
  });

  it('negative control: as many cuts, with amqplib publishes without confirms, lose messages', async () => {
    const { url } = await amqpBroker();
    const cut = await proxy();
    const type = uniq('rel.control.');
    const group = uniq('relctl');
    groups.push(group);
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: negative control (no confirms, 5 cuts mid-burst)');

    // The consumer is Courier's, straight to the broker: whatever is lost is lost by the publisher.
    const consumer = amqpBus(url);
    buses.push(consumer);
    consumer.bus.register(new (counterClass(Tick, ledger, { group, prefetch: 200 }))());
    await consumer.bus.start();

    // A publisher as people write it without confirms: publish() returned, so it is "sent";
    // after a cut it reconnects and goes on.
    let conn: ChannelModel | undefined;
    let ch: Channel | undefined;
    let connects = 0;
    const open = async () => {
      const c = await amqplib.connect(viaProxy(url, cut));
      c.on('error', () => undefined);
      c.on('close', () => {
        if (conn === c) ch = undefined;
      });
      const next = await c.createChannel();
      next.on('error', () => undefined);
      conn = c;
      ch = next;
      connects++;
    };
    const total = 10_000;
    // The cuts land in the middle of a burst (a timer could land between bursts, when everything
    // sent has already arrived, and the control would see no loss by luck: it did, half the time).
    const cutEvery = total / CUTS;
    try {
      for (let i = 0; i < total; i++) {
        if (!ch) {
          await open().catch(() => sleep(20));
          i--;
          continue;
        }
        const m = encode({ n: i }, { type, source: 'control' });
        const id = m.headers.id;
        try {
          ch.publish('courier.events', type, m.body, encodeProperties(m.headers));
          ledger.sent(id);
          ledger.confirmed(id); // "accepted": what this publisher believes it sent
        } catch {
          ch = undefined; // closed under us: this one was never accepted, publish it again
          i--;
          continue;
        }
        if (i % cutEvery === cutEvery / 2) cut.cut(REFUSE_MS);
        if (i % 500 === 499) await sleep(60);
      }
      await sleep(500);
    } finally {
      await conn?.close().catch(() => undefined);
    }
    // Drain until nothing new arrives for a second (bounded).
    let last = -1;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const now = ledger.figures().received;
      if (now === last) break;
      last = now;
      await sleep(1000);
    }
    ledger.reconnects = Math.max(0, connects - 1);
    const f = ledger.report();
    assert.equal(f.unexpected, 0);
    assert.equal(cut.cuts, CUTS);
    assert.ok(f.lost > 0, 'the checker must see the loss');
  });
});
