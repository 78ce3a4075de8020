/**
 * The Nest test app (test/package/nest.spec.ts copies this folder into fresh NestJS 11 and 12
 * projects that installed the packed tarball): built with @nestjs/testing, on the transport
 * COURIER_NEST_TRANSPORT names; prints one JSON report on its last line.
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { Bus, createBus, type DeadLetterEvent } from 'courier-bus';
import { AppModule } from './app-module.js';
import { RefundRequested, SlowJob } from './messages.js';
import { Ledger, OrderService, SlowWorker } from './services.js';
import { makeTransport, TRANSPORT } from './transports.js';

const MODE = process.env['COURIER_NEST_MODE'] ?? 'scenario';

/** How many times a new consumer of SlowWorker's subscription gets the slow job within 1.5 s. */
async function recount(): Promise<number> {
  if (TRANSPORT === 'memory') return 0;
  const recountLedger = new Ledger();
  const bus = createBus({ transport: makeTransport(), source: 'nest-test', shutdownTimeoutMs: 100 });
  bus.register(new SlowWorker(recountLedger));
  await bus.start();
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await bus.stop();
  return recountLedger.entries.filter((e) => e.startsWith('slow started')).length;
}

/**
 * `signal`: a handler in flight, then this process waits for the SIGTERM the test sends; Nest's
 * shutdown hooks (enableShutdownHooks) stop the bus, and Ledger's onApplicationShutdown reports.
 */
async function awaitSignal(): Promise<void> {
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  moduleRef.enableShutdownHooks();
  await moduleRef.init();
  const ledger = moduleRef.get(Ledger);
  await moduleRef.get(Bus).publish(SlowJob, { jobId: 'j-signal' });
  await ledger.until('the slow job started', () => ledger.slowStarted);
  console.log(JSON.stringify({ slowStarted: true }));
  setTimeout(() => process.exit(3), 30_000);
}

async function main(): Promise<void> {
  if (MODE === 'recount') return console.log(JSON.stringify({ redelivered: await recount() }));
  if (MODE === 'signal') return awaitSignal();
  const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
  moduleRef.enableShutdownHooks();
  await moduleRef.init();
  const ledger = moduleRef.get(Ledger);
  const orders = moduleRef.get(OrderService);
  const bus = moduleRef.get(Bus);
  const deadLetters: DeadLetterEvent[] = [];
  bus.on('deadLetter', (e: DeadLetterEvent) => deadLetters.push(e));

  await orders.placeOrder('o-1', 'p2', 3);
  await ledger.until('both orders reserved', () => ledger.entries.includes('reserved o-boot p1') && ledger.entries.includes('reserved o-1 p2'));
  const quote = await orders.quote('p1');

  await bus.publish(RefundRequested, { orderId: 'o-1' });
  await ledger.until('the refund dead-lettered', () => deadLetters.length > 0);

  // A handler in flight when the application closes.
  await bus.publish(SlowJob, { jobId: 'j-1' });
  await ledger.until('the slow job started', () => ledger.slowStarted);
  const closing = Date.now();
  await moduleRef.close();
  const closeMs = Date.now() - closing;
  const finishedBeforeClose = ledger.slowFinished;
  // On the broker: a new consumer of the same subscription gets the job again only if it was not acked.
  const redelivered = await recount();

  console.log(
    JSON.stringify({
      transport: TRANSPORT,
      busIsCoreBus: bus instanceof Bus,
      entries: ledger.entries,
      quote,
      refundAttempts: ledger.refundAttempts,
      deadLetters: deadLetters.map((e) => ({ reason: e.reason, errorName: e.errorName, errorMessage: e.errorMessage })),
      closeMs,
      finishedBeforeClose,
      redelivered,
    }),
  );
}

main().then(
  () => MODE === 'signal' || process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
