export { AmqpTransport, amqpTransport } from './amqp-transport';
export type { AmqpTransportOptions } from './amqp-options';
export { delayQueueName, retryDelayTier, deadQueueName, workQueueName } from './wire';
