/**
 * The exact envelope of replies on the memory transport, as a plain transport client (no bus)
 * receives them (docs/wire-format.md: a reply is a message of its own, fresh id, source, time).
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { IsString } from 'class-validator';
import { MemoryBroker, memoryTransport } from '../../../adapters/memory';
import { createBus, Message, silentLogger, Subscribe, Subscriber } from '../../../lib';
import { Headers } from '../../../lib/transport';

@Message('memory.wire.get')
class GetItem {
  @IsString() key!: string;
}

describe('memory replies, seen by a plain transport client', () => {
  it('the exact envelope of a success reply and an error reply', async () => {
    @Subscriber({ group: 'server' })
    class Server {
      @Subscribe(GetItem)
      async get(q: GetItem) {
        if (q.key === 'bad') throw new RangeError('no such key');
        return { key: q.key, found: true };
      }
    }
    const broker = new MemoryBroker();
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'wire-server-svc', logger: silentLogger });
    bus.register(new Server());
    await bus.start();
    const client = memoryTransport({ broker });
    await client.connect();
    try {
      for (const key of ['good', 'bad']) {
        const id = randomUUID();
        const reply = await client.request(
          {
            topic: 'memory.wire.get',
            body: Buffer.from(JSON.stringify({ key })),
            headers: { specversion: '1.0', id, source: '/raw', type: 'memory.wire.get', time: new Date().toISOString(), datacontenttype: 'application/json' },
          },
          { timeoutMs: 2000 },
        );
        const h = reply.headers;
        const expected = ['causationid', 'correlationid', 'courierattempt', 'datacontenttype', 'id', 'source', 'specversion', 'time', 'type'];
        if (key === 'bad') expected.push('courierreplyerror');
        assert.deepEqual(Object.keys(h).sort(), expected.sort(), `${key}: the headers`);
        assert.equal(h[Headers.specversion], '1.0');
        assert.match(h[Headers.id], /^[0-9a-f-]{36}$/);
        assert.notEqual(h[Headers.id], id);
        assert.equal(h[Headers.source], 'wire-server-svc');
        assert.equal(h[Headers.type], 'memory.wire.get.reply');
        assert.ok(Math.abs(Date.parse(h[Headers.time]) - Date.now()) < 60_000);
        assert.equal(h[Headers.correlationid], id);
        assert.equal(h[Headers.causationid], id);
        assert.equal(h[Headers.datacontenttype], 'application/json');
        assert.equal(h[Headers.attempt], '1');
        const body = JSON.parse(reply.body.toString());
        if (key === 'bad') {
          assert.equal(h[Headers.replyError], 'RangeError');
          assert.deepEqual(body, { name: 'RangeError', message: 'no such key' });
        } else assert.deepEqual(body, { key: 'good', found: true });
      }
    } finally {
      await client.close();
      await bus.stop();
    }
  });
});
