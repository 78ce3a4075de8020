/** The mqtt adapter, imported as `courier-bus/mqtt`; `mqtt` is an optional peer dependency the app installs. */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('mqtt', 'courier-bus/mqtt');

export { MqttTransport, mqttTransport } from './mqtt-transport';
export { instanceSessionId, UnstableClientIdError } from './client-id-policy';
export type { MqttTransportOptions, MqttTlsOptions } from './mqtt-options';
