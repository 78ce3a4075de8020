/**
 * Issue 7 for MQTT, consumer processes that die or are stopped: SIGKILL while holding unacked
 * messages (with and without the idempotency option, Redis-backed), and SIGTERM with handlers in
 * flight through stopOnSignals. The child is test/reliability/mqtt-child.ts; its `done <id>` line
 * is the handler's effect, counted by envelope id in the Ledger.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { MqttFixture, purgeSession } from '../adapters/mqtt/mqtt-fixture';
import { Ledger } from './ledger';
import { MqttBroker } from './mqtt-broker';
import { countedBus, publishTicks } from './mqtt-harness';

interface Child {
  proc: ChildProcess;
  started: string[];
  done: string[];
  /** Handler runs whose effect was refused by the effect's own key (Redis mode). */
  again: string[];
  out: () => string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

function child(url: string, group: string, memberId: string, mode: 'hang' | 'slow', handlerMs: number, prefetch: number, redis = false): Child {
  const proc = spawn(
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', '-r', 'reflect-metadata', path.join(__dirname, 'mqtt-child.ts'), url, group, memberId, mode, String(handlerMs), String(prefetch)],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: path.join(__dirname, '../..'), env: { ...process.env, COURIER_REDIS: redis ? `courier-test:mqtt-effects:${group}` : '' } },
  );
  const c: Child = {
    proc,
    started: [],
    done: [],
    again: [],
    out: () => text,
    exit: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))),
  };
  let text = '';
  let partial = '';
  proc.stdout!.on('data', (b: Buffer) => {
    text += b;
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (l.startsWith('start ')) c.started.push(l.slice(6));
      else if (l.startsWith('done ')) c.done.push(l.slice(5));
      else if (l.startsWith('again ')) c.again.push(l.slice(6));
    }
  });
  return c;
}

