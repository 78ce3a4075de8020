/**
 * Courier's side of every case: a bus on the transport named in the params, with the defaults an
 * application gets (validation at both ends, the meter on), publishing through the public API.
 */
import { amqpTransport } from '../../adapters/amqp';
import { MemoryTransport, memoryTransport } from '../../adapters/memory';
import { mqttTransport } from '../../adapters/mqtt';
import { Bus, createBus, silentLogger, Subscribe, Subscriber, Transport } from '../../lib';
import type { ChildIo } from '../child';
import { BenchBulk, benchBulk, BenchEvent, benchEvent, benchReply, BenchRequest } from '../payload';
import { measureRequests, now, sleep, Window } from '../window';

function transport(p: ChildIo['params'], shared?: MemoryTransport): Transport {
  switch (p.transport) {
    case 'amqp':
      return amqpTransport({ url: p.url, exchange: p.exchange, connectionName: `bench-${p.source}` });
    case 'mqtt':
      return mqttTransport({ url: p.url, prefix: p.prefix, clientId: p.clientId });
    case 'memory':
      return shared ?? memoryTransport();
    default:
      throw new Error(`unknown transport ${p.transport}`);
  }
}

function bus(p: ChildIo['params'], t: Transport = transport(p)): Bus {
  return createBus({ transport: t, source: p.source, logger: silentLogger, requestTimeoutMs: 60_000, tracing: tracing(p.tracing) });
}

/**
 * Case h: `api` is `tracing: openTelemetry()` with no SDK registered (what an app that installed
 * the API but exports nothing pays); `sdk` registers the Node SDK with a batch processor whose
 * exporter drops the spans (every span recorded, nothing sent).
 */
function tracing(mode: 'api' | 'sdk' | undefined) {
  if (!mode) return undefined;
  const { openTelemetry } = require('../../adapters/otel') as typeof import('../../adapters/otel');
  if (mode === 'sdk') {
    const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
    const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
    const drop = { export: (_spans: unknown[], done: (r: { code: number }) => void) => done({ code: 0 }), shutdown: async () => undefined };
    new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop, { maxQueueSize: 100_000, maxExportBatchSize: 4096 })] }).register();
  }
  return openTelemetry();
}

interface Sink {
  readonly instance: object;
  readonly done: Promise<void>;
  stats(): { count: number; first: number; last: number };
}

/** A subscriber of the case's payload that counts, optionally slow, done after `n` messages. */
function eventSink(p: ChildIo['params']): Sink {
  let count = 0;
  let first = 0;
  let last = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const payload = (p.bulk ? BenchBulk : BenchEvent) as typeof BenchEvent;
  const delayMs: number = p.delayMs ?? 0;

  @Subscriber({ prefetch: p.prefetch })
  class EventSink {
    @Subscribe(payload)
    async handle(): Promise<void> {
      if (delayMs) await sleep(delayMs);
      if (++count === 1) first = now();
      if (count === p.n) {
        last = now();
        finish();
      }
    }
  }
  return { instance: new EventSink(), done, stats: () => ({ count, first, last: last || now() }) };
}

async function publishAll(b: Bus, p: ChildIo['params']): Promise<{ first: number; last: number; published: number }> {
  const first = now();
  await new Window(p.window).run(p.n, (i) => (p.bulk ? b.publish(BenchBulk, benchBulk(i)) : b.publish(BenchEvent, benchEvent(i))));
  return { first, last: now(), published: p.n };
}

export async function courierConsumer(io: ChildIo) {
  const p = io.params;
  const sink = eventSink(p);
  const b = bus(p).register(sink.instance);
  await b.start();
  io.ready();
  // Open-ended (back-pressure case): consume until run.ts says the producer is done.
  await (p.openEnded ? io.stop : sink.done);
  const stats = sink.stats();
  await b.stop({ timeoutMs: 2000 });
  return stats;
}

export async function courierProducer(io: ChildIo) {
  const p = io.params;
  const b = bus(p);
  await b.start();
  io.ready();
  await io.go;
  const r = await publishAll(b, p);
  await b.stop();
  return r;
}

function rpcServer(p: ChildIo['params']): object {
  @Subscriber({ prefetch: p.prefetch })
  class RpcServer {
    @Subscribe(BenchRequest)
    handle(req: BenchRequest) {
      return benchReply(req);
    }
  }
  return new RpcServer();
}

export async function courierRpcServer(io: ChildIo) {
  const b = bus(io.params).register(rpcServer(io.params));
  await b.start();
  io.ready();
  await io.stop;
  await b.stop({ timeoutMs: 2000 });
  return {};
}

async function requestAll(b: Bus, p: ChildIo['params']) {
  const call = async (i: number) => {
    const reply = (await b.request(BenchRequest, benchEvent(i))) as { seq: number };
    if (reply.seq !== i) throw new Error(`reply ${reply.seq} to request ${i}`);
  };
  return measureRequests(p.inflight, p.warmup, p.n, call);
}

export async function courierRpcClient(io: ChildIo) {
  const b = bus(io.params);
  await b.start();
  io.ready();
  await io.go;
  const r = await requestAll(b, io.params);
  await b.stop();
  return r;
}

/** Case d: publisher and subscriber on one in-memory broker, in this one process. */
export async function courierMemoryEvents(io: ChildIo) {
  const p = io.params;
  const sink = eventSink(p);
  const b = bus(p).register(sink.instance);
  await b.start();
  io.ready();
  await io.go;
  const { first } = await publishAll(b, p);
  await sink.done;
  const { count, last } = sink.stats();
  await b.stop();
  return { first, last, count };
}

export async function courierMemoryRpc(io: ChildIo) {
  const p = io.params;
  const b = bus(p).register(rpcServer(p));
  await b.start();
  io.ready();
  await io.go;
  const r = await requestAll(b, p);
  await b.stop();
  return r;
}
