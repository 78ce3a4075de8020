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

async function main(): Promise<void> {
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
  let redelivered = 0;
  if (TRANSPORT !== 'memory') {
    const recountLedger = new Ledger();
    const recount = createBus({ transport: makeTransport(), source: 'nest-test', shutdownTimeoutMs: 100 });
    recount.register(new SlowWorker(recountLedger));
    await recount.start();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    redelivered = recountLedger.entries.filter((e) => e.startsWith('slow started')).length;
    await recount.stop();
  }

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
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
