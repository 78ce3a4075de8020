/**
 * The outbox's publishing side: `outbox.publish(tx, Type, payload)` validates and encodes exactly
 * as `bus.publish` does (the same envelope: bus.encodeMessage) and inserts the message into the
 * outbox table with the caller's transaction. It commits or rolls back with the caller's own
 * writes; the relay (relay.ts), started and stopped with the bus, publishes it after the commit.
 */
import type { Bus, PublishCallOptions } from '../bus';
import { CourierError } from '../errors';
import type { PayloadClass, PayloadShape } from '../decorators';
import { Headers } from '../transport';
import { OutboxRelay, RelayOptions } from './relay';
import { outboxScope } from './scope';
import type { OutboxEntry, OutboxStore } from './store';

export interface OutboxPublishOptions extends Omit<PublishCallOptions, 'mandatory'> {
  /** Messages with the same key (an aggregate's id) are published in commit order. Default: none. */
  readonly orderingKey?: string;
}

export interface OutboxOptions extends RelayOptions {
  /** Run a relay inside this bus (started by bus.start, stopped by bus.stop). Default true. */
  readonly relay?: boolean;
}

export class Outbox<Tx = unknown> {
  /** The relay run by the bus (also when `relay: false`, unstarted). */
  readonly relay: OutboxRelay;

  constructor(private readonly bus: Bus, readonly store: OutboxStore<Tx>, options: OutboxOptions = {}) {
    const { relay = true, ...relayOptions } = options;
    this.relay = new OutboxRelay(store as OutboxStore, relayOptions);
    if (relay) bus.attach(this.relay);
  }

  /** Validates, encodes and inserts with `tx` (inside the caller's transaction); resolves to the id. */
  async publish<T>(tx: Tx, type: PayloadClass<T>, payload: PayloadShape<T> | T, options: OutboxPublishOptions = {}): Promise<string> {
    const entry = this.entry(type, payload, options);
    // The relay learns of the commit from the store (onCommit), not from here: this is before it.
    await this.store.insert(tx, entry);
    return entry.messageId;
  }

  /** publish() for synchronous transactions (better-sqlite3's `db.transaction(fn)`). */
  publishSync<T>(tx: Tx, type: PayloadClass<T>, payload: PayloadShape<T> | T, options: OutboxPublishOptions = {}): string {
    if (!this.store.insertSync) throw new CourierError(`outbox ${this.store.name}: this store has no synchronous insert; use publish()`);
    const entry = this.entry(type, payload, options);
    this.store.insertSync(tx, entry);
    return entry.messageId;
  }

  /**
   * Runs `fn` with what `@Publish` methods publish routed into this outbox with `tx` (call it
   * between your BEGIN and COMMIT). `bus.publish` itself is not rerouted.
   */
  within<R>(tx: Tx, fn: () => R): R {
    return outboxScope.run({ publish: (type, payload, options) => this.publish(tx, type, payload as never, options) }, fn);
  }

  private entry(type: PayloadClass, payload: unknown, options: OutboxPublishOptions): OutboxEntry {
    const { orderingKey, ...publishOptions } = options;
    if (orderingKey !== undefined && (typeof orderingKey !== 'string' || orderingKey === '')) {
      throw new CourierError('outbox: orderingKey must be a non-empty string');
    }
    const m = this.bus.encodeMessage(type, payload as never, publishOptions);
    return { messageId: m.headers[Headers.id], topic: m.topic, headers: m.headers, body: m.body, orderingKey: orderingKey ?? null };
  }
}

/** An outbox on `store` for `bus`; its relay runs with the bus unless `relay: false`. Before bus.start(). */
export function createOutbox<Tx>(bus: Bus, store: OutboxStore<Tx>, options: OutboxOptions = {}): Outbox<Tx> {
  return new Outbox(bus, store, options);
}
