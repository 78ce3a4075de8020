/**
 * Who may use a dashboard: with a token, every request must carry it (`Authorization: Bearer T`
 * or `?token=T`, compared in constant time); without one, only requests whose Host names a
 * loopback address or the host it was told to listen on (a page of another site that rebinds its
 * DNS name to 127.0.0.1 cannot read it). A POST must carry `X-Courier-Dashboard: 1`, which a
 * cross-site form cannot send and a cross-site script may not without a CORS grant (none is given).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export type Refusal = { readonly status: 401 | 403; readonly message: string };

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export class Access {
  private readonly digest?: Buffer;
  constructor(
    token: string | undefined,
    private readonly host: string,
  ) {
    if (token !== undefined) this.digest = sha(token);
  }

  get tokenRequired(): boolean {
    return this.digest !== undefined;
  }

  /** Why `req` is refused, or undefined when it may go on. */
  check(req: IncomingMessage, url: URL): Refusal | undefined {
    if (this.digest) {
      const header = req.headers.authorization;
      const given = header?.startsWith('Bearer ') ? header.slice(7).trim() : url.searchParams.get('token') ?? undefined;
      if (given === undefined || !timingSafeEqual(sha(given), this.digest)) return { status: 401, message: 'a token is required (Authorization: Bearer TOKEN, or ?token=TOKEN)' };
    } else {
      const name = hostName(req.headers.host ?? '');
      if (!LOOPBACK.has(name) && name !== this.host) return { status: 403, message: 'unexpected Host header (start the dashboard with --host NAME, or with a token)' };
    }
    if (req.method === 'POST' && req.headers['x-courier-dashboard'] !== '1') return { status: 403, message: 'a POST needs the header X-Courier-Dashboard: 1' };
    return undefined;
  }
}

function sha(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** `host[:port]` -> host (IPv6 in brackets kept). */
function hostName(h: string): string {
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return (i >= 0 ? h.slice(0, i) : h).toLowerCase();
}
