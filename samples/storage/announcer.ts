/**
 * How a sample service publishes: into the outbox with the transaction of the change it announces
 * (a database store), or straight to the bus after the change (the in-memory store, a dual write:
 * a crash between the two loses the event).
 */
import type { Bus, Outbox, PayloadClass, PayloadShape } from 'courier-bus';
import type { Tx } from './service-database';

export class Announcer {
  constructor(private readonly bus: Bus, private readonly outbox?: Outbox) {}

  /** True when announcements commit with the change (an outbox). */
  get transactional(): boolean {
    return this.outbox !== undefined;
  }

  /** Publishes `payload` with the change's transaction; `orderingKey` keeps one aggregate's events in commit order. */
  async publish<T>(tx: Tx, type: PayloadClass<T>, payload: PayloadShape<T> | T, orderingKey?: string): Promise<void> {
    if (this.outbox) await this.outbox.publish(tx, type, payload, orderingKey ? { orderingKey } : {});
    else await this.bus.publish(type, payload);
  }
}
