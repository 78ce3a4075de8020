/**
 * The two message-level halves of per-key order and replay (docs/scaling.md): the ordering key a
 * publisher sends in the `courierkey` header (its payload class declares which property it is),
 * and the message types whose history a bus asks its transport to keep at start.
 */
import { HistoryOptions, messageMetadata, MessageMetadata, PayloadClass, publicationsOf, subscriptionsOf } from './decorators';
import { PayloadValidationError } from './errors';
import { Headers, OutgoingMessage } from './transport';

/**
 * Sets the {@link Headers.key} header of `message` from the payload's key property (`meta.key`),
 * or from an explicit `key` given to publish (which wins). A class that declares a key and a
 * payload without its value is refused: the message would lose its order silently.
 */
export function stampKey(message: OutgoingMessage, meta: MessageMetadata, payload: unknown, explicit: string | undefined): void {
  let key = explicit;
  if (key === undefined && meta.key !== undefined) {
    const value = (payload as Record<string, unknown>)[meta.key];
    if (value === undefined || value === null || value === '') {
      throw new PayloadValidationError(meta.type, [{ property: meta.key, constraints: { orderingKey: `${meta.key} is the ordering key of ${meta.type} and must have a value` } }]);
    }
    key = typeof value === 'string' ? value : String(value);
  }
  if (key !== undefined) (message.headers as Record<string, string>)[Headers.key] = key;
}

/** The message types with a `history` among what `instances` publish or subscribe to, by type. */
export function retainedTypes(instances: readonly object[]): Map<string, HistoryOptions> {
  const out = new Map<string, HistoryOptions>();
  const add = (cls: PayloadClass | undefined) => {
    const meta = messageMetadata(cls);
    if (meta?.history) out.set(meta.type, meta.history);
  };
  for (const instance of instances) {
    const cls = instance?.constructor;
    if (typeof cls !== 'function') continue;
    for (const pub of publicationsOf(cls)) add(pub.payload);
    for (const sub of subscriptionsOf(cls)) sub.payloads.forEach(add);
  }
  return out;
}
