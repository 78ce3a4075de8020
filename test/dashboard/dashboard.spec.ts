/**
 * The dashboard's server through its public API (courier-bus/dashboard) and the `courier
 * dashboard` command: the fleet's figures across buses (a backlog counted where the publisher
 * and the consumer are different buses), access (token, Host, POST header), 200 open pages with
 * bounded memory, and on RabbitMQ a broker dashboard that shows a service and never the password.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { IsInt } from 'class-validator';
import { createBus, Bus, Message, MessageContext, metricsReporter, RejectMessageError, Subscribe, Subscriber } from '../../lib';
import { memoryTransport, MemoryBroker } from '../../adapters/memory';
import { amqpTransport } from '../../adapters/amqp';
import { createDashboard, Dashboard, DashboardSource, FleetFrame, InstanceView } from '../../lib/dashboard';
import type { MetricsSnapshot, TopicMetrics } from '../../lib/meter';
import { amqpBroker } from '../helpers/brokers';
import { deleteListedQueues } from '../reliability/amqp-harness';
import { sleep, uniq, waitFor } from '../helpers/wait';
import { start } from '../ops/cli';

@Message('dash.tick')
class Tick {
  @IsInt() n!: number;
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

/** The first `frame` event of a stream. */
function firstEvent(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers }, (res) => {
      let text = '';
      if (res.statusCode !== 200) {
        res.resume();
        return resolve({ status: res.statusCode ?? 0, text });
      }
      res.on('data', (c) => {
        text += c;
        if (text.includes('event: frame') && text.endsWith('\n\n')) {
          req.destroy();
          resolve({ status: 200, text });
        }
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    req.setTimeout(10_000, () => req.destroy(new Error('no frame within 10 s')));
  });
}

