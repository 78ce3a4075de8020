/**
 * The order/product pair as one Nest application: `npm run demo:nest` (builds, then runs
 * dist/samples/nestjs/main.js; from an installed package, `node
 * node_modules/courier-bus/dist/samples/nestjs/main.js`, docs/nestjs.md). Places three orders (one from OrdersService's own
 * onApplicationBootstrap), prints each outcome, closes the app (the bus finishes what it handles).
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { OrdersService } from './orders.service';

export async function main(): Promise<Record<string, unknown>[]> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  const orders = app.get(OrdersService);
  await orders.placeOrder('o-2', 'p-2', 5);
  await orders.placeOrder('o-3', 'p-9', 1);
  const deadline = Date.now() + 10_000;
  while (orders.outcomes.size < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await app.close();
  const outcomes = [...orders.outcomes.values()].sort((a, b) => a.orderId.localeCompare(b.orderId));
  for (const o of outcomes) console.log(`${o.orderId} ${o.productId}: ${o.state}${o.reason ? ` (${o.reason})` : ''}`);
  if (outcomes.length < 3) throw new Error(`only ${outcomes.length} of 3 orders finished within 10 s`);
  return outcomes as unknown as Record<string, unknown>[];
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
