/**
 * The reaches into mqtt.js's private parts (adapters/mqtt/mqtt-internals.ts, listed in
 * docs/client-internals.md): the installed mqtt.js must have each of them, and behave as the
 * adapter relies on (these fail on an upgrade that removes or changes one); and with every one of
 * them turned off, the adapter still works on the public API alone (the fallbacks). Against the
 * test broker.
 */
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { Headers, OutgoingMessage } from '../../../lib/transport';
import { mqttBroker } from '../../helpers/brokers';
import { uniq, waitFor } from '../../helpers/wait';
import {
  coalesceSocketWrites,
  DEFER_ACK,
  disabledForTests,
  encodePacketsOf,
  forcedSubscription,
  internalsOf,
  pubackSender,
} from '../../../adapters/mqtt/mqtt-internals';
import { MqttFixture, purgeSession } from './mqtt-fixture';

const msg = (topic: string, n: number): OutgoingMessage => ({
  topic,
  body: Buffer.from(JSON.stringify({ n })),
  headers: { [Headers.id]: `${topic}-${n}`, [Headers.type]: topic, [Headers.source]: 'internals', [Headers.specversion]: '1.0', [Headers.datacontenttype]: 'application/json' },
});

function rawClient(url: string, clientId: string, clean = true): MqttClient {
  const mqtt = require('mqtt') as typeof import('mqtt');
  return mqtt.connect(url, { clientId, clean, protocolVersion: 5, reconnectPeriod: 0, manualConnect: true, properties: clean ? {} : { sessionExpiryInterval: 60 } });
}

describe('mqtt adapter: mqtt.js private parts', function () {
  this.timeout(20_000);
  let url: string;
  before(async () => {
    url = (await mqttBroker()).url;
  });
  afterEach(() => disabledForTests.clear());

  it('the installed mqtt.js has every private part the adapter uses, and each is installed', () => {
    // Never connected (manualConnect): nothing to end.
    const client = rawClient(url, uniq('feat'));
    assert.deepEqual(internalsOf(client), { sendPacket: true, writePacket: true, streamBuilder: true });
    assert.equal(coalesceSocketWrites(client), true);
    assert.equal(encodePacketsOf(client), true);
    assert.equal(typeof pubackSender(client), 'function');
    const map = forcedSubscription(['a/b', 'c/#']) as unknown as Record<string, unknown>;
    assert.deepEqual(map, { 'a/b': { qos: 1 }, 'c/#': { qos: 1 }, resubscribe: true });
  });

  it('handleMessage called back with DEFER_ACK: mqtt.js sends no PUBACK and reads on; _sendPacket sends it; the map form with resubscribe sends a SUBSCRIBE again', async () => {
    const topic = `courier-internals/${uniq('t')}`;
    const id = uniq('defer');
    const sub = rawClient(url, id, false);
    const pub = rawClient(url, uniq('dpub'));
    const pubacks: number[] = [];
    const subscribes: number[] = [];
    const got: number[] = [];
    sub.on('packetsend', (p) => {
      if (p.cmd === 'puback') pubacks.push(p.messageId!);
      if (p.cmd === 'subscribe') subscribes.push(p.messageId!);
    });
    sub.handleMessage = (packet, cb) => {
      if (packet.cmd === 'publish') got.push(packet.messageId!);
      cb(DEFER_ACK);
    };
    try {
      sub.connect();
      pub.connect();
      await sub.subscribeAsync(topic, { qos: 1 });
      await pub.publishAsync(topic, 'one', { qos: 1 });
      await pub.publishAsync(topic, 'two', { qos: 1 });
      // Both arrive although the first was never acked: mqtt.js read on.
      await waitFor(() => got.length === 2, 5000, 'two deliveries');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(pubacks, [], 'mqtt.js sent a PUBACK of its own');
      const send = pubackSender(sub)!;
      for (const m of got) send(m);
      await waitFor(() => pubacks.length === 2, 2000, 'the two PUBACKs');
      assert.deepEqual(pubacks, got);
      // Without resubscribe mqtt.js would skip a filter it already subscribed; with it, it sends one.
      const before = subscribes.length;
      await sub.subscribeAsync(forcedSubscription([topic]));
      assert.equal(subscribes.length, before + 1, 'the map form with resubscribe sent no SUBSCRIBE');
    } finally {
      sub.end(true);
      pub.end(true);
      await purgeSession(url, id);
    }
  });

  it('with every private part turned off, a group member still gets each message once and PUBACKs each after its handler (public API only)', async () => {
    for (const k of ['sendPacket', 'writePacket', 'streamBuilder'] as const) disabledForTests.add(k);
    const fixture = new MqttFixture(url);
    const topic = uniq('x.fallback.');
    const spec = { pattern: topic, group: uniq('g'), name: 'h', prefetch: 10 };
    const seen = new Map<string, number>();
    const sub = fixture.create();
    const pub = fixture.create();
    try {
      await sub.subscribe(spec, async (d) => {
        seen.set(d.headers[Headers.id], (seen.get(d.headers[Headers.id]) ?? 0) + 1);
        await d.ack();
      });
      await sub.connect();
      const feed = [...sub.consumers][0].feeds[0].client!;
      assert.equal(pubackSender(feed), undefined, 'the fallback is in use');
      let pubacks = 0;
      feed.on('packetsend', (p) => {
        if (p.cmd === 'puback') pubacks++;
      });
      await pub.connect();
      await Promise.all(Array.from({ length: 50 }, (_, i) => pub.publish(msg(topic, i))));
      await waitFor(() => seen.size === 50, 8000, '50 deliveries');
      await waitFor(() => pubacks === 50, 3000, '50 PUBACKs').catch((e) => assert.fail(`${e.message}: ${pubacks}`));
      await sub.close();
      // Every one was PUBACKed: the member's session, resumed, has nothing to redeliver.
      const again = fixture.create();
      let redelivered = 0;
      await again.subscribe(spec, async (d) => {
        redelivered++;
        await d.ack();
      });
      await again.connect();
      await new Promise((r) => setTimeout(r, 500));
      await again.close();
      assert.equal(redelivered, 0);
      assert.deepEqual([...seen.values()].filter((c) => c !== 1), [], 'a message was delivered twice');
    } finally {
      await Promise.all([sub.close(), pub.close()]);
      await fixture.purge();
    }
  });
});
