/**
 * `courier tail` and `courier publish`, run as commands against the real brokers: tail sees every
 * message without taking any from the service's group; publish sends one valid envelope; a
 * password is never echoed.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createBus, silentLogger } from '../../lib';
import { courier, start } from './cli';
import { Broker, Kit, makeKit, service } from './kits';
import { waitFor, sleep } from '../helpers/wait';

for (const broker of ['amqp', 'mqtt'] as Broker[]) {
  describe(`courier tail and publish on ${broker}`, function () {
    this.timeout(90_000);
    let kit: Kit;
    beforeEach(async () => (kit = await makeKit(broker)));
    afterEach(async () => kit.cleanup());

    it('tail prints what flows (type, id, source, time, headers, body) and the group still gets every message', async () => {
      const svc = service(kit.group);
      svc.fixed = true;
      const bus = createBus({ transport: kit.transport(), source: 'ops-test', logger: silentLogger });
      bus.register(svc);
      await bus.start();
      const tail = start(['tail', 'ops.#', '--json', '--count', '3', ...kit.cli]);
      try {
        await waitFor(() => tail.stderr().includes('reading ops.#'), 20_000, 'tail ready');
        const file = path.join(os.tmpdir(), `courier-publish-${process.pid}.json`);
        fs.writeFileSync(file, '{"n":"from-file"}');
        const ids: string[] = [];
        for (const args of [['ops.item', '{"n":"a"}', '--header', 'tenant=acme'], ['ops.item', '--file', file], ['ops.item', '{"n":"c"}', '--source', 'ops-cli-test']]) {
          const r = await courier(['publish', ...args, ...kit.cli]);
          assert.equal(r.code, 0, r.stderr);
          ids.push(r.stdout.trim());
        }
        fs.rmSync(file);
        const r = await tail.exit;
        assert.equal(r.code, 0, r.stderr);
        const seen = tail.json<{ type: string; id: string; source: string; time: string; headers: Record<string, string>; body: { n: string } }>();
        assert.deepEqual(seen.map((m) => m.id), ids);
        assert.deepEqual(seen.map((m) => m.body.n), ['a', 'from-file', 'c']);
        assert.ok(seen.every((m) => m.type === 'ops.item' && !Number.isNaN(Date.parse(m.time)) && m.headers.specversion === '1.0'));
        assert.equal(seen[0].headers.tenant, 'acme');
        assert.deepEqual(seen.map((m) => m.source), ['courier-cli', 'courier-cli', 'ops-cli-test']);
        // The group lost nothing to the tail: the service handled all three.
        await waitFor(() => svc.handled.length === 3, 10_000, 'the service handled 3');
        assert.deepEqual(svc.handled.map((h) => h.id).sort(), [...ids].sort());
      } finally {
        tail.proc.kill('SIGKILL');
        await bus.stop();
      }
    });

    it('text output, SIGINT stops the tail; bad input is refused with its reason; a password is never echoed', async () => {
      const tail = start(['tail', '#', ...kit.cli]);
      await waitFor(() => tail.stderr().includes('reading #'), 20_000, 'tail ready');
      const ok = await courier(['publish', 'ops.other', '{"k":[1,2]}', ...kit.cli]);
      assert.equal(ok.code, 0, ok.stderr);
      await waitFor(() => tail.stdout().includes(ok.stdout.trim()), 10_000, 'the message printed');
      assert.match(tail.stdout(), /ops\.other .* from courier-cli\n {2}headers: .*\n {2}body: \{"k":\[1,2\]\}/);
      tail.proc.kill('SIGINT');
      const stopped = await tail.exit;
      assert.equal(stopped.code, 0, stopped.stderr);

      const notJson = await courier(['publish', 'ops.item', '{n:', ...kit.cli]);
      assert.equal(notJson.code, 1);
      assert.match(notJson.stderr, /not JSON/);
      const pattern = await courier(['publish', 'ops.*', '{}', ...kit.cli]);
      assert.equal(pattern.code, 1);
      assert.match(pattern.stderr, /not a message type/);
      const usage = await courier(['tail', ...kit.cli]);
      assert.equal(usage.code, 2);

      // A wrong password: refused, and neither it nor the right one appears anywhere.
      const secret = 'S3cr3t-pw';
      const bad = kit.broker === 'amqp' ? kit.url.replace(/\/\/[^@]*@/, `//guest:${secret}@`) : kit.url.replace('//', `//user:${secret}@`);
      const refused = await courier(['publish', 'ops.item', '{"n":"x"}', ...kit.cli.filter((a, i, all) => a !== '--url' && all[i - 1] !== '--url'), '--url', bad, '--timeout-ms', '3000']);
      const all = refused.stdout + refused.stderr;
      assert.ok(!all.includes(secret), all);
      if (kit.broker === 'amqp') {
        assert.equal(refused.code, 1, all);
        assert.match(all, /AuthenticationError/);
      }
      // Through COURIER_URL as well (the recommended way): the URL is shown redacted.
      const viaEnv = start(['tail', '#', ...kit.cli.filter((a, i, all) => a !== '--url' && all[i - 1] !== '--url')], { env: { COURIER_URL: kit.url } });
      await waitFor(() => viaEnv.stderr().includes('reading #'), 20_000, 'tail via COURIER_URL ready');
      assert.ok(!/:guest@/.test(viaEnv.stderr()), viaEnv.stderr());
      if (kit.broker === 'amqp') assert.match(viaEnv.stderr(), /amqp:\/\/guest:\*\*\*@127/);
      viaEnv.proc.kill('SIGTERM');
      assert.equal((await viaEnv.exit).code, 0);
      await sleep(10);
    });
  });
}
