export * from './messages';
export { ProductService, UnknownProductError } from './product-service';
export type { CatalogEntry } from './product-service';
