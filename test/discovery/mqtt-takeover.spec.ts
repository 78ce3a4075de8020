/**
 * MQTT groups lose nothing when a member never returns (issue 22, point 3): two members of a group
 * on Mosquitto in child processes (fixtures/takeover-member.ts), one SIGKILLed while its session
 * holds messages (its handler is slow, its prefetch small, and more are published after the kill,
 * which the broker round-robins to its offline session); none is started in its place. With the
 * take-over the live member drains the dead one's session once the registry expired it: every id
 * handled, duplicates counted, the session deleted. Negative control (take-over off): what the dead
 * member's session holds is never handled; the test reads that session itself to show those
 * messages were there (then deletes it). And a member restarted while its session is being drained
 * takes it back: the take-over stops, nothing is lost.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import 'reflect-metadata';
import { IsString } from 'class-validator';
import type { IPublishPacket, MqttClient } from 'mqtt';
import { Bus, createBus, HeldSession, Message, silentLogger } from '../../lib';
import { mqttTransport } from '../../adapters/mqtt';
import { mqttBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';

const ROOT = path.resolve(__dirname, '..', '..');
const TTL_MS = 1000;
const BATCH = 40;

interface Member {
  readonly id: string;
  readonly proc: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  /** With T_START_ON_SIGNAL: loaded, waiting for SIGHUP to start its bus. */
  readonly loaded: Promise<void>;
  readonly handled: string[];
  readonly warnings: Array<Record<string, unknown>>;
  readonly errors: string[];
  readonly health: Array<{ ready: boolean; connected: boolean }>;
}

function spawnMember(env: Record<string, string>): Member {
  const proc = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'takeover-member.ts')], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const member: Member = { id: env.T_INSTANCE, proc, handled: [], warnings: [], errors: [], health: [], ready: undefined!, exited: undefined!, loaded: undefined! };
  let stderr = '';
  let rest = '';
  let readyNow: () => void;
  const ready = new Promise<void>((resolve, reject) => {
    readyNow = resolve;
    setTimeout(() => reject(new Error(`member ${env.T_INSTANCE} not ready after 30 s: ${stderr}`)), 30_000).unref();
    proc.on('exit', () => reject(new Error(`member ${env.T_INSTANCE} exited before ready: ${stderr}`)));
  });
  let loadedNow: () => void;
  const loaded = new Promise<void>((resolve) => (loadedNow = resolve));
  ready.catch(() => undefined);
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  proc.stdout!.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === 'ready') readyNow();
      else if (line === 'loaded') loadedNow();
      else if (line.startsWith('handled ')) member.handled.push(line.slice(8));
      else if (line.startsWith('warn ')) member.warnings.push(JSON.parse(line.slice(5)));
      else if (line.startsWith('error ')) member.errors.push(line.slice(6));
      else if (line.startsWith('health ')) member.health.push(JSON.parse(line.slice(7)));
    }
  });
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  return Object.assign(member, { ready, exited, loaded });
}

/** A raw mqtt.js client (another client on the wire), connected. */
async function rawClient(url: string, clientId: string, clean: boolean, onMessage?: (p: IPublishPacket) => void): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const mqtt = require('mqtt') as typeof import('mqtt');
  const client = mqtt.connect(url, { clientId, clean, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000, manualConnect: true, properties: { sessionExpiryInterval: 0 } });
  if (onMessage) client.on('message', (_t, _p, packet) => onMessage(packet));
  const connack = await Promise.race([
    new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      client.once('connect', (c) => resolve(c));
      client.once('error', reject);
      client.connect();
    }),
    sleep(10_000).then(() => {
      throw new Error(`raw MQTT client ${clientId} not connected after 10 s`);
    }),
  ]);
  return { client, sessionPresent: connack.sessionPresent };
}

const endRaw = (c: MqttClient) => Promise.race([c.endAsync(), sleep(3000)]).catch(() => undefined);

/** Deletes a persistent session: a clean start under its id, with no session expiry. */
async function deleteSession(url: string, clientId: string): Promise<void> {
  const { client } = await rawClient(url, clientId, true);
  await endRaw(client);
}

/** Resumes `clientId`'s session and collects the ids of what it holds until 1 s passes without a message. */
async function readSession(url: string, clientId: string): Promise<{ sessionPresent: boolean; ids: string[] }> {
  const ids: string[] = [];
  let last = Date.now();
  const { client, sessionPresent } = await rawClient(url, clientId, false, (p) => {
    last = Date.now();
    const m = /"id":"([^"]+)"/.exec(p.payload.toString());
    if (m) ids.push(m[1]);
  });
  const until = Date.now() + 15_000;
  while (Date.now() - last < 1000 && Date.now() < until) await sleep(50);
  await endRaw(client); // session expiry 0: the broker deletes it now
  return { sessionPresent, ids };
}

