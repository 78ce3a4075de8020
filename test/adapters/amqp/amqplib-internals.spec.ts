/**
 * What adapters/amqp/amqplib-internals.ts relies on in the installed amqplib, against the real
 * broker: each `it` fails when an upgrade removes or changes one of them (docs/client-internals.md),
 * and shows that the fallback is taken where the reach finds nothing.
 */
import assert from 'node:assert/strict';
import amqplib from 'amqplib';
import type { ChannelModel } from 'amqplib';
import { channelWriter, isNack, loginRefusal, socketOf } from '../../../adapters/amqp/amqplib-internals';
import { amqpBroker } from '../../helpers/brokers';
import { uniq } from '../../helpers/wait';
import { rawConnection, urlAs } from './amqp-fixture';

/** The error amqplib.connect rejects with for `url`. */
async function connectError(url: string): Promise<unknown> {
  try {
    const conn = await amqplib.connect(url, { timeout: 10_000 });
    await conn.close();
  } catch (err) {
    return err;
  }
  throw new Error(`connecting to ${url.replace(/:[^:@/]*@/, ':***@')} succeeded`);
}

describe('amqp adapter: what amqplib-internals.ts relies on in amqplib', function () {
  this.timeout(30_000);
  let conn: ChannelModel;

  before(async () => {
    conn = await rawConnection();
  });
  after(async () => {
    await conn?.close().catch(() => undefined);
  });

  it('the socket under a connection (ChannelModel#connection.stream) is there and corkable; none on anything else', () => {
    const socket = socketOf(conn);
    assert.ok(socket, 'amqplib no longer keeps its socket at connection.stream: write coalescing is off');
    assert.equal(typeof socket.prependListener, 'function');
    socket.cork();
    socket.uncork();
    assert.equal(socketOf({} as ChannelModel), undefined, 'the fallback: no socket, writes left as amqplib makes them');
  });

  it('channels have sendMessage, and confirm channels pushConfirmCallback; a channel without them gets channel.publish', async () => {
    const ch = await conn.createChannel();
    const confirm = await conn.createConfirmChannel();
    try {
      assert.ok(channelWriter(ch, false), 'Channel#sendMessage is gone: direct-publish.ts falls back to channel.publish');
      assert.ok(channelWriter(confirm, true), 'ConfirmChannel#pushConfirmCallback is gone: direct-publish.ts falls back to channel.publish');
      assert.equal(channelWriter({ publish: () => true } as never, false), undefined);
    } finally {
      await ch.close().catch(() => undefined);
      await confirm.close().catch(() => undefined);
    }
  });

  it('a refused login and a refused virtual host are told by their handshake text', async () => {
    const badPassword = await connectError(await urlAs('guest', 'not-the-password'));
    assert.deepEqual(loginRefusal(badPassword)?.kind, 'credentials', `amqplib's text changed: ${String((badPassword as Error)?.message)}`);
    assert.doesNotMatch((loginRefusal(badPassword) as { detail: string }).detail, /not-the-password/);

    const noVhost = new URL((await amqpBroker()).url);
    noVhost.pathname = `/${uniq('novhost')}`;
    const vhostErr = await connectError(noVhost.toString());
    assert.deepEqual(loginRefusal(vhostErr), { kind: 'vhost' }, `amqplib's text changed: ${String((vhostErr as Error)?.message)}`);

    // A connection that fails for another reason is no refusal: it is retried like any failure.
    const closedPort = new URL((await amqpBroker()).url);
    closedPort.port = '1';
    assert.equal(loginRefusal(await connectError(closedPort.toString())), undefined);
  });

  it("the broker's basic.nack reaches a confirm callback as 'message nacked'; a closed channel's callbacks as something else", async () => {
    const queue = uniq('internals.nack');
    const confirm = await conn.createConfirmChannel();
    try {
      // A queue that refuses every publish: RabbitMQ nacks it (x-overflow reject-publish, no room).
      await confirm.assertQueue(queue, { durable: false, autoDelete: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      const nack = await new Promise<unknown>((resolve) => confirm.publish('', queue, Buffer.from('x'), {}, (err) => resolve(err)));
      assert.ok(nack instanceof Error, 'the broker nacked the publish');
      assert.equal(isNack(nack), true, `amqplib's nack text changed: ${(nack as Error).message}`);
      await confirm.deleteQueue(queue);

      const closed = new Promise<unknown>((resolve) => confirm.publish('', uniq('internals.none'), Buffer.from('x'), {}, (err) => resolve(err)));
      await confirm.close();
      const err = await closed;
      if (err) assert.equal(isNack(err), false, 'a closed channel is not a nack');
    } finally {
      await confirm.close().catch(() => undefined);
    }
  });
});
