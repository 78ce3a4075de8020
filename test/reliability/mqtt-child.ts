/**
 * A consumer process for the MQTT reliability specs: a bus over the MQTT adapter with one group
 * handler, and `stopOnSignals`. argv: url, group, memberId, mode, handlerMs, prefetch.
 * mode `hang`: handlers never finish (the test kills the process with SIGKILL);
 * mode `slow`: handlers take handlerMs, and SIGTERM stops the bus gracefully.
 * With COURIER_REDIS=1 the bus has the idempotency option with a RedisDedupeStore.
 * Prints `ready`, `start <id>` and `done <id>` lines.
 */
import { createBus, DedupeStore, RedisDedupeStore, silentLogger, stopOnSignals } from '../../lib';
import { mqttTransport } from '../../adapters/mqtt';
import { tickSubscriber } from './mqtt-harness';

const [url, group, memberId, mode, handlerMs, prefetch] = process.argv.slice(2);
let store: DedupeStore | undefined;
if (process.env.COURIER_REDIS === '1') {
  const Redis = require('ioredis') as typeof import('ioredis').default;
  store = new RedisDedupeStore(new Redis('redis://127.0.0.1:6379', { lazyConnect: false }) as never);
}
const transport = mqttTransport({ url, clientId: memberId, groupClientId: () => memberId, reconnect: { minMs: 50, maxMs: 400 } });
transport.on('error', () => undefined);
const bus = createBus({
  transport,
  source: 'rel-mqtt-child',
  logger: silentLogger,
  shutdownTimeoutMs: 5000,
  ...(store ? { idempotency: { store } } : {}),
});
bus.register(
  tickSubscriber(
    group,
    async (_t, ctx) => {
      process.stdout.write(`start ${ctx.envelope.id}\n`);
      if (mode === 'hang') await new Promise(() => undefined);
      await new Promise((r) => setTimeout(r, Number(handlerMs)));
      process.stdout.write(`done ${ctx.envelope.id}\n`);
    },
    { prefetch: Number(prefetch) },
  ),
);
stopOnSignals(bus, { onStopped: (err) => void process.stdout.write(`stopped ${err ? String(err) : 'ok'}\n`) });
void bus.start().then(() => process.stdout.write('ready\n'));
