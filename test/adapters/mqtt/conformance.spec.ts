import { describeTransport } from '../../conformance/describe-transport';
import { mqttBroker } from '../../helpers/brokers';
import { MqttFixture } from './mqtt-fixture';

let fixture: MqttFixture | undefined;
async function getFixture(): Promise<MqttFixture> {
  fixture ??= new MqttFixture((await mqttBroker()).url);
  return fixture;
}

describeTransport('mqtt', {
  create: async () => (await getFixture()).create(),
  purge: async (specs) => (await getFixture()).purge(specs),
  timeoutMs: 5000,
});
