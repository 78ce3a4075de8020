/**
 * The plain mqtt.js side (issue 19): mqtt.js with its defaults, as a user would start (MQTT
 * 3.1.1, a clean session, a plain subscription), QoS 1 both ways, the same window of publishes
 * awaiting their PUBACK as the other sides. JSON parsed on receipt.
 */
import mqtt from 'mqtt';
import type { ChildIo } from '../child';
import { benchEvent } from '../payload';
import { now, Window } from '../window';
import { ArrivalCounter } from './common';

function connected(client: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
}

export async function plainMqttConsumer(io: ChildIo) {
  const p = io.params;
  const counter = new ArrivalCounter(p.n);
  const client = mqtt.connect(p.url, { clientId: `${p.clientId}-plain-consumer`, reconnectPeriod: 0 });
  client.on('message', (_topic, payload) => {
    JSON.parse(payload.toString('utf8'));
    counter.arrived();
  });
  await connected(client);
  await client.subscribeAsync(p.topic, { qos: 1 });
  io.ready();
  await counter.done;
  await client.endAsync();
  return counter.result();
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
