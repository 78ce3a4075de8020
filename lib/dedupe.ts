/**
 * Idempotency: at-least-once delivery plus a record of what was handled gives effectively-once
 * handling. The bus asks `has` before a handler runs and calls `add` after it succeeded, before the
 * ack. A crash between a handler's effect and `add` can still repeat that effect: handlers whose
 * effect must be exactly-once write it and the envelope id in one transaction of their own store.
 */
export interface DedupeStore {
  /** True when `key` was recorded (and has not expired). */
  has(key: string): Promise<boolean>;
  /** Records `key` for `ttlMs`. */
  add(key: string, ttlMs: number): Promise<void>;
}

/** Bounded in-memory store: the oldest keys go first when `maxKeys` is reached. */
export class MemoryDedupeStore implements DedupeStore {
  private readonly keys = new Map<string, number>();
  constructor(private readonly maxKeys = 100_000, private readonly clock: () => number = Date.now) {}
  async has(key: string): Promise<boolean> {
    const until = this.keys.get(key);
    if (until === undefined) return false;
    if (until < this.clock()) {
      this.keys.delete(key);
      return false;
    }
    return true;
  }
  async add(key: string, ttlMs: number): Promise<void> {
    this.keys.delete(key);
    this.keys.set(key, this.clock() + ttlMs);
    while (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }
  get size(): number {
    return this.keys.size;
  }
}

/** The two Redis commands the store needs; an ioredis or node-redis client fits with a line of glue. */
export interface RedisLike {
  exists(key: string): Promise<number>;
  set(key: string, value: string, mode: 'PX', ttlMs: number): Promise<unknown>;
}

/** Shared store for many instances of a service (keys expire with Redis's own TTL). */
export class RedisDedupeStore implements DedupeStore {
  constructor(private readonly redis: RedisLike, private readonly prefix = 'courier:dedupe:') {}
  async has(key: string): Promise<boolean> {
    return (await this.redis.exists(this.prefix + key)) > 0;
  }
  async add(key: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.prefix + key, '1', 'PX', ttlMs);
  }
}
