/**
 * `courier-bus/gateway`: the HTTP gateway over a bus (docs/gateway.md). The JWT verifier needs the
 * optional peer dependency `jose`.
 */
export { createGateway } from './gateway';
export type { Gateway, GatewayOptions } from './gateway';
export type { GatewayRoute, HttpMethod, RouteInput } from './routes';
export { HttpError, UnauthorizedError, principalOf, bearerToken, PRINCIPAL_HEADER } from './auth';
export type { Principal, Verifier } from './auth';
export { jwtVerifier } from './jwt';
export type { JwtVerifierOptions } from './jwt';
