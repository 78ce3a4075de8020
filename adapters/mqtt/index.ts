export { MqttTransport, mqttTransport } from './mqtt-transport';
export type { MqttTransportOptions, MqttTlsOptions } from './mqtt-transport';
