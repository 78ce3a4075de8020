import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createBus, Delivery, Headers, MessageContext, signedTransport, silentLogger, Subscribe, Subscriber } from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { OrderPlaced } from './fixtures';
import { sleep, waitFor } from '../helpers/wait';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

async function consumer(broker: MemoryBroker, keys: Record<string, Buffer>, encrypt = false) {
  const handled: string[] = [];
  const dead: Delivery[] = [];
  @Subscriber({ group: 'signed' })
  class S {
    @Subscribe(OrderPlaced)
    async on(e: OrderPlaced, _ctx: MessageContext) {
      handled.push(e.orderId);
    }
  }
  const bus = createBus({
    transport: signedTransport(memoryTransport({ broker }), { keys, currentKeyId: Object.keys(keys)[0], encrypt }),
    source: 'consumer',
    logger: silentLogger,
  });
  bus.register(new S());
  await bus.start();
  const dl = memoryTransport({ broker });
  await dl.subscribeDeadLetters({ pattern: 'order.placed', group: 'signed', name: 'S.on', prefetch: 10 }, async (d) => {
    dead.push(d);
    await d.ack();
  });
  await dl.connect();
  return { handled, dead, stop: async () => (await bus.stop(), await dl.close()) };
}

function producer(broker: MemoryBroker, keys: Record<string, Buffer>, currentKeyId: string, encrypt = false) {
  return createBus({ transport: signedTransport(memoryTransport({ broker }), { keys, currentKeyId, encrypt }), source: 'p', logger: silentLogger });
}

describe('signed and encrypted messages', () => {
  it('signed messages are handled; unsigned, tampered and unknown-key ones are dead-lettered with the reason', async () => {
    const broker = new MemoryBroker();
    const c = await consumer(broker, { k1 });
    const p = producer(broker, { k1 }, 'k1');
    await p.start();
    await p.publish(OrderPlaced, { orderId: 'good' });

    // Capture what a signed producer puts on the wire, then alter it.
    const spy = memoryTransport({ broker });
    let wire: Delivery | undefined;
    await spy.subscribe({ pattern: 'order.placed', group: 'spy', name: 'spy', prefetch: 1 }, async (d) => {
      wire ??= d;
      await d.ack();
    });
    await spy.connect();
    await p.publish(OrderPlaced, { orderId: 'original' });
    await waitFor(() => !!wire, 2000, 'the wire copy');
    const raw = memoryTransport({ broker });
    await raw.connect();
    const tampered = Buffer.from(wire!.body.toString().replace('original', 'tampered'));
    await raw.publish({ topic: 'order.placed', body: tampered, headers: { ...wire!.headers, [Headers.id]: 'tampered' } });
    await raw.publish({ topic: 'order.placed', body: wire!.body, headers: { ...wire!.headers, [Headers.source]: 'evil' } });
    const { [Headers.signature]: _, ...unsigned } = wire!.headers;
    await raw.publish({ topic: 'order.placed', body: wire!.body, headers: { ...unsigned, [Headers.id]: 'unsigned' } });
    const other = producer(broker, { k9: randomBytes(32) }, 'k9');
    await other.start();
    await other.publish(OrderPlaced, { orderId: 'wrong-key' });

    await waitFor(() => c.dead.length === 4, 2000, 'four dead letters');
    await sleep(50);
    assert.deepEqual(c.handled.sort(), ['good', 'original']);
    for (const d of c.dead) {
      assert.equal(d.headers[Headers.deadReason], 'malformed');
      assert.equal(d.headers[Headers.deadError], 'SignatureError');
    }
    assert.match(c.dead.map((d) => d.headers[Headers.deadMessage]).join('|'), /unknown key "k9"/);
    assert.match(c.dead.map((d) => d.headers[Headers.deadMessage]).join('|'), /not signed/);
    await Promise.all([c.stop(), p.stop(), other.stop(), spy.close(), raw.close()]);
  });

  it('key rotation: a consumer that knows both keys accepts messages signed with either', async () => {
    const broker = new MemoryBroker();
    const c = await consumer(broker, { k1, k2 });
    const old = producer(broker, { k1 }, 'k1');
    const rotated = producer(broker, { k1, k2 }, 'k2');
    await old.start();
    await rotated.start();
    await old.publish(OrderPlaced, { orderId: 'old' });
    await rotated.publish(OrderPlaced, { orderId: 'new' });
    await waitFor(() => c.handled.length === 2, 2000, 'both');
    assert.equal(c.dead.length, 0);
    await Promise.all([c.stop(), old.stop(), rotated.stop()]);
  });

  it('AES-256-GCM: the body on the wire is not readable, and the consumer gets the clear payload', async () => {
    const broker = new MemoryBroker();
    const c = await consumer(broker, { k1 }, true);
    const spy = memoryTransport({ broker });
    const wire: Buffer[] = [];
    await spy.subscribe({ pattern: 'order.placed', group: 'spy', name: 'spy', prefetch: 1 }, async (d) => {
      wire.push(d.body);
      await d.ack();
    });
    await spy.connect();
    const p = producer(broker, { k1 }, 'k1', true);
    await p.start();
    await p.publish(OrderPlaced, { orderId: 'secret-order-42' });
    await waitFor(() => c.handled.length === 1 && wire.length === 1, 2000, 'delivery');
    assert.deepEqual(c.handled, ['secret-order-42']);
    assert.ok(!wire[0].toString('latin1').includes('secret-order-42'));
    await Promise.all([c.stop(), p.stop(), spy.close()]);
  });
});
