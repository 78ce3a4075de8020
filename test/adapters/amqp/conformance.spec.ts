import { amqpTransport } from '../../../adapters/amqp';
import { describeTransport } from 'courier-bus/conformance';
import { amqpBroker } from '../../helpers/brokers';
import { deleteQueues } from './amqp-fixture';

describeTransport('amqp', {
  create: async () => amqpTransport({ url: (await amqpBroker()).url }),
  // The broker's URL comes from a fixture (a promise); the capabilities do not depend on it.
  capabilities: amqpTransport({ url: 'amqp://localhost' }).capabilities,
  purge: deleteQueues,
  timeoutMs: 5000,
});
