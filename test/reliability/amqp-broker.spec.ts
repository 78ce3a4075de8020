/**
 * Issue 7, points 2 and 8 for AMQP: faults of the broker itself, on a RabbitMQ container of this
 * spec's own when a container engine answers (never the shared broker), else on the machine's
 * broker with `rabbitmqctl stop_app` / `start_app` (started again in a finally).
 *   2. the broker restarts mid-stream (container: SIGKILL + start): no confirmed message lost,
 *      the buses reconnect and consume again by themselves, recovery time measured;
 *   8. the memory alarm blocks the publishing connection: publishes wait, then fail with
 *      PublishTimeoutError; nothing hangs; the watermark is restored (exactly the value read
 *      before) even when the case fails.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PublishTimeoutError } from '../../lib';
import { amqpBroker, amqpContainer, BrokerContainer, containerEngineSync } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { rabbitmqctl } from '../adapters/amqp/amqp-fixture';
import { amqpBus, bounded, CaseBus, counterClass, deleteQueuesByPrefix, queueNames, tickClass } from './amqp-harness';
import { Ledger } from './ledger';

/** The broker a fault case may disturb, and how. */
interface FaultBroker {
  readonly url: string;
  readonly where: string;
  ctl(args: string[]): Promise<string>;
  /** Takes the broker down and brings it back; resolves once it speaks AMQP again. */
  bounce(): Promise<void>;
  dispose(): Promise<void>;
}

function engineCli(): string {
  for (const e of ['podman', 'docker']) {
    try {
      execFileSync(e, ['--version'], { stdio: 'ignore' });
      return e;
    } catch {
      // try the next one
    }
  }
  throw new Error('a container engine answers but neither podman nor docker is installed');
}

async function faultBroker(): Promise<FaultBroker> {
  if (containerEngineSync().ok) {
    const c: BrokerContainer = await amqpContainer();
    const cli = engineCli();
    return {
      url: c.url,
      where: `container ${c.id.slice(0, 12)} (its own)`,
      ctl: async (args) => execFileSync(cli, ['exec', c.id, 'rabbitmqctl', ...args], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] }),
      bounce: () => c.restart({ kill: true }),
      dispose: () => c.dispose(),
    };
  }
  const local = await amqpBroker();
  return {
    url: local.url,
    where: `${local.origin} broker (rabbitmqctl stop_app / start_app)`,
    ctl: (args) => rabbitmqctl(args),
    async bounce() {
      try {
        await rabbitmqctl(['stop_app']);
        await sleep(500);
      } finally {
        await rabbitmqctl(['start_app']);
        await rabbitmqctl(['await_startup']);
      }
    },
    dispose: async () => undefined,
  };
}

