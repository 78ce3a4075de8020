/**
 * The dashboard (docs/dashboard.md): a node:http server showing the services, the message types
 * between them and the meter, live. One sampler per server, once a tick (1 s): it asks the
 * {@link DashboardSource} for the instances, computes the fleet's frame (fleet.ts), keeps its
 * figures in a ring of the last minutes (history.ts), serializes the frame once and writes it to
 * every open page's event stream (sse-hub.ts). Dead letters are read and replayed through the
 * operations API (dead-letter-watcher.ts).
 *
 * Routes: `GET /` the page (page/: HTML, plain JS and CSS, no build step, nothing loaded from
 * elsewhere); `GET /events` the server-sent events (`frame` once a tick); `GET /api/state` the
 * current frame, dead letters and history as JSON; `GET /api/dead-letters`;
 * `GET /api/dead-letters/show?subscription=S&id=I`; `POST /api/dead-letters/replay` with
 * `{ "subscription": S, "id": I }`. Access: access.ts.
 */
import { readFileSync } from 'node:fs';
import http, { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Bus } from '../bus';
import { CourierError, redactSecrets } from '../errors';
import type { Transport } from '../transport';
import { Access } from './access';
import { DeadLetterWatcher, DeadLetterWatcherOptions, DeadLettersView } from './dead-letter-watcher';
import { FleetFrame, FleetModel } from './fleet';
import { History, HistoryPoint, pointOf } from './history';
import { busesSource, DashboardSource } from './source';
import { SseHub, sseEvent, SseHubOptions } from './sse-hub';

export interface DashboardOptions {
  /** The buses of this process to show (an embedded dashboard); or give {@link source}. */
  readonly buses?: readonly Bus[] | (() => readonly Bus[]);
  /** Where the figures come from (brokerSource for a broker's services); default: busesSource(buses). */
  readonly source?: DashboardSource;
  /**
   * A transport to the broker the services use, for their dead letters (read, opened, replayed
   * through lib/ops). The dashboard connects it at listen() and closes it at close() unless
   * `deadLettersConnected` says it is the caller's. Without one, the page shows no dead letters.
   */
  readonly deadLetters?: Transport;
  /** True when `deadLetters` is connected and closed by the caller (brokerSource's transport). */
  readonly deadLettersConnected?: boolean;
  /** Every request must carry it (Bearer header or `?token=`). Default: none (loopback only). */
  readonly token?: string;
  /** Shown on the page (e.g. the broker, redacted here again). */
  readonly title?: string;
  /** Minutes of history kept and charted. Default 5. */
  readonly historyMinutes?: number;
  /** Interval of the frames, ms (at least 1000: at most one update a second). Default 1000. */
  readonly tickMs?: number;
  /** The page streams' bounds. */
  readonly streams?: SseHubOptions;
  readonly deadLetterScans?: DeadLetterWatcherOptions;
}

export interface Dashboard {
  readonly server: http.Server;
  /** Starts the source and serves on `host` (default 127.0.0.1); resolves to the URL (port 0: a free one). */
  listen(port: number, host?: string): Promise<string>;
  /** The latest frame (undefined before the first tick). */
  frame(): FleetFrame | undefined;
  /** Open page streams, frames skipped for slow ones, streams dropped. */
  streams(): { open: number; skippedFrames: number; droppedClients: number };
  /** Stops sampling, ends the streams, closes the server and the source. Idempotent. */
  close(): Promise<void>;
}