describe('MQTT: a live member takes over the session of a member gone past its TTL (issue 22, point 3)', function () {
  this.timeout(120_000);
  let url: string;
  let members: Member[];
  let buses: Bus[];
  let sessions: string[];

  before(async () => {
    url = (await mqttBroker()).url;
  });
  beforeEach(() => {
    members = [];
    buses = [];
    sessions = [];
  });
  afterEach(async () => {
    for (const m of members) if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGTERM');
    await Promise.all(members.map((m) => Promise.race([m.exited, sleep(5000)])));
    for (const m of members) if (m.proc.exitCode === null && m.proc.signalCode === null) m.proc.kill('SIGKILL');
    await Promise.all(buses.map((b) => b.stop({ timeoutMs: 2000 }).catch(() => undefined)));
    // The members' persistent sessions (main, retry, dead-letter) outlive them: delete them all.
    for (const id of sessions) for (const s of [id, `${id}:retry`, `${id}:dead`]) await deleteSession(url, s).catch(() => undefined);
  });

  async function run(takeover: boolean, delayMs = 100, spare?: (m: Member) => void) {
    const service = uniq('tk');
    const type = `${service}.job`;
    @Message(type)
    class Job {
      @IsString() id!: string;
    }
    const start = (id: string, extra: Record<string, string> = {}) =>
      spawnMember({ ...extra, T_URL: url, T_TYPE: type, T_SERVICE: service, T_INSTANCE: id, T_DELAY_MS: String(delayMs), T_PREFETCH: '2', T_TAKEOVER: takeover ? '1' : '0', T_HEARTBEAT_MS: '200', T_TTL_MS: String(TTL_MS) });
    const [a, b] = [start('a'), start('b')];
    members.push(a, b);
    if (spare) {
      // b again (the same instance id and client id), loaded now, its bus started later on SIGHUP.
      const b2 = start('b', { T_START_ON_SIGNAL: '1' });
      members.push(b2);
      spare(b2);
      await Promise.race([b2.loaded, sleep(30_000)]);
    }
    const listener = createBus({ transport: mqttTransport({ url, clientId: uniq('tk-listen') }), source: uniq('tklisten'), logger: silentLogger, discovery: { announce: false, heartbeatMs: 200, ttlMs: TTL_MS } });
    const publisher = createBus({ transport: mqttTransport({ url, clientId: uniq('tk-pub') }), source: uniq('tkpub'), logger: silentLogger });
    buses.push(listener, publisher);
    await Promise.all([a.ready, b.ready, listener.start(), publisher.start()]);
    const live = () => listener.services().filter((s) => s.service === service);
    await waitFor(() => live().length === 2, 10_000, 'both members listed');
    const held = new Map<string, HeldSession>();
    for (const i of live()) {
      assert.equal(i.sessions?.length, 1, `${i.instanceId} announces its group session`);
      held.set(i.instanceId, i.sessions![0]);
      sessions.push(i.sessions![0].clientId);
    }
    assert.equal(held.get('a')!.group, service);

    const published: string[] = [];
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const id = `${published.length}`;
        published.push(id);
        await publisher.publish(Job, { id });
      }
    };
    await publish(BATCH);
    await waitFor(() => b.handled.length >= 3, 10_000, 'b handling');
    const leaves: Array<[string, string, number]> = [];
    listener.on('leave', (i, reason) => i.service === service && leaves.push([i.instanceId, reason, Date.now()]));
    b.proc.kill('SIGKILL');
    const killedAt = Date.now();
    await b.exited;
    const byBBeforeKill = b.handled.length;
    // Round-robined by the broker to b's offline session, too.
    await publish(BATCH);
    await waitFor(() => leaves.some(([id, reason]) => id === 'b' && reason === 'expired'), 10_000, 'b expired');
    return { a, b, held, published, killedAt, byBBeforeKill };
  }

  const tally = (published: string[], handled: string[]) => {
    const seen = new Map<string, number>();
    for (const id of handled) seen.set(id, (seen.get(id) ?? 0) + 1);
    const lost = published.filter((id) => !seen.has(id));
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    const unexpected = [...seen.keys()].filter((id) => !published.includes(id));
    return { lost, duplicates, unexpected };
  };

  it('take-over on: the SIGKILLed member\'s queued messages are handled by the live one, 0 lost, its session deleted', async () => {
    const t0 = Date.now();
    const { a, b, held, published, byBBeforeKill } = await run(true);
    const all = () => [...a.handled, ...b.handled];
    await waitFor(() => tally(published, all()).lost.length === 0, 40_000, 'every id handled').catch(() => undefined);
    await waitFor(() => a.warnings.some((w) => String(w.message).includes('ended: drained')), 40_000, 'the take-over drained the session').catch(() => undefined);
    await sleep(500); // late duplicates
    const { lost, duplicates, unexpected } = tally(published, all());
    const ended = a.warnings.find((w) => String(w.message).includes('ended'));
    console.log(
      `      [takeover] ${published.length} published; b handled ${byBBeforeKill} before its SIGKILL; a handled ${a.handled.length} ` +
        `(${ended?.handled ?? '?'} from b's session, outcome ${String(ended?.message).replace(/.*ended: /, '')}); ` +
        `lost ${lost.length}, duplicates ${duplicates}, unexpected ${unexpected.length}; ${Date.now() - t0} ms`,
    );
    assert.deepEqual(lost, [], 'nothing lost');
    assert.deepEqual(unexpected, []);
    assert.ok(Number(ended?.handled) > 0, 'a handled messages from b\'s session');
    assert.match(String(ended?.message), /drained/);
    // b's session is gone from the broker: resuming it finds nothing.
    const after = await readSession(url, held.get('b')!.clientId);
    assert.equal(after.sessionPresent, false, 'the taken-over session was deleted');
    assert.deepEqual(after.ids, []);
    assert.equal(a.proc.exitCode, null, 'a keeps running');
    a.proc.kill('SIGUSR2');
    await waitFor(() => a.health.length > 0, 5000, 'a reports its health');
    assert.deepEqual([a.health[0].ready, a.health[0].connected], [true, true], 'the take-over leaves the bus healthy');
  });

  it('negative control, take-over off: what the SIGKILLed member\'s session holds is never handled', async () => {
    const { a, b, held, published, killedAt } = await run(false);
    const all = () => [...a.handled, ...b.handled];
    // a works through its own share; wait until it has been idle for 2 s, and past the time a take-over took above.
    let count = -1;
    let stableSince = Date.now();
    await waitFor(() => {
      if (a.handled.length !== count) [count, stableSince] = [a.handled.length, Date.now()];
      return Date.now() - stableSince > 2000 && Date.now() - killedAt > TTL_MS * 1.25 + 3000;
    }, 40_000, 'a idle');
    const { lost, duplicates } = tally(published, all());
    assert.ok(!a.warnings.some((w) => String(w.message).includes('taking over')), 'no take-over');
    // The lost ones wait in b's session: read it as b would (then it is deleted).
    const inSession = await readSession(url, held.get('b')!.clientId);
    console.log(
      `      [takeover] negative control: ${published.length} published; lost ${lost.length} (duplicates ${duplicates}); ` +
        `b's session held ${inSession.ids.length}`,
    );
    assert.ok(lost.length > 0, 'the dead member\'s share is lost without the take-over');
    assert.equal(inSession.sessionPresent, true);
    assert.deepEqual([...new Set(inSession.ids)].filter((id) => lost.includes(id)).sort(), [...lost].sort(), 'every lost id was waiting in b\'s session');
  });

  it('a member that returns during the take-over takes its session back: the take-over stops, 0 lost', async () => {
    // A slower handler (250 ms) makes the drain last longer than a restart takes.
    let b2!: Member;
    const { a, b, published } = await run(true, 250, (m) => (b2 = m));
    await waitFor(() => a.warnings.some((w) => String(w.message).includes('taking over')), 10_000, 'the take-over started');
    await sleep(300);
    b2.proc.kill('SIGHUP');
    await b2.ready;
    const all = () => [...a.handled, ...b.handled, ...b2.handled];
    await waitFor(() => tally(published, all()).lost.length === 0, 60_000, 'every id handled').catch(() => undefined);
    await waitFor(() => a.warnings.some((w) => String(w.message).includes('ended')), 30_000, 'the take-over ended').catch(() => undefined);
    await sleep(500);
    const { lost, duplicates, unexpected } = tally(published, all());
    const ended = a.warnings.find((w) => String(w.message).includes('ended'));
    console.log(
      `      [takeover] member returned: ${published.length} published; a ${a.handled.length} (${ended?.handled ?? '?'} from b's session, ` +
        `outcome ${String(ended?.message).replace(/.*ended: /, '')}), b ${b.handled.length} before its SIGKILL, b again ${b2.handled.length}; ` +
        `lost ${lost.length}, duplicates ${duplicates}, unexpected ${unexpected.length}; errors logged by a: ${JSON.stringify(a.errors)}`,
    );
    assert.deepEqual(lost, [], 'nothing lost');
    assert.deepEqual(unexpected, []);
    assert.match(String(ended?.message), /returned/, 'the take-over gave the session back');
    assert.ok(b2.handled.length > 0, 'the returned member handles its session again');
    assert.equal(a.proc.exitCode, null);
    assert.equal(b2.proc.exitCode, null);
    a.proc.kill('SIGUSR2');
    await waitFor(() => a.health.length > 0, 5000, 'a reports its health');
    assert.deepEqual([a.health[0].ready, a.health[0].connected], [true, true], 'the take-over given back leaves the bus healthy');
  });
});
