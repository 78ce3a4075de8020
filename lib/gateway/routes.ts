/**
 * Gateway routes (docs/gateway.md): matched by method and a regular expression on the path, whose
 * named groups become fields of the message.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { BalanceStrategy } from '../discovery/balancer';
import type { PayloadClass } from '../decorators';
import type { Principal } from './auth';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** What a route sees of an HTTP request, to build its message. */
export interface RouteInput {
  /** Named groups of the path's match. */
  readonly params: Readonly<Record<string, string>>;
  /** Query string parameters (the last of repeated ones). */
  readonly query: Readonly<Record<string, string>>;
  /** The parsed JSON body; undefined without one. */
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
  readonly principal?: Principal;
}

export interface GatewayRoute {
  readonly method: HttpMethod;
  /** Matched against the whole path (without the query); named groups become fields. Anchor it (`^...$`). */
  readonly path: RegExp;
  /** The request message: its reply is the response (200). Exactly one of request and event. */
  readonly request?: PayloadClass;
  /** The event published: answered 202 with `{ id }` once the broker has it. */
  readonly event?: PayloadClass;
  /**
   * The payload from the HTTP request. Default: the body's fields, then the query's, then the
   * path's named groups (the path wins).
   */
  readonly input?: (input: RouteInput) => unknown;
  /**
   * Who may call it. `false` (default): anyone. `true`: an authenticated caller (401 without).
   * `{ scopes }`: one with every scope listed (403 without); a function: one it approves (403 when false).
   */
  readonly auth?: boolean | { readonly scopes: readonly string[] } | ((principal: Principal, input: RouteInput) => boolean | Promise<boolean>);
  /** Balanced request over the discovered instances (the bus needs discovery). Default: the broker's competing consumers. */
  readonly balance?: BalanceStrategy;
  /** Reply timeout (504 after it). Default: the bus's request timeout. */
  readonly timeoutMs?: number;
  /** Status of a successful response. Default 200 (request), 202 (event). */
  readonly status?: number;
}

/** Problems with a route list (for createGateway's error), empty when fine. */
export function routeProblems(routes: readonly GatewayRoute[]): string[] {
  const problems: string[] = [];
  routes.forEach((r, i) => {
    const name = `route ${i} (${r?.method} ${r?.path})`;
    if (!r || typeof r !== 'object') return void problems.push(`route ${i} is not an object`);
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)) problems.push(`${name}: method must be GET, POST, PUT, PATCH or DELETE`);
    if (!(r.path instanceof RegExp)) problems.push(`${name}: path must be a RegExp`);
    if ((r.request === undefined) === (r.event === undefined)) problems.push(`${name}: give exactly one of request and event`);
    if (r.event && r.balance) problems.push(`${name}: balance applies to requests only`);
  });
  return problems;
}

/** The route for `method` and `path`, with its named groups; `methodMismatch` when only the method differs. */
export function matchRoute(routes: readonly GatewayRoute[], method: string, path: string): { route: GatewayRoute; params: Record<string, string> } | { methodMismatch: boolean } {
  let methodMismatch = false;
  for (const route of routes) {
    route.path.lastIndex = 0;
    const m = route.path.exec(path);
    if (!m) continue;
    if (route.method !== method) {
      methodMismatch = true;
      continue;
    }
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) params[k] = v;
    return { route, params };
  }
  return { methodMismatch };
}
