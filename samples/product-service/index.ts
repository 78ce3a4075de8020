export * from './messages';
export { ProductService, UnknownProductError } from './product-service';
export { SqlProductStore, PRODUCT_DDL } from './product-store';
export type { CatalogEntry, ProductStore, ReserveOutcome, StockLedger } from './product-store';
export { MemoryProductStore } from './memory-product-store';

import { ProductCreated, ProductPriceChanged, StockChanged, StockRejected, StockReserved } from './messages';

/**
 * What the product service publishes (through its outbox, not `@Publish` methods, so the
 * decorators cannot tell): read by `courier asyncapi` (docs/operations.md).
 */
export const asyncApiSends = [ProductCreated, ProductPriceChanged, StockChanged, StockReserved, StockRejected];
