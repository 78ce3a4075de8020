/**
 * The HTTP gateway (docs/gateway.md): `createGateway(bus, { routes })` serves HTTP on node:http,
 * maps each matched route to a request message (its reply is the response) or an event (202), and
 * each failure to one status: 400 invalid input (every problem), 401 / 403, 404 / 405, 408 slow
 * body, 413 body over the limit, 415 not JSON, 431 headers over the limit (node:http), 502 remote
 * handler error (unless it chose a status), 503 no live instance or shutting down, 504 no reply in
 * time. A W3C `traceparent` goes into the envelope; the principal too (lib/gateway/auth.ts).
 */
import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Bus } from '../bus';
import { messageMetadata } from '../decorators';
import { BusNotStartedError, BusStoppedError, CourierError, PayloadValidationError, redactSecrets, RemoteHandlerError, RequestTimeoutError, TransportClosedError } from '../errors';
import { InstanceGoneError, NoInstanceError } from '../discovery/errors';
import { MAX_PRINCIPAL_BYTES, Principal, PRINCIPAL_HEADER, UnauthorizedError, Verifier } from './auth';
import { HttpProblem, readJsonBody } from './body';
import { GatewayRoute, matchRoute, RouteInput, routeProblems } from './routes';

export interface GatewayOptions {
  readonly routes: readonly GatewayRoute[];
  /** Turns credentials into a principal (e.g. {@link jwtVerifier}); routes with `auth` need one. */
  readonly verifier?: Verifier;
  /** Largest body, bytes (413 beyond). Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Largest request head, bytes (431 beyond; node:http's maxHeaderSize). Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** Time to receive the body (408 after it). Default 10 s. */
  readonly bodyTimeoutMs?: number;
  /** Time to receive the request head (node:http's headersTimeout). Default 10 s. */
  readonly headersTimeoutMs?: number;
  /** How long close() waits for requests in flight. Default 10 s. */
  readonly shutdownTimeoutMs?: number;
  /** Called with each unexpected failure (a 500), secrets redacted. */
  readonly onError?: (error: Error) => void;
}

export interface Gateway {
  /** The node:http server (not listening until listen()). */
  readonly server: http.Server;
  /** Starts serving; resolves to the port (0 picks a free one). */
  listen(port: number, host?: string): Promise<number>;
  /**
   * Graceful shutdown: stops accepting connections, answers 503 to new requests on open
   * keep-alive connections, waits for requests in flight (up to shutdownTimeoutMs), then closes
   * every connection. Does not stop the bus. Idempotent.
   */
  close(): Promise<void>;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A gateway serving `routes` over `bus` (started by the caller). Throws CourierError on bad routes. */
export function createGateway(bus: Bus, options: GatewayOptions): Gateway {
  const problems = routeProblems(options.routes ?? []);
  if (options.routes?.some((r) => r.auth) && !options.verifier) problems.push('routes with auth need a verifier');
  if (problems.length) throw new CourierError(`createGateway: ${problems.join('; ')}`);
  const maxBody = options.maxBodyBytes ?? 1024 * 1024;
  const bodyTimeout = options.bodyTimeoutMs ?? 10_000;
  let closing: Promise<void> | undefined;
  let inFlight = 0;
  let idle: (() => void) | undefined;

  const server = http.createServer({ maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024, requestTimeout: bodyTimeout + 5000 }, (req, res) => {
    if (closing) return send(res, 503, { error: { code: 'SHUTTING_DOWN', message: 'the gateway is shutting down' } }, true);
    inFlight++;
    serve(req, res)
      .catch((err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        options.onError?.(new Error(redactSecrets(`${e.name}: ${e.message}`)));
        if (!res.headersSent) send(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } });
        else res.destroy();
      })
      .finally(() => {
        if (--inFlight === 0) idle?.();
      });
  });
  server.headersTimeout = options.headersTimeoutMs ?? 10_000;
  server.keepAliveTimeout = 5000;
  // A malformed request line or head (node:http's parser): 400, or 431 when the head is too big.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const found = matchRoute(options.routes, req.method ?? '', url.pathname);
    if (!('route' in found)) {
      req.resume();
      return send(res, found.methodMismatch ? 405 : 404, { error: { code: found.methodMismatch ? 'METHOD_NOT_ALLOWED' : 'NOT_FOUND', message: `no route for ${req.method} ${url.pathname}` } });
    }
    const { route, params } = found;
    try {
      const principal = await authenticate(route, req);
      const body = await readJsonBody(req, maxBody, bodyTimeout);
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const input: RouteInput = { params, query, body, headers: req.headers, principal };
      await authorize(route, principal, input);
      const payload = route.input ? route.input(input) : defaultPayload(input);
      const headers: Record<string, string> = {};
      if (principal) {
        const json = JSON.stringify(principal);
        if (Buffer.byteLength(json) > MAX_PRINCIPAL_BYTES) throw new HttpProblem(431, 'credentials too large');
        headers[PRINCIPAL_HEADER] = json;
      }
      const tp = String(req.headers.traceparent ?? '').trim().toLowerCase();
      const trace = TRACEPARENT.test(tp) && !/^00-0{32}-|-0{16}-/.test(tp) ? { traceparent: tp, tracestate: typeof req.headers.tracestate === 'string' ? req.headers.tracestate.slice(0, 512) : undefined } : {};
      if (route.event) {
        const id = await bus.publish(route.event, payload as never, { headers, ...trace });
        return send(res, route.status ?? 202, { id });
      }
      const type = messageMetadata(route.request)!.type;
      if (!route.balance && hasDiscovery(bus) && !bus.services().some((s) => s.handles.includes(type))) throw new NoInstanceError(type);
      const reply = await bus.request(route.request!, payload as never, { headers, ...trace, balance: route.balance, timeoutMs: route.timeoutMs });
      return send(res, route.status ?? 200, reply ?? null);
    } catch (err) {
      const [status, code, message, extra] = classify(err);
      if (status === 500) throw err;
      if (status === 502 && err instanceof Error) options.onError?.(new Error(redactSecrets(err.message)));
      if (!req.complete) req.resume();
      const h: Record<string, string> = status === 401 ? { 'www-authenticate': 'Bearer' } : {};
      return send(res, status, { error: { code, message, ...extra } }, status === 408 || status === 413, h);
    }
  }

  async function authenticate(route: GatewayRoute, req: IncomingMessage): Promise<Principal | undefined> {
    if (!options.verifier) return undefined;
    let principal: Principal | undefined;
    try {
      principal = await options.verifier({ headers: req.headers });
    } catch (err) {
      if (!route.auth) return undefined;
      throw err;
    }
    if (route.auth && !principal) throw new UnauthorizedError('credentials required');
    return principal;
  }

  async function authorize(route: GatewayRoute, principal: Principal | undefined, input: RouteInput): Promise<void> {
    const auth = route.auth;
    if (!auth || auth === true) return;
    const ok = typeof auth === 'function' ? await auth(principal!, input) : auth.scopes.every((s) => principal!.scopes.includes(s));
    if (!ok) throw new HttpProblem(403, 'not allowed');
  }

  return {
    server,
    listen(port: number, host = '127.0.0.1'): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close(): Promise<void> {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inFlight > 0) {
          await new Promise<void>((resolve) => {
            idle = resolve;
            setTimeout(resolve, options.shutdownTimeoutMs ?? 10_000).unref();
          });
        }
        server.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}

