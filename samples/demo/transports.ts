/**
 * Which transport the demo runs on. Memory needs nothing; the broker adapters are required only
 * when chosen, so the memory demo runs without amqplib or mqtt installed.
 *
 * Isolation: a run with a namespace gets its own groups (`order-service-<ns>`), its own AMQP
 * exchange or MQTT topic prefix, and short MQTT session expiry, so that repeated runs (and a
 * concurrent one) never see each other's messages; cleanup() deletes what AMQP keeps after it.
 */
import { MemoryBroker, memoryTransport } from 'courier-bus/memory';
import { DeliveryHandler, Subscription, SubscriptionSpec, Transport, TransportWrapper } from 'courier-bus';

export type TransportName = 'memory' | 'amqp' | 'mqtt';

export const DEFAULT_URLS: Record<Exclude<TransportName, 'memory'>, string> = {
  amqp: 'amqp://guest:guest@127.0.0.1:5672',
  mqtt: 'mqtt://127.0.0.1:1883',
};

export class AdapterMissingError extends Error {
  constructor(readonly transport: TransportName, cause: unknown) {
    super(
      `The ${transport} adapter is not available (courier-bus/${transport} could not be loaded: ${(cause as Error).message}). ` +
        'Run the demo with --transport memory, or install the adapter and its broker library.',
      { cause },
    );
    this.name = 'AdapterMissingError';
  }
}

export interface DemoEnvironment {
  readonly transport: TransportName;
  /** A new transport for one participant (`product`, `order-2`, `driver`). */
  makeTransport(who: string): Transport;
  /** The bus source of a service, which is also its group. */
  group(service: 'product-service' | 'order-service' | 'demo-driver' | 'demo-http'): string;
  /**
   * Deletes what this process alone owns on the broker: its instance subscriptions' queues
   * (`'own'`: a driver that is done), or also the namespace's groups' queues and its exchange
   * (`'namespace'`: only for a run that created the namespace and ran every role itself). Never
   * called by a service role: its group's queues are shared, its instance queues outlive a restart.
   */
  cleanup(scope: 'own' | 'namespace'): Promise<void>;
  /**
   * Removes the namespace's shared topology (`courier demo --remove-namespace`): on AMQP its
   * exchange and its groups' work and dead-letter queues, messages included; on MQTT nothing is
   * shared but sessions, which expire by themselves. Only when no process of the namespace runs.
   */
  removeNamespace(): Promise<void>;
}

/** The demo's group subscriptions: each service's handlers (what `removeNamespace()` deletes the queues of). */
export const GROUP_HANDLERS: Readonly<Record<'product-service' | 'order-service', readonly string[]>> = {
  'product-service': ['ProductService.onCreateProduct', 'ProductService.onChangePrice', 'ProductService.onOrderPlaced', 'ProductService.getProduct', 'ProductService.listProducts'],
  'order-service': ['OrderService.onPlaceOrder', 'OrderService.onStockReserved', 'OrderService.onStockRejected', 'OrderService.getOrder'],
};

export function demoEnvironment(transport: TransportName, url: string | undefined, namespace: string | undefined): DemoEnvironment {
  const group = (service: string) => (namespace ? `${service}-${namespace}` : service);
  if (transport === 'memory') {
    const broker = new MemoryBroker();
    return { transport, group, makeTransport: () => memoryTransport({ broker }), cleanup: async () => undefined, removeNamespace: async () => undefined };
  }
  const brokerUrl = url ?? DEFAULT_URLS[transport];
  if (transport === 'mqtt') {
    const { mqttTransport } = load(transport) as typeof import('courier-bus/mqtt');
    return {
      transport,
      group,
      makeTransport: (who) =>
        mqttTransport({
          url: brokerUrl,
          prefix: namespace ? `courier-${namespace}` : 'courier',
          // Group members need distinct ids that stay the same when a role process restarts (else it
          // never sees what its old session queued): `who` is the instance id (or `product`).
          clientId: `courier-demo-${namespace ?? 'shared'}-${who}`,
          sessionExpirySeconds: namespace ? 30 : 3600,
          // Below the outbox relay's lease (services.ts), so a publish never outlives its claim.
          publishTimeoutMs: 2000,
        }),
      cleanup: async () => undefined,
      removeNamespace: async () => undefined,
    };
  }
  const amqp = load(transport) as typeof import('courier-bus/amqp');
  const exchange = namespace ? `courier.demo.${namespace}` : 'courier.events';
  const groupQueues = new Set<string>();
  const ownQueues = new Set<string>();
  const record = (spec: SubscriptionSpec) => {
    if (spec.group) groupQueues.add(amqp.workQueueName(spec.group, spec.name)).add(amqp.deadQueueName(spec.group, spec.name));
    // Not its dead letters: `broadcast.<name>.dead` is shared by every run.
    else if (spec.instance) ownQueues.add(amqp.instanceQueueName(spec.instance, spec.name));
  };
  return {
    transport,
    group,
    makeTransport: (who) => new QueueRecorder(amqp.amqpTransport({ url: brokerUrl, exchange, connectionName: `courier demo ${who}`, publishTimeoutMs: 2000 }), record),
    cleanup: async (scope) => {
      if (scope === 'own') await deleteAmqp(brokerUrl, undefined, [...ownQueues]);
      else if (namespace) await deleteAmqp(brokerUrl, exchange, [...groupQueues, ...ownQueues]);
    },
    removeNamespace: async () => {
      if (!namespace) throw new Error('removeNamespace needs a namespace (the shared default topology is never removed)');
      const names: string[] = [];
      for (const [service, handlers] of Object.entries(GROUP_HANDLERS)) {
        for (const h of handlers) names.push(amqp.workQueueName(group(service), h), amqp.deadQueueName(group(service), h));
      }
      await deleteAmqp(brokerUrl, exchange, names);
    },
  };
}

function load(transport: 'amqp' | 'mqtt'): unknown {
  try {
    return require(`courier-bus/${transport}`);
  } catch (err) {
    throw new AdapterMissingError(transport, err);
  }
}

/** Deletes queues, and the exchange when given. */
async function deleteAmqp(url: string, exchange: string | undefined, queues: string[]): Promise<void> {
  if (!exchange && !queues.length) return;
  const amqplib = require('amqplib') as typeof import('amqplib');
  const conn = await amqplib.connect(url);
  try {
    const ch = await conn.createChannel();
    for (const q of queues) await ch.deleteQueue(q);
    if (exchange) await ch.deleteExchange(exchange);
  } finally {
    await conn.close();
  }
}

/** Passes everything through and notes the group queue of each subscription, for cleanup. */
class QueueRecorder extends TransportWrapper {
  constructor(inner: Transport, private readonly record: (spec: SubscriptionSpec) => void) {
    super(inner);
  }
  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    this.record(spec);
    return this.inner.subscribe(spec, handler);
  }
}