describe('reliability, AMQP: broker faults', function () {
  this.timeout(90_000);
  let broker: FaultBroker;
  const buses: CaseBus[] = [];
  const groups: string[] = [];

  before(async function () {
    this.timeout(120_000);
    broker = await faultBroker();
    console.log(`      broker faults on: ${broker.where}`);
  });

  after(async function () {
    this.timeout(60_000);
    await Promise.all(buses.map((b) => bounded(b.bus.stop({ timeoutMs: 2000 }), 15_000, 'bus.stop').catch(() => undefined)));
    if (broker) {
      await deleteQueuesByPrefix(broker.url, groups, async () => queueNames(await broker.ctl(['list_queues', '-q', 'name'])));
      await broker.dispose();
    }
  });

  it('a broker restart mid-stream: lost 0, consumers resume by themselves, recovery time reported', async () => {
    const type = uniq('rel.restart.');
    const group = uniq('relrestart');
    groups.push(group);
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: broker restart mid-stream');
    let backAt = 0;
    let firstAfterBack = 0;
    const consumer = amqpBus(broker.url);
    buses.push(consumer);
    consumer.bus.register(
      new (counterClass(Tick, ledger, {
        group,
        prefetch: 100,
        work: () => {
          if (backAt && !firstAfterBack) firstAfterBack = Date.now();
        },
      }))(),
    );
    await consumer.bus.start();
    // The work queue exists before the kill: RabbitMQ may not yet have stored a declaration made
    // moments before a SIGKILL, and the queue is then gone with its messages
    // (test/containers/container-faults.spec.ts, docs/reliability.md).
    await sleep(1500);
    const publisher = amqpBus(broker.url, { ledger });
    buses.push(publisher);
    await publisher.bus.start();

    const total = 5000;
    let failed = 0;
    const publishes: Promise<unknown>[] = [];
    let fault: Promise<void> | undefined;
    for (let i = 0; i < total; i++) {
      publishes.push(publisher.bus.publish(Tick, { n: i }).catch(() => void failed++));
      if (i % 250 === 249) await sleep(50);
      if (i === 1500) {
        fault = broker.bounce().then(() => {
          backAt = Date.now();
        });
      }
    }
    await bounded(fault!, 60_000, 'the broker restart');
    await bounded(Promise.all(publishes), 60_000, 'the publishes');
    await waitFor(() => ledger.complete, 30_000, 'every confirmed id after the restart');
    await sleep(300);
    ledger.reconnects = publisher.reconnects() + consumer.reconnects();
    ledger.recoveryMs = firstAfterBack ? firstAfterBack - backAt : null;
    const f = ledger.report();
    assert.equal(failed, 0);
    assert.equal(f.confirmed, total);
    assert.equal(f.lost, 0);
    assert.equal(f.unexpected, 0);
    assert.ok(consumer.reconnects() >= 1, 'the consumer reconnected by itself');
    assert.ok(firstAfterBack > 0, 'a delivery after the broker came back');
  });

  it('memory alarm: publishes wait, then fail with PublishTimeoutError; nothing hangs; watermark restored', async () => {
    const before = (await broker.ctl(['eval', 'vm_memory_monitor:get_vm_memory_high_watermark().'])).trim();
    // 0.4 -> "set_vm_memory_high_watermark 0.4"; {absolute,N} -> "... absolute N".
    const abs = /\{absolute,\s*(\d+)\}/.exec(before);
    const restoreArgs = abs ? ['set_vm_memory_high_watermark', 'absolute', abs[1]] : ['set_vm_memory_high_watermark', before];
    assert.ok(abs || Number.isFinite(Number(before)), `watermark read back: ${before}`);
    const type = uniq('rel.alarm.');
    const Tick = tickClass(type);
    const ledger = new Ledger('amqp: memory alarm (blocked connection)');
    const group = uniq('relalarm');
    groups.push(group);
    // A consumer on its own connection: RabbitMQ blocks only connections that publish.
    const consumer = amqpBus(broker.url);
    buses.push(consumer);
    consumer.bus.register(new (counterClass(Tick, ledger, { group }))());
    await consumer.bus.start();
    const publisher = amqpBus(broker.url, { ledger, transport: { publishTimeoutMs: 1500 } });
    buses.push(publisher);
    await publisher.bus.start();
    await publisher.bus.publish(Tick, { n: -1 }); // the connection works before the alarm
    let restored = false;
    try {
      await broker.ctl(['set_vm_memory_high_watermark', '0.0000001']);
      await bounded(
        (async () => {
          for (;;) {
            const alarms = await broker.ctl(['eval', 'rabbit_alarm:get_alarms().']);
            if (/memory/.test(alarms)) return;
            await sleep(100);
          }
        })(),
        10_000,
        'the memory alarm to be raised',
      );
      const started = Date.now();
      const results = await bounded(
        Promise.allSettled(Array.from({ length: 200 }, (_, i) => publisher.bus.publish(Tick, { n: i }))),
        10_000,
        'publishes under the alarm',
      );
      const waited = Date.now() - started;
      const timeouts = results.filter((r) => r.status === 'rejected' && r.reason instanceof PublishTimeoutError).length;
      console.log(`      under the memory alarm: ${timeouts} of ${results.length} publishes failed with PublishTimeoutError after ${waited} ms`);
      assert.equal(timeouts, results.length, String(results.find((r) => r.status !== 'rejected' || !(r.reason instanceof PublishTimeoutError))));
      assert.ok(waited >= 1400 && waited < 5000, `waited ${waited} ms`);
      // Stopping a blocked bus with a publish pending must not hang either.
      const blocked = amqpBus(broker.url, { ledger, transport: { publishTimeoutMs: 1000 } });
      await blocked.bus.start();
      const pending = blocked.bus.publish(Tick, { n: 20_000 }).catch((e: unknown) => e);
      await sleep(100);
      const stopAt = Date.now();
      await bounded(blocked.bus.stop({ timeoutMs: 1000 }), 15_000, 'bus.stop while the connection is blocked');
      console.log(`      bus.stop while blocked, one publish pending: ${Date.now() - stopAt} ms; the publish: ${(await pending as Error)?.name}`);
    } finally {
      await broker.ctl(restoreArgs);
      restored = true;
    }
    const after = (await broker.ctl(['eval', 'vm_memory_monitor:get_vm_memory_high_watermark().'])).trim();
    assert.equal(after, before, 'the watermark is back to the value read before');
    // Unblocked: the same bus publishes again, without a restart.
    await bounded(publisher.bus.publish(Tick, { n: 10_000 }), 10_000, 'a publish after the alarm cleared');
    const stopStarted = Date.now();
    await bounded(publisher.bus.stop({ timeoutMs: 2000 }), 10_000, 'bus.stop after the alarm');
    console.log(`      bus.stop after the alarm: ${Date.now() - stopStarted} ms`);
    // What timed out was written to the socket before the alarm answered: it may still arrive
    // (a timeout means "unknown", never "not sent"). Every confirmed one must.
    await waitFor(() => ledger.complete, 10_000, 'the confirmed messages');
    await sleep(500);
    const f = ledger.report();
    console.log(`      ${f.received - f.confirmed} of the timed-out publishes reached the consumer after the alarm cleared`);
    assert.equal(f.lost, 0);
    assert.ok(restored);
  });
});
