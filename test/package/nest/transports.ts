import type { Transport } from 'courier-bus';
import { amqpTransport } from 'courier-bus/amqp';
import { memoryTransport } from 'courier-bus/memory';
import { mqttTransport } from 'courier-bus/mqtt';
import { RUN } from './messages.js';

export const TRANSPORT = process.env['COURIER_NEST_TRANSPORT'] ?? 'memory';

/** The transport named by COURIER_NEST_TRANSPORT; the same MQTT client id each time, so a second one resumes the first one's sessions. */
export function makeTransport(): Transport {
  if (TRANSPORT === 'memory') return memoryTransport();
  if (TRANSPORT === 'amqp') return amqpTransport({ url: env('COURIER_AMQP_URL') });
  if (TRANSPORT === 'mqtt') return mqttTransport({ url: env('COURIER_MQTT_URL'), clientId: `nest-${RUN}`, sessionExpirySeconds: 120 });
  throw new Error(`unknown transport ${TRANSPORT}`);
}

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
