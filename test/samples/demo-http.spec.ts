/**
 * Issue 22 point 5: `courier demo --http PORT` serves the order and product services over the
 * HTTP gateway, as a user runs it: the built command in a process of its own, driven with real
 * HTTP requests on memory, RabbitMQ and Mosquitto.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { amqpBroker, mqttBroker } from '../helpers/brokers';
import { sleep } from '../helpers/wait';

const BIN = path.join(__dirname, '..', '..', 'bin', 'courier.js');

/** Starts the command; resolves with the gateway's URL from its stderr line. */
function startDemo(args: string[]): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, 'demo', '--http', '0', '--products', '5', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no gateway within 60 s: ${stderr}`)), 60_000);
    child.stderr!.on('data', (b: Buffer) => {
      stderr += b.toString();
      const m = /HTTP gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1], exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`demo exited (${code}) before serving: ${stderr}`));
    });
  });
}

async function http(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await fetch(url, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return { status: r.status, json: await r.json() };
}

describe('courier demo --http: the services over the HTTP gateway', function () {
  this.timeout(120_000);
  for (const transport of ['memory', 'amqp', 'mqtt'] as const) {
    it(`on ${transport}: GET /products/:id, POST /orders, GET /orders/:id; 404, 400; SIGINT ends it with status 0`, async () => {
      const args = transport === 'memory' ? [] : ['--transport', transport, '--url', (await (transport === 'amqp' ? amqpBroker() : mqttBroker())).url];
      const { child, url, exited } = await startDemo(args);
      try {
        const product = await http('GET', `${url}/products/p-001`);
        assert.equal(product.status, 200);
        assert.equal(product.json.productId, 'p-001');
        const stock = product.json.stock as number;
        const ids = ['h1', 'h2', 'h3'];
        for (const orderId of ids) {
          const placed = await http('POST', `${url}/orders`, { orderId, productId: 'p-001', quantity: 1 });
          assert.equal(placed.status, 202, JSON.stringify(placed.json));
          assert.match(placed.json.id, /^[0-9a-f-]{36}$/);
        }
        // Too many: rejected for stock, and an unknown product: rejected as such.
        assert.equal((await http('POST', `${url}/orders`, { orderId: 'h4', productId: 'p-001', quantity: stock })).status, 202);
        assert.equal((await http('POST', `${url}/orders`, { orderId: 'h5', productId: 'p-999', quantity: 1 })).status, 202);
        const states: Record<string, string> = {};
        for (const until = Date.now() + 20_000; Date.now() < until; await sleep(200)) {
          for (const id of [...ids, 'h4', 'h5']) {
            const r = await http('GET', `${url}/orders/${id}`);
            if (r.status === 200) states[id] = r.json.reason ? `${r.json.state}:${r.json.reason}` : r.json.state;
          }
          if (Object.values(states).filter((s) => s !== 'placed').length === 5) break;
        }
        assert.deepEqual(states, { h1: 'confirmed', h2: 'confirmed', h3: 'confirmed', h4: 'rejected:insufficient-stock', h5: 'rejected:unknown-product' });
        assert.equal((await http('GET', `${url}/products/p-001`)).json.stock, stock - 3, 'three units reserved');
        const unknown = await http('GET', `${url}/orders/nope`);
        assert.deepEqual([unknown.status, unknown.json.error.code], [404, 'UnknownOrderError']);
        assert.equal((await http('GET', `${url}/products/nope`)).status, 404);
        const bad = await http('POST', `${url}/orders`, { orderId: 'a b', quantity: 0 });
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.problems.length, 3, JSON.stringify(bad.json));
      } finally {
        child.kill('SIGINT');
      }
      const code = await Promise.race([exited, sleep(20_000).then(() => 'hung')]);
      if (code === 'hung') child.kill('SIGKILL');
      assert.equal(code, 0);
    });
  }
});
