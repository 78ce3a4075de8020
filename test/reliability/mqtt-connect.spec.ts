/**
 * Issue 14, points 7 and 10 for MQTT, against Mosquitto instances the test starts.
 *   7.  A wrong password (MQTT 5: CONNACK 0x87 from Mosquitto 2.0; 3.1.1: return code 5) fails at
 *       once with AuthenticationError naming user and broker, never the password.
 *   10. A connection cut during the first CONNECT or SUBSCRIBE is retried within startTimeoutMs;
 *       kept down beyond it, start() rejects with StartTimeoutError in bounded time.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mqttTransport } from '../../adapters/mqtt';
import { AuthenticationError, createBus, silentLogger, StartTimeoutError } from '../../lib';
import { TcpProxy } from '../helpers/tcp-proxy';
import { uniq, waitFor } from '../helpers/wait';
import { bounded } from './amqp-harness';
import { assertRefusedAtOnce, errorTexts } from './auth-checks';
import { Ledger } from './ledger';
import { MqttBroker } from './mqtt-broker';
import { Tick, tickSubscriber } from './mqtt-harness';

describe('reliability, MQTT: authentication and start-up (issue 14)', function () {
  this.timeout(60_000);

  for (const protocolVersion of [5, 4] as const) {
    it(`7. MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}: a wrong password gives AuthenticationError at once, naming user and host:port, never the password; bus.start() surfaces it`, async () => {
      const canary = `cAnArY${randomBytes(6).toString('hex')}`;
      const broker = new MqttBroker({ persistence: false, users: { courier: `${canary}-right` } });
      await broker.start();
      try {
        const connectTimeoutMs = 10_000;
        const options = { url: broker.url, username: 'courier', password: canary, protocolVersion, connectTimeoutMs, startTimeoutMs: 20_000 };
        const t = mqttTransport({ ...options, clientId: uniq('auth') });
        await assertRefusedAtOnce(t, { user: 'courier', broker: `127.0.0.1:${broker.port}`, canary, connectTimeoutMs });

        const bus = createBus({ transport: mqttTransport({ ...options, clientId: uniq('authbus') }), source: 'rel-auth', logger: silentLogger });
        bus.register(tickSubscriber(uniq('g'), () => undefined));
        const t1 = Date.now();
        const startErr = await bounded(bus.start(), 30_000, 'start with a wrong password').catch((e: unknown) => e);
        await bus.stop({ timeoutMs: 500 });
        assert.ok(startErr instanceof AuthenticationError, `${startErr}`);
        assert.ok(Date.now() - t1 < connectTimeoutMs / 2);
        assert.ok(!errorTexts(startErr).includes(canary));
      } finally {
        await broker.dispose();
      }
    });
  }

  describe('10. start-up through connection cuts', () => {
    let broker: MqttBroker;
    let proxy: TcpProxy;
    before(async () => {
      broker = new MqttBroker({ persistence: false });
      await broker.start();
    });
    after(async () => broker.dispose());
    beforeEach(async () => {
      proxy = new TcpProxy('127.0.0.1', broker.port);
      await proxy.start();
    });
    afterEach(async () => proxy.stop());

    function groupBus(group: string, ledger: Ledger | undefined, startTimeoutMs: number) {
      const transport = mqttTransport({
        url: `mqtt://127.0.0.1:${proxy.port}`,
        clientId: uniq('start'),
        startTimeoutMs,
        reconnect: { minMs: 50, maxMs: 300 },
      });
      transport.on('error', () => undefined);
      const bus = createBus({ transport, source: 'rel-start', logger: silentLogger });
      bus.register(tickSubscriber(group, (_t, ctx) => void ledger?.received(ctx.id)));
      return bus;
    }

    for (const [step, marker] of [['CONNECT', 'group'], ['SUBSCRIBE', '$share/']] as const) {
      it(`a cut during the first ${step} is retried: start() resolves once the proxy lets traffic through, then a round trip works`, async () => {
        const group = uniq('gstart');
        // CONNECT: the member's client id names its group; SUBSCRIBE: only a shared filter has `$share/`.
        proxy.cutOnClientData(marker === 'group' ? group : marker, { refuseMs: 1000 });
        const ledger = new Ledger(`mqtt: cut during the first ${step}`);
        const bus = groupBus(group, ledger, 20_000);
        try {
          const t0 = Date.now();
          await bounded(bus.start(), 25_000, `start through a cut during ${step}`);
          console.log(`      started after ${Date.now() - t0} ms and ${proxy.cuts} cut(s)`);
          assert.equal(proxy.cuts, 1, 'the cut happened during start');
          for (let i = 0; i < 20; i++) ledger.sent(await bus.publish(Tick, { n: i }));
          await waitFor(() => ledger.complete, 10_000, 'the round trip');
          assert.equal(ledger.report().lost, 0);
        } finally {
          await bus.stop({ timeoutMs: 1000 });
        }
      });
    }

    it('kept down beyond startTimeoutMs: StartTimeoutError in bounded time', async () => {
      proxy.cutOnClientData('$share/', { times: Infinity });
      const startTimeoutMs = 2500;
      const bus = groupBus(uniq('gdown'), undefined, startTimeoutMs);
      try {
        const t0 = Date.now();
        const err = await bounded(bus.start(), 20_000, 'start that cannot succeed').catch((e: unknown) => e);
        const ms = Date.now() - t0;
        console.log(`      after ${ms} ms and ${proxy.cuts} cuts: ${(err as Error)?.name}: ${(err as Error)?.message}`);
        assert.ok(err instanceof StartTimeoutError, `${err}`);
        assert.ok(proxy.cuts >= 2, 'it was retried');
        assert.ok(ms >= startTimeoutMs - 100 && ms < startTimeoutMs + 5000, `bounded by startTimeoutMs (${ms} ms)`);
      } finally {
        await bus.stop({ timeoutMs: 1000 });
      }
    });
  });
});
