/**
 * A consumer process for the MQTT reliability specs: a bus over the MQTT adapter with one group
 * handler, and `stopOnSignals`. argv: url, group, memberId, mode, handlerMs, prefetch.
 * mode `hang`: handlers never finish (the test kills the process with SIGKILL);
 * mode `slow`: handlers take handlerMs, and SIGTERM stops the bus gracefully.
 * With COURIER_REDIS=<run> the bus has the idempotency option with a RedisDedupeStore, and the
 * effect is written with its envelope id in one atomic step (`SET <run>:<id> NX`): the dedupe mark
 * (done) comes after the handler, so a process killed between effect and mark runs the handler again for
 * that message (docs/reliability.md, "the exact boundary"); the effect's own key refuses it.
 * Prints `ready`, `start <id>`, `done <id>` (effect applied) and `again <id>` (refused) lines.
 */
import { createBus, DedupeStore, RedisDedupeStore, silentLogger, stopOnSignals } from '../../lib';
import { mqttTransport } from '../../adapters/mqtt';
import { tickSubscriber } from './mqtt-harness';

const [url, group, memberId, mode, handlerMs, prefetch] = process.argv.slice(2);
const run = process.env.COURIER_REDIS;
let store: DedupeStore | undefined;
let redis: import('ioredis').default | undefined;
if (run) {
  const Redis = require('ioredis') as typeof import('ioredis').default;
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: false });
  store = new RedisDedupeStore(redis as never);
}

/** The handler's effect; true when applied now (always, without Redis). Keys expire after 10 min. */
async function applyEffect(id: string): Promise<boolean> {
  if (!redis) return true;
  return (await redis.set(`${run}:${id}`, '1', 'PX', 600_000, 'NX')) === 'OK';
}
const transport = mqttTransport({ url, clientId: memberId, groupClientId: () => memberId, reconnect: { minMs: 50, maxMs: 400 } });
transport.on('error', () => undefined);
const bus = createBus({
  transport,
  source: 'rel-mqtt-child',
  logger: silentLogger,
  shutdownTimeoutMs: 5000,
  // A 2 s lease (handlers take handlerMs): the claims of a SIGKILLed child expire within the spec's wait.
  ...(store ? { idempotency: { store, leaseMs: 2000 } } : {}),
});
bus.register(
  tickSubscriber(
    group,
    async (_t, ctx) => {
      process.stdout.write(`start ${ctx.envelope.id}\n`);
      if (mode === 'hang') await new Promise(() => undefined);
      await new Promise((r) => setTimeout(r, Number(handlerMs)));
      const applied = await applyEffect(ctx.envelope.id);
      process.stdout.write(`${applied ? 'done' : 'again'} ${ctx.envelope.id}\n`);
    },
    { prefetch: Number(prefetch) },
  ),
);
stopOnSignals(bus, { onStopped: (err) => void process.stdout.write(`stopped ${err ? String(err) : 'ok'}\n`) });
void bus.start().then(() => process.stdout.write('ready\n'));
