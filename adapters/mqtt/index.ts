/** The mqtt adapter, imported as `courier-bus/mqtt`; `mqtt` is an optional peer dependency the app installs. */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('mqtt', 'courier-bus/mqtt');

export { MqttTransport, mqttTransport } from './mqtt-transport';
export { instanceSessionId } from './mqtt-mapping';
export type { MqttTransportOptions, MqttTlsOptions } from './mqtt-transport';
export { UnstableClientIdError } from './client-id-policy';
