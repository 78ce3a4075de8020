export { AmqpTransport, amqpTransport } from './amqp-transport';
export type { AmqpTransportOptions } from './amqp-options';
export { delayQueueName, deadQueueName, instanceQueueName, workQueueName } from './wire';
