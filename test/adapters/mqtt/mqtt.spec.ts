/**
 * MQTT-specific guarantees, against real Mosquitto: the shared broker of the test run for the
 * functional specs, and a Mosquitto of our own (no queue limit, see docs/brokers.md) for the specs
 * that assert "0 lost".
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { Delivery, Headers, Transport } from '../../../lib/transport';
import { PublishRejectedError, RequestTimeoutError, SessionTakenOverError } from '../../../lib/errors';
import { mqttTransport } from '../../../adapters/mqtt';
import { mqttBroker } from '../../helpers/brokers';
import { TcpProxy } from '../../helpers/tcp-proxy';
import { bodyN as n, testMessage as message } from '../../helpers/test-message';
import { sleep, uniq, waitFor } from '../../helpers/wait';
import { MqttFixture, purgeSession } from './mqtt-fixture';
import { OwnMosquitto } from '../../helpers/own-mosquitto';


describe('mqtt adapter', function () {
  this.timeout(30_000);
  let url = '';
  let fixture: MqttFixture;
  let open: Transport[] = [];
  const track = <T extends Transport>(t: T): T => (open.push(t), t);

  before(async () => {
    url = (await mqttBroker()).url;
    fixture = new MqttFixture(url);
  });
  afterEach(async () => {
    await Promise.all(open.map((t) => t.close({ timeoutMs: 1000 }).catch(() => undefined)));
    open = [];
    await fixture.purge();
  });

  it('shared subscriptions: members of a group share the work, each group gets every message', async () => {
    const topic = uniq('mq.share.');
    const [ga, gb] = [uniq('ga'), uniq('gb')];
    const counts = new Map<string, number>();
    const seen = { [ga]: new Set<number>(), [gb]: new Set<number>() };
    for (const [group, member] of [[ga, 'a0'], [ga, 'a1'], [gb, 'b0']]) {
      const t = track(fixture.create());
      await t.subscribe({ pattern: topic, group, name: 'h', prefetch: 5 }, async (d) => {
        seen[group].add(n(d));
        counts.set(member, (counts.get(member) ?? 0) + 1);
        await d.ack();
      });
      await t.connect();
    }
    const pub = track(fixture.create());
    await pub.connect();
    await Promise.all(Array.from({ length: 200 }, (_, i) => pub.publish(message(topic, i))));
    await waitFor(() => seen[ga].size === 200 && seen[gb].size === 200, 10_000, 'both groups to get 200');
    await sleep(100);
    assert.equal((counts.get('a0') ?? 0) + (counts.get('a1') ?? 0), 200, 'group a: each message once');
    assert.ok(counts.get('a0')! > 0 && counts.get('a1')! > 0, 'both members of group a worked');
    assert.equal(counts.get('b0'), 200);
  });

  it('a persistent session receives what was published while it was offline', async () => {
    const topic = uniq('mq.offline.');
    const spec = { pattern: topic, group: uniq('g'), name: 'h', prefetch: 10 };
    const first = fixture.create();
    await first.subscribe(spec, async (d) => d.ack());
    await first.connect();
    await first.close();
    const pub = track(fixture.create());
    await pub.connect();
    for (let i = 0; i < 50; i++) await pub.publish(message(topic, i));
    const got = new Set<number>();
    const second = track(fixture.create());
    await second.subscribe(spec, async (d) => {
      got.add(n(d));
      await d.ack();
    });
    await second.connect();
    await waitFor(() => got.size === 50, 5000, '50 messages kept for the offline session');
  });

  it('PUBACK only after the handler: a subscriber killed mid-handler (SIGKILL) gets the message again', async function () {
    this.timeout(40_000);
    const topic = uniq('mq.kill.');
    const group = uniq('g');
    const memberId = `${fixture.clientId}:kill:${group}`;
    const child = spawn(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures/hang-subscriber.ts'), url, group, memberId, topic],
      { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.join(__dirname, '../../..') },
    );
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    try {
      await waitFor(() => out.includes('ready'), 20_000, 'the child subscriber');
      const pub = track(fixture.create());
      await pub.connect();
      await pub.publish(message(topic, 1, { [Headers.id]: 'kill-1' }));
      await waitFor(() => out.includes('handling kill-1'), 5000, 'the child to start handling');
      process.kill(child.pid!, 'SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    }
    const got: Delivery[] = [];
    const again = track(mqttTransport({ url, clientId: memberId, groupClientId: () => memberId }));
    await again.subscribe({ pattern: topic, group, name: 'hang', prefetch: 1 }, async (d) => {
      got.push(d);
      await d.ack();
    });
    await again.connect();
    await waitFor(() => got.length === 1, 5000, 'the redelivery to the restarted member');
    assert.equal(got[0].headers[Headers.id], 'kill-1');
    assert.equal(got[0].redelivered, true);
    await again.close();
    await Promise.all([memberId, `${memberId}:retry`].map((id) => purgeSession(url, id)));
  });

  it('dead letter: republished to <prefix>/dead/<topic> with the reason as user properties', async () => {
    const type = uniq('mq.dead.');
    const mqtt = require('mqtt') as typeof import('mqtt');
    const raw: MqttClient = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: uniq('raw') });
    const seen: Array<{ topic: string; props: Record<string, unknown> }> = [];
    raw.on('message', (topic, _payload, packet) => seen.push({ topic, props: (packet.properties?.userProperties ?? {}) as Record<string, unknown> }));
    await raw.subscribeAsync(`courier/dead/${type.split('.').join('/')}`, { qos: 1 });
    try {
      const t = track(fixture.create());
      await t.subscribe({ pattern: type, group: uniq('g'), name: 'h', prefetch: 1 }, async (d) => {
        await d.deadLetter({ reason: 'rejected', errorName: 'RejectMessageError', errorMessage: 'no amqp://u:secret@x here' });
      });
      await t.connect();
      await t.publish(message(type, 1));
      await waitFor(() => seen.length === 1, 5000, 'the dead letter on the raw subscriber');
      assert.equal(seen[0].props[Headers.deadReason], 'rejected');
      assert.equal(seen[0].props[Headers.deadError], 'RejectMessageError');
      assert.equal(seen[0].props[Headers.deadMessage], 'no amqp://u:***@x here');
      assert.ok(String(seen[0].props[Headers.deadQueue]).endsWith('/h'));
    } finally {
      await raw.endAsync();
    }
  });

  it('request/reply: response topic and correlation data, 100 in flight, and a typed timeout', async () => {
    const topic = uniq('mq.rpc.');
    const server = track(fixture.create());
    await server.subscribe({ pattern: topic, group: uniq('g'), name: 'rpc', prefetch: 20 }, async (d) => {
      assert.equal(d.replyExpected, true);
      const props = (d.raw as { properties?: { responseTopic?: string; correlationData?: Buffer } }).properties;
      assert.ok(props?.responseTopic && props.correlationData, 'MQTT 5 response topic and correlation data');
      await sleep(Math.random() * 20);
      await d.reply({ body: Buffer.from(JSON.stringify({ n: n(d) + 1 })), headers: { [Headers.type]: `${topic}.reply` } });
      await d.ack();
    });
    await server.connect();
    const client = track(fixture.create());
    await client.connect();
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => client.request(message(topic, i), { timeoutMs: 5000 })));
    assert.deepEqual(replies.map(n), Array.from({ length: 100 }, (_, i) => i + 1));
    const err = await client.request(message(uniq('mq.nobody.'), 0), { timeoutMs: 200 }).catch((e) => e);
    assert.ok(err instanceof RequestTimeoutError);
    assert.match(err.messageType, /^mq\.nobody\./);
  });

  it('MQTT 3.1.1: structured CloudEvents JSON round trip and request/reply', async () => {
    const topic = uniq('mq.v4.');
    const sub = track(fixture.create({ protocolVersion: 4 }));
    const got: Delivery[] = [];
    await sub.subscribe({ pattern: topic, group: uniq('g'), name: 'h', prefetch: 5 }, async (d) => {
      got.push(d);
      if (d.replyExpected) await d.reply({ body: Buffer.from('{"ok":true}'), headers: { [Headers.type]: 'r' } });
      await d.ack();
    });
    await sub.connect();
    const pub = track(fixture.create({ protocolVersion: 4 }));
    await pub.connect();
    await pub.publish(message(topic, 3));
    await waitFor(() => got.length === 1, 5000, 'the 3.1.1 delivery');
    assert.equal(n(got[0]), 3);
    assert.equal(got[0].headers[Headers.datacontenttype], 'application/json');
    const wire = JSON.parse((got[0].raw as { payload: Buffer }).payload.toString());
    assert.deepEqual(wire.data, { n: 3 });
    assert.equal(wire.specversion, '1.0');
    const r = await pub.request(message(topic, 4), { timeoutMs: 5000 });
    assert.deepEqual(JSON.parse(r.body.toString()), { ok: true });
  });

  it('a session taken over by a duplicate client id is reported, and the fight backs off', async () => {
    const topic = uniq('mq.takeover.');
    const group = uniq('g');
    const id = `${fixture.clientId}:dup:${group}`;
    const spec = { pattern: topic, group, name: 'h', prefetch: 1 };
    const errors: Error[] = [];
    const connects: number[] = [];
    const make = () => track(mqttTransport({ url, clientId: id, groupClientId: () => id, reconnect: { minMs: 100, maxMs: 2000 } }));
    const a = make();
    a.on('error', (e) => errors.push(e));
    a.on('connected', () => connects.push(Date.now()));
    await a.subscribe(spec, async (d) => d.ack());
    await a.connect();
    const b = make();
    b.on('error', (e) => errors.push(e));
    b.on('connected', () => connects.push(Date.now()));
    await b.subscribe(spec, async (d) => d.ack());
    await b.connect();
    // Mosquitto 2.0 closes the old connection without DISCONNECT 0x8E: the adapter reports the
    // repeated immediate closes as a (probable) take-over; a 0x8E stops the client outright.
    await waitFor(() => errors.some((e) => e instanceof SessionTakenOverError), 10_000, 'SessionTakenOverError');
    const since = Date.now();
    await sleep(2000);
    const recent = connects.filter((t) => t >= since).length;
    console.log(`      [mqtt takeover] connections in the first ${since - connects[0]} ms: ${connects.filter((t) => t < since).length}; in the next 2 s: ${recent}`);
    // Four clients fight (the main and the retry session of a and of b); without back-off each
    // would reconnect every 100 ms, ~80 connections in 2 s.
    assert.ok(recent <= 10, `the fight backs off (${recent} connections in 2 s)`);
    await Promise.all([a.close({ timeoutMs: 500 }), b.close({ timeoutMs: 500 })]);
    await Promise.all([id, `${id}:retry`].map((x) => purgeSession(url, x)));
  });

  describe('with a Mosquitto of our own (max_queued_messages 0)', () => {
    const broker = new OwnMosquitto({
      acl: 'topic readwrite courier/#\ntopic read $SYS/#\n',
    });
    let own: MqttFixture;
    before(async () => {
      await broker.start();
      own = new MqttFixture(broker.url);
    });
    after(() => broker.stop());

    it('an ACL-denied publish rejects with PublishRejectedError under MQTT 5 (0x87)', async () => {
      const t = track(own.create({ prefix: 'forbidden' }));
      await t.connect();
      const err = await t.publish(message('x.y', 1)).catch((e) => e);
      assert.ok(err instanceof PublishRejectedError, `got ${err}`);
      assert.match(err.message, /0x87/);
      const v4 = track(own.create({ prefix: 'forbidden', protocolVersion: 4 }));
      await v4.connect();
      await v4.publish(message('x.y', 1)); // 3.1.1: the broker drops it silently (documented)
    });

    it('connection cuts: 10,000 QoS 1 messages, 0 lost, duplicates counted', async function () {
      this.timeout(60_000);
      const proxy = new TcpProxy('127.0.0.1', broker.port);
      await proxy.start();
      const viaProxy = `mqtt://127.0.0.1:${proxy.port}`;
      try {
        const topic = uniq('mq.cuts.');
        const total = 10_000;
        const counts = new Uint16Array(total);
        let received = 0;
        let unexpected = 0;
        const sub = track(own.create({ url: viaProxy, reconnect: { minMs: 50, maxMs: 300 } }));
        sub.on('error', () => undefined);
        await sub.subscribe({ pattern: topic, group: uniq('g'), name: 'h', prefetch: 50 }, async (d) => {
          const i = n(d);
          if (i >= 0 && i < total) counts[i]++;
          else unexpected++;
          received++;
          await d.ack();
        });
        await sub.connect();
        const pub = track(own.create({ url: viaProxy, reconnect: { minMs: 50, maxMs: 300 }, publishTimeoutMs: 45_000 }));
        pub.on('error', () => undefined);
        await pub.connect();
        let acked = 0;
        let failed = 0;
        {
          // A cut while every other batch of 500 is in flight: 10 cuts, whatever the machine's speed.
          for (let start = 0; start < total; start += 500) {
            if ((start / 500) % 2 === 1) setTimeout(() => proxy.cut(100), 2);
            await Promise.all(
              Array.from({ length: Math.min(500, total - start) }, (_, k) =>
                pub.publish(message(topic, start + k)).then(() => acked++, () => failed++),
              ),
            );
          }
        }
        const distinct = () => counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
        await waitFor(() => distinct() === total, 20_000, 'every message after the cuts healed').catch(() => undefined);
        await sleep(300);
        const lost = total - distinct();
        const duplicates = received - distinct() - unexpected;
        console.log(
          `      [mqtt cuts] sent=${total} acked=${acked} failed=${failed} received=${received} lost=${lost} duplicates=${duplicates} unexpected=${unexpected} cuts=${proxy.cuts}`,
        );
        assert.equal(failed, 0, 'every publish resolved');
        assert.equal(lost, 0, 'no message lost');
        assert.equal(unexpected, 0);
        assert.ok(proxy.cuts >= 3, `the connection was cut (${proxy.cuts})`);
      } finally {
        await proxy.stop();
      }
    });

    it('negative control: the same cuts with QoS 0 publishes lose messages, and the checker sees it', async function () {
      this.timeout(30_000);
      const proxy = new TcpProxy('127.0.0.1', broker.port);
      await proxy.start();
      const mqtt = require('mqtt') as typeof import('mqtt');
      const topic = `courier/${uniq('negctl')}`;
      const total = 5000;
      const seen = new Set<number>();
      const sub: MqttClient = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: uniq('neg-sub') });
      sub.on('message', (_t, payload) => seen.add(Number(payload.toString())));
      await sub.subscribeAsync(topic, { qos: 1 });
      const pub: MqttClient = await mqtt.connectAsync(`mqtt://127.0.0.1:${proxy.port}`, {
        protocolVersion: 5,
        clientId: uniq('neg-pub'),
        reconnectPeriod: 50,
        queueQoSZero: false,
      });
      pub.on('error', () => undefined);
      for (let i = 0; i < total; i++) {
        pub.publish(topic, String(i), { qos: 0 }, () => undefined);
        if (i % 500 === 250) proxy.cut(100);
        if (i % 100 === 0) await sleep(10);
      }
      await sleep(500);
      const lost = total - seen.size;
      console.log(`      [mqtt cuts, negative control QoS 0] sent=${total} received=${seen.size} lost=${lost} cuts=${proxy.cuts}`);
      pub.end(true);
      await sub.endAsync();
      await proxy.stop();
      assert.ok(lost > 0, 'the checker detects loss when the protection is off');
    });
  });
});
