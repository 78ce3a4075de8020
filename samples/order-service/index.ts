export * from './messages';
export { OrderService } from './order-service';
export { SqlOrderStore, MemoryOrderStore, ORDER_DDL } from './order-store';
export type { Order, OrderState, OrderStore, OrderSummary } from './order-store';
export { ProductReplica } from './product-replica';
export type { ReplicaEntry } from './product-replica';
