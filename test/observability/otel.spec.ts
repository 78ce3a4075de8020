/**
 * OpenTelemetry (courier-bus/otel): an HTTP request served by a real node:http server under the
 * OTel http instrumentation publishes an order; the stock service's handler publishes a
 * reservation from inside its handler; the order service handles it. With the SDK's in-memory
 * exporter, every span of that chain is one trace, each with the right parent, on memory, AMQP
 * and MQTT. Without an SDK nothing is recorded and the incoming trace context passes through.
 */
import assert from 'node:assert/strict';
import { IsString } from 'class-validator';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { createBus, Headers, Message, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import { memoryTransport, MemoryBroker } from '../../adapters/memory';
import { formatTraceparent, openTelemetry, parseTraceparent } from '../../adapters/otel';
import { KINDS, kit } from './obs-kit';
import { uniq, waitFor } from '../helpers/wait';

@Message('shop.order-placed')
class ShopOrderPlaced {
  @IsString() orderId!: string;
}

@Message('shop.stock-reserved')
class ShopStockReserved {
  @IsString() orderId!: string;
}

describe('OpenTelemetry tracing (courier-bus/otel)', function () {
  this.timeout(30_000);
  const exporter = new InMemorySpanExporter();
  let provider: NodeTracerProvider;
  let instrumentation: HttpInstrumentation;
  let http: typeof import('node:http');

  before(() => {
    provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    provider.register();
    instrumentation = new HttpInstrumentation();
    instrumentation.setTracerProvider(provider);
    instrumentation.enable();
    // Required after the instrumentation is enabled: it patches the module on require.
    http = require('http');
  });
  after(async () => {
    instrumentation.disable();
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });
  beforeEach(() => exporter.reset());

  for (const kind of KINDS) {
    it(`${kind}: HTTP request -> publish -> handler -> nested publish -> handler is one trace with the right parents`, async () => {
      const k = await kit(kind);
      const orderSource = uniq('orders');
      const stockSource = uniq('stock');
      const done: string[] = [];

      @Subscriber()
      class StockService {
        @Subscribe(ShopOrderPlaced)
        async reserve(e: ShopOrderPlaced) {
          // Published from inside the handler, with no context passed: the active span is the handler's.
          await stock.publish(ShopStockReserved, { orderId: e.orderId });
        }
      }
      @Subscriber()
      class OrderService {
        @Subscribe(ShopStockReserved)
        async reserved(e: ShopStockReserved, ctx: MessageContext) {
          done.push(`${e.orderId}:${ctx.envelope.traceparent}`);
        }
      }
      const orders = createBus({ transport: k.create(), source: orderSource, logger: silentLogger, tracing: openTelemetry() }).register(new OrderService());
      const stock = createBus({ transport: k.create(), source: stockSource, logger: silentLogger, tracing: openTelemetry() }).register(new StockService());
      let publishedId = '';
      const server = http.createServer((req, res) => {
        orders.publish(ShopOrderPlaced, { orderId: 'o-1' }).then(
          (id) => {
            publishedId = id;
            res.writeHead(202).end(id);
          },
          (err) => res.writeHead(500).end(String(err)),
        );
      });
      try {
        await orders.start();
        await stock.start();
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = (server.address() as { port: number }).port;
        const status = await new Promise<number>((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/orders' }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 202);
        await waitFor(() => done.length === 1, 15_000, 'the reservation handled');
        // A span ends when its work does (a publish at the broker's confirm, a receive after its
        // settle), which may be after the next handler ran: wait until all of them ended.
        const names = ['publish', 'receive', 'process'].flatMap((op) => [`${op} shop.order-placed`, `${op} shop.stock-reserved`]);
        await waitFor(() => names.every((n) => exporter.getFinishedSpans().some((s) => s.name === n)), 5000, 'every span of the chain ended');

        const spans = exporter.getFinishedSpans();
        const server_ = only(spans, (s) => s.kind === SpanKind.SERVER);
        const traceId = server_.spanContext().traceId;
        const chain: Array<[string, SpanKind]> = [
          ['publish shop.order-placed', SpanKind.PRODUCER],
          ['receive shop.order-placed', SpanKind.CONSUMER],
          ['process shop.order-placed', SpanKind.CONSUMER],
          ['publish shop.stock-reserved', SpanKind.PRODUCER],
          ['receive shop.stock-reserved', SpanKind.CONSUMER],
          ['process shop.stock-reserved', SpanKind.CONSUMER],
        ];
        let parent = server_;
        for (const [name, spanKind] of chain) {
          const span = only(spans, (s) => s.name === name);
          assert.equal(span.kind, spanKind, `${name}: kind`);
          assert.equal(span.spanContext().traceId, traceId, `${name}: same trace as the HTTP request`);
          assert.equal(span.parentSpanContext?.spanId, parent.spanContext().spanId, `${name}: parent is ${parent.name}`);
          parent = span;
        }
        // Every span of the Courier chain is in the HTTP request's trace, and nothing else is.
        assert.equal(spans.filter((s) => s.spanContext().traceId === traceId && s.kind !== SpanKind.SERVER && s.kind !== SpanKind.CLIENT).length, 6);

        const system = kind === 'amqp' ? 'rabbitmq' : kind;
        const publish = only(spans, (s) => s.name === 'publish shop.order-placed');
        assert.deepEqual(pick(publish, ['messaging.system', 'messaging.destination.name', 'messaging.operation.type', 'messaging.operation.name', 'messaging.message.id', 'messaging.message.conversation_id']), {
          'messaging.system': system,
          'messaging.destination.name': 'shop.order-placed',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.message.id': publishedId,
          'messaging.message.conversation_id': publishedId,
        });
        const receive = only(spans, (s) => s.name === 'receive shop.order-placed');
        assert.equal(receive.attributes['messaging.operation.type'], 'receive');
        assert.equal(receive.attributes['messaging.message.id'], publishedId);
        assert.equal(receive.attributes['messaging.destination.subscription.name'], `${stockSource}.StockService.reserve`);
        assert.equal(receive.attributes['messaging.consumer.group.name'], stockSource);
        assert.equal(receive.attributes['courier.outcome'], 'ack');
        const process2 = only(spans, (s) => s.name === 'process shop.stock-reserved');
        assert.equal(process2.attributes['messaging.operation.type'], 'process');
        assert.equal(process2.attributes['courier.handler'], `${orderSource}.OrderService.reserved`);
        // The nested message is in the same conversation, and its envelope carries the nested publish span.
        const nested = only(spans, (s) => s.name === 'publish shop.stock-reserved');
        assert.equal(nested.attributes['messaging.message.conversation_id'], publishedId);
        assert.equal(done[0], `o-1:${formatTraceparent(nested.spanContext())}`);
      } finally {
        server.close();
        await Promise.allSettled([orders.stop(), stock.stop()]);
        await k.cleanup([
          { pattern: 'shop.order-placed', group: stockSource, name: 'StockService.reserve', prefetch: 10 },
          { pattern: 'shop.stock-reserved', group: orderSource, name: 'OrderService.reserved', prefetch: 10 },
        ]);
      }
    });
  }

  it('a failing handler: its process span has status ERROR and the exception; the receive span says retry, then dead', async () => {
    const broker = new MemoryBroker();
    @Subscriber({ group: 'fails' })
    class Failing {
      @Subscribe(ShopOrderPlaced, { retry: { attempts: 2, initialDelayMs: 1 } })
      async on() {
        throw new TypeError('no stock table');
      }
    }
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'failing', logger: silentLogger, tracing: openTelemetry() }).register(new Failing());
    await bus.start();
    try {
      await bus.publish(ShopOrderPlaced, { orderId: 'o-2' });
      await waitFor(() => exporter.getFinishedSpans().filter((s) => s.name === 'receive shop.order-placed').length === 2, 5000, 'two receive spans');
      const spans = exporter.getFinishedSpans();
      const processes = spans.filter((s) => s.name === 'process shop.order-placed');
      assert.equal(processes.length, 2);
      for (const p of processes) {
        assert.equal(p.status.code, 2 /* ERROR */);
        assert.equal(p.events[0]?.name, 'exception');
        assert.equal(p.events[0]?.attributes?.['exception.type'], 'TypeError');
      }
      const outcomes = spans.filter((s) => s.name === 'receive shop.order-placed').map((s) => s.attributes['courier.outcome']).sort();
      assert.deepEqual(outcomes, ['dead', 'retry']);
      // Both attempts are in the trace of the one publish.
      const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
      assert.equal(traceIds.size, 1);
    } finally {
      await bus.stop();
    }
  });

  it('traceparent helpers: a W3C traceparent round-trips; invalid ones are ignored', () => {
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const sc = parseTraceparent(tp, 'congo=t61rcWkgMzE');
    assert.ok(sc);
    assert.equal(formatTraceparent(sc), tp);
    assert.equal(sc.traceState?.get('congo'), 't61rcWkgMzE');
    for (const bad of ['', 'garbage', '00-00000000000000000000000000000000-b7ad6b7169203331-01', 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra']) {
      assert.equal(parseTraceparent(bad), undefined, bad);
    }
  });
});

describe('OpenTelemetry tracing with no SDK registered', () => {
  it('the incoming trace context passes on unchanged to what a handler publishes', async () => {
    const broker = new MemoryBroker();
    const seen: Array<Record<string, string>> = [];
    @Subscriber({ group: 'nosdk' })
    class Relay {
      @Subscribe(ShopOrderPlaced)
      async on(e: ShopOrderPlaced) {
        await bus.publish(ShopStockReserved, { orderId: e.orderId });
      }
      @Subscribe(ShopStockReserved)
      async end(_e: ShopStockReserved, ctx: MessageContext) {
        seen.push({ ...ctx.headers });
      }
    }
    const bus = createBus({ transport: memoryTransport({ broker }), source: 'nosdk', logger: silentLogger, tracing: openTelemetry() }).register(new Relay());
    await bus.start();
    try {
      assert.equal(trace.getSpan(context.active()), undefined);
      const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
      await bus.publish(ShopOrderPlaced, { orderId: 'o-3' }, { headers: { traceparent: tp, tracestate: 'a=b' } });
      await waitFor(() => seen.length === 1, 5000, 'the nested message');
      assert.equal(seen[0][Headers.traceparent], tp);
      assert.equal(seen[0][Headers.tracestate], 'a=b');
    } finally {
      await bus.stop();
    }
  });
});

function only(spans: ReadableSpan[], test: (s: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.filter(test);
  assert.equal(found.length, 1, `one span expected, found ${found.map((s) => s.name).join(', ') || 'none'} among ${spans.map((s) => s.name).join(', ')}`);
  return found[0];
}

function pick(span: ReadableSpan, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, span.attributes[k]]));
}
