/**
 * A pending request keeps its process alive until it settles (issue 14 point 3): a script that
 * awaits an unanswered `bus.request(..., { timeoutMs: 300 })` must reach its catch with
 * RequestTimeoutError, on every transport, also when the broker connection is cut while it waits.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { amqpBroker, BrokerEndpoint, mqttBroker } from '../helpers/brokers';
import { TcpProxy } from '../helpers/tcp-proxy';

const ROOT = path.join(__dirname, '..', '..');
const SCRIPT = path.join(__dirname, 'fixtures', 'unanswered-request.ts');

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the script; `onSent` runs once it printed `sent`. Killed after 15 s. */
function runScript(env: Record<string, string>, onSent?: () => void): Promise<Run> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', SCRIPT], {
    cwd: ROOT,
    env: { ...process.env, REQ_TYPE: `keepalive.${randomUUID()}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    const before = stdout;
    stdout += b.toString();
    if (!before.includes('sent') && stdout.includes('sent')) onSent?.();
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

function assertCaught(run: Run): void {
  assert.equal(run.signal, null, `killed: ${run.stdout} ${run.stderr}`);
  assert.match(run.stdout, /caught RequestTimeoutError/, `the catch ran; stdout: ${JSON.stringify(run.stdout)}, stderr: ${run.stderr}`);
  assert.equal(run.code, 0, run.stderr);
}

describe('a pending request keeps its process alive until it times out', function () {
  this.timeout(60_000);

  it('memory', async () => {
    assertCaught(await runScript({ REQ_TRANSPORT: 'memory' }));
  });

  for (const [kind, broker] of [
    ['amqp', amqpBroker],
    ['mqtt', mqttBroker],
  ] as Array<[string, () => Promise<BrokerEndpoint>]>) {
    describe(kind, () => {
      let endpoint: BrokerEndpoint;
      before(async function () {
        this.timeout(120_000);
        endpoint = await broker();
      });

      it(`${kind}: connected`, async () => {
        assertCaught(await runScript({ REQ_TRANSPORT: kind, REQ_URL: endpoint.url }));
      });

      it(`${kind}: the connection is cut while the request waits (and stays down)`, async () => {
        const proxy = new TcpProxy(endpoint.host, endpoint.port);
        await proxy.start();
        try {
          const url = endpoint.url.replace(`${endpoint.host}:${endpoint.port}`, `127.0.0.1:${proxy.port}`);
          const run = await runScript({ REQ_TRANSPORT: kind, REQ_URL: url, REQ_TIMEOUT_MS: '1000' }, () => {
            proxy.cut(60_000); // and refuse reconnects until the script is done
          });
          assertCaught(run);
        } finally {
          await proxy.stop();
        }
      });
    });
  }
});
