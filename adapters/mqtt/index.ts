export { MqttTransport, mqttTransport } from './mqtt-transport';
export { instanceSessionId } from './mqtt-mapping';
export type { MqttTransportOptions, MqttTlsOptions } from './mqtt-transport';
