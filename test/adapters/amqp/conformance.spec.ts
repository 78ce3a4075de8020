import { amqpTransport } from '../../../adapters/amqp';
import { describeTransport } from '../../conformance/describe-transport';
import { amqpBroker } from '../../helpers/brokers';
import { deleteQueues } from './amqp-fixture';

describeTransport('amqp', {
  create: async () => amqpTransport({ url: (await amqpBroker()).url }),
  purge: deleteQueues,
  timeoutMs: 5000,
});
