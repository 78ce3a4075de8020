/**
 * `courier demo --http PORT`: the order and product services behind the HTTP gateway
 * (courier-bus/gateway, docs/gateway.md), as the source document's example has them:
 *
 *   GET  /products/:id   GetProduct   -> 200 the product, 404 unknown
 *   POST /orders         PlaceOrder   -> 202 { id } (body { orderId, productId, quantity })
 *   GET  /orders/:id     GetOrder     -> 200 the order (placed, confirmed or rejected), 404 unknown
 *
 * Invalid input is 400 with every problem, no reply in time 504 (the gateway's statuses).
 */
import { Bus } from 'courier-bus';
import { createGateway, Gateway } from 'courier-bus/gateway';
import { GetOrder, PlaceOrder } from '../order-service/messages';
import { GetProduct } from '../product-service/messages';

/** The gateway over `bus` (a started bus of its own on the demo's transport), listening on 127.0.0.1:`port` (0: a free one). */
export async function serveDemoHttp(bus: Bus, port: number): Promise<{ gateway: Gateway; url: string }> {
  const gateway = createGateway(bus, {
    routes: [
      { method: 'GET', path: /^\/products\/(?<productId>[A-Za-z0-9_.:-]{1,100})$/, request: GetProduct, timeoutMs: 5000 },
      { method: 'POST', path: /^\/orders$/, event: PlaceOrder },
      { method: 'GET', path: /^\/orders\/(?<orderId>[A-Za-z0-9_.:-]{1,100})$/, request: GetOrder, timeoutMs: 5000 },
    ],
  });
  const bound = await gateway.listen(port, '127.0.0.1');
  return { gateway, url: `http://127.0.0.1:${bound}` };
}
