/**
 * The exact envelope of replies on MQTT 5, as a raw mqtt.js client receives them
 * (docs/wire-format.md: a reply is a message of its own, with a fresh id, source and time).
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import mqtt from 'mqtt';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { IsString } from 'class-validator';
import { Bus, createBus, Message, silentLogger, Subscribe, Subscriber } from '../../../lib';
import { mqttBroker } from '../../helpers/brokers';
import { uniq, waitFor } from '../../helpers/wait';
import { MqttFixture } from './mqtt-fixture';

const GET = `wire.get-${randomUUID().slice(0, 8)}`;

@Message(GET)
class GetItem {
  @IsString() key!: string;
}

describe('mqtt replies, seen by a raw client', function () {
  this.timeout(30_000);
  let fixture: MqttFixture;
  let bus: Bus | undefined;
  let client: MqttClient | undefined;

  afterEach(async () => {
    await bus?.stop({ timeoutMs: 2000 }).catch(() => undefined);
    await client?.endAsync(true).catch(() => undefined);
    await fixture?.purge();
  });

  it('the exact envelope of a success reply and an error reply', async () => {
    const url = (await mqttBroker()).url;
    fixture = new MqttFixture(url);
    const prefix = uniq('wire');
    @Subscriber({ group: uniq('wire-server') })
    class Server {
      @Subscribe(GetItem)
      async get(q: GetItem) {
        if (q.key === 'bad') throw new RangeError('no such key');
        return { key: q.key, found: true };
      }
    }
    bus = createBus({ transport: fixture.create({ prefix }), source: 'wire-server-svc', logger: silentLogger });
    bus.register(new Server());
    await bus.start();

    client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: uniq('raw-'), clean: true, reconnectPeriod: 0 });
    const replyTopic = `raw-replies/${uniq('r')}`;
    const replies: IPublishPacket[] = [];
    client.on('message', (_t, _p, packet) => replies.push(packet));
    await client.subscribeAsync(replyTopic, { qos: 1 });
    const requests = ['good', 'bad'].map((key) => ({ key, id: randomUUID(), corr: randomBytes(16) }));
    for (const r of requests) {
      await client.publishAsync(`${prefix}/${GET.split('.').join('/')}`, JSON.stringify({ key: r.key }), {
        qos: 1,
        properties: {
          contentType: 'application/json',
          responseTopic: replyTopic,
          correlationData: r.corr,
          userProperties: { specversion: '1.0', id: r.id, source: '/raw', type: GET, time: new Date().toISOString() },
        },
      });
    }
    await waitFor(() => replies.length === 2, 10_000, 'two replies');
    for (const r of requests) {
      const reply = replies.find((p) => p.properties?.correlationData?.equals(r.corr));
      assert.ok(reply, `a reply for ${r.key}`);
      const props = reply.properties!;
      const user = props.userProperties as Record<string, string>;
      const expected = ['causationid', 'correlationid', 'id', 'source', 'specversion', 'time', 'type'];
      if (r.key === 'bad') expected.push('courierreplyerror');
      assert.deepEqual(Object.keys(user).sort(), expected.sort(), `${r.key}: the user properties`);
      assert.equal(user.specversion, '1.0');
      assert.match(user.id, /^[0-9a-f-]{36}$/);
      assert.notEqual(user.id, r.id);
      assert.equal(user.source, 'wire-server-svc');
      assert.equal(user.type, `${GET}.reply`);
      assert.ok(Math.abs(Date.parse(user.time) - Date.now()) < 60_000, `time ${user.time}`);
      assert.equal(user.correlationid, r.id);
      assert.equal(user.causationid, r.id);
      assert.equal(props.contentType, 'application/json');
      assert.equal(reply.retain, false);
      const body = JSON.parse(reply.payload.toString());
      if (r.key === 'bad') {
        assert.equal(user.courierreplyerror, 'RangeError');
        assert.deepEqual(body, { name: 'RangeError', message: 'no such key' });
      } else {
        assert.deepEqual(body, { key: 'good', found: true });
      }
    }
  });
});
