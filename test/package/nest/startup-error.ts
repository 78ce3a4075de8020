/** A Nest app whose Courier classes have three problems: its start must fail with one StartupError naming all three. */
import 'reflect-metadata';
import { Injectable, Module, Scope } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Publish, Publisher, StartupError, Subscribe, Subscriber } from 'courier-bus';
import { memoryTransport } from 'courier-bus/memory';
import { CourierModule } from 'courier-bus/nest';
import { OrderPlaced } from './messages.js';

class NotAMessage {
  note!: string;
}

/** @Subscribe methods without @Subscriber. */
@Injectable()
export class Orphan {
  @Subscribe(OrderPlaced)
  on(): void {}
}

/** A new instance per request: no one instance for the bus. */
@Injectable({ scope: Scope.REQUEST })
@Subscriber()
export class PerRequest {
  @Subscribe(OrderPlaced)
  on(): void {}
}

@Injectable()
@Publisher()
export class BadPublisher {
  @Publish(NotAMessage)
  send() {
    return { note: 'x' };
  }
}

@Module({ imports: [CourierModule.forRoot({ transport: memoryTransport(), source: 'nest-broken' })], providers: [Orphan, PerRequest, BadPublisher] })
class BrokenModule {}

async function main(): Promise<void> {
  const moduleRef = await Test.createTestingModule({ imports: [BrokenModule] }).compile();
  try {
    await moduleRef.init();
    console.log(JSON.stringify({ started: true }));
  } catch (err) {
    const e = err as StartupError;
    console.log(JSON.stringify({ started: false, isStartupError: err instanceof StartupError, name: e.name, code: e.code, problems: e.problems }));
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
