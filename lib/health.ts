/**
 * Health of a bus for readiness and liveness probes: {@link Bus.health} gives the figures,
 * {@link healthHandler} serves them over node:http (200 when the probe passes, 503 when not, the
 * figures as JSON either way). docs/operations.md says how to wire them to an orchestrator.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The last error the transport reported (secrets redacted). */
export interface HealthError {
  readonly name: string;
  readonly message: string;
  /** ISO time it was reported. */
  readonly at: string;
}

/** What {@link Bus.health} reports. */
export interface BusHealth {
  /** The bus's lifecycle: `new`, `starting`, `started`, `stopping`, `stopped`, or `failed` (start() rejected). */
  readonly state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' | 'failed';
  /**
   * Readiness: started, connected, and every subscription attached. False while the broker is
   * unreachable: take the instance out of the load balancer, do not restart it (it reconnects).
   */
  readonly ready: boolean;
  /**
   * Liveness: false only when restarting the process is the remedy: start() failed, or the bus
   * was stopped. A broker outage leaves it true (restarting would not bring the broker back).
   */
  readonly live: boolean;
  /**
   * The transport's connection(s) are up: the last `connected` event is later than the last
   * `disconnected` one, per connection (counted: an adapter with several connections, as MQTT's
   * sessions are, is connected once every one that dropped came back).
   */
  readonly connected: boolean;
  /** ISO time the transport last went down, while it is down. */
  readonly disconnectedSince?: string;
  /**
   * The bus's subscriptions: `expected` is one per handler; `attached` those consuming now
   * (all of them while connected, none while not: the adapters re-attach every subscription on reconnect).
   */
  readonly subscriptions: { readonly expected: number; readonly attached: number };
  /** Publishes handed to the transport and not yet confirmed (a broker outage makes them wait). */
  readonly publishesWaiting: number;
  /** The last error the transport reported, if any. */
  readonly lastError?: HealthError;
}

/** Something with a health() (a {@link Bus}). */
export interface HasHealth {
  health(): BusHealth;
}

export interface HealthHandlerOptions {
  /** Which probe a path answers. Default `/ready` (and `/readyz`), `/live` (and `/livez`, `/healthz`). */
  readonly paths?: Readonly<Record<string, 'ready' | 'live'>>;
}

const DEFAULT_PATHS: Readonly<Record<string, 'ready' | 'live'>> = {
  '/ready': 'ready',
  '/readyz': 'ready',
  '/live': 'live',
  '/livez': 'live',
  '/healthz': 'live',
};

/**
 * A node:http request listener: on a probe path it answers 200 when every bus passes the probe
 * and 503 when one does not, with `{ ok, buses: [health, ...] }` as JSON; on other paths 404.
 * Use it as the listener of its own server (`http.createServer(healthHandler(bus)).listen(9464)`)
 * or call it from an existing one. It returns true when it answered the request.
 */
export function healthHandler(buses: HasHealth | readonly HasHealth[], options: HealthHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse) => boolean {
  const list = Array.isArray(buses) ? (buses as readonly HasHealth[]) : [buses as HasHealth];
  const paths = options.paths ?? DEFAULT_PATHS;
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const probe = Object.prototype.hasOwnProperty.call(paths, path) ? paths[path] : undefined;
    if (!probe || (req.method !== 'GET' && req.method !== 'HEAD')) {
      if (!res.headersSent) {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
      return false;
    }
    const reports = list.map((b) => b.health());
    const ok = reports.every((h) => h[probe]);
    const body = JSON.stringify({ ok, probe, buses: reports });
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
