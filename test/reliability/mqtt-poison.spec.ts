/**
 * Issue 7 case 5 for MQTT: poison messages published raw (mqtt.js, MQTT 5 properties) to a topic a
 * Courier bus handles. Each ends in `courier/dead/<topic>` with its reason, error class and attempt
 * count; deliveries per poison message stay within its attempts; the next 1,000 good messages are
 * all handled.
 */
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { uniq, waitFor } from '../helpers/wait';
import { MqttFixture } from '../adapters/mqtt/mqtt-fixture';
import { Ledger } from './ledger';
import { MqttBroker } from './mqtt-broker';
import { countedBus, drain, publishTicks, tickSubscriber } from './mqtt-harness';

describe('reliability: MQTT poison messages (own Mosquitto)', function () {
  this.timeout(40_000);
  let broker: MqttBroker;
  let fixture: MqttFixture;

  before(async () => {
    broker = new MqttBroker({ persistence: false });
    await broker.start();
    fixture = new MqttFixture(broker.url);
  });
  after(async () => {
    await fixture.purge();
    await broker?.dispose();
  });

  it('5. not JSON, invalid, oversized, unknown type, wrong content type, always throws: dead-lettered with reason, class, attempts', async () => {
    const mqtt = require('mqtt') as typeof import('mqtt');
    const attempts = 3;
    const ledger = new Ledger('mqtt poison + 1,000 good');
    const deliveries = new Map<string, number>();
    // The bus's body limit (checked before parsing) is 64 KiB here.
    const sub = countedBus(fixture, undefined, {}, { maxMessageBytes: 64 * 1024 });
    sub.bus.register(
      tickSubscriber(
        uniq('g'),
        (tick, ctx) => {
          deliveries.set(ctx.envelope.id, (deliveries.get(ctx.envelope.id) ?? 0) + 1);
          if (tick.n < 0) throw new RangeError('this handler always fails for negative n');
          ledger.received(ctx.envelope.id);
        },
        { prefetch: 20, attempts },
      ),
    );
    const dead: Array<{ topic: string; props: Record<string, string> }> = [];
    const raw: MqttClient = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: uniq('poison-raw') });
    try {
      raw.on('message', (topic, _p, packet) => dead.push({ topic, props: (packet.properties?.userProperties ?? {}) as Record<string, string> }));
      await raw.subscribeAsync('courier/dead/#', { qos: 1 });
      await sub.bus.start();

      const envelope = (id: string, type = 'rel.mqtt.tick') => ({ id, type, source: 'poisoner', specversion: '1.0' });
      const poison: Array<{ id: string; body: string | Buffer; contentType?: string; type?: string; reason: string; error: string }> = [
        { id: 'p-notjson', body: 'this is {not json', reason: 'malformed', error: 'MalformedMessageError' },
        { id: 'p-invalid', body: JSON.stringify({ n: 'seven' }), reason: 'invalid', error: 'PayloadValidationError' },
        { id: 'p-oversized', body: JSON.stringify({ n: 1, pad: 'x'.repeat(100 * 1024) }), reason: 'malformed', error: 'MalformedMessageError' },
        { id: 'p-unknown', body: JSON.stringify({ n: 1 }), type: 'rel.mqtt.other', reason: 'unknown-type', error: 'UnknownMessageTypeError' },
        { id: 'p-ctype', body: JSON.stringify({ n: 1 }), contentType: 'text/plain', reason: 'malformed', error: 'MalformedMessageError' },
        { id: 'p-throws', body: JSON.stringify({ n: -1 }), reason: 'exhausted', error: 'RangeError' },
      ];
      for (const p of poison) {
        await raw.publishAsync('courier/rel/mqtt/tick', p.body, {
          qos: 1,
          properties: { contentType: p.contentType ?? 'application/json', userProperties: envelope(p.id, p.type) },
        });
      }
      const pub = countedBus(fixture, ledger);
      await pub.bus.start();
      const r = await publishTicks(pub.bus, ledger, 1000);
      await waitFor(() => dead.length >= poison.length, 10_000, 'every poison message in the dead letter').catch(() => undefined);
      await drain(ledger, 10_000);
      const f = ledger.report();
      const byId = new Map(dead.map((d) => [d.props.id, d]));
      for (const p of poison) {
        const d = byId.get(p.id);
        console.log(`      [mqtt poison] ${p.id}: ${d ? `${d.props.courierdeadreason} ${d.props.courierdeaderror} attempt ${d.props.courierattempt}` : 'NOT dead-lettered'}; handler deliveries ${deliveries.get(p.id) ?? 0}`);
      }
      for (const p of poison) {
        const d = byId.get(p.id);
        assert.ok(d, `${p.id} dead-lettered`);
        assert.equal(d.topic, 'courier/dead/rel/mqtt/tick');
        assert.equal(d.props.courierdeadreason, p.reason, `${p.id} reason`);
        assert.equal(d.props.courierdeaderror, p.error, `${p.id} error class`);
        // On the wire an attempt count of 1 is left out (docs/wire-format.md).
        assert.equal(d.props.courierattempt ?? '1', p.id === 'p-throws' ? String(attempts) : '1', `${p.id} attempt count`);
        assert.ok((deliveries.get(p.id) ?? 0) <= (p.id === 'p-throws' ? attempts : 0), `${p.id} handler deliveries within its attempts`);
      }
      assert.equal(dead.length, poison.length, 'nothing else dead-lettered');
      assert.equal(r.failed, 0);
      assert.equal(f.lost, 0, 'the next 1,000 good messages all handled');
      assert.equal(f.unexpected, 0);
      await pub.bus.stop();
    } finally {
      await raw.endAsync();
      await sub.bus.stop({ timeoutMs: 1000 });
    }
  });
});
