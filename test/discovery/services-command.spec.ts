/**
 * `courier services` (issue 22, point 6) run as a command (bin/courier.js, the build) against
 * RabbitMQ and Mosquitto, with instances in other processes.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { sleep, uniq } from '../helpers/wait';
import { Child, spawnInstance } from './fixtures/spawn';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

function courier(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('courier services (the command)', function () {
  this.timeout(90_000);
  let children: Child[] = [];
  afterEach(async () => {
    for (const c of children) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => Promise.race([c.exited, sleep(5000)])));
    children = [];
  });

  for (const kind of ['amqp', 'mqtt'] as const) {
    it(`lists the live instances with their handlers and versions (${kind}); one SIGTERMed is no longer listed`, async () => {
      const url = (await (kind === 'amqp' ? amqpBroker() : mqttBroker())).url;
      const service = uniq('svc');
      const type = uniq('disc.cli');
      children = ['one', 'two'].map((id) =>
        spawnInstance({ D_TRANSPORT: kind, D_URL: url, D_TYPE: type, D_SERVICE: service, D_INSTANCE: id, D_HEARTBEAT_MS: '5000', D_TTL_MS: '15000' }),
      );
      await Promise.all(children.map((c) => c.ready));
      const json = await courier(['services', '--transport', kind, '--url', url, '--service', service, '--wait', '1000', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const listed = JSON.parse(json.stdout) as Array<{ service: string; instanceId: string; handles: string[]; version: string; transport: string }>;
      assert.deepEqual(
        listed.map((i) => [i.service, i.instanceId, i.handles, i.version, i.transport]),
        [
          [service, 'one', [type], '1.2.3', kind],
          [service, 'two', [type], '1.2.3', kind],
        ],
      );
      const text = await courier(['services', '--transport', kind, '--url', url, '--service', service, '--wait', '1000']);
      assert.equal(text.code, 0, text.stderr);
      const lines = text.stdout.trim().split('\n');
      assert.match(lines[0], /^SERVICE\s+INSTANCE\s+VERSION\s+TRANSPORT\s+WEIGHT\s+UP\s+HANDLES\s+PUBLISHES$/);
      assert.equal(lines.length, 3);
      assert.ok(lines[1].includes(service) && lines[1].includes(' one ') && lines[1].includes(type), lines[1]);

      children[0].proc.kill('SIGTERM');
      await Promise.race([children[0].exited, sleep(5000)]);
      const after = JSON.parse((await courier(['services', '--transport', kind, '--url', url, '--service', service, '--wait', '1000', '--json'])).stdout) as Array<{ instanceId: string }>;
      assert.deepEqual(
        after.map((i) => i.instanceId),
        ['two'],
      );
    });
  }

  it('bad usage: status 2 with the usage; an unreachable broker: status 1, the password not shown', async () => {
    const bad = await courier(['services', '--transport', 'memory']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Usage: courier services/);
    assert.equal((await courier(['services', '--wait', 'soon'])).code, 2);
    const down = await courier(['services', '--url', 'amqp://guest:s3cret@127.0.0.1:1', '--wait', '100', '--connect-timeout', '500']);
    assert.equal(down.code, 1, down.stdout + down.stderr);
    assert.ok(!down.stderr.includes('s3cret'), down.stderr);
    assert.match((await courier(['--help'])).stdout, /services\s+list the live service instances/);
  });
});
