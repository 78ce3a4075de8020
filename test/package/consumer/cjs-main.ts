import { amqpTransport } from 'courier-bus/amqp';
import { memoryTransport } from 'courier-bus/memory';
import { env, roundTrip } from './round-trip.js';

async function main(): Promise<void> {
  const results = [await roundTrip('memory', memoryTransport()), await roundTrip('amqp', amqpTransport({ url: env('COURIER_AMQP_URL') }))];
  console.log(JSON.stringify(results));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