describe('reliability: MQTT consumer processes (own Mosquitto)', function () {
  this.timeout(60_000);
  let broker: MqttBroker;
  let fixture: MqttFixture;
  const children: Child[] = [];
  const memberIds: string[] = [];

  before(async () => {
    broker = new MqttBroker({ persistence: false });
    await broker.start();
    fixture = new MqttFixture(broker.url);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(memberIds.splice(0).flatMap((id) => [id, `${id}:retry`]).map((id) => purgeSession(broker.url, id)));
    await fixture.purge();
  });
  after(() => broker?.dispose());

  async function publish(ledger: Ledger, total: number) {
    const pub = countedBus(fixture, ledger);
    await pub.bus.start();
    const r = await publishTicks(pub.bus, ledger, total);
    await pub.bus.stop();
    assert.equal(r.failed, 0);
  }

  for (const redis of [false, true]) {
    it(`3. a consumer killed with SIGKILL holding unacked messages: all redelivered${redis ? '; with the Redis dedupe store each effect once' : ''}`, async () => {
      const ledger = new Ledger(`mqtt SIGKILL consumer${redis ? ' + RedisDedupeStore' : ''}`);
      const group = uniq('g');
      const memberId = `${fixture.clientId}:kill:${group}`;
      memberIds.push(memberId);
      const first = child(broker.url, group, memberId, 'slow', 20, 20, redis);
      children.push(first);
      await waitFor(() => first.out().includes('ready'), 20_000, 'the first consumer');
      await publish(ledger, 2000);
      await waitFor(() => first.done.length >= 400, 20_000, 'the first consumer to handle 400');
      first.proc.kill('SIGKILL');
      await first.exit;
      const heldUnfinished = first.started.filter((id) => !first.done.includes(id));
      const second = child(broker.url, group, memberId, 'slow', 1, 50, redis);
      children.push(second);
      for (const id of first.done) ledger.received(id);
      await waitFor(() => new Set([...first.done, ...second.done, ...second.again]).size >= 2000, 30_000, 'every message handled').catch(() => undefined);
      await sleep(300);
      for (const id of second.done) ledger.received(id);
      // A refused run means the effect exists: applied by the killed process, whose `done` line
      // may have died with it. Count that effect once.
      const counted = new Set([...first.done, ...second.done]);
      for (const id of new Set(second.again)) if (!counted.has(id)) ledger.received(id);
      const f = ledger.report();
      const secondStarted = new Set(second.started);
      const notRedelivered = heldUnfinished.filter((id) => !secondStarted.has(id));
      console.log(
        `      [mqtt SIGKILL consumer${redis ? ' + RedisDedupeStore' : ''}] held unfinished at the kill: ${heldUnfinished.length}, ` +
          `redelivered: ${heldUnfinished.length - notRedelivered.length}, effects applied twice: ${f.duplicates}` +
          (redis ? `, handler runs refused by the effect's own key (killed between effect and dedupe mark): ${second.again.length}` : ''),
      );
      assert.ok(heldUnfinished.length > 0, 'the consumer held unfinished messages when killed');
      assert.deepEqual(notRedelivered, [], 'every held message redelivered to the returning member');
      assert.equal(f.lost, 0);
      assert.equal(f.unexpected, 0);
      if (redis) assert.equal(f.duplicates, 0, 'with the idempotency option each effect applied once');
    });
  }

  // Issue 14, point 12. The protection (a stable id, now required for group subscriptions, see
  // adapters/mqtt/client-id-policy.ts) is case 3 above: SIGKILL, restart under the same id, 0 lost.
  // This is its negative control: the restart under a new id (what a generated id does) loses.
  it('12. negative control: a member SIGKILLed and restarted under a new client id never gets what its old session held', async () => {
    const ledger = new Ledger('mqtt SIGKILL, restart under a new id');
    const group = uniq('g');
    const oldId = `${fixture.clientId}:old:${group}`;
    const newId = `${fixture.clientId}:new:${group}`;
    memberIds.push(oldId, newId);
    const first = child(broker.url, group, oldId, 'slow', 20, 20);
    children.push(first);
    await waitFor(() => first.out().includes('ready'), 20_000, 'the first consumer');
    await publish(ledger, 400);
    await waitFor(() => first.done.length >= 50, 20_000, 'the first consumer to handle 50');
    first.proc.kill('SIGKILL');
    await first.exit;
    const second = child(broker.url, group, newId, 'slow', 1, 50);
    children.push(second);
    await waitFor(() => second.out().includes('ready'), 20_000, 'the second consumer');
    await sleep(3000);
    for (const id of new Set([...first.done, ...second.done])) ledger.received(id);
    const f = ledger.report();
    console.log(`      [mqtt restart under a new id] of 400: lost ${f.lost} (left in the old session)`);
    assert.ok(f.lost > 0, 'the restart under a new id loses what the old session held');
    assert.equal(f.unexpected, 0);
  });

  it('7. SIGTERM with handlers in flight: they finish and are acked, exit 0, nothing lost, the rest redelivered', async () => {
    const ledger = new Ledger('mqtt SIGTERM consumer');
    const group = uniq('g');
    const memberId = `${fixture.clientId}:term:${group}`;
    memberIds.push(memberId);
    const first = child(broker.url, group, memberId, 'slow', 300, 10);
    children.push(first);
    await waitFor(() => first.out().includes('ready'), 20_000, 'the consumer');
    await publish(ledger, 2000);
    await waitFor(() => first.started.length >= 25, 10_000, 'handlers in flight');
    first.proc.kill('SIGTERM');
    const exit = await Promise.race([first.exit, sleep(15_000).then(() => ({ code: -1, signal: 'timeout' }))]);
    const unfinished = first.started.filter((id) => !first.done.includes(id));
    for (const id of first.done) ledger.received(id);
    const second = child(broker.url, group, memberId, 'slow', 0, 100);
    children.push(second);
    await waitFor(() => new Set([...first.done, ...second.done]).size >= 2000, 30_000, 'every message handled').catch(() => undefined);
    await sleep(300);
    for (const id of second.done) ledger.received(id);
    const f = ledger.report();
    console.log(`      [mqtt SIGTERM consumer] exit ${exit.code}, in flight at SIGTERM finished: ${first.started.length - unfinished.length}/${first.started.length}, redone after restart: ${f.duplicates}`);
    assert.equal(exit.code, 0, `exit code (${first.out().split('\n').filter((l) => l.startsWith('stopped')).join()})`);
    assert.deepEqual(unfinished, [], 'every handler in flight finished');
    assert.equal(f.duplicates, 0, 'what finished was acked (not handled again)');
    assert.equal(f.lost, 0, 'the rest was redelivered to the returning member');
    assert.equal(f.unexpected, 0);
  });
});
