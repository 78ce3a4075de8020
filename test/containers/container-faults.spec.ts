/**
 * Broker faults on containers of their own (never the shared brokers):
 *   (a) publishing through a RabbitMQ container kill+restart loses no confirmed message;
 *   (b) an MQTT persistent session (clean: false, QoS 1) survives a Mosquitto container
 *       kill+restart with the durable configuration of test/containers/mosquitto/mosquitto.conf.
 * Written with raw amqplib and mqtt.js so that it stands apart from Courier's adapters.
 *
 * Registration (decided at load time, see docs/testing.md):
 *   - an engine answers                      -> the tests run;
 *   - no engine, COURIER_REQUIRE_CONTAINERS  -> one test that FAILS, saying why (CI sets it);
 *   - no engine otherwise                    -> nothing is registered, and a console line says so
 *     (a developer without Docker/Podman is not shown a green "pending" that means nothing).
 * Every wait is bounded.
 */
import assert from 'node:assert/strict';
import * as amqp from 'amqplib';
import mqtt from 'mqtt';
import {
  amqpContainer,
  containerEngineSync,
  containersRequired,
  mqttContainer,
  type BrokerContainer,
} from '../helpers/brokers';
import { sleep, uniq } from '../helpers/wait';

const engine = containerEngineSync();

if (!engine.ok && containersRequired()) {
  describe('container faults', () => {
    it('needs a Docker-compatible engine (COURIER_REQUIRE_CONTAINERS is set)', () => {
      throw new Error(`No container engine answers: ${engine.where}. Run scripts/container-engine.sh and export DOCKER_HOST.`);
    });
  });
} else if (!engine.ok) {
  console.log(
    `[container-faults] NOT REGISTERED: no Docker-compatible engine answers (${engine.where}). ` +
      'Run scripts/container-engine.sh (or start Docker) to run the broker fault tests; CI sets COURIER_REQUIRE_CONTAINERS=1 and fails instead.',
  );
} else {
  describe(`container faults (engine ${engine.where})`, function () {
    this.timeout(240_000);

    describe('RabbitMQ container restart', () => {
      let broker: BrokerContainer;
      before(async function () {
        this.timeout(180_000);
        broker = await amqpContainer();
      });
      after(async () => broker?.dispose());

      it('loses no confirmed persistent message on a durable queue (confirms + re-publish of the unconfirmed)', async () => {
        const n = 3000;
        const queue = uniq('faults.durable.');
        const ids = Array.from({ length: n }, (_, i) => `m${i}`);
        // A durable queue declared moments before a SIGKILL can be gone after the restart, with
        // every confirmed message in it: RabbitMQ 3.10 had not yet stored the declaration (seen
        // in CI: 600 of 600 lost; a probe here: the queue gone in 1 of 6 kills within 30 ms of
        // the declaration, in 0 of 8 with a second in between). The case is about messages, so
        // the queue exists first.
        await declareDurable(broker.url, queue);
        await sleep(1500);
        let faulted = false;
        const report = await publishConfirmed(broker, queue, ids, {
          durable: true,
          persistent: true,
          fault: {
            after: 600,
            run: async () => {
              faulted = true;
              await broker.restart({ kill: true });
            },
          },
        });
        assert.ok(faulted, 'the fault happened while publishing');
        assert.ok(report.connectionsLost >= 1, `the publisher saw the fault (connections lost: ${report.connectionsLost})`);
        assert.equal(report.unconfirmed.length, 0, `all confirmed in the end; unconfirmed: ${report.unconfirmed.slice(0, 10)}`);

        const got = await drain(broker.url, queue, n, 30_000);
        const missing = ids.filter((id) => !got.counts.has(id));
        const unexpected = [...got.counts.keys()].filter((id) => !ids.includes(id));
        const duplicates = [...got.counts.values()].filter((c) => c > 1).length;
        console.log(
          `      [faults] amqp: ${n} published, ${report.republished} re-published after ${report.connectionsLost} lost connection(s), ` +
            `${got.total} delivered, ${duplicates} duplicated ids, ${missing.length} missing, restart took ${report.faultMs} ms`,
        );
        assert.deepEqual(missing, [], 'no confirmed message lost');
        assert.deepEqual(unexpected, [], 'no unexpected message');
      });

      it('negative control: the same restart loses non-persistent messages on a non-durable queue (the checker sees loss)', async () => {
        const n = 500;
        const queue = uniq('faults.transient.');
        const ids = Array.from({ length: n }, (_, i) => `t${i}`);
        const report = await publishConfirmed(broker, queue, ids, { durable: false, persistent: false });
        assert.equal(report.unconfirmed.length, 0);
        await broker.restart({ kill: true });
        const got = await drain(broker.url, queue, n, 3_000, /* queueMayBeGone */ true);
        const missing = ids.filter((id) => !got.counts.has(id));
        console.log(`      [faults] amqp negative control: ${missing.length} of ${n} confirmed transient messages lost`);
        assert.ok(missing.length > 0, 'the restart must lose unprotected messages, or this test proves nothing');
      });
    });

    describe('Mosquitto container restart (durable configuration)', () => {
      let broker: BrokerContainer;
      before(async function () {
        this.timeout(120_000);
        broker = await mqttContainer();
      });
      after(async () => broker?.dispose());

      it('keeps a persistent session and its queued QoS 1 messages through a kill and restart', async () => {
        const n = 2000; // above the default max_queued_messages (1000), which the durable config lifts
        const r = await offlineSessionThroughKill(broker, n);
        console.log(
          `      [faults] mqtt: ${n} queued for an offline persistent session, broker killed and restarted in ${r.restartMs} ms, ` +
            `session present: ${r.sessionPresent}, ${r.delivered} distinct delivered, ${r.missing.length} missing`,
        );
        assert.equal(r.sessionPresent, true, 'the broker kept the session');
        assert.deepEqual(r.missing.slice(0, 20), [], `no queued message lost (${r.missing.length} missing)`);
      });

      it('negative control: with the default save policy the same kill loses the queued messages (the checker sees loss)', async function () {
        this.timeout(120_000);
        const plain = await mqttContainer({ command: ['/usr/sbin/mosquitto', '-c', '/etc/mosquitto/default-persistence.conf'] });
        try {
          const n = 300;
          const r = await offlineSessionThroughKill(plain, n);
          console.log(
            `      [faults] mqtt negative control (autosave 1800 s): session present: ${r.sessionPresent}, ${r.missing.length} of ${n} missing`,
          );
          assert.ok(r.missing.length > 0, 'a SIGKILL must lose unsaved messages, or this test proves nothing');
        } finally {
          await plain.dispose();
        }
      });
    });
  });
}

