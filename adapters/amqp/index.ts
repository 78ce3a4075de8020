/** The amqplib adapter, imported as `courier-bus/amqp`; `amqplib` is an optional peer dependency the app installs. */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('amqplib', 'courier-bus/amqp');

export { AmqpTransport, amqpTransport } from './amqp-transport';
export type { AmqpTransportOptions } from './amqp-options';
export { delayQueueName, retryDelayTier, deadQueueName, instanceQueueName, workQueueName } from './wire';
