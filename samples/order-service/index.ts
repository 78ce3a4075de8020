export * from './messages';
export { OrderService, UnknownOrderError } from './order-service';
export { SqlOrderStore, MemoryOrderStore, ORDER_DDL } from './order-store';
export type { Order, OrderState, OrderStore, OrderSummary } from './order-store';
export { ProductReplica } from './product-replica';
export type { ReplicaEntry } from './product-replica';

import { OrderConfirmed, OrderPlaced, OrderRejected } from './messages';

/**
 * What the order service publishes (through its outbox, not `@Publish` methods, so the
 * decorators cannot tell): read by `courier asyncapi` (docs/operations.md).
 */
export const asyncApiSends = [OrderPlaced, OrderConfirmed, OrderRejected];
