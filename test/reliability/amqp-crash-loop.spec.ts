/**
 * Issue 21, point 2: a message that crashes its consumer process (the handler ends the process
 * before any settle) is not redelivered without end. The consumer is a real child process
 * (fixtures/crash-worker.ts), started again after every crash, as a supervisor would:
 *   - quorum queue: RabbitMQ's `x-delivery-limit` (the handler's attempts) dead-letters it;
 *   - classic queue: Courier counts the redeliveries in the message (`x-courier-redeliveries`,
 *     AmqpDelivery.countRedelivery) and dead-letters it;
 * both with reason `delivery-limit`, the good messages around it all handled.
 * Negative control: classic with `countRedeliveries: false` crashes past the limit, every time.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { amqpTransport, AmqpTransport } from '../../adapters/amqp';
import { encode } from '../../lib/codec';
import { Headers, ReceivedMessage } from '../../lib';
import { amqpBroker } from '../helpers/brokers';
import { sleep, uniq } from '../helpers/wait';
import { bounded, deleteListedQueues } from './amqp-harness';

const ROOT = path.resolve(__dirname, '..', '..');
/** The handler's attempts, so the redelivery limit: a message is handed over at most LIMIT + 1 times. */
const LIMIT = 2;
const GOOD = 20;
const POISON = -1;

interface Run {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

interface Outcome {
  /** How often the poison message reached the handler (each time the process crashed). */
  readonly poisonSeen: number;
  readonly crashes: number;
  readonly goods: Set<string>;
  readonly dead: ReceivedMessage[];
  readonly spawns: number;
}

describe('reliability, AMQP: a message that crashes its consumer process (crash loop)', function () {
  this.timeout(120_000);
  const groups: string[] = [];
  const children: ChildProcess[] = [];
  const transports: AmqpTransport[] = [];

  after(async function () {
    this.timeout(30_000);
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(transports.map((t) => t.close({ timeoutMs: 2000 }).catch(() => undefined)));
    const { url } = await amqpBroker();
    await deleteListedQueues(url, groups);
  });

  /** Publishes the poison and GOOD others, then restarts the consumer after each crash, up to `maxSpawns` processes. */
  async function crashLoop(queueType: 'classic' | 'quorum', count: boolean, maxSpawns: number): Promise<Outcome> {
    const { url } = await amqpBroker();
    const type = uniq('rel.crash.');
    const group = uniq('relcrash');
    groups.push(group);
    const spec = { group, name: 'Crasher.onTick', pattern: type, prefetch: 1 };
    const env = {
      CRASH_URL: url,
      CRASH_TYPE: type,
      CRASH_GROUP: group,
      CRASH_QUEUE_TYPE: queueType,
      CRASH_ATTEMPTS: String(LIMIT),
      CRASH_COUNT: count ? '1' : '0',
      CRASH_POISON: String(POISON),
    };
    let poisonSeen = 0;
    let crashes = 0;
    const goods = new Set<string>();
    /** A consumer process; resolves once it consumes (`ready`), or crashed on the poison before it could say so. */
    const spawnOne = (): Promise<Run> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'crash-worker.ts')], {
          cwd: ROOT,
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        children.push(child);
        let stderr = '';
        child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
        const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
        let buffered = '';
        child.stdout!.on('data', (b: Buffer) => {
          buffered += b.toString();
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            if (line === 'ready') resolve({ child, exited });
            else if (line.startsWith('poison ')) {
              poisonSeen++;
              resolve({ child, exited });
            }
            else if (line.startsWith('good ')) goods.add(line.slice(5));
          }
        });
        void exited.then((code) => reject(new Error(`crash worker exited (${code}) before ready: ${stderr}`)));
      });

    // The dead letters, read through Courier's own dead-letter subscription (it names the reason
    // of a message RabbitMQ dead-lettered by itself too).
    const watcher = amqpTransport({ url, queueType, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    transports.push(watcher);
    watcher.on('error', () => undefined);
    await watcher.connect();
    const dead: ReceivedMessage[] = [];
    await watcher.subscribeDeadLetters(spec, async (d) => {
      dead.push({ topic: d.topic, body: d.body, headers: d.headers });
      await d.ack();
    });

    let spawns = 1;
    let run = await bounded(spawnOne(), 30_000, 'the first consumer to start');
    // The queue exists now (the worker declared it): publish the poison first, then the others.
    const messages = [POISON, ...Array.from({ length: GOOD }, (_, i) => i)].map((n) => encode({ n }, { type, source: 'crash-loop' }));
    const goodIds = new Set(messages.slice(1).map((m) => m.headers[Headers.id]));
    await bounded(Promise.all(messages.map((m) => watcher.publish(m))), 20_000, 'the publishes');

    const settled = () => dead.length > 0 && goods.size === goodIds.size;
    for (;;) {
      // This process either crashes on the poison or handles what is left.
      const deadline = Date.now() + 20_000;
      let exited = false;
      void run.exited.then(() => (exited = true));
      while (!exited && !settled() && Date.now() < deadline) await sleep(50);
      if (!exited) {
        run.child.kill('SIGTERM');
        await bounded(run.exited, 15_000, 'a consumer to stop');
        break;
      }
      crashes++;
      if (spawns >= maxSpawns) break;
      spawns++;
      run = await bounded(spawnOne(), 30_000, 'a consumer to start again');
    }
    // What a last consumer may still have to hand over.
    const deadline = Date.now() + 5000;
    while (!settled() && Date.now() < deadline && count) await sleep(50);
    for (const id of goodIds) assert.ok(goods.has(id) || !count, `good message ${id} handled`);
    return { poisonSeen, crashes, goods, dead, spawns };
  }

  for (const queueType of ['quorum', 'classic'] as const) {
    it(`${queueType} queue: the crash loop ends in the dead letter with reason delivery-limit after at most ${LIMIT + 1} crashes`, async () => {
      const o = await crashLoop(queueType, true, LIMIT + 4);
      const reason = o.dead[0]?.headers[Headers.deadReason];
      console.log(
        `      [crash loop, ${queueType}] poison handed over ${o.poisonSeen} times, ${o.crashes} crashes, ${o.spawns} processes, ` +
          `${o.goods.size} of ${GOOD} good handled, dead letters ${o.dead.length} (reason ${reason ?? '-'})`,
      );
      assert.equal(o.dead.length, 1, 'the poison message is dead-lettered once');
      assert.equal(reason, 'delivery-limit');
      assert.equal(o.dead[0].headers[Headers.id] !== undefined, true);
      assert.equal(o.poisonSeen, LIMIT + 1, 'handed over limit + 1 times, as a quorum queue does');
      assert.equal(o.crashes, o.poisonSeen, 'each hand-over crashed the process');
      assert.equal(o.goods.size, GOOD, 'every good message handled');
    });
  }

  it('negative control: classic with countRedeliveries off crashes past the limit, and nothing is dead-lettered', async () => {
    const spawns = LIMIT + 4;
    const o = await crashLoop('classic', false, spawns);
    console.log(`      [crash loop, classic, counting off] poison handed over ${o.poisonSeen} times in ${o.spawns} processes, dead letters ${o.dead.length}`);
    assert.equal(o.dead.length, 0);
    assert.ok(o.poisonSeen > LIMIT + 1, `handed over ${o.poisonSeen} times: beyond the limit, or the control proves nothing`);
    assert.equal(o.poisonSeen, spawns, 'every process crashed on it');
  });
});
