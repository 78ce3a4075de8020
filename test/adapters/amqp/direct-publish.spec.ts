/**
 * direct-publish.ts writes messages with amqplib's internals instead of `channel.publish`: the
 * broker must receive exactly what `channel.publish` sends for the same options. Real RabbitMQ.
 */
import assert from 'node:assert/strict';
import type { Channel, ConfirmChannel, GetMessage, Options } from 'amqplib';
import { publishConfirmedOn, publishFields, publishOn } from '../../../adapters/amqp/direct-publish';
import { uniq } from '../../helpers/wait';
import { rawConnection } from './amqp-fixture';

/** Every property Courier sets, and some it never does, with the headers table it sends. */
const OPTIONS: Options.Publish = {
  persistent: true,
  contentType: 'application/json',
  contentEncoding: 'identity',
  headers: { cloudEvents_specversion: '1.0', cloudEvents_time: '2026-11-28T10:00:00.000Z', 'x-n': 7, 'x-nested': { a: 'b' } },
  messageId: 'm-1',
  correlationId: 'c-1',
  replyTo: 'somewhere',
  expiration: 60_000,
  type: 'order.placed',
  appId: 'orders',
  timestamp: 1_795_000_000,
  priority: 3,
  userId: 'guest',
};

/** What the broker delivers, without the fields that differ per delivery. */
function received(msg: GetMessage) {
  const { deliveryTag, redelivered, messageCount, ...fields } = msg.fields;
  void deliveryTag, redelivered, messageCount;
  return { fields, properties: msg.properties, content: msg.content.toString('utf8') };
}

async function roundTrip(ch: Channel, queue: string, send: (content: Buffer) => void): Promise<ReturnType<typeof received>> {
  send(Buffer.from('{"n":1}'));
  for (let i = 0; i < 100; i++) {
    const msg = await ch.get(queue, { noAck: true });
    if (msg) return received(msg);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing arrived in ${queue} within 2 s`);
}

describe('amqp adapter: publishing without Args.publish', function () {
  this.timeout(20_000);
  const queue = uniq('direct.publish');

  after(async () => {
    const conn = await rawConnection();
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue).catch(() => undefined);
    await conn.close();
  });

  it('the broker receives the same message as from channel.publish, on a channel and on a confirm channel', async () => {
    const conn = await rawConnection();
    try {
      const ch = await conn.createChannel();
      await ch.assertQueue(queue, { durable: false, arguments: { 'x-max-priority': 5 } });
      const expected = await roundTrip(ch, queue, (c) => ch.publish('', queue, c, OPTIONS));
      assert.equal(expected.properties.headers?.cloudEvents_time, '2026-11-28T10:00:00.000Z');
      assert.equal(expected.properties.deliveryMode, 2);

      assert.deepEqual(await roundTrip(ch, queue, (c) => assert.equal(publishOn(ch, { exchange: '', routingKey: queue, content: c, options: OPTIONS }), true)), expected);

      const confirm: ConfirmChannel = await conn.createConfirmChannel();
      let confirmed: unknown = 'not yet';
      const viaConfirm = await roundTrip(ch, queue, (c) => {
        publishConfirmedOn(confirm, { exchange: '', routingKey: queue, content: c, fields: publishFields('', queue, OPTIONS), options: undefined }, (err) => (confirmed = err));
      });
      assert.deepEqual(viaConfirm, expected);
      await confirm.waitForConfirms();
      assert.equal(confirmed, null, 'the confirm callback ran, with no error');

      // A channel without the internals (another amqplib): the fields go to channel.publish as its options.
      const withoutInternals = new Proxy(confirm, {
        get: (target, key) => {
          if (key === 'sendMessage') return undefined;
          const value = Reflect.get(target, key, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      let fallbackConfirmed: unknown = 'not yet';
      const viaFallback = await roundTrip(ch, queue, (c) => {
        publishConfirmedOn(withoutInternals, { exchange: '', routingKey: queue, content: c, fields: publishFields('', queue, OPTIONS), options: undefined }, (err) => (fallbackConfirmed = err));
      });
      assert.deepEqual(viaFallback, expected);
      await confirm.waitForConfirms();
      assert.equal(fallbackConfirmed, null);

      // CC is converted by amqplib itself: such a message goes through channel.publish.
      assert.equal(publishFields('', queue, { ...OPTIONS, CC: ['other'] }), undefined);
      const withCc = await roundTrip(ch, queue, (c) => publishOn(ch, { exchange: '', routingKey: queue, content: c, options: { ...OPTIONS, CC: ['other'] } }));
      assert.deepEqual(withCc.properties.headers?.CC, ['other']);
    } finally {
      await conn.close();
    }
  });
});
