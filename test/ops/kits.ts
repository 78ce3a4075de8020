/**
 * One isolated corner of a real broker per test, for the operating commands: an AMQP exchange
 * and group of its own (queues deleted after), or an MQTT prefix and member id of its own
 * (sessions expiring a minute after). `cli` are the broker options the command needs to meet it.
 */
import amqplib from 'amqplib';
import { IsBoolean, IsOptional, IsString } from 'class-validator';
import { Message, MessageContext, RejectMessageError, Subscribe, Subscriber, Transport } from '../../lib';
import { amqpTransport } from '../../adapters/amqp';
import { mqttTransport } from '../../adapters/mqtt';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { uniq } from '../helpers/wait';

export type Broker = 'amqp' | 'mqtt';

export interface Kit {
  readonly broker: Broker;
  readonly url: string;
  readonly group: string;
  /** Broker options of the `courier` command. */
  readonly cli: string[];
  /** A transport of the service under test (same exchange / prefix; on MQTT its member id). */
  transport(): Transport;
  /** Deletes what the broker keeps (AMQP queues and exchange). */
  cleanup(): Promise<void>;
}

export async function makeKit(broker: Broker): Promise<Kit> {
  const id = uniq('ops');
  const group = `g-${id}`;
  if (broker === 'amqp') {
    const url = (await amqpBroker()).url;
    const exchange = `courier.test.${id}`;
    return {
      broker,
      url,
      group,
      cli: ['--transport', 'amqp', '--url', url, '--exchange', exchange],
      transport: () => amqpTransport({ url, exchange }),
      cleanup: async () => {
        const conn = await amqplib.connect(url);
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        for (const q of ['Service.on', 'Fast.on', 'Stuck.on'].flatMap((h) => [`${group}.${h}`, `${group}.${h}.dead`])) await ch.deleteQueue(q).catch(() => undefined);
        await ch.deleteExchange(exchange).catch(() => undefined);
        await conn.close().catch(() => undefined);
      },
    };
  }
  const url = (await mqttBroker()).url;
  const prefix = `ct-${id}`;
  const clientId = `m-${id}`;
  return {
    broker,
    url,
    group,
    cli: ['--transport', 'mqtt', '--url', url, '--prefix', prefix, '--client-id', clientId, '--session-expiry', '60'],
    transport: () => mqttTransport({ url, prefix, clientId, sessionExpirySeconds: 60 }),
    cleanup: async () => undefined,
  };
}

@Message('ops.item')
export class Item {
  @IsString() n!: string;
  @IsOptional() @IsBoolean() poison?: boolean;
}

/** What the service's handler saw. */
export interface Handled {
  readonly id: string;
  readonly n: string;
  readonly attempt: number;
  readonly replayed?: string;
}

/** The service: one handler, `Service.on` in `group`, that rejects everything until `fixed`. */
export function service(group: string) {
  @Subscriber({ group })
  class Service {
    fixed = false;
    readonly handled: Handled[] = [];
    @Subscribe(Item, { retry: { attempts: 1 }, prefetch: 50 })
    async on(p: Item, ctx: MessageContext) {
      if (!this.fixed || p.poison) throw new RejectMessageError(`not handled yet: ${p.n}`);
      this.handled.push({ id: ctx.id, n: p.n, attempt: ctx.attempt, replayed: ctx.headers.courierreplayed });
    }
  }
  return new Service();
}
