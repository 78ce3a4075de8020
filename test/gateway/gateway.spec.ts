/**
 * The HTTP gateway (issue 22, point 4), over a bus on the memory transport, driven with real HTTP
 * requests (fetch, and raw sockets for what fetch refuses to send).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { IsInt, IsOptional, IsString, Min } from 'class-validator';
import { Bus, createBus, Message, MessageContext, silentLogger, Subscribe, Subscriber } from '../../lib';
import { createGateway, Gateway, HttpError, jwtVerifier, principalOf } from '../../lib/gateway';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { sleep, uniq } from '../helpers/wait';

const SECRET = 'gateway-test-secret-0123456789abcdef';
// jose is an ES module.
const importEsm = new Function('s', 'return import(s)') as (s: string) => Promise<typeof import('jose')>;

@Message('gw.product')
class Product {
  @IsString() id!: string;
  @IsString() name!: string;
}
@Message('gw.product.get', { reply: Product })
class GetProduct {
  @IsString() id!: string;
}
@Message('gw.order.placed')
class OrderPlaced {
  @IsString() sku!: string;
  @IsInt() @Min(1) quantity!: number;
}
@Message('gw.whoami')
class WhoAmI {
  @IsOptional() @IsString() note?: string;
}
@Message('gw.slow')
class Slow {
  @IsOptional() @IsString() note?: string;
}
@Message('gw.boom')
class Boom {
  @IsOptional() @IsString() note?: string;
}
@Message('gw.nobody')
class Nobody {
  @IsOptional() @IsString() note?: string;
}

@Subscriber()
class Service {
  readonly orders: OrderPlaced[] = [];
  readonly traces: Array<string | undefined> = [];
  @Subscribe(GetProduct)
  async get(q: GetProduct, ctx: MessageContext): Promise<Product> {
    this.traces.push(ctx.envelope.traceparent);
    if (q.id === 'missing') throw new HttpError(404, `no product ${q.id}`);
    return { id: q.id, name: `product ${q.id}` };
  }
  @Subscribe(OrderPlaced)
  async placed(o: OrderPlaced): Promise<void> {
    this.orders.push(o);
  }
  @Subscribe(WhoAmI)
  async who(_: WhoAmI, ctx: MessageContext): Promise<{ subject?: string; scopes?: readonly string[] }> {
    const p = principalOf(ctx);
    return { subject: p?.subject, scopes: p?.scopes };
  }
  @Subscribe(Slow)
  async slow(): Promise<{ ok: true }> {
    await sleep(400);
    return { ok: true };
  }
  @Subscribe(Boom)
  async boom(): Promise<void> {
    throw new Error('kaput password=hunter2');
  }
}

describe('HTTP gateway', function () {
  this.timeout(60_000);
  let broker: MemoryBroker;
  let serviceBus: Bus;
  let gatewayBus: Bus;
  let service: Service;
  let gateway: Gateway;
  let base: string;
  let port: number;
  let jose: typeof import('jose');

  beforeEach(async () => {
    jose = await importEsm('jose');
    broker = new MemoryBroker();
    service = new Service();
    serviceBus = createBus({ transport: memoryTransport({ broker }), source: 'catalogue', instanceId: 'c1', logger: silentLogger, discovery: { heartbeatMs: 100 } });
    serviceBus.register(service);
    await serviceBus.start();
    gatewayBus = createBus({ transport: memoryTransport({ broker }), source: 'gateway', instanceId: 'g1', logger: silentLogger, discovery: { heartbeatMs: 100 } });
    await gatewayBus.start();
    gateway = createGateway(gatewayBus, {
      maxBodyBytes: 1024,
      bodyTimeoutMs: 300,
      verifier: jwtVerifier({ secret: SECRET, issuer: 'courier-test' }),
      routes: [
        { method: 'GET', path: /^\/products\/(?<id>[\w-]+)$/, request: GetProduct },
        { method: 'GET', path: /^\/balanced\/products\/(?<id>[\w-]+)$/, request: GetProduct, balance: 'round-robin' },
        { method: 'POST', path: /^\/orders$/, event: OrderPlaced },
        { method: 'GET', path: /^\/me$/, request: WhoAmI, auth: true },
        { method: 'GET', path: /^\/admin$/, request: WhoAmI, auth: { scopes: ['admin'] } },
        { method: 'GET', path: /^\/slow$/, request: Slow, timeoutMs: 100 },
        { method: 'GET', path: /^\/slow-ok$/, request: Slow, timeoutMs: 5000 },
        { method: 'GET', path: /^\/boom$/, request: Boom },
        { method: 'GET', path: /^\/nobody$/, request: Nobody },
      ],
    });
    port = await gateway.listen(0);
    base = `http://127.0.0.1:${port}`;
    // The gateway's bus knows the catalogue instance.
    for (let i = 0; i < 100 && !gatewayBus.services().some((s) => s.service === 'catalogue'); i++) await sleep(10);
  });
  afterEach(async () => {
    await gateway.close();
    await gatewayBus.stop();
    await serviceBus.stop();
  });

  async function call(path: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  }
  const token = (claims: Record<string, unknown>, opts: { secret?: string; exp?: number | string; iss?: string } = {}) =>
    new jose.SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setIssuer(opts.iss ?? 'courier-test')
      .setExpirationTime(opts.exp ?? '5m')
      .sign(new TextEncoder().encode(opts.secret ?? SECRET));

  it('maps a route to a request (named groups become fields) and its reply to the response, with and without balance', async () => {
    assert.deepEqual(await call('/products/p-7'), { status: 200, body: { id: 'p-7', name: 'product p-7' }, headers: (await call('/products/p-7')).headers });
    const b = await call('/balanced/products/p-8');
    assert.equal(b.status, 200);
    assert.equal(b.body.id, 'p-8');
  });

  it('an event route publishes and answers 202 with the message id; the handler gets it', async () => {
    const r = await call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sku: 'A', quantity: 2 }) });
    assert.equal(r.status, 202);
    assert.match(r.body.id, /^[0-9a-f-]{36}$/);
    for (let i = 0; i < 100 && service.orders.length === 0; i++) await sleep(10);
    assert.deepEqual(service.orders.map((o) => ({ ...o })), [{ sku: 'A', quantity: 2 }]);
  });

  it('invalid input: 400 listing every problem; nothing is sent', async () => {
    const r = await call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ quantity: 'many', extra: 1 }) });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID');
    const text = r.body.error.problems.join('\n');
    for (const p of ['sku:', 'quantity:', 'extra:']) assert.ok(text.includes(p), `${p} in ${text}`);
    assert.equal((await call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sku": ' })).status, 400);
    assert.equal((await call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1,2]' })).status, 400);
    assert.equal((await call('/orders', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'sku=A' })).status, 415);
    await sleep(50);
    assert.equal(service.orders.length, 0);
  });

  it('503 with no live instance, 504 on timeout, 502 on a remote error (secrets redacted), the handler\'s own status, 413, 404, 405', async () => {
    assert.equal((await call('/nobody')).status, 503);
    const slow = await call('/slow');
    assert.equal(slow.status, 504);
    const boom = await call('/boom');
    assert.equal(boom.status, 502);
    assert.ok(!JSON.stringify(boom.body).includes('hunter2') && !JSON.stringify(boom.body).includes('kaput'), `the remote message stays inside: ${JSON.stringify(boom.body)}`);
    const missing = await call('/products/missing');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.message, 'no product missing');
    const big = await call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sku: 'x'.repeat(2000), quantity: 1 }) });
    assert.equal(big.status, 413);
    assert.equal((await call('/nowhere')).status, 404);
    assert.equal((await call('/orders')).status, 405);
    // A stopped service: 503 once it has said goodbye.
    await serviceBus.stop();
    assert.equal((await call('/products/p-1')).status, 503);
  });

  it('authentication: 401 without, with forged, expired, wrongly signed or wrong-issuer tokens; the principal reaches the handler; 403 without the scope', async () => {
    const good = await token({ sub: 'alice', scope: 'orders:read' });
    const me = await call('/me', { headers: { authorization: `Bearer ${good}` } });
    assert.deepEqual([me.status, me.body], [200, { subject: 'alice', scopes: ['orders:read'] }]);

    const [h, , s] = good.split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ sub: 'mallory', scope: 'admin', iss: 'courier-test', exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    const noneAlg = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${forgedPayload}.`;
    const cases: Record<string, string | undefined> = {
      none: undefined,
      forged: `${h}.${forgedPayload}.${s}`,
      'alg none': noneAlg,
      expired: await token({ sub: 'alice' }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      'wrong key': await token({ sub: 'alice' }, { secret: 'another-secret-another-secret-1234' }),
      'wrong issuer': await token({ sub: 'alice' }, { iss: 'someone-else' }),
      garbage: 'not-a-jwt',
      'not bearer': 'Basic YWxpY2U6cHc=',
    };
    for (const [what, t] of Object.entries(cases)) {
      const headers: Record<string, string> = t === undefined ? {} : { authorization: t.startsWith('Basic') ? t : `Bearer ${t}` };
      const r = await call('/admin', { headers });
      assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer');
      assert.ok(!JSON.stringify(r.body).includes(t ?? '\u0000'), `${what}: the token is not echoed`);
    }
    assert.equal((await call('/admin', { headers: { authorization: `Bearer ${good}` } })).status, 403);
    const admin = await token({ sub: 'root', scope: 'admin' });
    assert.equal((await call('/admin', { headers: { authorization: `Bearer ${admin}` } })).status, 200);
    // A public route ignores bad credentials.
    assert.equal((await call('/products/p-1', { headers: { authorization: 'Bearer forged' } })).status, 200);
  });

  it('a W3C traceparent goes into the envelope; a malformed one is dropped', async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    assert.equal((await call('/products/p-1', { headers: { traceparent: tp } })).status, 200);
    assert.equal((await call('/products/p-2', { headers: { traceparent: '00-zz-bad-01' } })).status, 200);
    assert.equal(service.traces[0], tp);
    assert.equal(service.traces[1], undefined);
  });

  it('graceful shutdown: a request in flight is answered; new connections are refused', async () => {
    const inFlight = call('/slow-ok');
    await sleep(100);
    const closed = gateway.close();
    assert.equal((await inFlight).status, 200);
    await closed;
    await assert.rejects(fetch(`${base}/products/p-1`, { signal: AbortSignal.timeout(2000) }));
  });

  it('3,000 malformed requests (bad JSON, huge headers, wrong types, slow bodies, garbage request lines) get 4xx and leave it serving', async () => {
    const statuses = new Map<number, number>();
    const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
    const raw = (text: string, waitMs = 2000) =>
      new Promise<number>((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let got = '';
        sock.setTimeout(waitMs, () => sock.destroy());
        sock.on('data', (b) => {
          got += b.toString();
          if (/^HTTP\/1\.1 \d{3}/.test(got)) sock.destroy();
        });
        sock.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1] ?? 0)));
        sock.on('error', () => undefined);
        sock.write(text);
      });
    const kinds: Array<() => Promise<number>> = [
      () => call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"sku":' + '['.repeat(50) }).then((r) => r.status),
      () => call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sku: 42, quantity: 'x' }) }).then((r) => r.status),
      () => call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"__proto__": {"x": 1}, "sku": "a", "quantity": 1}' }).then((r) => r.status),
      () => call('/orders', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' }).then((r) => r.status),
      () => call('/products/p-1', { headers: { 'x-big': 'y'.repeat(20_000) } }).then((r) => r.status),
      () => raw(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"sku":`),
      () => raw('GARBAGE\r\n\r\n'),
      () => raw(`GET /products/${'%'.repeat(3)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      () => raw(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n`),
      () => call('/me', { headers: { authorization: 'Bearer ' + 'a.b.c'.repeat(100) } }).then((r) => r.status),
    ];
    let next = 0;
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        while (next < 3000) {
          const k = kinds[next++ % kinds.length];
          count(await k());
        }
      }),
    );
    const all = [...statuses.entries()].sort();
    assert.equal(all.reduce((n, [, c]) => n + c, 0), 3000);
    for (const [status, c] of all) assert.ok(status >= 400 && status < 500, `status ${status} x${c}: ${JSON.stringify(all)}`);
    for (const expected of [400, 401, 408, 431]) assert.ok(statuses.has(expected), `some ${expected}: ${JSON.stringify(all)}`);
    assert.equal((await call('/products/still-here')).status, 200);
    assert.equal(service.orders.length, 0);
  });

  it('refuses bad routes at creation', () => {
    assert.throws(() => createGateway(gatewayBus, { routes: [{ method: 'GET', path: /x/, request: GetProduct, event: OrderPlaced }, { method: 'GET', path: /y/, request: GetProduct, auth: true }] as never }), /exactly one of request and event/);
    assert.throws(() => createGateway(gatewayBus, { routes: [{ method: 'GET', path: /y/, request: GetProduct, auth: true }] }), /need a verifier/);
  });
});

void uniq;
