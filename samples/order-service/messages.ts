/** The order service's messages. */
import { IsIn, IsInt, IsOptional, Matches, Min } from 'class-validator';
import { Message } from 'courier-bus';

const ID = /^[A-Za-z0-9_.:-]{1,100}$/;

/** Command: place an order. `orderId` is chosen by the caller, so a repeated command is a no-op. */
@Message('order.place')
export class PlaceOrder {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
}

@Message('order.placed')
export class OrderPlaced {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
  /** The price the order was placed at, from the order service's replica. */
  @IsInt() @Min(0) unitPriceCents!: number;
}

@Message('order.confirmed')
export class OrderConfirmed {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
}

@Message('order.rejected')
export class OrderRejected {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
  @IsIn(['insufficient-stock', 'unknown-product']) reason!: 'insufficient-stock' | 'unknown-product';
}

/** An order as the order service has it (the reply to GetOrder). */
@Message('order.details')
export class OrderDetails {
  @Matches(ID) orderId!: string;
  @Matches(ID) productId!: string;
  @IsInt() @Min(1) quantity!: number;
  @IsInt() @Min(0) unitPriceCents!: number;
  @IsIn(['placed', 'confirmed', 'rejected']) state!: 'placed' | 'confirmed' | 'rejected';
  @IsOptional() @IsIn(['insufficient-stock', 'unknown-product']) reason?: 'insufficient-stock' | 'unknown-product';
}

/** Query: one order by id. An unknown id fails with UnknownOrderError (status 404). */
@Message('order.get', { reply: OrderDetails })
export class GetOrder {
  @Matches(ID) orderId!: string;
}
