/** The payloads the Nest test app exchanges; type names carry the run id (shared brokers). */
import { IsInt, IsString, Min } from 'class-validator';
import { Message } from 'courier-bus';

export const RUN = `${process.env['COURIER_NEST_RUN'] ?? 'local'}.${process.env['COURIER_NEST_TRANSPORT'] ?? 'memory'}`;

@Message(`nest.${RUN}.stock-reserved`)
export class StockReserved {
  @IsString() orderId!: string;
  @IsString() productId!: string;
}

@Message(`nest.${RUN}.order-placed`)
export class OrderPlaced {
  @IsString() orderId!: string;
  @IsString() productId!: string;
  @IsInt() @Min(1) quantity!: number;
}

@Message(`nest.${RUN}.price-quote`)
export class PriceQuote {
  @IsString() productId!: string;
  @IsInt() @Min(0) priceCents!: number;
}

@Message(`nest.${RUN}.get-price`, { reply: PriceQuote })
export class GetPrice {
  @IsString() productId!: string;
}

@Message(`nest.${RUN}.refund-requested`)
export class RefundRequested {
  @IsString() orderId!: string;
}

@Message(`nest.${RUN}.slow-job`)
export class SlowJob {
  @IsString() jobId!: string;
}
