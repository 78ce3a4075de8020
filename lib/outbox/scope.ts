/**
 * Routes what @Publish methods publish into an outbox, inside the caller's transaction:
 * `await outbox.within(tx, () => orders.place(...))`. The bus's @Publish wrapper asks
 * `outboxScope.getStore()` and, when set, publishes through it instead of the transport.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { PayloadClass } from '../payload';
import type { PublishCallOptions } from '../publish-options';

export interface OutboxRoute {
  publish(type: PayloadClass, payload: unknown, options: PublishCallOptions): Promise<string>;
}

export const outboxScope = new AsyncLocalStorage<OutboxRoute>();
