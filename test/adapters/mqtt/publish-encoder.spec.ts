/**
 * encodePublish must write exactly the bytes mqtt-packet writes for the same PUBLISH packet, and
 * leave to mqtt-packet every packet it does not fully understand. The packets that go through
 * Mosquitto with it are covered by the MQTT conformance suite; here the bytes are compared.
 */
import assert from 'node:assert/strict';
import mqttPacket from 'mqtt-packet';
import { encodePuback, encodePublish, PublishPacketLike } from '../../../adapters/mqtt/publish-encoder';

function reference(packet: PublishPacketLike, protocolVersion: 4 | 5): Buffer {
  return mqttPacket.generate({ cmd: 'publish', ...packet } as mqttPacket.IPublishPacket, { protocolVersion });
}

const CLOUD_EVENT = {
  specversion: '1.0',
  id: '0b7c7a0e-3f7e-4a4e-9a8e-0000000000af',
  source: 'orders',
  type: 'order.placed',
  time: '2026-11-28T10:00:00.000Z',
};

/** Payload lengths around the boundaries of the remaining length's variable-length integer. */
const PAYLOADS = [0, 1, 100, 127 - 40, 200, 16_383 - 300, 16_384, 70_000, 2_097_152].map((n) => Buffer.alloc(n, n % 251));

const PROPERTY_SETS: Array<Record<string, unknown> | undefined> = [
  undefined,
  {},
  { userProperties: CLOUD_EVENT },
  { userProperties: CLOUD_EVENT, contentType: 'application/json' },
  { contentType: 'application/json', userProperties: { ...CLOUD_EVENT, 'ünïcødé': 'välue ✓', empty: '' } },
  { responseTopic: 'courier/reply/abc', correlationData: Buffer.from('0123456789abcdef'), userProperties: CLOUD_EVENT },
  { topicAlias: 7, messageExpiryInterval: 3600, contentType: 'text/plain' },
];

describe('mqtt adapter: PUBLISH packets as one buffer', () => {
  it('the same bytes as mqtt-packet, over QoS, flags, topics, payload sizes and properties, MQTT 3.1.1 and 5', () => {
    let compared = 0;
    for (const protocolVersion of [4, 5] as const) {
      for (const qos of [0, 1, 2] as const) {
        for (const payload of PAYLOADS) {
          for (const properties of PROPERTY_SETS) {
            for (const [dup, retain, topic] of [
              [false, false, 'courier/order.placed'],
              [true, true, 'ünïcødé/tøpic'],
              [false, true, ''],
            ] as const) {
              const packet = { cmd: 'publish', topic, payload, qos, dup, retain, messageId: qos ? 1 + (payload.length % 65_535) : undefined, properties };
              const ours = encodePublish(packet, protocolVersion);
              assert.ok(ours, `encoded: ${JSON.stringify({ protocolVersion, qos, n: payload.length, properties })}`);
              assert.ok(ours.equals(reference(packet, protocolVersion)), `same bytes: ${JSON.stringify({ protocolVersion, qos, dup, retain, topic, n: payload.length, properties })}`);
              compared++;
            }
          }
        }
      }
    }
    assert.equal(compared, 2 * 3 * PAYLOADS.length * PROPERTY_SETS.length * 3);
  });

  it('the bytes parse back to the packet with mqtt-packet', () => {
    const packet = { cmd: 'publish', topic: 'a/b', payload: Buffer.from('{"n":1}'), qos: 1, messageId: 42, dup: false, retain: false, properties: { userProperties: CLOUD_EVENT, contentType: 'application/json' } };
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    let parsed: mqttPacket.IPublishPacket | undefined;
    parser.on('packet', (p) => (parsed = p as mqttPacket.IPublishPacket));
    parser.parse(encodePublish(packet, 5)!);
    assert.ok(parsed);
    assert.equal(parsed.topic, 'a/b');
    assert.equal(parsed.messageId, 42);
    assert.equal(parsed.qos, 1);
    assert.equal(String(parsed.payload), '{"n":1}');
    assert.deepEqual({ ...parsed.properties, userProperties: { ...parsed.properties?.userProperties } }, { userProperties: CLOUD_EVENT, contentType: 'application/json' });
  });

  it('leaves to mqtt-packet what it does not write itself', () => {
    const base = { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 1 };
    const declined: Array<[string, PublishPacketLike]> = [
      ['a string payload', { ...base, payload: 'x' }],
      ['a Buffer topic', { ...base, topic: Buffer.from('t') }],
      ['QoS 1 without a message id', { ...base, messageId: undefined }],
      ['a message id over 65535', { ...base, messageId: 70_000 }],
      ['a user property with several values', { ...base, properties: { userProperties: { k: ['a', 'b'] } } }],
      ['a user property that is not a string', { ...base, properties: { userProperties: { k: 1 } } }],
      ['a property it does not know', { ...base, properties: { payloadFormatIndicator: true } }],
      ['a subscription identifier', { ...base, properties: { subscriptionIdentifier: 3 } }],
      ['properties that are an array', { ...base, properties: [] }],
      ['empty user properties (mqtt-packet writes no packet for them)', { ...base, properties: { userProperties: {} } }],
      ['a topic over 65535 bytes', { ...base, topic: 'x'.repeat(70_000) }],
    ];
    for (const [what, packet] of declined) assert.equal(encodePublish(packet, 5), undefined, what);
    // MQTT 3.1.1 has no properties: mqtt-packet ignores them, so does the encoder.
    const v4 = { ...base, properties: { payloadFormatIndicator: true } };
    assert.ok(encodePublish(v4, 4)!.equals(reference(v4, 4)));
  });

  it('PUBACK: the same four bytes as mqtt-packet; other acknowledgements are left to it', () => {
    for (const protocolVersion of [4, 5] as const) {
      for (const messageId of [1, 255, 256, 65_535]) {
        const packet = { cmd: 'puback' as const, messageId, reasonCode: 0 };
        const ours = encodePuback(packet, protocolVersion);
        assert.ok(ours?.equals(mqttPacket.generate(packet, { protocolVersion })), `${protocolVersion} ${messageId}`);
      }
    }
    assert.equal(encodePuback({ messageId: 1, reasonCode: 0x10 }, 5), undefined, 'a reason code other than success');
    assert.equal(encodePuback({ messageId: 1, reasonCode: 0, properties: { reasonString: 'x' } }, 5), undefined, 'properties');
    assert.equal(encodePuback({ messageId: 70_000, reasonCode: 0 }, 5), undefined, 'a message id over 65535');
  });
});
