export { MqttTransport, mqttTransport } from './mqtt-transport';
export type { MqttTransportOptions, MqttTlsOptions } from './mqtt-transport';
export { UnstableClientIdError } from './client-id-policy';
