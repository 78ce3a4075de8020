// The consumer test's plain JavaScript app: require(), decorators applied as functions.
//
// It repeats round-trip.ts (the same messages, handlers and round trip) on purpose: what it tests
// is that a project with no TypeScript at all can use the package. Its project installs no
// compiler (its node_modules is also the install size the spec measures), and importing a compiled
// round-trip.ts would run the TypeScript emit's decorator calls, not a JavaScript user's. Keep the
// two in step: consumer.spec.ts asserts the same result (assertRoundTrips) of both.
'use strict';
require('reflect-metadata');
const { IsInt, IsString, Min } = require('class-validator');
const { createBus, Message, Publish, Publisher, Subscribe, Subscriber } = require('courier-bus');
const { memoryTransport } = require('courier-bus/memory');
const { amqpTransport } = require('courier-bus/amqp');

const RUN = process.env.COURIER_CONSUMER_RUN || 'local';

function decorateMethod(cls, method, ...decorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, method);
  for (const decorate of decorators) decorate(cls.prototype, method, descriptor);
  Object.defineProperty(cls.prototype, method, descriptor);
}
function decorateProperty(cls, property, ...decorators) {
  for (const decorate of decorators) decorate(cls.prototype, property);
}

class StockLevel {}
decorateProperty(StockLevel, 'productId', IsString());
decorateProperty(StockLevel, 'units', IsInt(), Min(0));
Message(`consumer.${RUN}.stock-level`)(StockLevel);

class PriceChanged {}
decorateProperty(PriceChanged, 'productId', IsString());
decorateProperty(PriceChanged, 'priceCents', IsInt(), Min(0));
Message(`consumer.${RUN}.price-changed`)(PriceChanged);

class GetStock {}
decorateProperty(GetStock, 'productId', IsString());
Message(`consumer.${RUN}.get-stock`, { reply: StockLevel })(GetStock);

async function roundTrip(name, transport) {
  const received = [];
  let arrived;
  const all = new Promise((resolve) => (arrived = resolve));

  class Shop {
    async onPriceChanged(event, ctx) {
      received.push({ productId: event.productId, priceCents: event.priceCents, type: ctx.type });
      if (received.length === 2) arrived();
    }
    async stock(query) {
      return { productId: query.productId, units: 7 };
    }
  }
  decorateMethod(Shop, 'onPriceChanged', Subscribe(PriceChanged));
  decorateMethod(Shop, 'stock', Subscribe(GetStock));
  Subscriber({ group: `consumer-${RUN}-${name}` })(Shop);

  class Catalog {
    async changePrice(productId, priceCents) {
      return { productId, priceCents };
    }
  }
  decorateMethod(Catalog, 'changePrice', Publish(PriceChanged));
  Publisher()(Catalog);

  const catalog = new Catalog();
  const bus = createBus({ transport, source: `consumer-${name}` });
  bus.register(new Shop(), catalog);
  await bus.start();
  try {
    await catalog.changePrice('p1', 999);
    await bus.publish(PriceChanged, { productId: 'p2', priceCents: 5 });
    let timer;
    await Promise.race([all, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: events did not arrive in 10 s`)), 10_000)))]);
    clearTimeout(timer);
    const reply = await bus.request(GetStock, { productId: 'p1' }, { timeoutMs: 5000 });
    return { transport: name, received: received.sort((a, b) => a.productId.localeCompare(b.productId)), reply };
  } finally {
    await bus.stop();
  }
}

(async () => {
  const results = [await roundTrip('memory', memoryTransport()), await roundTrip('amqp', amqpTransport({ url: process.env.COURIER_AMQP_URL }))];
  console.log(JSON.stringify(results));
})().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
