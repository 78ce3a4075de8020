export * from './messages';
export { OrderService } from './order-service';
export { OrderStore } from './order-store';
export type { Order, OrderState } from './order-store';
export { ProductReplica } from './product-replica';
export type { ReplicaEntry } from './product-replica';
