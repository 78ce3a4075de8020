/**
 * The plain mqtt.js side (issue 19): mqtt.js with its defaults, as a user would start (MQTT
 * 3.1.1, a clean session, a plain subscription), QoS 1 both ways, the same window of publishes
 * awaiting their PUBACK as the other sides. JSON parsed on receipt.
 */
import mqtt from 'mqtt';
import type { ChildIo } from '../child';
import { benchEvent } from '../payload';
import { now, Window } from '../window';

function connected(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
}

export async function plainMqttConsumer(io: ChildIo) {
  const p = io.params;
  let count = 0;
  let first = 0;
  let last = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  const client = mqtt.connect(p.url, { clientId: `${p.clientId}-plain-consumer`, reconnectPeriod: 0 });
  client.on('message', (_topic, payload) => {
    JSON.parse(payload.toString('utf8'));
    if (++count === 1) first = now();
    if (count === p.n) {
      last = now();
      finish();
    }
  });
  await connected(client);
  await client.subscribeAsync(p.topic, { qos: 1 });
  io.ready();
  await done;
  await client.endAsync();
  return { count, first, last };
}

export async function plainMqttProducer(io: ChildIo) {
  const p = io.params;
  const client = mqtt.connect(p.url, { clientId: `${p.clientId}-plain-producer`, reconnectPeriod: 0 });
  await connected(client);
  io.ready();
  await io.go;
  const window = new Window(p.window);
  const first = now();
  await window.run(p.n, (i) => client.publishAsync(p.topic, JSON.stringify(benchEvent(i)), { qos: 1 }).then(() => undefined));
  const last = now();
  await client.endAsync();
  return { first, last, published: p.n };
}
