/**
 * `courier demo --metrics-port P`, run as a command (the build's bin/courier.js): the product
 * service role on RabbitMQ serves /metrics in the Prometheus text format (the catalog it seeded
 * counted as published) and /ready, and stops on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { amqpBroker } from '../helpers/brokers';
import { uniq } from '../helpers/wait';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

function get(port: number, p: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      })
      .on('error', reject);
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('courier demo --metrics-port', function () {
  this.timeout(60_000);

  it('the product role serves /metrics and /ready while it runs, and exits 0 on SIGTERM', async () => {
    const { url } = await amqpBroker();
    const port = await freePort();
    const namespace = uniq('dm').toLowerCase().replace(/[^a-z0-9-]/g, '');
    const child = spawn(process.execPath, [BIN, 'demo', '--role', 'product', '--transport', 'amqp', '--url', url, '--namespace', namespace, '--products', '5', '--metrics-port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!stderr.includes('product service ready')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the product role did not get ready: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(stderr.includes(`metrics on http://127.0.0.1:${port}/metrics`), stderr);
      assert.ok(!stderr.includes('guest:guest'), 'the URL with its password is never echoed');
      const m = await get(port, '/metrics');
      assert.equal(m.status, 200);
      const created = m.text.split('\n').find((l) => l.startsWith('courier_messages_published_total{') && l.includes('type="product.created"'));
      assert.ok(created, m.text.slice(0, 2000));
      assert.match(created, /service="[^"]*product-service[^"]*"/);
      assert.equal(Number(created.split(' ').pop()), 5);
      assert.match(m.text, /# TYPE courier_handle_duration_seconds histogram/);
      const ready = await get(port, '/ready');
      assert.equal(ready.status, 200, ready.text);
      child.kill('SIGTERM');
      assert.equal(await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]), 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
