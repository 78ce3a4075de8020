/**
 * Idempotency: at-least-once delivery plus a record of what was handled gives effectively-once
 * handling. Before a handler runs, the bus claims the message's key (`claim`); after the handler
 * succeeded, before the ack, it marks the key done (`complete`); when the handler failed it drops
 * the claim (`release`) so that the retry can claim it. Two copies of one message in flight at
 * once: one claims, the other finds the key `busy` and waits (docs/failure-policy.md). A crash
 * between a handler's effect and `complete` can still repeat that effect: handlers whose effect
 * must be exactly-once write it and the envelope id in one transaction of their own store.
 */
import { randomUUID } from 'node:crypto';

/**
 * What `claim` found: `claimed` (the caller holds the key until it completes or releases it, or
 * until the lease expires), `done` (handled already: skip it), `busy` (another holder's claim,
 * its lease not expired).
 */
export type ClaimResult = 'claimed' | 'done' | 'busy';

export interface DedupeStore {
  /**
   * Claims `key` for `leaseMs` unless it is done or claimed. A claim not completed or released
   * within its lease (the holder died) expires, and the key can be claimed again.
   */
  claim(key: string, leaseMs: number): Promise<ClaimResult>;
  /** Marks `key` done for `ttlMs` (the handler succeeded), whoever claimed it. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Drops this store's claim of `key` (the handler failed); a key done, or claimed by another, stays. */
  release(key: string): Promise<void>;
}

interface MemoryEntry {
  done: boolean;
  until: number;
}

/** Bounded in-memory store: the oldest keys go first when `maxKeys` is reached. */
export class MemoryDedupeStore implements DedupeStore {
  private readonly keys = new Map<string, MemoryEntry>();
  constructor(private readonly maxKeys = 100_000, private readonly clock: () => number = Date.now) {}
  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const e = this.keys.get(key);
    if (e !== undefined && e.until >= this.clock()) return e.done ? 'done' : 'busy';
    this.put(key, { done: false, until: this.clock() + leaseMs });
    return 'claimed';
  }
  async complete(key: string, ttlMs: number): Promise<void> {
    this.put(key, { done: true, until: this.clock() + ttlMs });
  }
  async release(key: string): Promise<void> {
    if (this.keys.get(key)?.done === false) this.keys.delete(key);
  }
  get size(): number {
    return this.keys.size;
  }
  private put(key: string, entry: MemoryEntry): void {
    this.keys.delete(key);
    this.keys.set(key, entry);
    while (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }
}

/**
 * The Redis commands the store needs (an ioredis client fits as it is; node-redis with a line
 * of glue): `SET key value PX ms [NX]` answering `'OK'` (or null when NX found the key), `GET`,
 * and `EVAL` of a one-key script.
 */
export interface RedisLike {
  set(key: string, value: string, px: 'PX', ttlMs: number): Promise<unknown>;
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<unknown>;
  get(key: string): Promise<string | null>;
  eval(script: string, numKeys: number, key: string, arg: string): Promise<unknown>;
}

const CLAIMED = 'claimed:';
const DONE = 'done';
/** Deletes KEYS[1] only while it holds ARGV[1] (this store's claim token). */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/**
 * Shared store for many instances of a service (keys expire with Redis's own TTL). A claim is
 * `SET key claimed:<token> NX PX lease`; done is `done` with the TTL (any other value than a
 * claim, such as the `1` of earlier versions, counts as done); release deletes the key only while
 * it still holds this store's token (a Lua script), so a claim that expired and was taken by
 * another instance is not dropped.
 */
export class RedisDedupeStore implements DedupeStore {
  /** This store's claims in progress: key -> token. */
  private readonly tokens = new Map<string, string>();
  constructor(private readonly redis: RedisLike, private readonly prefix = 'courier:dedupe:') {}

  async claim(key: string, leaseMs: number): Promise<ClaimResult> {
    const k = this.prefix + key;
    const token = CLAIMED + randomUUID();
    // Twice at most: a key that expired between the SET and the GET is claimable again.
    for (let i = 0; i < 2; i++) {
      if ((await this.redis.set(k, token, 'PX', Math.max(1, Math.ceil(leaseMs)), 'NX')) === 'OK') {
        this.tokens.set(key, token);
        return 'claimed';
      }
      const value = await this.redis.get(k);
      if (value !== null) return value.startsWith(CLAIMED) ? 'busy' : 'done';
    }
    return 'busy';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.tokens.delete(key);
    await this.redis.set(this.prefix + key, DONE, 'PX', Math.max(1, Math.ceil(ttlMs)));
  }

  async release(key: string): Promise<void> {
    const token = this.tokens.get(key);
    if (token === undefined) return;
    this.tokens.delete(key);
    await this.redis.eval(RELEASE_SCRIPT, 1, this.prefix + key, token);
  }
}
