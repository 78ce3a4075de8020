/**
 * The open pages' event streams (server-sent events): one serialized frame is written to every
 * stream. Memory stays bounded whatever the number of pages: at most `maxClients` streams (more
 * get 503), a frame is skipped for a stream whose socket still holds more than
 * `maxBufferedBytes` unsent (a slow or stalled page), and a stream that skipped
 * `maxSkipped` frames in a row is closed (the page's EventSource reconnects and starts afresh).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface SseHubOptions {
  /** Default 256. */
  readonly maxClients?: number;
  /** Default 256 KiB. */
  readonly maxBufferedBytes?: number;
  /** Default 30. */
  readonly maxSkipped?: number;
}

interface Client {
  readonly res: ServerResponse;
  skipped: number;
}

export class SseHub {
  private readonly clients = new Set<Client>();
  private readonly maxClients: number;
  private readonly maxBuffered: number;
  private readonly maxSkipped: number;
  /** Frames not written to a slow stream, and streams closed for it, since the start. */
  skippedFrames = 0;
  droppedClients = 0;

  constructor(options: SseHubOptions = {}) {
    this.maxClients = options.maxClients ?? 256;
    this.maxBuffered = options.maxBufferedBytes ?? 256 * 1024;
    this.maxSkipped = options.maxSkipped ?? 30;
  }

  get size(): number {
    return this.clients.size;
  }

  /** Takes `res` as a stream, writing `first` at once; answers 503 when full. */
  open(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>, first?: Buffer): void {
    if (this.clients.size >= this.maxClients) {
      res.writeHead(503, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end('too many open pages\n');
      return;
    }
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // The page reconnects after 2 s when the stream ends.
    res.write('retry: 2000\n\n');
    if (first) res.write(first);
    const client: Client = { res, skipped: 0 };
    this.clients.add(client);
    const gone = () => this.clients.delete(client);
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
  }

  /** Writes one event to every stream that has room for it. */
  broadcast(event: Buffer): void {
    for (const c of this.clients) {
      if (c.res.writableLength > this.maxBuffered) {
        this.skippedFrames++;
        if (++c.skipped >= this.maxSkipped) {
          this.droppedClients++;
          this.clients.delete(c);
          c.res.destroy();
        }
        continue;
      }
      c.skipped = 0;
      c.res.write(event);
    }
  }

  /** Ends every stream. */
  closeAll(): void {
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }
}

/** `data` as one server-sent event of type `name`. */
export function sseEvent(name: string, data: unknown): Buffer {
  return Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`, 'utf8');
}
