import assert from 'node:assert/strict';
import { createBus, Message, Publish, Publisher, StartupError, Subscribe, Subscriber, silentLogger, TransportCapabilities } from '../../lib';
import { memoryTransport } from '../../adapters/memory';
import { GetProduct, OrderPlaced } from './fixtures';

class NotAMessage {
  x!: string;
}

describe('start-up checks', () => {
  it('lists every problem at once in one StartupError', async () => {
    @Subscriber({ group: 'g', colour: 'blue' } as never)
    class Broken {
      @Subscribe(undefined as never)
      async missing() {}
      @Subscribe(NotAMessage)
      async notDecorated() {}
      @Subscribe(OrderPlaced, { retrys: 3 } as never)
      async typo() {}
      @Subscribe(OrderPlaced, { pattern: 'invoice.*' })
      async wrongPattern() {}
    }
    class Plain {}
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger, colour: 1 } as never);
    bus.register(new Broken(), new Plain());
    const err = await bus.start().catch((e) => e);
    assert.ok(err instanceof StartupError, String(err));
    const text = err.problems.join('\n');
    for (const expected of [
      'createBus: unknown option "colour"',
      '@Subscriber of Broken: unknown option "colour"',
      'Broken.missing: payload class #1 is undefined',
      'Broken.notDecorated: NotAMessage has no @Message decorator',
      'Broken.typo: unknown option "retrys"',
      'Broken.wrongPattern: type "order.placed" does not match pattern "invoice.*"',
      'Plain has no @Subscriber',
    ]) {
      assert.ok(text.includes(expected), `missing "${expected}" in:\n${text}`);
    }
    assert.equal(err.problems.length, 7);
  });

  it('refuses a duplicate handler in one group', async () => {
    @Subscriber({ group: 'g' })
    class Twice {
      @Subscribe(OrderPlaced)
      async on() {}
    }
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    bus.register(new Twice(), new Twice());
    await assert.rejects(bus.start(), (e: StartupError) => e.problems.some((p) => p.includes('duplicate handler')));
  });

  it('refuses handlers that need a capability the transport lacks', async () => {
    const t = memoryTransport();
    const limited: TransportCapabilities = { ...t.capabilities, weightedConsumers: false, patterns: false, requestReply: false, delayedRetry: false, mandatory: false };
    Object.defineProperty(t, 'capabilities', { value: limited });
    @Message('x.y')
    class XY {}
    @Subscriber({ group: 'g' })
    class Needs {
      @Subscribe(OrderPlaced, { weight: 3, retry: { attempts: 1 } })
      async weighted() {}
      @Subscribe(XY, { pattern: 'x.*', retry: { attempts: 1 } })
      async pattern() {}
      @Subscribe(GetProduct, { retry: { attempts: 1 } })
      async request() {}
      @Subscribe(XY)
      async retried() {}
    }
    @Publisher()
    class Mandatory {
      @Publish(XY, { mandatory: true })
      async send() {
        return {};
      }
    }
    const bus = createBus({ transport: t, source: 's', logger: silentLogger });
    bus.register(new Needs(), new Mandatory());
    const err: StartupError = await bus.start().catch((e) => e);
    assert.ok(err instanceof StartupError);
    const text = err.problems.join('\n');
    assert.match(text, /Needs.weighted: weight needs a transport with weighted consumers/);
    assert.match(text, /Needs.pattern: pattern "x.\*" needs a transport with patterns/);
    assert.match(text, /Needs.request: GetProduct is a request, and the transport has no request\/reply/);
    assert.match(text, /Needs.retried: retries need a transport with delayed retry/);
    assert.match(text, /Mandatory.send: mandatory needs a transport/);
  });

  it('idempotent handlers need the idempotency option', async () => {
    @Subscriber()
    class S {
      @Subscribe(OrderPlaced, { idempotent: true })
      async on() {}
    }
    const bus = createBus({ transport: memoryTransport(), source: 's', logger: silentLogger });
    bus.register(new S());
    await assert.rejects(bus.start(), /idempotent needs the bus's idempotency option/);
  });
});

describe('decorator types', () => {
  it('are checked by the compiler (npm test runs tsc first)', () => {
    @Subscriber()
    class Typed {
      // @ts-expect-error the handler's event type must be the payload class
      @Subscribe(OrderPlaced)
      async wrong(event: GetProduct) {
        return event;
      }
      @Subscribe(OrderPlaced)
      async right(event: OrderPlaced) {
        return event.orderId;
      }
    }
    @Publisher()
    class Pub {
      // @ts-expect-error a @Publish method must return the payload's shape
      @Publish(OrderPlaced)
      async wrong() {
        return { orderId: 42 };
      }
      @Publish(OrderPlaced)
      async right() {
        return { orderId: '42' };
      }
    }
    const bus = createBus({ transport: memoryTransport(), source: 's' });
    // @ts-expect-error publish checks the payload against its class
    void bus.publish(OrderPlaced, { orderId: 1 }).catch(() => undefined);
    assert.ok(new Typed() && new Pub());
  });
});
