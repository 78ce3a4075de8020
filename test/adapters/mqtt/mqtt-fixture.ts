/**
 * Test fixture for the MQTT adapter: transports whose group members get stable, distinct session
 * ids (the lowest member number not in use in this process, as a replica ordinal would be), and a
 * purge that deletes every session the tests created.
 */
import type { MqttClient } from 'mqtt';
import { SubscriptionSpec } from '../../../lib/transport';
import { instanceSessionId, MqttTransport, MqttTransportOptions, mqttTransport } from '../../../adapters/mqtt';

export class MqttFixture {
  private readonly inUse = new Map<string, Set<number>>();
  private readonly used = new Set<string>();
  readonly clientId = `courier-test-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;

  constructor(private readonly url: string, private readonly extra: Partial<MqttTransportOptions> = {}) {}

  private get prefix(): string {
    return this.extra.prefix ?? 'courier';
  }

  create(options: Partial<MqttTransportOptions> = {}): MqttTransport {
    const mine: Array<[string, number]> = [];
    const t = mqttTransport({
      url: this.url,
      clientId: this.clientId,
      reconnect: { minMs: 100, maxMs: 1000 },
      ...this.extra,
      ...options,
      groupClientId: (group, name) => {
        const key = `${group}:${name}`;
        const taken = this.inUse.get(key) ?? new Set<number>();
        this.inUse.set(key, taken);
        let k = 0;
        while (taken.has(k)) k++;
        taken.add(k);
        mine.push([key, k]);
        const id = `${this.clientId}:${key}:m${k}`;
        this.used.add(id);
        return id;
      },
    });
    const close = t.close.bind(t);
    t.close = (o) =>
      close(o).finally(() => {
        for (const [key, k] of mine) this.inUse.get(key)?.delete(k);
        mine.length = 0;
      });
    return t;
  }

  /** Ends every persistent session the given specs (or all, without specs) created. */
  async purge(specs?: SubscriptionSpec[]): Promise<void> {
    const keys = specs?.filter((s) => s.group).map((s) => `:${s.group}:${s.name}:`);
    const ids = [...this.used].filter((id) => !keys || keys.some((k) => id.includes(k)));
    // Instance subscriptions' sessions are named from their instance (adapters/mqtt/client-id-policy.ts).
    for (const s of specs ?? []) if (!s.group && s.instance) ids.push(instanceSessionId(this.prefix, s.instance, s.name));
    const all = ids.flatMap((id) => [id, `${id}:retry`, `${id}:dead`, `${id}:dead:retry`]);
    await Promise.all(all.map((id) => purgeSession(this.url, id)));
    for (const id of ids) this.used.delete(id);
  }
}

/** Connect with clean start and session expiry 0, then disconnect: the broker drops the session. */
export async function purgeSession(url: string, clientId: string): Promise<void> {
  const mqtt = require('mqtt') as typeof import('mqtt');
  const client: MqttClient = mqtt.connect(url, {
    clientId,
    clean: true,
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 3000,
    properties: { sessionExpiryInterval: 0 },
  });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.end(true);
      resolve();
    }, 4000);
    const done = () => {
      clearTimeout(timer);
      client.end(true, {}, () => resolve());
    };
    client.once('connect', () => client.end(false, {}, () => (clearTimeout(timer), resolve())));
    client.once('error', done);
  });
}
