/** Reading a request body: bounded in size (413) and time (408), JSON only (415, 400). */
import type { IncomingMessage } from 'node:http';
import { parseJson } from '../codec';

/** A request that gets a 4xx before any message is sent; `problems` go into the answer. */
export class HttpProblem extends Error {
  constructor(readonly status: number, message: string, readonly problems?: readonly string[]) {
    super(message);
    this.name = 'HttpProblem';
  }
}

/** The JSON body of `req` (undefined when it has none), read within `maxBytes` and `timeoutMs`. */
export function readJsonBody(req: IncomingMessage, maxBytes: number, timeoutMs: number): Promise<unknown> {
  const length = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (length === undefined && !chunked) return Promise.resolve(undefined);
  if (length !== undefined && Number(length) > maxBytes) return Promise.reject(new HttpProblem(413, `body over the limit of ${maxBytes} bytes`));
  if (length === '0') return Promise.resolve(undefined);
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) return Promise.reject(new HttpProblem(415, 'body must be application/json'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const timer = setTimeout(() => fail(new HttpProblem(408, `body not received within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.removeAllListeners('data');
      req.resume();
      reject(err);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) fail(new HttpProblem(413, `body over the limit of ${maxBytes} bytes`));
      else chunks.push(c);
    });
    req.on('error', (err) => fail(new HttpProblem(400, `body could not be read: ${err.message}`)));
    req.on('aborted', () => fail(new HttpProblem(400, 'request aborted')));
    req.on('end', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text.trim()) return resolve(undefined);
      try {
        resolve(parseJson(text));
      } catch (err) {
        reject(new HttpProblem(400, `body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}
