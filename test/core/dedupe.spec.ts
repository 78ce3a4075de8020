import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { MemoryDedupeStore, RedisDedupeStore } from '../../lib';
import { uniq } from '../helpers/wait';

describe('dedupe stores', () => {
  it('memory: bounded, oldest keys evicted first, entries expire', async () => {
    let now = 0;
    const store = new MemoryDedupeStore(3, () => now);
    for (const k of ['a', 'b', 'c', 'd']) await store.add(k, 1000);
    assert.equal(store.size, 3);
    assert.equal(await store.has('a'), false, 'evicted');
    assert.equal(await store.has('d'), true);
    now = 1001;
    assert.equal(await store.has('d'), false, 'expired');
  });

  it('redis (127.0.0.1:6379, or COURIER_REDIS_URL): shared between instances, expiring', async () => {
    const url = process.env.COURIER_REDIS_URL ?? 'redis://127.0.0.1:6379';
    const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
    await redis.connect().catch((err) => {
      throw new Error(`Redis does not answer at ${url}: ${err.message}`);
    });
    const prefix = `${uniq('courier-test:')}:`;
    try {
      const a = new RedisDedupeStore(redis, prefix);
      const b = new RedisDedupeStore(redis, prefix);
      assert.equal(await a.has('id-1'), false);
      await a.add('id-1', 200);
      assert.equal(await b.has('id-1'), true, 'seen by another instance');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await b.has('id-1'), false, 'expired');
    } finally {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });
});
