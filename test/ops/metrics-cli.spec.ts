/**
 * `courier metrics`, run as a command, reads a running service's meter (another process) through
 * the broker: per-handler backlog, in-flight, time to drain, the broker's queue depth beside it on
 * AMQP, and a topic backlog that a stuck handler cannot hide behind a fast one.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import type { MetricsReport } from '../../lib/ops';
import { courier, jsonLines, start } from './cli';
import { Broker, Kit, makeKit } from './kits';
import { waitFor } from '../helpers/wait';

const N = 60;

for (const broker of ['amqp', 'mqtt'] as Broker[]) {
  describe(`courier metrics on ${broker}`, function () {
    this.timeout(90_000);
    let kit: Kit;
    beforeEach(async () => (kit = await makeKit(broker)));
    afterEach(async () => kit.cleanup());

    it("shows a running service's per-handler figures; the stuck handler's backlog is the topic's", async () => {
      const svc = start([JSON.stringify(kit.cli), kit.group, String(N)], { nodeArgs: ['-r', 'ts-node/register/transpile-only'], script: path.join(__dirname, 'fixtures', 'metered-service.ts'), timeoutMs: 80_000 });
      try {
        await waitFor(() => svc.stdout().includes(`ready ${N}`) || svc.proc.exitCode !== null, 60_000, 'the service ready');
        assert.ok(svc.stdout().includes('ready'), svc.stderr());
        const fast = `${kit.group}.Fast.on`;
        const stuck = `${kit.group}.Stuck.on`;
        // Reports every 300 ms: wait until one shows the settled state (the fast handler done, the broker's count read).
        let report: MetricsReport | undefined;
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const r = await courier(['metrics', '--once', '--json', '--source', 'metered-service', ...kit.cli]);
          assert.equal(r.code, 0, r.stderr);
          report = jsonLines<MetricsReport>(r)[0];
          const h = report.snapshot.handlers;
          if (h[fast]?.consumed === N && (broker !== 'amqp' || h[stuck]?.brokerQueue?.messages === N - 10)) break;
        }
        assert.ok(report);
        const { handlers, topics } = report.snapshot;
        assert.equal(report.source, 'metered-service');
        assert.equal(report.instance, 'one');
        assert.equal(handlers[fast].consumed, N);
        assert.equal(handlers[fast].backlog, 0);
        assert.equal(handlers[fast].timeToDrainMs, 0);
        assert.equal(handlers[stuck].consumed, 0);
        assert.equal(handlers[stuck].inFlight, 10);
        assert.equal(handlers[stuck].backlog, N);
        assert.equal(handlers[stuck].timeToDrainMs, null, 'a stuck handler never drains');
        const t = topics['ops.item'];
        assert.equal(t.published, N);
        assert.equal(t.consumed, N, 'summed over handlers, the old backlog figure (published - consumed) would be 0');
        assert.equal(t.backlog, N, 'the topic shows its worst handler');
        assert.equal(t.worstHandler, stuck);
        assert.deepEqual(t.backlogByHandler, { [fast]: 0, [stuck]: N });
        assert.equal(t.timeToDrainMs, null);
        if (broker === 'amqp') {
          // The broker's own count beside Courier's: 50 ready in the stuck handler's queue, 10 with its consumer.
          assert.deepEqual({ ...handlers[stuck].brokerQueue!, at: 0 }, { queue: stuck, messages: N - 10, consumers: 1, at: 0 });
          assert.equal(handlers[fast].brokerQueue!.messages, 0);
        } else {
          assert.equal(handlers[stuck].brokerQueue, null, 'MQTT has no queue depth to read');
        }

        const text = await courier(['metrics', '--once', '--source', 'metered-service', ...kit.cli]);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, /metered-service @ one/);
        assert.match(text.stdout, new RegExp(`${stuck.replace(/\./g, '\\.')}\\s+${N}\\s`));
        assert.match(text.stdout, /ops\.item .*never  .*Stuck\.on/);

        const nobody = await courier(['metrics', '--once', '--source', 'no-such-service', '--wait-ms', '1500', ...kit.cli]);
        assert.equal(nobody.code, 1);
        assert.match(nobody.stderr, /no report/);
      } finally {
        svc.proc.kill('SIGTERM');
        await svc.exit;
      }
    });
  });
}
