/**
 * The raw mqtt.js side: QoS 1 both ways, the same window of publishes awaiting their PUBACK as
 * Courier's maxInFlight, and on the consumer the same broker-side shape as a Courier group (a
 * persistent MQTT 5 session holding a shared subscription). JSON parsed on receipt, not validated.
 */
import mqtt from 'mqtt';
import type { ChildIo } from '../child';
import { benchEvent } from '../payload';
import { now, Window } from '../window';

export async function rawMqttConsumer(io: ChildIo) {
  const p = io.params;
  let count = 0;
  let first = 0;
  let last = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const client = mqtt.connect(p.url, {
    clientId: `${p.clientId}-consumer`,
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 300 },
    reconnectPeriod: 0,
  });
  // Before the connection is up: a persistent session's backlog is PUBACKed when this returns.
  client.on('message', (_topic, payload) => {
    JSON.parse(payload.toString('utf8'));
    if (++count === 1) first = now();
    if (count === p.n) {
      last = now();
      finish();
    }
  });
  await once(client, 'connect');
  await client.subscribeAsync(`$share/${p.group}/${p.topic}`, { qos: 1 });
  io.ready();
  await done;
  await client.endAsync();
  return { count, first, last };
}

export async function rawMqttProducer(io: ChildIo) {
  const p = io.params;
  const client = mqtt.connect(p.url, { clientId: `${p.clientId}-producer`, clean: true, protocolVersion: 5, reconnectPeriod: 0 });
  await once(client, 'connect');
  io.ready();
  await io.go;
  const window = new Window(p.window);
  const first = now();
  await window.run(
    p.n,
    (i) =>
      new Promise<void>((resolve, reject) =>
        client.publish(p.topic, Buffer.from(JSON.stringify(benchEvent(i))), { qos: 1, properties: { contentType: 'application/json' } }, (err) =>
          err ? reject(err) : resolve(),
        ),
      ),
  );
  const last = now();
  await client.endAsync();
  return { first, last, published: p.n };
}

function once(client: mqtt.MqttClient, event: 'connect'): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once(event, () => resolve());
    client.once('error', reject);
  });
}