const PAGE_DIR = path.join(__dirname, 'page');
const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/charts.js': { file: 'charts.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** A dashboard over `options.source` or `options.buses`; nothing runs until listen(). */
export function createDashboard(options: DashboardOptions): Dashboard {
  const source = options.source ?? (options.buses ? busesSource(options.buses) : undefined);
  if (!source) throw new CourierError('createDashboard: give buses or a source');
  if (options.token !== undefined && options.token.length < 8) throw new CourierError('createDashboard: a token must have at least 8 characters');
  const tickMs = Math.max(1000, options.tickMs ?? 1000);
  const history = new History(Math.round(((options.historyMinutes ?? 5) * 60_000) / tickMs));
  const hub = new SseHub(options.streams);
  const model = new FleetModel();
  const watcher = options.deadLetters ? new DeadLetterWatcher(options.deadLetters, options.deadLetterScans) : undefined;
  const title = redactSecrets(options.title ?? 'Courier');
  const files = new Map<string, Buffer>();
  let access = new Access(options.token, '127.0.0.1');
  let latest: { frame: FleetFrame; point: HistoryPoint } | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let lastTickError = '';

  const deadLetters = (): DeadLettersView | null => (watcher ? watcher.view() : null);
  const tick = () => {
    try {
      const frame = model.frame(source.instances(), Date.now());
      const point = pointOf(frame);
      history.push(point);
      latest = { frame, point };
      watcher?.tick(frame.handlers, frame.at, hub.size > 0);
      if (hub.size > 0) hub.broadcast(sseEvent('frame', { frame, point, deadLetters: deadLetters() }));
      lastTickError = '';
    } catch (err) {
      lastTickError = redactSecrets(String(err));
    }
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify(body));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const refused = access.check(req, url);
    if (refused) return send(res, refused.status, { error: refused.message });
    const file = STATIC[url.pathname];
    if (file && (req.method === 'GET' || req.method === 'HEAD')) {
      let body = files.get(file.file);
      if (!body) files.set(file.file, (body = readFileSync(path.join(PAGE_DIR, file.file))));
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type, 'content-length': String(body.length) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/events') {
      hub.open(req, res, SECURITY_HEADERS, latest ? sseEvent('frame', { frame: latest.frame, point: latest.point, deadLetters: deadLetters() }) : undefined);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/state') {
      return send(res, 200, { title, tickMs, tokenRequired: access.tokenRequired, frame: latest?.frame ?? null, deadLetters: deadLetters(), history: history.points(), ...(lastTickError ? { error: lastTickError } : {}) });
    }
    if (req.method === 'GET' && url.pathname === '/api/dead-letters') return send(res, 200, deadLetters());
    if (req.method === 'GET' && url.pathname === '/api/dead-letters/show') {
      if (!watcher) return send(res, 404, { error: 'this dashboard reads no dead letters' });
      const subscription = url.searchParams.get('subscription') ?? '';
      const id = url.searchParams.get('id') ?? '';
      const d = await watcher.show(subscription, id);
      return d ? send(res, 200, d) : send(res, 404, { error: 'no such dead letter (replayed or purged meanwhile?)' });
    }
    if (req.method === 'POST' && url.pathname === '/api/dead-letters/replay') {
      if (!watcher) return send(res, 404, { error: 'this dashboard reads no dead letters' });
      const body = await readSmallJson(req);
      const subscription = typeof body?.subscription === 'string' ? body.subscription : '';
      const id = typeof body?.id === 'string' ? body.id : '';
      if (!subscription || !id) return send(res, 400, { error: 'give { "subscription": S, "id": I }' });
      const r = await watcher.replay(subscription, id);
      if (!r) return send(res, 404, { error: `no subscription ${subscription}` });
      return send(res, r.replayed > 0 ? 200 : r.failed > 0 ? 502 : 404, r.replayed > 0 || r.failed > 0 ? r : { ...r, error: 'no such dead letter (replayed or purged meanwhile?)' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
    send(res, 404, { error: 'not found' });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { error: redactSecrets(`${(err as Error).name}: ${(err as Error).message}`) });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // the event streams stay open

  return {
    server,
    async listen(port, host = '127.0.0.1') {
      access = new Access(options.token, host.toLowerCase());
      await source.start();
      if (options.deadLetters && !options.deadLettersConnected) {
        options.deadLetters.on('error', () => undefined);
        await options.deadLetters.connect();
      }
      tick();
      timer = setInterval(tick, tickMs);
      timer.unref();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const a = server.address() as AddressInfo;
      return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
    },
    frame: () => latest?.frame,
    streams: () => ({ open: hub.size, skippedFrames: hub.skippedFrames, droppedClients: hub.droppedClients }),
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        hub.closeAll();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections?.();
        });
        if (options.deadLetters && !options.deadLettersConnected) await options.deadLetters.close({ timeoutMs: 2000 }).catch(() => undefined);
        await source.stop();
      })();
      return closing;
    },
  };
}

/** A JSON body of at most 16 KiB, or undefined. */
async function readSmallJson(req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 16 * 1024) return undefined;
    chunks.push(c as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}
