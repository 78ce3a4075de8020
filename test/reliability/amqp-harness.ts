/**
 * What the AMQP reliability cases share: a payload class and a decorated counting subscriber made
 * per case (their own message type and group, so cases never see each other's messages on the
 * shared broker), a transport wrapper that tells the Ledger what was sent and confirmed (by
 * envelope id), broker URLs through a TCP proxy, and the deletion of every queue a case made.
 */
import { IsInt, IsOptional, IsString } from 'class-validator';
import type { ChannelModel } from 'amqplib';
import amqplib from 'amqplib';
import { amqpTransport, AmqpTransport } from '../../adapters/amqp';
import type { AmqpTransportOptions } from '../../adapters/amqp';
import { Bus, BusOptions, createBus, DedupeStore, Headers, Message, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import type { Delivery, RetryOptions, Transport } from '../../lib';
import { Ledger } from './ledger';
import { TcpProxy } from '../helpers/tcp-proxy';
import { rabbitmqctl } from '../adapters/amqp/amqp-fixture';

/** The payload of every case: a sequence number and optional padding (for size). */
export interface TickShape {
  n: number;
  pad?: string;
}

/** A fresh @Message class of its own type (`type` must be unique per case). */
export function tickClass(type: string) {
  @Message(type)
  class Tick implements TickShape {
    @IsInt() n!: number;
    @IsOptional() @IsString() pad?: string;
  }
  return Tick;
}
export type TickClass = ReturnType<typeof tickClass>;

export interface CounterOptions {
  readonly group: string;
  readonly prefetch?: number;
  readonly retry?: RetryOptions;
  /** The handler's work; default: nothing (the delivery counts). */
  readonly work?: (tick: TickShape, ctx: MessageContext) => Promise<void> | void;
}

/**
 * A decorated subscriber class that reports every handled envelope id to `ledger` (after `work`
 * resolved, so a delivery whose work failed is not counted as received). Queue `<group>.Counter.onTick`.
 */
export function counterClass(Tick: TickClass, ledger: Ledger | undefined, o: CounterOptions) {
  @Subscriber({ group: o.group, prefetch: o.prefetch ?? 50 })
  class Counter {
    @Subscribe(Tick, { retry: o.retry ?? { attempts: 3, initialDelayMs: 20 } })
    async onTick(tick: InstanceType<TickClass>, ctx: MessageContext): Promise<void> {
      await o.work?.(tick, ctx);
      ledger?.received(ctx.id);
    }
  }
  return Counter;
}
export const COUNTER_HANDLER = 'Counter.onTick';

/**
 * Wraps a transport: each publish's envelope id is `sent` when the bus hands it over and
 * `confirmed` when the transport resolves it (the broker's confirm); `delivered` counts what the
 * broker delivered to a subscription, per envelope id (or topic when there is none), before the bus.
 */
export function countingTransport(
  inner: Transport,
  ledger?: Ledger,
  delivered?: Map<string, number>,
  onDelivery?: (d: Delivery) => void,
): Transport {
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'publish' && ledger) {
        return async (message: Parameters<Transport['publish']>[0], options?: Parameters<Transport['publish']>[1]) => {
          const id = message.headers[Headers.id];
          ledger.sent(id);
          await target.publish(message, options);
          ledger.confirmed(id);
        };
      }
      if (key === 'subscribe' && (delivered || onDelivery)) {
        return (spec: Parameters<Transport['subscribe']>[0], handler: Parameters<Transport['subscribe']>[1]) =>
          target.subscribe(spec, (d) => {
            const k = d.headers[Headers.id] ?? `(no id) ${d.topic}`;
            delivered?.set(k, (delivered.get(k) ?? 0) + 1);
            onDelivery?.(d);
            return handler(d);
          });
      }
      const v = Reflect.get(target, key, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** Fast reconnects, and publishes that wait out a fault rather than time out during it. */
export const FAULT_OPTIONS: Partial<AmqpTransportOptions> = {
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  publishTimeoutMs: 60_000,
};

export interface CaseBus {
  readonly bus: Bus;
  readonly transport: AmqpTransport;
  /** 'connected' events after the first one. */
  reconnects(): number;
}

/** A bus on its own AMQP transport (counting publishes into `ledger` when given). */
export function amqpBus(
  url: string,
  opts: {
    ledger?: Ledger;
    delivered?: Map<string, number>;
    onDelivery?: (d: Delivery) => void;
    transport?: Partial<AmqpTransportOptions>; bus?: Partial<BusOptions>; source?: string } = {},
): CaseBus {
  const transport = amqpTransport({ url, ...FAULT_OPTIONS, ...opts.transport });
  let connects = 0;
  transport.on('connected', () => connects++);
  transport.on('error', () => undefined);
  const bus = createBus({
    transport: countingTransport(transport, opts.ledger, opts.delivered, opts.onDelivery),
    source: opts.source ?? 'reliability',
    logger: silentLogger,
    meter: false,
    ...opts.bus,
  });
  return { bus, transport, reconnects: () => Math.max(0, connects - 1) };
}

/** `url` with its host and port replaced by the proxy's. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.host = `127.0.0.1:${proxy.port}`;
  return u.toString();
}

/**
 * Deletes every queue whose name starts with one of `prefixes` (work, dead-letter and the delay
 * queues of jittered retries), found through the management of the broker at `url`.
 */
export async function deleteQueuesByPrefix(url: string, prefixes: readonly string[], names: () => Promise<string[]>): Promise<void> {
  if (!prefixes.length) return;
  const all = await names().catch(() => [] as string[]);
  const doomed = all.filter((q) => prefixes.some((p) => q.startsWith(p)));
  let conn: ChannelModel | undefined;
  try {
    conn = await amqplib.connect(url);
    conn.on('error', () => undefined);
    for (const q of doomed) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** deleteQueuesByPrefix over every queue `rabbitmqctl list_queues` lists on the broker amqpBroker() chose. */
export async function deleteListedQueues(url: string, prefixes: readonly string[]): Promise<void> {
  await deleteQueuesByPrefix(url, prefixes, async () => queueNames(await rabbitmqctl(['list_queues', '-q', 'name'])));
}

/** Queue names from `rabbitmqctl list_queues` output. */
export function queueNames(listing: string): string[] {
  return listing
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((l) => l && !/^(Timeout|Listing|name)\b/.test(l));
}

/** Resolves `p`, or rejects after `ms` saying what hung. */
export function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

export type { DedupeStore };
