import {
  AccessRefusedError,
  BrokerRefusedError,
  CourierError,
  PreconditionFailedError,
  redactSecrets,
  ResourceNotFoundError,
} from '../../lib/errors';

/** AMQP reply codes of the channel errors Courier turns into typed errors. */
const ACCESS_REFUSED = 403;
const NOT_FOUND = 404;
const PRECONDITION_FAILED = 406;

/** True for an error the broker raised on one channel (the connection lives on). */
export function isChannelRefusal(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === ACCESS_REFUSED || code === NOT_FOUND || code === PRECONDITION_FAILED;
}

/** `queue 'a.b'` / `exchange 'x'` as RabbitMQ names it in its close reason. */
function resourceOf(text: string): string | undefined {
  const m = /\b(queue|exchange|vhost) '([^']*)'/.exec(text);
  return m ? `${m[1]} '${m[2]}'` : undefined;
}

/**
 * An amqplib channel error -> AccessRefusedError / PreconditionFailedError / ResourceNotFoundError
 * naming the resource and the user (never the password: messages pass through redactSecrets).
 * Anything else is returned as it is when it is already a CourierError, else wrapped.
 */
export function toBrokerError(err: unknown, context: { resource?: string; user?: string; action: string }): Error {
  if (err instanceof CourierError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const code = (e as { code?: unknown }).code;
  const text = redactSecrets(e.message);
  const resource = resourceOf(text) ?? context.resource;
  const who = context.user !== undefined ? ` as user "${context.user}"` : '';
  const what = `${context.action}${resource ? ` (${resource})` : ''}${who}`;
  switch (code) {
    case ACCESS_REFUSED:
      return new AccessRefusedError(`Access refused: ${what}: ${text}`, resource, context.user, { cause: e });
    case PRECONDITION_FAILED:
      return new PreconditionFailedError(`Precondition failed: ${what}: ${text}`, resource, context.user, { cause: e });
    case NOT_FOUND:
      return new ResourceNotFoundError(`Not found: ${what}: ${text}`, resource, context.user, { cause: e });
    default:
      return new BrokerRefusedError(`${what} failed: ${text}`, resource, context.user, { cause: e });
  }
}
