import { amqpTransport } from 'courier-bus/amqp';
import { memoryTransport } from 'courier-bus/memory';
import { mqttTransport } from 'courier-bus/mqtt';
import { env, roundTrip } from './round-trip.js';

const results = [
  await roundTrip('memory', memoryTransport()),
  await roundTrip('amqp', amqpTransport({ url: env('COURIER_AMQP_URL') })),
  await roundTrip('mqtt', mqttTransport({ url: env('COURIER_MQTT_URL'), clientId: `courier-consumer-${process.pid}` })),
];
console.log(JSON.stringify(results));
process.exit(0);
