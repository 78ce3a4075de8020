/**
 * "No matching subscribers" (MQTT 5 reason code 0x10 in a PUBACK): the grace after a reconnect
 * during which the adapter sends such a publish again (`noSubscribersRetry`), and `mandatory`
 * publishes, which reject with UnroutableError when the broker accepted the message for nobody.
 * The broker restart that makes the grace necessary is in mqtt-faults.spec.ts (case 2).
 */
import assert from 'node:assert/strict';
import { Headers, OutgoingMessage } from '../../lib/transport';
import { UnroutableError } from '../../lib/errors';
import { MqttTransport, mqttTransport, MqttTransportOptions } from '../../adapters/mqtt';
import { TcpProxy } from '../helpers/tcp-proxy';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { MqttBroker } from './mqtt-broker';

const msg = (topic: string, n: number): OutgoingMessage => ({
  topic,
  body: Buffer.from(JSON.stringify({ n })),
  headers: { [Headers.id]: `${topic}-${n}`, [Headers.type]: topic, [Headers.source]: 'nosub', [Headers.specversion]: '1.0', [Headers.datacontenttype]: 'application/json' },
});

describe('reliability: MQTT publishes nobody subscribed to (0x10), noSubscribersRetry and mandatory', function () {
  this.timeout(20_000);
  let broker: MqttBroker;
  let open: MqttTransport[] = [];
  const transport = (o: Partial<MqttTransportOptions> = {}) => {
    const t = mqttTransport({ url: broker.url, clientId: uniq('nosub'), reconnect: { minMs: 20, maxMs: 50 }, ...o });
    t.on('error', () => undefined);
    open.push(t);
    return t;
  };
  /** A subscriber on `topic`, connected; returns the ids it received. */
  const subscriber = async (topic: string) => {
    const got: string[] = [];
    const t = transport();
    await t.subscribe({ pattern: topic, name: 'h', prefetch: 10 }, async (d) => {
      got.push(d.headers.id);
      await d.ack();
    });
    await t.connect();
    return got;
  };
  /** A publisher through a proxy, connected, then cut once: it has reconnected when this resolves. */
  const reconnectedPublisher = async (proxy: TcpProxy, o: Partial<MqttTransportOptions> = {}) => {
    const pub = transport({ url: `mqtt://127.0.0.1:${proxy.port}`, ...o });
    let connects = 0;
    pub.on('connected', () => connects++);
    await pub.connect();
    proxy.cut();
    await waitFor(() => connects === 2, 5000, 'the publisher reconnected');
    return pub;
  };

  before(async () => {
    broker = new MqttBroker({ persistence: false });
    await broker.start();
  });
  afterEach(async () => {
    await Promise.all(open.map((t) => t.close({ timeoutMs: 1000 }).catch(() => undefined)));
    open = [];
  });
  after(() => broker?.dispose());

  it('capability mandatory: MQTT 5 yes, MQTT 3.1.1 (no reason codes) no', () => {
    assert.equal(mqttTransport({ url: 'mqtt://127.0.0.1:1' }).capabilities.mandatory, true);
    assert.equal(mqttTransport({ url: 'mqtt://127.0.0.1:1', protocolVersion: 4 }).capabilities.mandatory, false);
  });

  it('outside a grace: a plain publish nobody receives resolves at once; a mandatory one rejects with UnroutableError', async () => {
    const topic = uniq('nosub.none.');
    const pub = transport();
    await pub.connect();
    let t0 = Date.now();
    await pub.publish(msg(topic, 1));
    assert.ok(Date.now() - t0 < 500, `resolved after ${Date.now() - t0} ms`);
    t0 = Date.now();
    await assert.rejects(pub.publish(msg(topic, 2), { mandatory: true }), (e: Error) => e instanceof UnroutableError && (e as UnroutableError).topic === topic);
    assert.ok(Date.now() - t0 < 500, `rejected after ${Date.now() - t0} ms`);
    assert.deepEqual(pub.noSubscribersStats, { answered: 2, resent: 0 });
  });

  it('a mandatory publish that a subscription receives resolves and is delivered', async () => {
    const topic = uniq('nosub.some.');
    const got = await subscriber(topic);
    const pub = transport();
    await pub.connect();
    await pub.publish(msg(topic, 1), { mandatory: true });
    await waitFor(() => got.length === 1, 5000, 'the delivery');
    assert.equal(pub.noSubscribersStats.answered, 0);
  });

  it('after a reconnect: publishes answered 0x10 are sent again until the subscriber is there (plain and mandatory)', async () => {
    const topic = uniq('nosub.late.');
    const proxy = new TcpProxy('127.0.0.1', broker.port);
    await proxy.start();
    try {
      const pub = await reconnectedPublisher(proxy);
      const t0 = Date.now();
      const plain = pub.publish(msg(topic, 1)).then(() => Date.now() - t0);
      const mandatory = pub.publish(msg(topic, 2), { mandatory: true }).then(() => Date.now() - t0);
      await sleep(700);
      const got = await subscriber(topic);
      const [a, b] = await Promise.all([plain, mandatory]);
      await waitFor(() => got.length === 2, 5000, 'both messages delivered');
      assert.deepEqual(got.sort(), [`${topic}-1`, `${topic}-2`]);
      assert.ok(a >= 650 && b >= 650, `resolved only once the subscriber was there (${a} ms, ${b} ms)`);
      assert.ok(pub.noSubscribersStats.resent >= 4, `sent again (${JSON.stringify(pub.noSubscribersStats)})`);
    } finally {
      await proxy.stop();
    }
  });

  it('after a reconnect, nobody subscribes: settles when the grace ends (plain resolves, mandatory rejects); never past the publish deadline', async () => {
    const topic = uniq('nosub.never.');
    const proxy = new TcpProxy('127.0.0.1', broker.port);
    await proxy.start();
    try {
      const pub = await reconnectedPublisher(proxy, { noSubscribersRetry: { graceMs: 800, intervalMs: 50 } });
      const t0 = Date.now();
      const plain = pub.publish(msg(topic, 1)).then(() => Date.now() - t0);
      const mandatory = pub.publish(msg(topic, 2), { mandatory: true }).then(
        () => assert.fail('a mandatory publish nobody received resolved'),
        (e: Error) => (assert.ok(e instanceof UnroutableError, String(e)), Date.now() - t0),
      );
      // A publish deadline (300 ms) inside the grace: settled as unroutable, not timed out.
      const short = pub.publish(msg(topic, 3), { mandatory: true, timeoutMs: 300 }).then(
        () => assert.fail('resolved'),
        (e: Error) => (assert.ok(e instanceof UnroutableError, String(e)), Date.now() - t0),
      );
      const [a, b, c] = await Promise.all([plain, mandatory, short]);
      assert.ok(a >= 400 && a < 2000, `plain publish settled at the end of the grace (${a} ms)`);
      assert.ok(b >= 400 && b < 2000, `mandatory publish rejected at the end of the grace (${b} ms)`);
      assert.ok(c < 300, `settled before its own deadline (${c} ms)`);
    } finally {
      await proxy.stop();
    }
  });

  it('noSubscribersRetry false: a 0x10 right after a reconnect settles at once', async () => {
    const topic = uniq('nosub.off.');
    const proxy = new TcpProxy('127.0.0.1', broker.port);
    await proxy.start();
    try {
      const pub = await reconnectedPublisher(proxy, { noSubscribersRetry: false });
      const t0 = Date.now();
      await pub.publish(msg(topic, 1));
      await assert.rejects(pub.publish(msg(topic, 2), { mandatory: true }), UnroutableError);
      assert.ok(Date.now() - t0 < 500, `settled after ${Date.now() - t0} ms`);
      assert.deepEqual(pub.noSubscribersStats, { answered: 2, resent: 0 });
    } finally {
      await proxy.stop();
    }
  });
});
