/**
 * The registry and balanced requests across processes on RabbitMQ and Mosquitto (issue 22,
 * points 1 and 2): instances are child processes (fixtures/instance.ts) that this process stops
 * (SIGTERM: a goodbye) or SIGKILLs (gone once its TTL ran out). Every request is counted:
 * answered, or failed with a typed error; none lost, none answered twice.
 */
import assert from 'node:assert/strict';
import { Bus, createBus, InstanceGoneError, ServiceInstance, silentLogger } from '../../lib';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { makeTransport, pingKit, TransportKind } from './fixtures/ping';
import { Child, spawnInstance } from './fixtures/spawn';
import { deleteListedQueues } from '../reliability/amqp-harness';

const HEARTBEAT_MS = 200;
const TTL_MS = 1000;
/** The observer sweeps every TTL / 4. */
const GONE_BOUND_MS = TTL_MS + TTL_MS / 4;

for (const kind of ['amqp', 'mqtt'] as TransportKind[]) {
  describe(`discovery across processes (${kind})`, function () {
    this.timeout(90_000);
    let url: string;
    let children: Child[];
    let client: Bus | undefined;
    /** The sources of this suite's buses: on RabbitMQ, their queues start with them. */
    const sources: string[] = [];
    const named = (prefix: string): string => {
      const name = uniq(prefix);
      sources.push(name);
      return name;
    };
    before(async () => {
      url = (await (kind === 'amqp' ? amqpBroker() : mqttBroker())).url;
    });
    after(async () => {
      if (kind === 'amqp') await deleteListedQueues(url, sources);
    });
    beforeEach(() => {
      children = [];
      client = undefined;
    });
    afterEach(async () => {
      for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
      await Promise.all(children.map((c) => Promise.race([c.exited, sleep(5000)])));
      await client?.stop({ timeoutMs: 1000 }).catch(() => undefined);
    });

    function instances(service: string, type: string, specs: Array<{ id: string; weight?: number; delayMs?: number; ttlMs?: number }>): Child[] {
      const started = specs.map((s) =>
        spawnInstance({
          D_TRANSPORT: kind,
          D_URL: url,
          D_TYPE: type,
          D_SERVICE: service,
          D_INSTANCE: s.id,
          D_WEIGHT: String(s.weight ?? 1),
          D_DELAY_MS: String(s.delayMs ?? 0),
          D_HEARTBEAT_MS: String(HEARTBEAT_MS),
          D_TTL_MS: String(s.ttlMs ?? TTL_MS),
        }),
      );
      children.push(...started);
      return started;
    }

    async function startClient(): Promise<Bus> {
      client = createBus({ transport: makeTransport(kind, url, uniq('disc-client')), source: named('client'), instanceId: 'c', logger: silentLogger, discovery: { heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS } });
      await client.start();
      return client;
    }

    const live = (bus: Bus, service: string) => bus.services().filter((s) => s.service === service);

    it('lists instances of other processes with what they announce; SIGTERM: gone at once (goodbye); SIGKILL: gone within the TTL', async () => {
      const service = named('svc');
      const type = uniq('disc.ping');
      const [graceful, killed] = instances(service, type, [{ id: 'graceful', ttlMs: 60_000 }, { id: 'killed' }]);
      const bus = await startClient();
      await Promise.all([graceful.ready, killed.ready]);
      await waitFor(() => live(bus, service).length === 2, 10_000, 'both instances listed');
      const [g] = live(bus, service);
      assert.equal(g.instanceId, 'graceful');
      assert.equal(g.version, '1.2.3');
      assert.equal(g.transport, kind);
      assert.deepEqual(g.handles, [type]);
      assert.equal(g.ttlMs, 60_000);

      const left: Array<[string, string, number]> = [];
      bus.on('leave', (i: ServiceInstance, reason: string) => i.service === service && left.push([i.instanceId, reason, Date.now()]));
      graceful.proc.kill('SIGTERM');
      await waitFor(() => left.length === 1, 10_000, 'leave of the stopped instance (its TTL is 60 s)');
      assert.deepEqual(left[0].slice(0, 2), ['graceful', 'stopped']);

      const lastHello = live(bus, service).find((s) => s.instanceId === 'killed')!.lastSeen;
      killed.proc.kill('SIGKILL');
      const killedAt = Date.now();
      await waitFor(() => left.length === 2, GONE_BOUND_MS + 3000, 'leave of the killed instance');
      assert.deepEqual(left[1].slice(0, 2), ['killed', 'expired']);
      assert.ok(left[1][2] - lastHello > TTL_MS, 'not before its TTL');
      assert.ok(left[1][2] - killedAt <= GONE_BOUND_MS + 250, `gone ${left[1][2] - killedAt} ms after SIGKILL (bound ${GONE_BOUND_MS} ms)`);
      assert.deepEqual(live(bus, service), []);
    });

    it('an instance cut from the broker for longer than its TTL leaves (expired) and joins again once it reconnects', async () => {
      const { TcpProxy } = await import('../helpers/tcp-proxy');
      const target = new URL(url);
      const proxy = new TcpProxy(target.hostname, Number(target.port));
      const port = await proxy.start();
      const proxied = new URL(url);
      proxied.port = String(port);
      const service = named('svc');
      const cutBus = createBus({ transport: makeTransport(kind, proxied.toString(), uniq('disc-cut')), source: service, instanceId: 'cut', logger: silentLogger, discovery: { heartbeatMs: HEARTBEAT_MS, ttlMs: TTL_MS } });
      try {
        await cutBus.start();
        const bus = await startClient();
        await bus.waitForService(service, 10_000);
        const events: string[] = [];
        bus.on('leave', (i: ServiceInstance, reason: string) => i.service === service && events.push(`leave ${reason}`));
        bus.on('join', (i: ServiceInstance) => i.service === service && events.push('join'));
        proxy.cut(3 * TTL_MS);
        await waitFor(() => events.length === 2, 3 * TTL_MS + 20_000, 'leave and join again');
        assert.deepEqual(events, ['leave expired', 'join']);
        // And it knows the client again.
        await cutBus.waitForService(bus.services().find((s) => s.self)!.service, 10_000);
      } finally {
        await cutBus.stop({ timeoutMs: 1000 }).catch(() => undefined);
        await proxy.stop();
      }
    });

    it('weighted over 10,000 requests to two processes (weights 1 and 3): the split matches within 5 %', async () => {
      const service = named('svc');
      const type = uniq('disc.w');
      const kit = pingKit(type);
      const started = instances(service, type, [{ id: 'one', weight: 1 }, { id: 'three', weight: 3 }]);
      const bus = await startClient();
      await Promise.all(started.map((c) => c.ready));
      await waitFor(() => live(bus, service).length === 2, 10_000, 'both listed');
      const split = new Map<string, number>();
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < 10_000) {
            const n = next++;
            const pong = await bus.request(kit.Ping, { n }, { balance: 'weighted', reply: kit.Pong, timeoutMs: 10_000 });
            assert.equal(pong.n, n);
            split.set(pong.instanceId, (split.get(pong.instanceId) ?? 0) + 1);
          }
        }),
      );
      assert.equal((split.get('one') ?? 0) + (split.get('three') ?? 0), 10_000);
      assert.ok(Math.abs((split.get('one') ?? 0) - 2500) <= 125, `one: ${split.get('one')}`);
      assert.ok(Math.abs((split.get('three') ?? 0) - 7500) <= 375, `three: ${split.get('three')}`);
    });

    for (const onInstanceGone of ['fail', 'retry'] as const) {
      it(`a SIGKILLed instance stops receiving within the TTL; its in-flight requests ${onInstanceGone === 'fail' ? 'fail with InstanceGoneError' : 'are retried on the survivor'}`, async () => {
        const service = named('svc');
        const type = uniq('disc.kill');
        const kit = pingKit(type);
        const [victim, survivor] = instances(service, type, [{ id: 'victim', delayMs: 300 }, { id: 'survivor', delayMs: 5 }]);
        const bus = await startClient();
        await Promise.all([victim.ready, survivor.ready]);
        await waitFor(() => live(bus, service).length === 2, 10_000, 'both listed');
        let leftAt = 0;
        bus.on('leave', (i: ServiceInstance) => i.service === service && i.instanceId === 'victim' && (leftAt = Date.now()));

        const outcomes = new Map<number, { sentAt: number; result: string; at: number }>();
        let stop = false;
        let n = 0;
        const workers = Array.from({ length: 10 }, async () => {
          while (!stop) {
            const id = n++;
            const sentAt = Date.now();
            const result = await bus.request(kit.Ping, { n: id }, { balance: 'round-robin', reply: kit.Pong, timeoutMs: 10_000, onInstanceGone }).then(
              (p) => (p.n === id ? p.instanceId : 'wrong reply'),
              (e: unknown) => (e instanceof InstanceGoneError ? 'gone' : `error ${String(e)}`),
            );
            assert.ok(!outcomes.has(id), 'one outcome per request');
            outcomes.set(id, { sentAt, result, at: Date.now() });
          }
        });
        await sleep(1500);
        victim.proc.kill('SIGKILL');
        const killedAt = Date.now();
        await waitFor(() => leftAt > 0, GONE_BOUND_MS + 3000, 'leave of the victim');
        await sleep(1000);
        stop = true;
        await Promise.all(workers);

        assert.ok(leftAt - killedAt <= GONE_BOUND_MS + 250, `victim dropped ${leftAt - killedAt} ms after SIGKILL`);
        const all = [...outcomes.values()];
        assert.equal(all.length, n, 'every request has an outcome');
        const count = (r: string) => all.filter((o) => o.result === r).length;
        const others = all.filter((o) => !['victim', 'survivor', 'gone'].includes(o.result));
        assert.deepEqual(others, [], 'no other outcome (timeouts, wrong replies)');
        assert.ok(count('victim') > 0 && count('survivor') > 0, 'both served before the kill');
        // Replies the victim sent just before the kill may still arrive; none later.
        assert.equal(all.filter((o) => o.result === 'victim' && o.at > killedAt + 1000).length, 0, 'no answer from the dead');
        assert.equal(all.filter((o) => o.sentAt > leftAt && o.result !== 'survivor').length, 0, 'after the leave, only the survivor');
        if (onInstanceGone === 'fail') {
          assert.ok(count('gone') > 0, 'requests in flight at the victim failed with InstanceGoneError (negative control for retry)');
          for (const o of all.filter((x) => x.result === 'gone')) assert.ok(o.at - killedAt <= GONE_BOUND_MS + 250, `failed ${o.at - killedAt} ms after the kill`);
        } else assert.equal(count('gone'), 0, 'retried: none failed');
      });
    }
  });
}
