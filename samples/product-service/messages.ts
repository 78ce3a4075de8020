/**
 * The product service's messages. Events carry the product's `version` (one counter per product,
 * raised by every change) so that a consumer can apply them in any order and any number of times:
 * it keeps a field only when the event is newer than what it holds.
 */
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsString, Matches, Max, Min, ValidateNested } from 'class-validator';
import { Message } from 'courier-bus';

const ID = /^[A-Za-z0-9_.:-]{1,100}$/;

@Message('product.created')
export class ProductCreated {
  @Matches(ID) productId!: string;
  @IsString() name!: string;
  @IsInt() @Min(0) priceCents!: number;
  @IsInt() @Min(0) stock!: number;
  @IsInt() @Min(1) version!: number;
}

@Message('product.price-changed')
export class ProductPriceChanged {
  @Matches(ID) productId!: string;
  @IsInt() @Min(0) priceCents!: number;
  @IsInt() @Min(1) version!: number;
}

@Message('product.stock-changed')
export class StockChanged {
  @Matches(ID) productId!: string;
  @IsInt() @Min(0) stock!: number;
  @IsInt() @Min(1) version!: number;
}

/** The product's whole state at `version`. */
@Message('product.details')
export class ProductDetails {
  @Matches(ID) productId!: string;
  @IsString() name!: string;
  @IsInt() @Min(0) priceCents!: number;
  @IsInt() @Min(0) stock!: number;
  @IsInt() @Min(1) version!: number;
}

/** Request: one product, answered with its {@link ProductDetails}. */
@Message('product.get', { reply: ProductDetails })
export class GetProduct {
  @Matches(ID) productId!: string;
}

/** One page of the catalog, ordered by productId. */
@Message('product.catalog')
export class ProductCatalog {
  @ValidateNested({ each: true })
  @Type(() => ProductDetails)
  products!: ProductDetails[];
  @IsInt() @Min(0) total!: number;
}

/** Request: a page of the catalog, for a replica that starts after the products were created. */
@Message('product.list', { reply: ProductCatalog })
export class ListProducts {
  @IsInt() @Min(0) offset!: number;
  @IsInt() @Min(1) @Max(1000) limit!: number;
}

/** Command: create a product (idempotent: a known productId changes nothing). */
@Message('product.create')
export class CreateProduct {
  @Matches(ID) productId!: string;
  @IsString() name!: string;
  @IsInt() @Min(0) priceCents!: number;
  @IsInt() @Min(0) stock!: number;
}

/** Command: change a price. `changeId` makes a repeated command a no-op. */
@Message('product.change-price')
export class ChangePrice {
  @Matches(ID) changeId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(0) priceCents!: number;
}

@Message('stock.reserved')
export class StockReserved {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
}

@Message('stock.rejected')
export class StockRejected {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
  @IsIn(['insufficient-stock', 'unknown-product']) reason!: 'insufficient-stock' | 'unknown-product';
}