describe('dashboard server', function () {
  this.timeout(60_000);

  describe('over buses of this process (memory)', () => {
    const buses: Bus[] = [];
    let dashboard: Dashboard;
    let url: string;
    let stuck = 0;
    let fastCount = 0;

    @Subscriber({ group: 'slow-group' })
    class Stuck {
      @Subscribe(Tick)
      async on(): Promise<void> {
        stuck++;
        await new Promise(() => undefined);
      }
    }
    @Subscriber({ group: 'fast-group' })
    class Fast {
      @Subscribe(Tick)
      async on(): Promise<void> {
        fastCount++;
      }
    }

    const picky: Array<{ n: number; replayed: boolean; attempt: string | undefined }> = [];
    @Subscriber({ group: 'picky-group' })
    class Picky {
      @Subscribe(Tick)
      async on(t: Tick, ctx: MessageContext): Promise<void> {
        const replayed = ctx.headers.courierreplayed !== undefined;
        picky.push({ n: t.n, replayed, attempt: ctx.headers.courierattempt });
        if (!replayed && t.n === 1007) throw new RejectMessageError('1007 is rejected until replayed');
      }
    }

    before(async () => {
      const broker = new MemoryBroker();
      const publisher = createBus({ transport: memoryTransport({ broker }), source: 'publisher-svc', logger: { warn: () => undefined, error: () => undefined } });
      const slow = createBus({ transport: memoryTransport({ broker }), source: 'slow-svc', shutdownTimeoutMs: 100, logger: { warn: () => undefined, error: () => undefined } }).register(new Stuck());
      const fast = createBus({ transport: memoryTransport({ broker }), source: 'fast-svc', logger: { warn: () => undefined, error: () => undefined } }).register(new Fast(), new Picky());
      buses.push(publisher, slow, fast);
      for (const b of buses) await b.start();
      dashboard = createDashboard({ buses, deadLetters: memoryTransport({ broker }), token: 'secret-token-1', title: 'test' });
      url = await dashboard.listen(0);
    });
    after(async () => {
      await dashboard?.close();
      for (const b of buses) await b.stop({ timeoutMs: 200 }).catch(() => undefined);
    });

    it('counts the backlog of a handler on another bus than the publisher, and draws the graph', async () => {
      const N = 50;
      for (let n = 0; n < N; n++) await buses[0].publish(Tick, { n });
      await waitFor(() => stuck === 10, 5000, 'the stuck handler to hold its prefetch');
      let frame: FleetFrame | undefined;
      await waitFor(() => (frame = dashboard.frame())?.handlers['slow-group/Stuck.on']?.backlog === N, 5000, 'the backlog of the stuck handler');
      const f = frame!;
      assert.equal(f.handlers['slow-group/Stuck.on'].inFlight, 10);
      assert.equal(f.handlers['slow-group/Stuck.on'].timeToDrainMs, null, 'it never drains');
      assert.equal(f.handlers['fast-group/Fast.on'].backlog, 0);
      assert.equal(f.types['dash.tick'].backlog, N, "the type's backlog is its worst handler's");
      assert.deepEqual(f.graph.publishers.filter((p) => p.type === 'dash.tick'), [{ service: 'publisher-svc', type: 'dash.tick' }]);
      assert.deepEqual(f.graph.subscribers.filter((s) => s.type === 'dash.tick').map((s) => s.handler).sort(), ['fast-group/Fast.on', 'picky-group/Picky.on', 'slow-group/Stuck.on']);
      assert.deepEqual(f.services.map((s) => s.name), ['fast-svc', 'publisher-svc', 'slow-svc']);
      // The page's own state carries the same frame and the history.
      const state = JSON.parse((await get(`${url}api/state`, { authorization: 'Bearer secret-token-1' })).body) as { frame: FleetFrame; history: unknown[] };
      assert.equal(state.frame.handlers['slow-group/Stuck.on'].backlog, N);
      assert.ok(state.history.length >= 1);
    });

    it('lists a dead letter by reason, opens it and replays it to its subscription alone (memory transport)', async () => {
      const auth = { authorization: 'Bearer secret-token-1' };
      await buses[0].publish(Tick, { n: 1007 });
      await waitFor(() => picky.some((p) => p.n === 1007), 5000, 'the rejected message');
      // The dead letters are read while a page is open.
      const stream = http.get(`${url}events`, { headers: auth }, (res) => res.resume());
      try {
        type View = { byReason: Record<string, number>; subscriptions: Array<{ subscription: string; items: Array<{ id: string; reason: string }> }> };
        let view: View | undefined;
        const t0 = Date.now();
        while (Date.now() - t0 < 10_000) {
          view = JSON.parse((await get(`${url}api/dead-letters`, auth)).body) as View;
          if (view.subscriptions.some((x) => x.subscription === 'picky-group/Picky.on')) break;
          await sleep(200);
        }
        const sub = view!.subscriptions.find((x) => x.subscription === 'picky-group/Picky.on');
        assert.ok(sub, JSON.stringify(view));
        assert.deepEqual(view!.byReason, { rejected: 1 });
        const id = sub.items[0].id;
        const shown = JSON.parse((await get(`${url}api/dead-letters/show?subscription=picky-group%2FPicky.on&id=${id}`, auth)).body) as { reason: string; body: string };
        assert.equal(shown.reason, 'rejected');
        assert.deepEqual(JSON.parse(shown.body), { n: 1007 });
        assert.equal((await get(`${url}api/dead-letters/show?subscription=picky-group%2FPicky.on&id=nope`, auth)).status, 404);
        const replay = (body: object) =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            const req = http.request(`${url}api/dead-letters/replay`, { method: 'POST', headers: { ...auth, 'x-courier-dashboard': '1', 'content-type': 'application/json' } }, (res) => {
              let b = '';
              res.on('data', (c) => (b += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
            });
            req.on('error', reject);
            req.end(JSON.stringify(body));
          });
        const before = picky.length;
        const fastBefore = fastCount;
        const r = await replay({ subscription: 'picky-group/Picky.on', id });
        assert.equal(r.status, 200, r.body);
        assert.deepEqual(JSON.parse(r.body), { replayed: 1, failed: 0 });
        await waitFor(() => picky.length === before + 1, 5000, 'the replayed copy');
        assert.deepEqual(picky[picky.length - 1], { n: 1007, replayed: true, attempt: '1' });
        await sleep(200);
        assert.equal(fastCount, fastBefore, 'the other groups got no copy');
        assert.equal((await replay({ subscription: 'picky-group/Picky.on', id })).status, 404, 'it is gone');
      } finally {
        stream.destroy();
      }
    });

    it('refuses requests without the token, from a foreign Host, and a POST without its header', async () => {
      for (const path of ['', 'app.js', 'api/state', 'events', 'api/dead-letters']) {
        assert.equal((await get(`${url}${path}`)).status, 401, `/${path} without the token`);
        assert.equal((await get(`${url}${path}`, { authorization: 'Bearer wrong-token' })).status, 401, `/${path} with a wrong token`);
      }
      const page = await get(`${url}?token=secret-token-1`);
      assert.equal(page.status, 200);
      assert.match(page.body, /<script src="app.js"/);
      assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
      assert.equal((await firstEvent(`${url}events?token=secret-token-1`)).status, 200);
      const post = await new Promise<number>((resolve, reject) => {
        const req = http.request(`${url}api/dead-letters/replay`, { method: 'POST', headers: { authorization: 'Bearer secret-token-1', 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('{"subscription":"slow-group/Stuck.on","id":"x"}');
      });
      assert.equal(post, 403, 'a POST without X-Courier-Dashboard: 1');
      // Without a token: loopback Host names only.
      const open = createDashboard({ buses });
      const openUrl = await open.listen(0);
      try {
        assert.equal((await get(`${openUrl}api/state`)).status, 200);
        assert.equal((await get(`${openUrl}api/state`, { host: 'attacker.example' })).status, 403, 'a rebound DNS name');
      } finally {
        await open.close();
      }
    });
  });

  it('keeps its memory bounded with 200 open pages, 100 of which never read', async function () {
    this.timeout(90_000);
    // A fleet of 1,500 message types: a frame of several hundred KB, each second.
    const topics: Record<string, TopicMetrics> = {};
    const rates = { '1s': 1, '10s': 1, '60s': 1 };
    for (let i = 0; i < 1500; i++) {
      topics[`type.number-${i}`] = { published: i, consumed: i, publishRate: rates, consumeRate: rates, backlogGrowth: rates, backlog: 0, backlogByHandler: {}, worstHandler: null, inFlight: 0, timeToDrainMs: 0 };
    }
    let at = Date.now();
    const source: DashboardSource = {
      start: async () => undefined,
      stop: async () => undefined,
      instances: (): InstanceView[] => [{ service: 'big', instance: 'one', seenAt: Date.now(), snapshot: { at: (at += 1000), topics, handlers: {}, outbox: {}, inbox: {} } as MetricsSnapshot }],
    };
    const dashboard = createDashboard({ source, streams: { maxBufferedBytes: 64 * 1024, maxSkipped: 5 } });
    const url = new URL(await dashboard.listen(0));
    const sockets: net.Socket[] = [];
    const received: number[] = [];
    try {
      global.gc?.();
      const before = process.memoryUsage();
      for (let i = 0; i < 200; i++) {
        const s = net.connect(Number(url.port), '127.0.0.1');
        s.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        const reader = i % 2 === 0;
        received[i] = 0;
        if (reader) s.on('data', (b: Buffer) => (received[i] += b.length));
        else s.pause();
        s.on('error', () => undefined);
        sockets.push(s);
      }
      await waitFor(() => dashboard.streams().open === 200, 10_000, '200 open streams');
      let peak = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 25_000 && dashboard.streams().droppedClients < 100) {
        await sleep(500);
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.external + m.arrayBuffers - (before.heapUsed + before.external + before.arrayBuffers));
      }
      const s = dashboard.streams();
      const frameBytes = Buffer.byteLength(JSON.stringify(dashboard.frame()));
      const readBytes = received.filter((_, i) => i % 2 === 0);
      console.log(`      frame ${Math.round(frameBytes / 1024)} KiB; after ${Date.now() - t0} ms: ${s.open} open, ${s.skippedFrames} frames skipped, ${s.droppedClients} stalled pages dropped; memory growth peak ${Math.round(peak / 1048576)} MiB; each reader got >= ${Math.round(Math.min(...readBytes) / 1024)} KiB`);
      assert.equal(s.droppedClients, 100, 'every page that never read was dropped');
      assert.equal(s.open, 100, 'the reading pages stay');
      assert.ok(Math.min(...readBytes) > 3 * frameBytes, 'every reading page got the frames');
      assert.ok(peak < 200 * 1048576, `memory grew by ${Math.round(peak / 1048576)} MiB`);
    } finally {
      for (const s of sockets) s.destroy();
      await dashboard.close();
    }
  });

  describe('courier dashboard on RabbitMQ', () => {
    let bus: Bus;
    const service = uniq('dash-svc-');
    let amqpUrl: string;

    @Subscriber()
    class Handler {
      @Subscribe(Tick)
      async on(): Promise<void> {}
    }

    before(async () => {
      amqpUrl = (await amqpBroker()).url;
      bus = createBus({ transport: amqpTransport({ url: amqpUrl }), source: service, discovery: { heartbeatMs: 500 }, logger: { warn: () => undefined, error: () => undefined } }).register(new Handler());
      bus.attach(metricsReporter({ everyMs: 500 }));
      await bus.start();
    });
    after(async () => {
      await bus?.stop({ timeoutMs: 2000 });
      // The service's group, dead-letter and instance queues all start with its name.
      await deleteListedQueues(amqpUrl, [service]);
    });

    it('shows the service, and the broker password appears in no page or endpoint', async () => {
      const password = new URL(amqpUrl).password;
      assert.ok(password, 'the broker URL has a password');
      const run = start(['dashboard', '--url', amqpUrl, '--port', '0'], { timeoutMs: 50_000 });
      try {
        await waitFor(() => /courier dashboard: (http:\/\/\S+)/.test(run.stderr()) || run.proc.exitCode !== null, 20_000, 'the dashboard URL');
        const url = /courier dashboard: (http:\/\/\S+)/.exec(run.stderr())?.[1];
        assert.ok(url, run.stderr());
        let state: { title: string; frame: FleetFrame } | undefined;
        const t0 = Date.now();
        while (Date.now() - t0 < 15_000) {
          state = JSON.parse((await get(`${url}api/state`)).body);
          const s = state!.frame?.services.find((x) => x.name === service);
          if (s?.instances[0]?.reportsMetrics && state!.frame.handlers[`${service}/Handler.on`]) break;
          await sleep(250);
        }
        const s = state!.frame.services.find((x) => x.name === service);
        assert.ok(s, `the service is shown: ${JSON.stringify(state!.frame.services)}`);
        assert.equal(s.instances.length, 1);
        assert.equal(s.instances[0].transport, 'amqp');
        assert.equal(s.instances[0].id, bus.instanceId, 'one entry: the registry and the reports name the same instance');
        assert.ok(state!.frame.handlers[`${service}/Handler.on`], 'its handler, from its meter');
        assert.ok(state!.frame.graph.subscribers.some((x) => x.type === 'dash.tick' && x.handler === `${service}/Handler.on`));
        const bodies = [
          (await get(url)).body,
          (await get(`${url}app.js`)).body,
          (await get(`${url}api/state`)).body,
          (await get(`${url}api/dead-letters`)).body,
          (await firstEvent(`${url}events`)).text,
          run.stderr(),
          run.stdout(),
        ];
        assert.match(state!.title, /\*\*\*/, 'the broker is shown redacted');
        for (const b of bodies) assert.ok(!b.includes(`:${password}@`), `the password leaked: ${b.slice(0, 200)}`);
      } finally {
        run.proc.kill('SIGTERM');
        const r = await run.exit;
        assert.equal(r.code, 0, r.stderr);
      }
    });

    it('requires the token given in COURIER_DASHBOARD_TOKEN, and one for a host beyond loopback', async () => {
      const run = start(['dashboard', '--url', amqpUrl, '--port', '0'], { env: { COURIER_DASHBOARD_TOKEN: 'a-long-token' }, timeoutMs: 30_000 });
      try {
        await waitFor(() => /courier dashboard: (http:\/\/\S+)/.test(run.stderr()) || run.proc.exitCode !== null, 20_000, 'the dashboard URL');
        const url = /courier dashboard: (http:\/\/\S+)/.exec(run.stderr())![1];
        assert.equal((await get(`${url}api/state`)).status, 401);
        assert.equal((await get(`${url}api/state?token=a-long-token`)).status, 200);
        assert.equal((await get(`${url}api/state`, { authorization: 'Bearer a-long-token' })).status, 200);
      } finally {
        run.proc.kill('SIGTERM');
        await run.exit;
      }
      const refused = await start(['dashboard', '--url', amqpUrl, '--host', '0.0.0.0']).exit;
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /needs|give a token/);
    });
  });
});