/**
 * A clean:false subscriber subscribes (QoS 1) and goes away; n QoS 1 messages are published and
 * PUBACKed; the broker is killed (SIGKILL: no save on shutdown) and started again; the subscriber
 * comes back with the same client id and collects what arrives (bounded).
 */
async function offlineSessionThroughKill(
  broker: BrokerContainer,
  n: number,
): Promise<{ sessionPresent: boolean; delivered: number; missing: string[]; restartMs: number }> {
  const topic = `faults/${uniq()}`;
  const clientId = uniq('sub');
  const ids = Array.from({ length: n }, (_, i) => `q${i}`);

  const sub1 = await mqttConnect(broker.url, { clientId, clean: false });
  await bounded(sub1.subscribeAsync(topic, { qos: 1 }), 10_000, 'subscribe');
  await bounded(sub1.endAsync(), 10_000, 'subscriber disconnect');

  const pub = await mqttConnect(broker.url, { clientId: uniq('pub'), clean: true });
  await bounded(
    Promise.all(ids.map((id) => pub.publishAsync(topic, id, { qos: 1 }))),
    60_000,
    'PUBACK of every message',
  );
  await bounded(pub.endAsync(), 10_000, 'publisher disconnect');

  const t0 = Date.now();
  await broker.restart({ kill: true });
  const restartMs = Date.now() - t0;

  // The handler is attached before the connection, or the backlog is PUBACKed unseen.
  const counts = new Map<string, number>();
  const sub2 = mqtt.connect(broker.url, { clientId, clean: false, reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4 });
  sub2.on('message', (_t, payload) => {
    const id = payload.toString();
    counts.set(id, (counts.get(id) ?? 0) + 1);
  });
  sub2.on('error', () => undefined);
  let sessionPresent = false;
  try {
    const connack = await bounded(
      new Promise<mqtt.IConnackPacket>((res, rej) => {
        sub2.once('connect', res);
        sub2.once('error', rej);
      }),
      15_000,
      'reconnect of the persistent subscriber',
    );
    sessionPresent = connack.sessionPresent;
    // All n, or nothing more for 3 s (the negative control), within 30 s.
    const deadline = Date.now() + 30_000;
    let last = Date.now();
    let seen = 0;
    while (counts.size < n && Date.now() < deadline && Date.now() - last < 3_000) {
      await sleep(50);
      if (counts.size !== seen) {
        seen = counts.size;
        last = Date.now();
      }
    }
  } finally {
    await bounded(sub2.endAsync(), 10_000, 'subscriber end').catch(() => sub2.end(true));
  }
  return { sessionPresent, delivered: counts.size, missing: ids.filter((id) => !counts.has(id)), restartMs };
}