function hasDiscovery(bus: Bus): boolean {
  try {
    bus.services();
    return true;
  } catch {
    return false;
  }
}

/** Body fields, then query, then path groups (the path wins). */
function defaultPayload(input: RouteInput): unknown {
  const body = input.body;
  if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) throw new HttpProblem(400, 'body must be a JSON object', ['(root): must be an object']);
  return { ...(body as object | undefined), ...input.query, ...input.params };
}

/** Status, code, message and extra fields of the answer to a failure; 500 for the unexpected. */
function classify(err: unknown): [number, string, string, Record<string, unknown>?] {
  if (err instanceof HttpProblem) return [err.status, http.STATUS_CODES[err.status]?.toUpperCase().replace(/\W+/g, '_') ?? 'ERROR', err.message, err.problems ? { problems: err.problems } : undefined];
  if (err instanceof UnauthorizedError) return [401, 'UNAUTHORIZED', err.message];
  if (err instanceof PayloadValidationError) {
    return [400, 'INVALID', 'invalid input', { problems: err.violations.map((v) => `${v.property}: ${Object.values(v.constraints).join('; ')}`) }];
  }
  if (err instanceof NoInstanceError) return [503, 'NO_INSTANCE', err.message];
  if (err instanceof BusStoppedError || err instanceof BusNotStartedError || err instanceof TransportClosedError) return [503, 'UNAVAILABLE', 'the service is not available'];
  if (err instanceof RequestTimeoutError) return [504, 'TIMEOUT', err.message];
  if (err instanceof InstanceGoneError) return [502, 'INSTANCE_GONE', err.message];
  if (err instanceof RemoteHandlerError) {
    if (err.status !== undefined) return [err.status, err.remoteName, err.remoteMessage];
    // The remote error's message is the service's business, not the caller's.
    return [502, 'REMOTE_HANDLER_FAILED', `the handler of ${err.messageType} failed`];
  }
  return [500, 'INTERNAL', 'internal error'];
}

function send(res: ServerResponse, status: number, body: unknown, close = false, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...(close ? { connection: 'close' } : {}), ...headers });
  res.end(text);
}
