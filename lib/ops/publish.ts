/** Publishing one message from outside a service (the `courier publish` command): a valid envelope around given JSON data. */
import { encode, parseJson } from '../codec';
import { CourierError, MalformedMessageError } from '../errors';
import { checkPattern, isPattern } from '../topic';
import { PublishOptions, Transport } from '../transport';

export interface PublishEnvelopeOptions {
  /** The envelope's `source`. Default `courier-cli`. */
  readonly source?: string;
  /** The envelope id. Default: a new UUID. */
  readonly id?: string;
  readonly correlationId?: string;
  /** Extra CloudEvents extension headers (names of lowercase letters and digits); the envelope's own cannot be replaced. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly mandatory?: boolean;
  readonly timeoutMs?: number;
}

/**
 * Publishes `data` (a value, or JSON text when `json` is true) as message type `type` in a
 * CloudEvents envelope, and resolves to its id once the transport accepted it (the broker stored it,
 * with confirms). Throws `CourierError` for a type that is a pattern or not a type, a header name
 * that is not a CloudEvents attribute name, and `MalformedMessageError` for text that is not JSON.
 */
export async function publishEnvelope(transport: Transport, type: string, data: unknown, options: PublishEnvelopeOptions & { readonly json?: boolean } = {}): Promise<string> {
  const problems = checkPattern(type);
  if (problems.length || isPattern(type)) throw new CourierError(`"${type}" is not a message type${problems.length ? `: it ${problems.join(', ')}` : ' (no wildcards)'}`);
  let value = data;
  if (options.json) {
    try {
      value = parseJson(String(data));
    } catch (err) {
      throw new MalformedMessageError(`The data is not JSON: ${(err as Error).message}`, { cause: err });
    }
  }
  for (const name of Object.keys(options.headers ?? {})) {
    if (!/^[a-z0-9]{1,20}$/.test(name)) throw new CourierError(`Header "${name}" is not a CloudEvents attribute name (1-20 lowercase letters and digits)`);
  }
  const message = encode(value, { type, source: options.source ?? 'courier-cli', id: options.id, correlationId: options.correlationId, extraHeaders: options.headers });
  const publishOptions: PublishOptions = { mandatory: options.mandatory, timeoutMs: options.timeoutMs };
  await transport.publish(message, publishOptions);
  return message.headers.id;
}
