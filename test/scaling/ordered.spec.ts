/**
 * Issue 21, point 4: per-key order on RabbitMQ, with four consumer processes of one group
 * (fixtures/ordered-worker.ts) and one of them SIGKILLed midway. Per key, the first handlings come
 * in publish order, one at a time (test/scaling/scaling-harness.ts, checkOrder); every message is
 * handled (0 lost); the killed consumer's keys are handled by the others afterwards. Negative
 * control: the same traffic to a plain group (prefetch 8) shows inversions, so the check can see them.
 * Also: what start refuses (no plugin is simulated by a missing exchange type; MQTT and memory refuse).
 */
import assert from 'node:assert/strict';
import { amqpTransport } from '../../adapters/amqp';
import { memoryTransport } from '../../adapters/memory';
import { createBus, silentLogger, StartupError, Subscribe, Subscriber } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { stepClass } from './fixtures/steps';
import { checkOrder, deleteAll, handlingsOf, refusedWithoutCapability, spawnWorker, Worker } from './scaling-harness';

const KEYS = 32;
const SEQS = 120;
const PARTITIONS = 8;

describe('scaling, AMQP: per-key order over partitions, four consumer processes', function () {
  this.timeout(150_000);
  const workers: Worker[] = [];
  const cleanup: Array<{ queues: string[]; exchanges: string[] }> = [];

  afterEach(async () => {
    for (const w of workers.splice(0)) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    for (const c of cleanup.splice(0)) await deleteAll(c.queues, c.exchanges);
  });

  async function runCase(partitions: number, kill: boolean) {
    const { url } = await amqpBroker();
    const run = uniq('ord');
    const exchange = `${run}.events`;
    const type = `${run}.step`;
    const group = `${run}.g`;
    const name = `${group}.Steps.onStep`;
    cleanup.push({
      queues: [...Array.from({ length: PARTITIONS }, (_, i) => `${name}.p${i}`), name, `${name}.dead`, `${name}.members`],
      exchanges: [`${name}.partitions`, exchange],
    });
    const Step = stepClass(type);
    const publisher = createBus({ transport: amqpTransport({ url, exchange }), source: 'ordered-publisher', logger: silentLogger, meter: false });
    await publisher.start();
    try {
      const env = { ORD_URL: url, ORD_EXCHANGE: exchange, ORD_TYPE: type, ORD_GROUP: group, ORD_PARTITIONS: String(partitions), ORD_DELAY_MS: '20' };
      for (let i = 0; i < 4; i++) workers.push(spawnWorker('ordered-worker.ts', `w${i}`, { ...env, ORD_WORKER: `w${i}` }));
      await Promise.all(workers.map((w) => w.ready));
      const keys = Array.from({ length: KEYS }, (_, i) => `order-${i}`);
      const publish = (from: number, to: number) => {
        const all: Promise<string>[] = [];
        for (let seq = from; seq < to; seq++) for (const orderId of keys) all.push(publisher.publish(Step, { orderId, seq }));
        return Promise.all(all);
      };
      const handled = () => handlingsOf(workers).length;
      /** Per consumer, how many keys it began handling in the second before `until` (monotonic ns). */
      const keysInSecondBefore = (until: bigint): Record<string, number> =>
        Object.fromEntries(workers.map((w) => [w.name, new Set(handlingsOf([w]).filter((h) => h.start > until - 1_000_000_000n && h.start < until).map((h) => h.key)).size]));
      let killed: { worker: Worker; at: bigint; keys: Set<string> } | undefined;
      const half = SEQS / 2;
      await publish(0, half);
      if (kill) {
        // The kill waits for the balancer (it looks once a second): single active consumer gives
        // every partition to the first consumer, and a first half handled within that second
        // would leave nothing to spread (seen in CI: one consumer held all 32 keys at the kill).
        const spreadNow = () => Object.values(keysInSecondBefore(process.hrtime.bigint())).filter((n) => n > 0).length;
        await waitFor(() => handled() >= KEYS * half * 0.3 && spreadNow() >= 2, 60_000, 'the partitions spread and 30 % of the first half handled');
        // The busiest consumer goes: it holds partitions, and a message in flight.
        const counts = workers.map((w) => handlingsOf([w]).length);
        const worker = workers[counts.indexOf(Math.max(...counts))];
        // Busy, to the end: the kill comes while it holds a message in flight.
        const keysOf = new Set(handlingsOf([worker]).map((h) => h.key));
        worker.child.kill('SIGKILL');
        await worker.exited;
        killed = { worker, at: process.hrtime.bigint(), keys: keysOf };
      }
      await publish(half, SEQS);
      await waitFor(() => new Set(handlingsOf(workers).map((h) => `${h.key}/${h.seq}`)).size >= KEYS * SEQS, 90_000, 'every message handled').catch(() => undefined);
      await sleep(500); // late duplicates, if any, are counted too
      const report = checkOrder(handlingsOf(workers), keys, SEQS);
      let moved = 0;
      let spread: Record<string, number> = {};
      if (killed) {
        const after = handlingsOf(workers.filter((w) => w !== killed!.worker)).filter((h) => h.start > killed!.at);
        moved = after.filter((h) => killed!.keys.has(h.key)).length;
        // Where the partitions were just before the kill.
        spread = keysInSecondBefore(killed.at);
      }
      console.log(`      partitions ${partitions || 'none'}: ${JSON.stringify({ ...report, moved, keysPerWorkerLastSecondBeforeKill: spread })}`);
      return { report, moved, killed, spread };
    } finally {
      await publisher.stop();
    }
  }

  it('8 partitions, one consumer SIGKILLed midway: per key no inversion, one at a time, 0 lost, its work moves to the others', async () => {
    const { report, moved, killed, spread } = await runCase(PARTITIONS, true);
    assert.equal(report.lost, 0, 'lost');
    assert.equal(report.unexpected, 0, 'unexpected');
    assert.equal(report.inversions, 0, 'inversions');
    assert.equal(report.overlaps, 0, 'overlaps (two messages of one key handled at once)');
    assert.ok(killed && moved > 0, `the killed consumer's keys are handled by the others afterwards (${moved})`);
    // The partitions were spread: more than one consumer had keys before the kill.
    assert.ok(Object.values(spread).filter((n) => n > 0).length >= 2, `spread over consumers: ${JSON.stringify(spread)}`);
  });

  it('negative control: a plain group (prefetch 8) with the same traffic shows inversions', async () => {
    const { report } = await runCase(0, false);
    assert.equal(report.lost, 0, 'lost');
    assert.ok(report.inversions + report.overlaps > 0, `the check sees disorder: ${JSON.stringify(report)}`);
  });
});

describe('scaling: per-key order is refused where it cannot hold', () => {
  const Step = stepClass('refused.step');
  @Subscriber({ group: 'refused' })
  class Ordered {
    @Subscribe(Step, { ordered: { key: 'orderId', partitions: 4 } })
    onStep(): void {}
  }
  @Subscriber({ group: 'refused' })
  class WrongKey {
    @Subscribe(Step, { ordered: { key: 'customerId', partitions: 0 }, prefetch: 5 })
    onStep(): void {}
  }

  refusedWithoutCapability(() => new Ordered(), /ordered \(per-key order\) needs a transport with partitions/);

  it('every problem of the option is reported at once', async () => {
    const bus = createBus({ transport: memoryTransport(), source: 'refused', logger: silentLogger });
    bus.register(new WrongKey());
    await assert.rejects(bus.start(), (err: unknown) => {
      const text = (err as StartupError).problems?.join('\n') ?? '';
      return /partitions must be an integer/.test(text) && /leave prefetch out/.test(text) && /declares key "orderId"/.test(text);
    });
  });
});
