/**
 * The benchmark still works: `bench/run.ts --smoke --json` runs every case and each one produces
 * numbers. Speed is never asserted here (docs/benchmarks.md): only that the numbers exist.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { amqpBroker, mqttBroker } from '../helpers/brokers';

const ROOT = path.resolve(__dirname, '../..');
const TIMEOUT_MS = 150_000;

interface SideJson {
  rate: number;
  p50?: number;
  p99?: number;
  peakRssMb: number;
  rounds: Array<{ detail: Record<string, number> }>;
}

describe('bench (smoke mode)', function () {
  this.timeout(TIMEOUT_MS + 15_000);

  it('runs every case for Courier and, where there is one, the raw and plain clients, and reports numbers', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, COURIER_AMQP_URL: (await amqpBroker()).url };
    // The bench starts a Mosquitto of its own (one that does not drop); without the binary, use the fixture's.
    if (spawnSync('mosquitto', ['-h']).error) env.COURIER_BENCH_MQTT_URL = (await mqttBroker()).url;
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'bench/run.ts', '--smoke', '--json'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), TIMEOUT_MS);
      child.on('exit', (c) => (clearTimeout(timer), resolve(c)));
    });
    assert.equal(code, 0, `bench exited with ${code}:\n${stderr.slice(-3000)}`);
    const report = JSON.parse(stdout) as { failures: string[]; rows: Array<{ id: string; courier: SideJson; raw?: SideJson; plain?: SideJson }> };
    assert.deepEqual(report.failures, []);
    assert.deepEqual(
      report.rows.map((r) => r.id),
      ['a', 'b1', 'b100', 'c', 'c-held', 'd-events', 'd-rpc', 'e', 'f-plain', 'f-postgres', 'f-sqlite', 'g-balanced', 'g-gateway', 'i-1', 'i-2', 'i-4', 'h-otel-off', 'h-otel-on', 'q'],
    );
    const positive = (x: unknown, what: string) => assert.ok(typeof x === 'number' && Number.isFinite(x) && x > 0, `${what}: ${x}`);
    for (const row of report.rows) {
      const courierOnly = row.id.startsWith('d') || row.id.startsWith('f') || row.id.startsWith('g') || row.id.startsWith('i');
      const sides = courierOnly ? [row.courier] : [row.courier, row.raw];
      assert.equal(row.raw === undefined, courierOnly, `${row.id}: raw side present only where there is a raw client`);
      // Cases h: the "raw" side is the same bus without tracing; case q: classic queues.
      // The plain raw client a user would write (issue 19) beside a, b and c.
      const plainToo = ['a', 'b1', 'b100', 'c', 'c-held'].includes(row.id);
      assert.equal(row.plain !== undefined, plainToo, `${row.id}: plain side present only on a, b and c`);
      if (plainToo) sides.push(row.plain);
      for (const [i, side] of sides.entries()) {
        const who = `${row.id} ${['Courier', 'raw', 'plain'][i]}`;
        positive(side?.rate, `${who} rate`);
        positive(side?.peakRssMb, `${who} peak RSS`);
        if (!row.id.startsWith('e') && !row.id.startsWith('f') && !row.id.startsWith('g') && !row.id.startsWith('h') && !row.id.startsWith('i') && row.id !== 'q') {
          // Client CPU per message (issue 19: CPU time, steadier than wall time on a shared machine).
          const cpu = side?.rounds[0]?.detail;
          const keys = row.id.startsWith('b') ? ['clientCpuUs', 'serverCpuUs'] : row.id.startsWith('d') ? ['cpuUs'] : ['producerCpuUs', 'consumerCpuUs'];
          for (const k of keys) positive(cpu?.[k], `${who} ${k}`);
        }
        if (row.id.startsWith('b') || row.id === 'd-rpc' || row.id.startsWith('f') || row.id.startsWith('g') || row.id === 'q') {
          positive(side?.p50, `${who} p50`);
          positive(side?.p99, `${who} p99`);
        }
      }
    }
  });
});
