/**
 * What the observability specs share: transports of one kind on the real broker (memory, AMQP,
 * MQTT), isolated per spec (own exchange / topic prefix / groups), and the cleanup of what they made.
 */
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { amqpTransport } from '../../adapters/amqp';
import type { SubscriptionSpec, Transport } from '../../lib/transport';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { deleteQueues } from '../adapters/amqp/amqp-fixture';
import { MqttFixture } from '../adapters/mqtt/mqtt-fixture';
import { uniq } from '../helpers/wait';

export type Kind = 'memory' | 'amqp' | 'mqtt';
export const KINDS: readonly Kind[] = ['memory', 'amqp', 'mqtt'];

export interface Kit {
  /** A transport of this kind; `url` overrides the broker's (a TCP proxy in front of it). */
  create(url?: string): Transport;
  /** The broker's host and port (for a proxy). */
  readonly host: string;
  readonly port: number;
  /** Deletes the queues / sessions of these subscriptions. */
  cleanup(specs: SubscriptionSpec[]): Promise<void>;
}

export async function kit(kind: Kind): Promise<Kit> {
  if (kind === 'memory') {
    const broker = new MemoryBroker();
    return { create: () => memoryTransport({ broker }), host: '', port: 0, cleanup: async () => undefined };
  }
  if (kind === 'amqp') {
    const b = await amqpBroker();
    const exchange = uniq('obs-x');
    return {
      host: b.host,
      port: b.port,
      create: (url) => amqpTransport({ url: url ?? b.url, exchange, reconnect: { initialDelayMs: 100, maxDelayMs: 500 } }),
      cleanup: async (specs) => {
        await deleteQueues(specs);
        const amqplib = await import('amqplib');
        const conn = await amqplib.connect(b.url);
        const ch = await conn.createChannel();
        await ch.deleteExchange(exchange).catch(() => undefined);
        await conn.close().catch(() => undefined);
      },
    };
  }
  const b = await mqttBroker();
  const fixtures: MqttFixture[] = [];
  const prefix = uniq('obs');
  return {
    host: b.host,
    port: b.port,
    create: (url) => {
      const f = new MqttFixture(url ?? b.url, { prefix });
      fixtures.push(f);
      return f.create();
    },
    cleanup: async (specs) => {
      for (const f of fixtures) await f.purge(specs);
    },
  };
}
