import assert from 'node:assert/strict';
import { main } from '../../samples/nestjs/main';
import { amqpBroker, mqttBroker } from '../helpers/brokers';

const EXPECTED = [
  { orderId: 'o-1', productId: 'p-1', state: 'confirmed' },
  { orderId: 'o-2', productId: 'p-2', state: 'rejected', reason: 'insufficient-stock' },
  { orderId: 'o-3', productId: 'p-9', state: 'rejected', reason: 'unknown-product' },
];

describe('samples/nestjs: the order/product pair as one Nest application', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of ['COURIER_TRANSPORT', 'COURIER_AMQP_URL', 'COURIER_MQTT_URL']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });

  for (const transport of ['memory', 'amqp', 'mqtt']) {
    it(`on ${transport}: the order from onApplicationBootstrap and two more reach their outcomes through events and a request`, async () => {
      process.env['COURIER_TRANSPORT'] = transport;
      if (transport === 'amqp') process.env['COURIER_AMQP_URL'] = (await amqpBroker()).url;
      if (transport === 'mqtt') process.env['COURIER_MQTT_URL'] = (await mqttBroker()).url;
      const log = console.log;
      console.log = () => undefined;
      try {
        assert.deepEqual(await main(), EXPECTED);
      } finally {
        console.log = log;
      }
    });
  }
});
