/**
 * The payloads of the benchmark: ~200-byte JSON objects that Courier validates with
 * class-validator at both ends (publish and receive), as an application's would be.
 * The raw clients send the same JSON and only parse it.
 */
import { IsBoolean, IsIn, IsInt, IsISO8601, IsNumber, IsString, Length, Matches, Max, Min } from 'class-validator';
import { Message } from '../lib';

@Message('bench.event')
export class BenchEvent {
  @IsString() @Matches(/^ord-[0-9a-f]{12}$/) orderId!: string;
  @IsInt() @Min(0) seq!: number;
  @IsString() @Length(3, 32) sku!: string;
  @IsInt() @Min(1) @Max(1000) quantity!: number;
  @IsNumber() @Min(0) unitPrice!: number;
  @IsIn(['EUR', 'USD', 'GBP']) currency!: string;
  @IsString() @Length(1, 64) customer!: string;
  @IsISO8601() placedAt!: string;
  @IsString() @Length(0, 80) note!: string;
}

@Message('bench.reply')
export class BenchReply {
  @IsInt() @Min(0) seq!: number;
  @IsBoolean() accepted!: boolean;
  @IsNumber() @Min(0) total!: number;
}

@Message('bench.request', { reply: BenchReply })
export class BenchRequest extends BenchEvent {}

/** For the back-pressure case: a 16 KiB body. */
@Message('bench.bulk', { maxBytes: 64 * 1024 })
export class BenchBulk {
  @IsInt() @Min(0) seq!: number;
  @IsString() @Length(0, 32 * 1024) blob!: string;
}

const PLACED_AT = new Date('2024-05-01T12:00:00.000Z').toISOString();

/** Event number `seq` as plain data (~200 bytes of JSON). */
export function benchEvent(seq: number): Omit<BenchEvent, never> {
  return {
    orderId: `ord-${seq.toString(16).padStart(12, '0')}`,
    seq,
    sku: `SKU-${(seq % 997).toString().padStart(5, '0')}-BLUE-XL`,
    quantity: (seq % 9) + 1,
    unitPrice: 19.99,
    currency: 'EUR',
    customer: `customer-${seq % 10_007}@example.com`,
    placedAt: PLACED_AT,
    note: 'ring twice, fragile',
  };
}

export function benchReply(req: { seq: number; quantity: number; unitPrice: number }): BenchReply {
  return { seq: req.seq, accepted: true, total: Math.round(req.quantity * req.unitPrice * 100) / 100 };
}

const BLOB = 'x'.repeat(16 * 1024 - 32);
/** A ~16 KiB message for the back-pressure case. */
export function benchBulk(seq: number): BenchBulk {
  return { seq, blob: BLOB };
}
