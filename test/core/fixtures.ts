import { IsInt, IsOptional, IsString, Min } from 'class-validator';
import { Message } from '../../lib';

@Message('product.price-changed')
export class ProductPriceChanged {
  @IsString() productId!: string;
  @IsInt() @Min(0) priceCents!: number;
}

@Message('product.view')
export class ProductView {
  @IsString() productId!: string;
  @IsInt() priceCents!: number;
}

@Message('product.get', { reply: ProductView })
export class GetProduct {
  @IsString() productId!: string;
}

@Message('order.placed')
export class OrderPlaced {
  @IsString() orderId!: string;
  @IsOptional() @IsInt() quantity?: number;
}

@Message('order.cancelled')
export class OrderCancelled {
  @IsString() orderId!: string;
}

@Message('order.line.added')
export class OrderLineAdded {
  @IsString() orderId!: string;
}
