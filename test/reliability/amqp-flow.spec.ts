/**
 * Issue 7, point 6 for AMQP: a slow consumer never holds more unacked messages than its prefetch
 * (counted in the handler: each delivery in flight is one unacked message), and a publisher sending 10,000 x 16 KiB
 * through the confirm window keeps its memory bounded (peak RSS reported).
 */
import assert from 'node:assert/strict';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { amqpBus, bounded, CaseBus, counterClass, tickClass, deleteListedQueues } from './amqp-harness';
import { fullGc, heldHeapMb } from '../helpers/gc';
import { Ledger } from './ledger';

describe('reliability, AMQP: flow control', function () {
  this.timeout(90_000);
  const buses: CaseBus[] = [];
  const groups: string[] = [];

  after(async function () {
    this.timeout(30_000);
    await Promise.all(buses.map((b) => b.bus.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  it('slow consumer: unacked never above prefetch; 10,000 x 16 KiB published with bounded memory', async () => {
    const { url } = await amqpBroker();
    const type = uniq('rel.flow.');
    const group = uniq('relflow');
    groups.push(group);
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: slow consumer, 10,000 x 16 KiB');
    const PREFETCH = 20;
    let slowMs = 20;
    let inFlight = 0;
    let maxInFlight = 0;
    const consumer = amqpBus(url);
    buses.push(consumer);
    consumer.bus.register(
      new (counterClass(Tick, ledger, {
        group,
        prefetch: PREFETCH,
        work: async () => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          try {
            if (slowMs) await sleep(slowMs);
          } finally {
            inFlight--;
          }
        },
      }))(),
    );
    await consumer.bus.start();
    const publisher = amqpBus(url, { ledger });
    buses.push(publisher);
    await publisher.bus.start();

    const baselineMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
    const total = 10_000;
    const pad = 'x'.repeat(16 * 1024);
    // The publish promise is the back-pressure: at most WINDOW publishes are started and not yet
    // confirmed (the adapter's own window of unconfirmed messages is 1,000 by default).
    const WINDOW = 2000;
    let outstanding = 0;
    let failed = 0;
    const started = Date.now();
    const all: Promise<unknown>[] = [];
    const gc = fullGc();
    const held: number[] = [];
    for (let i = 0; i < total; i++) {
      // Held heap with a full window outstanding, early and late: flat if nothing accumulates.
      if (i === 4000 || i === 8000) held.push(heldHeapMb(gc));
      while (outstanding >= WINDOW) await sleep(1);
      outstanding++;
      all.push(
        publisher.bus
          .publish(Tick, { n: i, pad })
          .catch(() => void failed++)
          .finally(() => outstanding--),
      );
    }
    await bounded(Promise.all(all), 60_000, 'the publishes');
    const publishMs = Date.now() - started;
    const slowMax = maxInFlight;
    slowMs = 0; // the final drain at full speed
    await waitFor(() => ledger.complete, 60_000, 'every message');
    const f = ledger.report();
    console.log(
      `      published ${total} x 16 KiB in ${publishMs} ms; RSS baseline ${baselineMb} MB, peak ${f.peakRssMb} MB; ` +
        `most handlers in flight: ${slowMax} (slow phase) / ${maxInFlight} (whole run), prefetch ${PREFETCH}; ` +
        `heap held at 4,000 / 8,000 published: ${held.join(' / ')} MB`,
    );
    assert.equal(failed, 0);
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.ok(maxInFlight <= PREFETCH && maxInFlight > 0, `in flight ${maxInFlight}`);
    // 4,000 x 16 KiB (64 MB) went out between the two samples: buffering it would show.
    assert.ok(held[1] - held[0] < 16, `held heap grew by ${held[1] - held[0]} MB between 4,000 and 8,000 published`);
  });
});
