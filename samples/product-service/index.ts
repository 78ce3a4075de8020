export * from './messages';
export { ProductService, UnknownProductError } from './product-service';
export { SqlProductStore, PRODUCT_DDL } from './product-store';
export type { CatalogEntry, ProductStore, ReserveOutcome, StockLedger } from './product-store';
export { MemoryProductStore } from './memory-product-store';
