/**
 * The consumer test's app (test/package/consumer.spec.ts copies this folder into fresh projects
 * that installed the packed tarball): publish, subscribe and request on one transport, imported
 * by the package's documented paths only. plain.js repeats it in plain JavaScript (its header says why).
 */
import 'reflect-metadata';
import { IsInt, IsString, Min } from 'class-validator';
import { createBus, Message, MessageContext, Publish, Publisher, Subscribe, Subscriber, type Transport } from 'courier-bus';

const RUN = process.env['COURIER_CONSUMER_RUN'] ?? 'local';

@Message(`consumer.${RUN}.stock-level`)
export class StockLevel {
  @IsString() productId!: string;
  @IsInt() @Min(0) units!: number;
}

@Message(`consumer.${RUN}.price-changed`)
export class PriceChanged {
  @IsString() productId!: string;
  @IsInt() @Min(0) priceCents!: number;
}

@Message(`consumer.${RUN}.get-stock`, { reply: StockLevel })
export class GetStock {
  @IsString() productId!: string;
}

export interface RoundTrip {
  readonly transport: string;
  readonly received: readonly { productId: string; priceCents: number; type: string }[];
  readonly reply: unknown;
}

export async function roundTrip(name: string, transport: Transport): Promise<RoundTrip> {
  const received: { productId: string; priceCents: number; type: string }[] = [];
  let arrived: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (arrived = resolve));

  @Subscriber({ group: `consumer-${RUN}-${name}` })
  class Shop {
    @Subscribe(PriceChanged)
    async onPriceChanged(event: PriceChanged, ctx: MessageContext): Promise<void> {
      received.push({ productId: event.productId, priceCents: event.priceCents, type: ctx.type });
      if (received.length === 2) arrived();
    }

    @Subscribe(GetStock)
    async stock(query: GetStock): Promise<StockLevel> {
      return { productId: query.productId, units: 7 };
    }
  }

  @Publisher()
  class Catalog {
    @Publish(PriceChanged)
    async changePrice(productId: string, priceCents: number) {
      return { productId, priceCents };
    }
  }

  const catalog = new Catalog();
  const bus = createBus({ transport, source: `consumer-${name}` });
  bus.register(new Shop(), catalog);
  await bus.start();
  try {
    await catalog.changePrice('p1', 999);
    await bus.publish(PriceChanged, { productId: 'p2', priceCents: 5 });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: events did not arrive in 10 s`)), 10_000)))]);
    clearTimeout(timer);
    const reply = await bus.request(GetStock, { productId: 'p1' }, { timeoutMs: 5000 });
    return { transport: name, received: received.sort((a, b) => a.productId.localeCompare(b.productId)), reply };
  } finally {
    await bus.stop();
  }
}

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
