/**
 * Issue 14, point 4, under MQTT 3.1.1, which has no message expiry on the wire: the request
 * carries its deadline (`courierexpiresat`) and the consumer drops it unhandled once past. (MQTT 5
 * and the other transports: the conformance case "a request expires with its timeout".)
 */
import assert from 'node:assert/strict';
import { Headers, OutgoingMessage } from '../../../lib/transport';
import { mqttBroker } from '../../helpers/brokers';
import { sleep, uniq, waitFor } from '../../helpers/wait';
import { MqttFixture } from './mqtt-fixture';

const msg = (topic: string, n: number): OutgoingMessage => ({
  topic,
  body: Buffer.from(JSON.stringify({ n })),
  headers: { [Headers.id]: uniq('id'), [Headers.type]: topic, [Headers.source]: 'expiry', [Headers.specversion]: '1.0', [Headers.datacontenttype]: 'application/json' },
});

describe('mqtt 3.1.1: request expiry', function () {
  this.timeout(20_000);
  let fixture: MqttFixture;
  before(async () => {
    fixture = new MqttFixture((await mqttBroker()).url, { protocolVersion: 4 });
  });
  after(() => fixture.purge());

  it('a group member back after the timeout never handles the expired request; a plain message waits for it', async () => {
    const topic = uniq('x.expire4.');
    const spec = { pattern: topic, group: uniq('g'), name: 'h', prefetch: 10 };
    const member = fixture.create();
    await member.subscribe(spec, async (d) => d.ack());
    await member.connect();
    await member.close();
    const client = fixture.create();
    await client.connect();
    await assert.rejects(client.request(msg(topic, 1), { timeoutMs: 300 }), { name: 'RequestTimeoutError' });
    await sleep(400);
    await client.publish(msg(topic, 2));
    const back = fixture.create();
    const got: number[] = [];
    await back.subscribe(spec, async (d) => {
      got.push(JSON.parse(d.body.toString()).n);
      await d.ack();
    });
    await back.connect();
    try {
      await waitFor(() => got.includes(2), 5000, 'the plain message');
      await sleep(200);
      assert.deepEqual(got, [2], 'the expired request was not handled');
    } finally {
      await Promise.all([client.close(), back.close()]);
    }
  });
});
