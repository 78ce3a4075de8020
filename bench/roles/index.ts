import type { Role } from '../child';
import * as courier from './courier';
import * as plainAmqp from './plain-amqp';
import * as plainMqtt from './plain-mqtt';
import * as rawAmqp from './raw-amqp';
import * as rawMqtt from './raw-mqtt';

/** Every role a child process can play, by the name run.ts passes. */
export const roles: Record<string, Role> = {
  'courier-consumer': courier.courierConsumer,
  'courier-producer': courier.courierProducer,
  'courier-rpc-server': courier.courierRpcServer,
  'courier-rpc-client': courier.courierRpcClient,
  'courier-memory-events': courier.courierMemoryEvents,
  'courier-memory-rpc': courier.courierMemoryRpc,
  'raw-amqp-consumer': rawAmqp.rawAmqpConsumer,
  'raw-amqp-producer': rawAmqp.rawAmqpProducer,
  'raw-amqp-rpc-server': rawAmqp.rawAmqpRpcServer,
  'raw-amqp-rpc-client': rawAmqp.rawAmqpRpcClient,
  'raw-mqtt-consumer': rawMqtt.rawMqttConsumer,
  'raw-mqtt-producer': rawMqtt.rawMqttProducer,
  'plain-amqp-consumer': plainAmqp.plainAmqpConsumer,
  'plain-amqp-producer': plainAmqp.plainAmqpProducer,
  'plain-amqp-rpc-server': plainAmqp.plainAmqpRpcServer,
  'plain-amqp-rpc-client': plainAmqp.plainAmqpRpcClient,
  'plain-mqtt-consumer': plainMqtt.plainMqttConsumer,
  'plain-mqtt-producer': plainMqtt.plainMqttProducer,
};