// ------------------------------------------------------------------ raw amqplib helpers

interface PublishReport {
  unconfirmed: string[];
  republished: number;
  connectionsLost: number;
  faultMs: number;
}

/**
 * Publishes every id with publisher confirms, in windows; whatever is not confirmed when the
 * connection drops is published again on a new connection. Bounded to 120 s.
 */
async function publishConfirmed(
  broker: BrokerContainer,
  queue: string,
  ids: string[],
  opts: { durable: boolean; persistent: boolean; fault?: { after: number; run: () => Promise<void> } },
): Promise<PublishReport> {
  const pending = new Set(ids);
  let confirmed = 0;
  let faultError: Error | undefined;
  let connectionsLost = 0;
  let republished = 0;
  let faultMs = 0;
  const deadline = Date.now() + 120_000;
  const sentOnce = new Set<string>();
  let fault: Promise<void> | undefined;

  while (pending.size > 0) {
    if (Date.now() > deadline) break;
    let conn: amqp.ChannelModel | undefined;
    try {
      conn = await bounded(amqp.connect(broker.url), 5_000, 'connect');
      conn.on('error', () => undefined);
      const ch = await conn.createConfirmChannel();
      ch.on('error', () => undefined);
      await ch.assertQueue(queue, { durable: opts.durable });
      const window = 100;
      const todo = [...pending];
      for (let i = 0; i < todo.length; i += window) {
        const batch = todo.slice(i, i + window);
        const acks = batch.map(
          (id) =>
            new Promise<void>((res, rej) => {
              if (sentOnce.has(id)) republished++;
              sentOnce.add(id);
              ch.publish('', queue, Buffer.from(id), { persistent: opts.persistent, messageId: id }, (err) => {
                if (err) rej(err);
                else {
                  if (pending.delete(id)) confirmed++;
                  res();
                }
              });
            }),
        );
        await bounded(Promise.all(acks), 15_000, 'confirms of a window');
        if (opts.fault && !fault && confirmed >= opts.fault.after) {
          // The fault runs beside the publisher, so publishes are in flight when it strikes.
          const t0 = Date.now();
          fault = opts.fault.run().then(
            () => {
              faultMs = Date.now() - t0;
            },
            (err: Error) => {
              faultError = err;
            },
          );
        }
        await sleep(5);
      }
      await conn.close().catch(() => undefined);
    } catch {
      connectionsLost++;
      if (conn) await conn.close().catch(() => undefined);
      // The broker is down or restarting: wait for the fault to end (bounded), then retry.
      if (fault) await bounded(fault, 90_000, 'the broker restart');
      await sleep(250);
    }
  }
  if (fault) await bounded(fault, 90_000, 'the broker restart');
  if (faultError) throw faultError;
  return { unconfirmed: [...pending], republished, connectionsLost, faultMs };
}

async function declareDurable(url: string, queue: string): Promise<void> {
  const conn = await bounded(amqp.connect(url), 10_000, 'connect to declare');
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    await ch.assertQueue(queue, { durable: true });
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Consumes the queue until `expected` distinct ids arrived or nothing came for `idleMs`. */
async function drain(
  url: string,
  queue: string,
  expected: number,
  idleMs: number,
  queueMayBeGone = false,
): Promise<{ counts: Map<string, number>; total: number }> {
  const counts = new Map<string, number>();
  let total = 0;
  const conn = await bounded(amqp.connect(url), 10_000, 'connect for drain');
  conn.on('error', () => undefined);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    if (queueMayBeGone) {
      try {
        await ch.checkQueue(queue);
      } catch {
        return { counts, total }; // the queue itself did not survive: everything is lost
      }
    }
    await ch.prefetch(500);
    let last = Date.now();
    await ch.consume(queue, (m) => {
      if (!m) return;
      const id = m.properties.messageId as string;
      counts.set(id, (counts.get(id) ?? 0) + 1);
      total++;
      last = Date.now();
      ch.ack(m);
    });
    const hardDeadline = Date.now() + 60_000;
    while (counts.size < expected && Date.now() - last < idleMs && Date.now() < hardDeadline) await sleep(50);
    await sleep(200); // let late duplicates show
  } finally {
    await conn.close().catch(() => undefined);
  }
  return { counts, total };
}

// ------------------------------------------------------------------ raw mqtt.js helpers

async function mqttConnect(url: string, opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4, ...opts });
  c.on('error', () => undefined);
  await bounded(
    new Promise<void>((res, rej) => {
      c.once('connect', () => res());
      c.once('error', rej);
    }),
    15_000,
    `MQTT connect of ${opts.clientId}`,
  );
  return c;
}

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
