/**
 * The meter's AMQP queue-depth poll (MeterOptions.queueDepthEveryMs) starts at the first read of
 * the meter, not when the bus starts: a bus nobody reads opens no channel for it and sends no
 * passive queue.declare. Seen from outside, in the AMQP frames the bus writes through a TCP proxy.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { amqpTransport } from '../../../adapters/amqp';
import { createBus, Meter, MessageContext, silentLogger, Subscribe, Subscriber } from '../../../lib';
import type { SubscriptionSpec } from '../../../lib';
import { ProductPriceChanged } from '../../core/fixtures';
import { amqpBroker } from '../../helpers/brokers';
import { TcpProxy } from '../../helpers/tcp-proxy';
import { sleep, uniq, waitFor } from '../../helpers/wait';
import { deleteQueues } from './amqp-fixture';

const POLL_MS = 100;

/** What the client asked for, from its AMQP 0-9-1 method frames. */
interface Traffic {
  channelOpens: number;
  /** The queue of each passive queue.declare (a depth check). */
  passiveDeclares: string[];
}

/** Parses the client side of every connection into `traffic` (frames may span chunks). */
function countMethods(traffic: Traffic): (chunk: Buffer, client: net.Socket) => void {
  const pending = new WeakMap<net.Socket, Buffer>();
  return (chunk, client) => {
    const before = pending.get(client);
    let buf = before ? Buffer.concat([before, chunk]) : chunk;
    if (!before && buf.subarray(0, 4).toString('latin1') === 'AMQP') buf = buf.subarray(8); // protocol header
    // A frame: type (1), channel (2), size (4), payload, 0xCE. A method payload: class (2), method (2), arguments.
    while (buf.length >= 7 && buf.length >= 8 + buf.readUInt32BE(3)) {
      const size = buf.readUInt32BE(3);
      if (buf[0] === 1) {
        const [cls, method, args] = [buf.readUInt16BE(7), buf.readUInt16BE(9), buf.subarray(11, 7 + size)];
        if (cls === 20 && method === 10) traffic.channelOpens++;
        // queue.declare: reserved (2), queue (shortstr), then the bits, passive first.
        if (cls === 50 && method === 10 && args[3 + args[2]] & 1) traffic.passiveDeclares.push(args.subarray(3, 3 + args[2]).toString('utf8'));
      }
      buf = buf.subarray(8 + size);
    }
    pending.set(client, buf);
  };
}

describe('amqp: the meter polls queue depths only once they are read', function () {
  this.timeout(60_000);
  let proxy: TcpProxy;
  let url: string;
  let traffic: Traffic;
  const groups: string[] = [];

  beforeEach(async () => {
    const endpoint = await amqpBroker();
    proxy = new TcpProxy(endpoint.host, endpoint.port);
    await proxy.start();
    traffic = { channelOpens: 0, passiveDeclares: [] };
    proxy.onClientData = countMethods(traffic);
    url = endpoint.url.replace(`${endpoint.host}:${endpoint.port}`, `127.0.0.1:${proxy.port}`);
  });

  afterEach(async () => {
    await proxy.stop();
    await deleteQueues(groups.splice(0).map((group) => ({ group, name: 'Prices.onPrice' }) as SubscriptionSpec));
  });

  async function startBus(queueDepthEveryMs: number) {
    const group = uniq('depthpoll-');
    groups.push(group);
    @Subscriber({ group })
    class Prices {
      @Subscribe(ProductPriceChanged)
      async onPrice(_e: ProductPriceChanged, _ctx: MessageContext): Promise<void> {}
    }
    const bus = createBus({ transport: amqpTransport({ url }), source: 'depth-poll', logger: silentLogger, meter: new Meter(Date.now, { queueDepthEveryMs }) });
    bus.register(new Prices());
    await bus.start();
    return { bus, handler: `${group}.Prices.onPrice`, queue: `${group}.Prices.onPrice` };
  }

  it(`no depth channel and no passive declare while nobody reads (10 intervals of ${POLL_MS} ms); the first bus.metrics() starts them`, async () => {
    const { bus, handler, queue } = await startBus(POLL_MS);
    try {
      await sleep(10 * POLL_MS);
      const opened = traffic.channelOpens;
      assert.ok(opened > 0, 'the proxy sees the bus open its channels');
      assert.deepEqual(traffic.passiveDeclares, [], 'no depth check before the first read');
      assert.equal(bus.metrics().handlers[handler].brokerQueue, null, 'the first snapshot has no depth yet');
      await waitFor(() => traffic.passiveDeclares.length >= 3, 10_000, 'three depth checks after the read');
      assert.deepEqual(new Set(traffic.passiveDeclares), new Set([queue]), 'each on the subscription queue');
      assert.equal(traffic.channelOpens, opened + 1, 'one channel for the checks');
      await waitFor(() => bus.metrics().handlers[handler].brokerQueue !== null, 10_000, 'the depth in the snapshot');
      assert.deepEqual({ ...bus.metrics().handlers[handler].brokerQueue!, at: 0 }, { queue, messages: 0, consumers: 1, at: 0 });
      console.log(`      before the read: ${opened} channels opened, 0 passive declares; after it: +${traffic.channelOpens - opened} channel, ${traffic.passiveDeclares.length} passive declares`);
    } finally {
      await bus.stop();
    }
  });

  it('control: with queueDepthEveryMs 0 a read starts nothing either', async () => {
    const { bus, handler } = await startBus(0);
    try {
      const opened = traffic.channelOpens;
      bus.metrics();
      await sleep(10 * POLL_MS);
      assert.deepEqual(traffic.passiveDeclares, []);
      assert.equal(traffic.channelOpens, opened);
      assert.equal(bus.metrics().handlers[handler].brokerQueue, null);
    } finally {
      await bus.stop();
    }
  });
});
