import { describeTransport } from 'courier-bus/conformance';
import { mqttTransport } from '../../../adapters/mqtt';
import { mqttBroker } from '../../helpers/brokers';
import { MqttFixture } from './mqtt-fixture';

let fixture: MqttFixture | undefined;
async function getFixture(): Promise<MqttFixture> {
  fixture ??= new MqttFixture((await mqttBroker()).url);
  return fixture;
}

describeTransport('mqtt', {
  create: async () => (await getFixture()).create(),
  // The broker's URL comes from a fixture (a promise); the capabilities depend only on the options (MQTT 5, the fixture's default).
  capabilities: mqttTransport({ url: 'mqtt://localhost' }).capabilities,
  purge: async (specs) => (await getFixture()).purge(specs),
  timeoutMs: 5000,
});
