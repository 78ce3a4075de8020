/**
 * The built-in verifier: JSON Web Tokens checked with `jose` (an optional peer dependency, loaded
 * on first use). Signature, `exp` / `nbf`, and issuer / audience when given.
 */
import { MissingPeerDependencyError } from '../errors';
import { bearerToken, Principal, UnauthorizedError, Verifier } from './auth';

export interface JwtVerifierOptions {
  /** HMAC secret (HS256/384/512). */
  readonly secret?: string | Uint8Array;
  /** A public key in SPKI PEM (RS*, PS*, ES*, EdDSA); give `algorithms` too. */
  readonly publicKeyPem?: string;
  /** A JWKS endpoint (fetched and cached by jose). */
  readonly jwksUrl?: string | URL;
  /** Accepted algorithms. Default: HS256 with a secret, else RS256 and ES256. */
  readonly algorithms?: readonly string[];
  readonly issuer?: string | readonly string[];
  readonly audience?: string | readonly string[];
  /** Clock skew allowed on `exp` / `nbf`, seconds. Default 5. */
  readonly clockToleranceSec?: number;
}

type Jose = typeof import('jose');
let jose: Promise<Jose> | undefined;
// jose is an ES module: a real import(), which TypeScript's CommonJS output would turn into require().
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<Jose>;

function loadJose(): Promise<Jose> {
  jose ??= importEsm('jose').catch((err: unknown) => {
    jose = undefined;
    throw new MissingPeerDependencyError('jose', 'courier-bus/gateway jwtVerifier', { cause: err });
  });
  return jose;
}

/** A {@link Verifier} of `Authorization: Bearer <JWT>`; the principal is the token's `sub`, scopes and claims. */
export function jwtVerifier(options: JwtVerifierOptions): Verifier {
  const sources = [options.secret, options.publicKeyPem, options.jwksUrl].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new UnauthorizedError('jwtVerifier needs exactly one of secret, publicKeyPem, jwksUrl');
  const algorithms = [...(options.algorithms ?? (options.secret !== undefined ? ['HS256'] : ['RS256', 'ES256']))];
  let key: Promise<unknown> | undefined;
  const keyOf = (j: Jose) =>
    (key ??= (async () => {
      if (options.secret !== undefined) return typeof options.secret === 'string' ? new TextEncoder().encode(options.secret) : options.secret;
      if (options.publicKeyPem !== undefined) return j.importSPKI(options.publicKeyPem, algorithms[0]);
      return j.createRemoteJWKSet(new URL(String(options.jwksUrl)));
    })());
  return async ({ headers }) => {
    const token = bearerToken(headers);
    if (token === undefined) return undefined;
    const j = await loadJose();
    const k = await keyOf(j);
    let payload: Record<string, unknown>;
    try {
      const verifyOptions = {
        algorithms,
        issuer: options.issuer as string | string[] | undefined,
        audience: options.audience as string | string[] | undefined,
        clockTolerance: options.clockToleranceSec ?? 5,
      };
      payload = (await j.jwtVerify(token, k as Uint8Array, verifyOptions)).payload;
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new UnauthorizedError(code === 'ERR_JWT_EXPIRED' ? 'token expired' : code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' ? 'bad token signature' : `bad token (${code})`);
    }
    if (typeof payload.sub !== 'string' || !payload.sub) throw new UnauthorizedError('token has no subject');
    const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : Array.isArray(payload.scp) ? payload.scp.filter((s): s is string => typeof s === 'string') : [];
    const principal: Principal = { subject: payload.sub, scopes, claims: payload };
    return principal;
  };
}
