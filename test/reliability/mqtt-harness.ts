/**
 * What the MQTT reliability specs share: a payload class, buses over the MQTT adapter whose
 * publishes and deliveries are counted by envelope id in a {@link Ledger}, and bounded waits.
 */
import { IsInt, IsOptional, IsString } from 'class-validator';
import { Bus, createBus, Logger, Message, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import type { MqttTransport, MqttTransportOptions } from '../../adapters/mqtt';
import { MqttFixture } from '../adapters/mqtt/mqtt-fixture';
import { Ledger } from './ledger';

@Message('rel.mqtt.tick')
export class Tick {
  @IsInt() n!: number;
  @IsOptional() @IsString() pad?: string;
}

export interface CountedBus {
  readonly bus: Bus;
  readonly transport: MqttTransport;
  /** 'connected' events after start(): reconnections of any of the bus's MQTT clients. */
  reconnects(): number;
}

/** A bus on a fixture transport; every message handed to the transport is `sent` in the ledger. */
export function countedBus(
  fixture: MqttFixture,
  ledger: Ledger | undefined,
  options: Partial<MqttTransportOptions> = {},
  bus: { logger?: Logger; idempotency?: { store?: import('../../lib').DedupeStore }; maxMessageBytes?: number } = {},
): CountedBus {
  const transport = fixture.create({ reconnect: { minMs: 50, maxMs: 400 }, ...options });
  transport.on('error', () => undefined);
  let connects = 0;
  let started = false;
  transport.on('connected', () => started && connects++);
  if (ledger) {
    const publish = transport.publish.bind(transport);
    transport.publish = (m, o) => {
      ledger.sent(m.headers.id);
      return publish(m, o);
    };
  }
  const b = createBus({ transport, source: 'rel-mqtt', logger: bus.logger ?? silentLogger, idempotency: bus.idempotency, maxMessageBytes: bus.maxMessageBytes });
  const start = b.start.bind(b);
  b.start = () => start().then(() => void (started = true));
  return { bus: b, transport, reconnects: () => connects };
}

/** A subscriber class of `group` whose handler records every delivery's envelope id. */
export function tickSubscriber(
  group: string,
  onTick: (tick: Tick, ctx: MessageContext) => Promise<void> | void,
  options: { prefetch?: number; attempts?: number } = {},
): object {
  @Subscriber({ group, prefetch: options.prefetch ?? 50 })
  class TickHandler {
    @Subscribe(Tick, { retry: { attempts: options.attempts ?? 3, initialDelayMs: 20, maxDelayMs: 100 } })
    async onTick(tick: Tick, ctx: MessageContext): Promise<void> {
      await onTick(tick, ctx);
    }
  }
  return new TickHandler();
}

/**
 * Publishes `total` ticks in batches of `batch` awaited together; `during(batchIndex)` runs as
 * each batch starts (to inject a fault while it is in flight). Confirmed ids go to the ledger.
 */
export async function publishTicks(
  bus: Bus,
  ledger: Ledger,
  total: number,
  opts: {
    batch?: number;
    pad?: string;
    during?: (batchIndex: number) => void | Promise<void>;
    /** Filled with the time (Date.now()) each message's publish resolved, by its n. */
    confirmedAt?: Map<number, number>;
  } = {},
): Promise<{ confirmed: number; failed: number; errors: Error[] }> {
  const batch = opts.batch ?? 500;
  let confirmed = 0;
  let failed = 0;
  const errors: Error[] = [];
  for (let start = 0, b = 0; start < total; start += batch, b++) {
    const during = opts.during?.(b);
    await Promise.all(
      Array.from({ length: Math.min(batch, total - start) }, (_, k) =>
        bus.publish(Tick, { n: start + k, ...(opts.pad ? { pad: opts.pad } : {}) }).then(
          (id) => {
            ledger.confirmed(id);
            opts.confirmedAt?.set(start + k, Date.now());
            confirmed++;
          },
          (e: Error) => {
            failed++;
            if (errors.length < 5) errors.push(e);
          },
        ),
      ),
    );
    await during;
  }
  return { confirmed, failed, errors };
}

/** Waits (bounded) until every confirmed id was received, then a short settle for late duplicates. */
export async function drain(ledger: Ledger, timeoutMs: number, settleMs = 300): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ledger.complete && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, settleMs));
}

/**
 * Counts, on the wire, the PUBACK / PUBREC packets with reason code 0x10 ("no matching
 * subscribers") that the transport's publisher client receives. Call after the bus started.
 */
export function watchNoSubscribers(transport: MqttTransport): () => number {
  const client = (transport as unknown as { publisher?: import('mqtt').MqttClient }).publisher;
  if (!client) throw new Error('watchNoSubscribers: the transport is not connected yet');
  let n = 0;
  client.on('packetreceive', (p) => {
    if ((p.cmd === 'puback' || p.cmd === 'pubrec') && p.reasonCode === 0x10) n++;
  });
  return () => n;
}
