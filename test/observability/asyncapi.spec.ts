/**
 * `courier asyncapi`, run as a command on the build (bin/courier.js) over the sample services:
 * the official @asyncapi/parser accepts the document with no error or warning, and the document
 * matches the services as a bus runs them: every subscription the bus makes (recorded by a
 * transport wrapper on the real sample classes) is a receive operation with that queue, every
 * @Publish a send, every message type has the JSON Schema of its class-validator rules, and the
 * request types carry their reply.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';
import { createBus, DeliveryHandler, silentLogger, Subscription, SubscriptionSpec, TransportWrapper } from '../../lib';
import { MemoryBroker, memoryTransport } from '../../adapters/memory';
import { asyncApiDocument, courierClassesOf } from '../../adapters/asyncapi';
import * as orderModule from '../../samples/order-service';
import * as productModule from '../../samples/product-service';
import { MemoryOrderStore, OrderService, ProductReplica } from '../../samples/order-service';
import { MemoryProductStore, ProductService } from '../../samples/product-service';
import { Announcer } from '../../samples/storage/announcer';
import { messageMetadata } from '../../lib/decorators';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'courier.js');

type Doc = {
  channels: Record<string, { address: string | null; messages: Record<string, unknown> }>;
  operations: Record<string, { action: string; channel: { $ref: string }; messages: Array<{ $ref: string }>; reply?: { channel: { $ref: string }; messages: Array<{ $ref: string }> }; [k: string]: unknown }>;
  components: { messages: Record<string, { payload: { $ref: string } }>; schemas: Record<string, { required?: string[]; properties?: Record<string, Record<string, unknown>> }> };
};

class Recording extends TransportWrapper {
  readonly specs: SubscriptionSpec[] = [];
  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    this.specs.push(spec);
    return super.subscribe(spec, handler);
  }
}

describe('courier asyncapi', function () {
  this.timeout(60_000);
  let dir: string;
  let doc: Doc;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-asyncapi-'));
    const out = path.join(dir, 'asyncapi.json');
    const r = spawnSync(process.execPath, [BIN, 'asyncapi', '--service', 'order-service=dist/samples/order-service/index.js', '--service', 'product-service=dist/samples/product-service/index.js', '--amqp-host', 'rabbit:5672', '--out', out], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /wrote .*asyncapi\.json: \d+ channels, \d+ operations/);
    doc = JSON.parse(fs.readFileSync(out, 'utf8'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('the official AsyncAPI parser accepts the document: version 3.0.0, no errors, no warnings', async () => {
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc));
    const bad = diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
    assert.deepEqual(bad, []);
    assert.ok(document);
    assert.equal(document.version(), '3.0.0');
    assert.equal(document.servers().get('amqp')?.host(), 'rabbit:5672');
  });

  it('every subscription the sample services make on a bus is a receive operation with its queue, on AMQP and MQTT', async () => {
    const broker = new MemoryBroker();
    const product = new Recording(memoryTransport({ broker }));
    const order = new Recording(memoryTransport({ broker }));
    const pbus = createBus({ transport: product, source: 'product-service', logger: silentLogger });
    pbus.register(new ProductService(new MemoryProductStore(), new Announcer(pbus)));
    const obus = createBus({ transport: order, source: 'order-service', instanceId: 'i1', logger: silentLogger });
    obus.register(new ProductReplica(obus), new OrderService('order-1', new ProductReplica(obus), new MemoryOrderStore(), new Announcer(obus)));
    await pbus.start();
    await obus.start();
    await Promise.all([pbus.stop(), obus.stop()]);
    const specs = [...product.specs, ...order.specs];
    assert.ok(specs.length >= 10, `${specs.length} subscriptions`);
    const receives = Object.values(doc.operations).filter((o) => o.action === 'receive');
    for (const t of ['amqp', 'mqtt']) {
      const queues = receives.filter((o) => o.channel.$ref.startsWith(`#/channels/${t}.`)).map((o) => o[t === 'amqp' ? 'x-courier-queue' : 'x-courier-subscription']);
      // The bus's queue names (docs/wire-format.md): <group>.<Class.method>, or <source>.<instanceId>.<Class.method>.
      const expected = specs.map((s) =>
        t === 'amqp'
          ? s.group ? `${s.group}.${s.name}` : `${s.instance!.replace('.i1', '.<instanceId>')}.${s.name}`
          : s.group ? `$share/${s.group}:${s.name}/courier/${s.pattern.split('.').join('/')}` : `courier/${s.pattern.split('.').join('/')}`,
      );
      assert.deepEqual([...queues].sort(), [...expected].sort(), t);
    }
    // Each receive's channel address is what the transport binds: the pattern (AMQP), the topic (MQTT).
    for (const s of specs) {
      const op = receives.find((o) => o['x-courier-queue'] === (s.group ? `${s.group}.${s.name}` : `${s.instance!.replace('.i1', '.<instanceId>')}.${s.name}`))!;
      assert.equal(doc.channels[op.channel.$ref.split('/').pop()!].address, s.pattern);
    }
  });

  it('who publishes and who subscribes: order-service sends order.placed, product-service receives it; every @Publish is a send', () => {
    const ops = Object.values(doc.operations);
    const of = (action: string, service: string, channel: string) => ops.filter((o) => o.action === action && o['x-courier-service'] === service && o.channel.$ref === `#/channels/${channel}`);
    for (const t of ['amqp', 'mqtt']) {
      assert.equal(of('send', 'order-service', `${t}.order.placed`).length, 1);
      assert.equal(of('receive', 'product-service', `${t}.order.placed`).length, 1);
      assert.equal(of('send', 'product-service', `${t}.stock.reserved`).length, 1);
      assert.equal(of('receive', 'order-service', `${t}.stock.reserved`).length, 1);
    }
    assert.equal(doc.channels['mqtt.order.placed'].address, 'courier/order/placed');
    assert.equal(doc.channels['amqp.order.placed'].address, 'order.placed');
    const sends = ops.filter((o) => o.action === 'send').length;
    // OrderService publishes 3 types, ProductService 5 (their asyncApiSends: through the outbox); once per transport.
    assert.equal(sends, 2 * (3 + 5));
  });

  it('every message type of the samples, with the JSON Schema of its class-validator rules', () => {
    const types = [...Object.values(orderModule), ...Object.values(productModule)].map((v) => messageMetadata(v)?.type).filter((t): t is string => !!t);
    const handled = new Set(Object.keys(doc.components.messages));
    // Every type a sample service handles or publishes is in the document.
    for (const t of types) if (!handled.has(t)) assert.fail(`message ${t} missing (it is neither handled nor published by the samples?)`);
    const created = doc.components.schemas[doc.components.messages['product.created'].payload.$ref.split('/').pop()!];
    assert.deepEqual([...(created.required ?? [])].sort(), ['name', 'priceCents', 'productId', 'stock', 'version']);
    assert.deepEqual(created.properties?.priceCents, { type: 'integer', minimum: 0 });
    assert.equal(created.properties?.productId.type, 'string');
    assert.ok(created.properties?.productId.pattern, 'the @Matches rule is a pattern');
    // A nested class is a $ref to its own schema, which the document carries.
    const catalog = doc.components.schemas.ProductCatalog;
    assert.deepEqual(catalog.properties?.products, { type: 'array', items: { $ref: '#/components/schemas/ProductDetails' } });
    assert.ok(doc.components.schemas.ProductDetails);
  });

  it('a request type: its handler replies on the caller\'s reply channel with the reply type', () => {
    const get = Object.values(doc.operations).find((o) => o.action === 'receive' && o.channel.$ref === '#/channels/amqp.product.get');
    assert.ok(get?.reply, 'product.get has a reply');
    assert.equal(get.reply.messages[0].$ref, '#/channels/amqp.product.get.reply/messages/product.details');
    assert.equal(doc.channels['amqp.product.get.reply'].address, null);
  });

  it('the library function reports every class without @Message at once; the command exits 1 for a module without Courier classes and 2 for bad usage', () => {
    class NotAMessage {}
    const { Subscriber, Subscribe } = require('../../lib') as typeof import('../../lib');
    @Subscriber()
    class Bad {
      @Subscribe(NotAMessage as never)
      on() {}
      @Subscribe(Date as never)
      other() {}
    }
    assert.throws(() => asyncApiDocument([{ name: 'bad', classes: courierClassesOf({ Bad }) }]), /2 problem\(s\)[\s\S]*NotAMessage has no @Message[\s\S]*Date has no @Message/);
    const none = spawnSync(process.execPath, [BIN, 'asyncapi', '--service', 'x=package.json'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /exports no @Subscriber/);
    const usage = spawnSync(process.execPath, [BIN, 'asyncapi'], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--service NAME=MODULE/);
  });
});
