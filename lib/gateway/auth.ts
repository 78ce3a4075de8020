/**
 * Who is calling (docs/gateway.md, "Authentication"): a {@link Verifier} turns a request's
 * credentials into a {@link Principal}, which the gateway puts in the envelope of the message it
 * sends (header {@link PRINCIPAL_HEADER}), so handlers can authorize by it ({@link principalOf}).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { CourierError } from '../errors';

/** Envelope header (a CloudEvents extension) holding the caller's principal as JSON. */
export const PRINCIPAL_HEADER = 'courierprincipal';
/** The largest principal, as JSON, the gateway puts in an envelope. */
export const MAX_PRINCIPAL_BYTES = 4096;

/** The authenticated caller. */
export interface Principal {
  /** Who (a JWT's `sub`). */
  readonly subject: string;
  /** What it may do (a JWT's `scope` split on spaces, or `scp`). */
  readonly scopes: readonly string[];
  /** The verified claims (or a verifier's own facts), as plain JSON. */
  readonly claims: Readonly<Record<string, unknown>>;
}

/**
 * Turns a request's credentials into a principal. Resolves to undefined when the request carries
 * none; rejects with {@link UnauthorizedError} when they are bad (forged, expired, wrongly signed).
 */
export type Verifier = (request: { readonly headers: IncomingHttpHeaders }) => Promise<Principal | undefined>;

/** Credentials missing or bad: the gateway answers 401. The message says why, never the token. */
export class UnauthorizedError extends CourierError {
  override readonly code = 'UNAUTHORIZED';
}

/**
 * An error a handler throws to choose the HTTP status the gateway answers (else 502); the status
 * travels in the error reply.
 */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The principal the gateway put in the envelope, or undefined (none, or not valid JSON). */
export function principalOf(ctx: { readonly headers: Readonly<Record<string, string>> }): Principal | undefined {
  const raw = ctx.headers[PRINCIPAL_HEADER];
  if (!raw) return undefined;
  try {
    const p = JSON.parse(raw) as Principal;
    return p && typeof p.subject === 'string' && Array.isArray(p.scopes) ? p : undefined;
  } catch {
    return undefined;
  }
}

/** The bearer token of an `Authorization` header, or undefined when there is none. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+([A-Za-z0-9._~+/-]+=*)\s*$/i.exec(h);
  if (!m) throw new UnauthorizedError('Authorization is not a Bearer token');
  return m[1];
}
