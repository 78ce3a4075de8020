/**
 * Issue 4 points the other MQTT specs leave open: QoS 2 publishes, fail-over between broker URLs,
 * and the bounded offline queue. Against a Mosquitto of the test's own.
 */
import assert from 'node:assert/strict';
import { Headers, OutgoingMessage } from '../../../lib/transport';
import { NotConnectedError } from '../../../lib/errors';
import { mqttTransport } from '../../../adapters/mqtt';
import { TcpProxy } from '../../helpers/tcp-proxy';
import { uniq, waitFor } from '../../helpers/wait';
import { MqttBroker } from '../../reliability/mqtt-broker';

const msg = (topic: string, n: number): OutgoingMessage => ({
  topic,
  body: Buffer.from(JSON.stringify({ n })),
  headers: { [Headers.id]: `${topic}-${n}`, [Headers.type]: topic, [Headers.source]: 'extra', [Headers.specversion]: '1.0', [Headers.datacontenttype]: 'application/json' },
});

describe('mqtt adapter: QoS 2, fail-over, offline queue', function () {
  this.timeout(20_000);
  let broker: MqttBroker;
  before(async () => {
    broker = new MqttBroker({ persistence: false });
    await broker.start();
  });
  after(() => broker?.dispose());

  // Was skipped as an open finding (~430 of 500 arrived). The cause: the adapter kept up to
  // maxInFlight (1,000) QoS 2 publishes unreleased while Mosquitto announces a Receive Maximum of
  // max_inflight_messages (100) and drops a client beyond it (DISCONNECT 0x93); the clean-start
  // reconnect lost the broker's QoS 2 state, and the PUBRELs mqtt.js re-sent were answered with
  // PUBCOMP although the messages were gone. The window now follows the CONNACK's Receive Maximum
  // and a QoS 2 publisher keeps its session across reconnects.
  it('QoS 2: publishes resolve on PUBCOMP and each message arrives once, within the broker receive maximum', async () => {
    const topic = uniq('x.qos2.');
    const got = new Map<string, number>();
    const sub = mqttTransport({ url: broker.url, clientId: uniq('q2s') });
    await sub.subscribe({ pattern: topic, name: 'h', prefetch: 10 }, async (d) => {
      got.set(d.headers.id, (got.get(d.headers.id) ?? 0) + 1);
      await d.ack();
    });
    await sub.connect();
    const pub = mqttTransport({ url: broker.url, qos: 2, clientId: uniq('q2p') });
    let connects = 0;
    let drops = 0;
    pub.on('connected', () => connects++);
    pub.on('disconnected', () => drops++);
    pub.on('error', () => undefined);
    await pub.connect();
    // The publisher's mqtt.js client (internal): count its QoS 2 acknowledgements and how many
    // publishes are unreleased at the broker (PUBLISH sent, PUBCOMP not yet received).
    const client = (pub as unknown as { publisher: import('mqtt').MqttClient }).publisher;
    let pubrecs = 0;
    let pubcomps = 0;
    let unreleased = 0;
    let maxUnreleased = 0;
    client.on('packetsend', (p) => {
      if (p.cmd === 'publish' && p.qos === 2) maxUnreleased = Math.max(maxUnreleased, ++unreleased);
    });
    client.on('packetreceive', (p) => {
      if (p.cmd === 'pubrec') pubrecs++;
      if (p.cmd === 'pubcomp') (pubcomps++, unreleased--);
      assert.notEqual(p.cmd, 'puback', 'a QoS 2 publish was answered with PUBACK');
    });
    let resolved = 0;
    const early: string[] = [];
    await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        pub.publish(msg(topic, i)).then(() => {
          // A publish resolves only after its PUBCOMP: never more resolved than PUBCOMPs received.
          if (++resolved > pubcomps) early.push(`#${i}: ${resolved} resolved, ${pubcomps} PUBCOMPs`);
        }),
      ),
    );
    assert.deepEqual(early, [], 'publishes resolved before their PUBCOMP');
    assert.equal(pubcomps, 500);
    assert.equal(pubrecs, 500);
    assert.ok(maxUnreleased <= 100, `${maxUnreleased} QoS 2 publishes unreleased at once; the broker's receive maximum is 100`);
    assert.equal(drops, 0, 'the publisher was disconnected');
    assert.equal(connects, 1);
    await waitFor(() => got.size === 500, 5000, '500 QoS 2 messages').catch((e) => assert.fail(`${e.message}: got ${got.size}`));
    assert.ok([...got.values()].every((c) => c === 1));
    await Promise.all([sub.close(), pub.close()]);
  });

  it('receive maximum = prefetch: a handler that never acks is sent at most prefetch messages by the broker', async () => {
    const topic = uniq('x.recvmax.');
    const prefetch = 5;
    const seen: string[] = [];
    const sub = mqttTransport({ url: broker.url, clientId: uniq('rms') });
    sub.on('error', () => undefined);
    await sub.subscribe({ pattern: topic, name: 'h', prefetch }, async (d) => {
      seen.push(d.headers.id); // never settled
    });
    await sub.connect();
    // The consumer's main feed (internal): PUBLISH packets the broker sent it, i.e. the broker's
    // in-flight window towards this member (the dispatcher alone would cap the handler anyway).
    const consumer = [...(sub as unknown as { consumers: Set<{ feeds: Array<{ client: import('mqtt').MqttClient }> }> }).consumers][0];
    const feed = consumer.feeds[0].client;
    let received = 0;
    feed.on('packetreceive', (p) => {
      if (p.cmd === 'publish') received++;
    });
    const pub = mqttTransport({ url: broker.url, clientId: uniq('rmp') });
    await pub.connect();
    await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish(msg(topic, i))));
    await waitFor(() => seen.length === prefetch, 3000, `${prefetch} deliveries`);
    await new Promise((r) => setTimeout(r, 500)); // give the broker time to send more, if it would
    assert.equal(received, prefetch, `the broker sent ${received} unacked messages; prefetch is ${prefetch} (its max_inflight_messages 100)`);
    assert.equal(seen.length, prefetch);
    await Promise.all([sub.close({ timeoutMs: 200 }), pub.close()]);
  });

  it('fail-over: the first URL a dead port, the second the broker; and on to the next when one stops', async () => {
    const dead = `mqtt://127.0.0.1:1`;
    const t = mqttTransport({ url: [dead, broker.url], clientId: uniq('fo'), reconnect: { minMs: 50, maxMs: 200 }, connectTimeoutMs: 5000 });
    t.on('error', () => undefined);
    await t.connect();
    const second = new MqttBroker({ persistence: false });
    await second.start();
    const urls: string[] = [];
    const t2 = mqttTransport({ url: [broker.url, second.url], clientId: uniq('fo2'), reconnect: { minMs: 50, maxMs: 200 } });
    t2.on('error', () => undefined);
    t2.on('connected', (e) => urls.push(e.url));
    await t2.connect();
    const first = broker.port;
    await broker.stop();
    try {
      await waitFor(() => urls.some((u) => u.endsWith(`:${second.port}`)), 8000, 'fail-over to the second broker');
      await t2.publish(msg('x.fo', 1));
    } finally {
      await broker.start();
      assert.equal(broker.port, first);
      await Promise.all([t.close({ timeoutMs: 500 }), t2.close({ timeoutMs: 500 })]);
      await second.dispose();
    }
  });

  it('the offline queue is bounded: beyond maxOffline publish() rejects with NotConnectedError', async () => {
    const proxy = new TcpProxy('127.0.0.1', broker.port);
    await proxy.start();
    const t = mqttTransport({ url: `mqtt://127.0.0.1:${proxy.port}`, clientId: uniq('off'), maxOffline: 5, publishTimeoutMs: 8000, reconnect: { minMs: 200, maxMs: 400 } });
    t.on('error', () => undefined);
    let down = false;
    t.on('disconnected', () => (down = true));
    try {
      await t.connect();
      proxy.cut(3000);
      await waitFor(() => down, 3000, 'the disconnect');
      const waiting = Array.from({ length: 5 }, (_, i) => t.publish(msg('x.off', i)));
      const err = await t.publish(msg('x.off', 5)).catch((e: Error) => e);
      assert.ok(err instanceof NotConnectedError, `the sixth: ${err}`);
      await Promise.all(waiting); // the five waiting go out after the reconnect
    } finally {
      await t.close({ timeoutMs: 500 });
      await proxy.stop();
    }
  });
});
