/**
 * Publishing on an amqplib channel without amqplib's `Args.publish`, which wraps the headers table
 * in `Object.create(table)`: every message's table becomes a prototype, V8 gives each its own copy
 * of the object's map, and the table encoder's for-in walks a prototype chain. That cost 0.9 KB of
 * garbage per message and a map retained per unconfirmed message (docs/benchmarks.md). Here the
 * frame fields are built once per message, with the table as it is, and handed to the channel's
 * own `sendMessage` (and, on a ConfirmChannel, `pushConfirmCallback`): the two steps of
 * `publish` in amqplib 2.3 (lib/channel_model.js, lib/channel.js). The encoded frames are the same.
 * A channel without those methods (another amqplib) is written to with `publish`.
 */
import type { Channel, ConfirmChannel, Options } from 'amqplib';

/** What `Args.publish` returns: basic.publish's fields and the message properties in one object. */
export type PublishFields = Record<string, unknown>;

interface ChannelInternals {
  sendMessage(fields: PublishFields, properties: PublishFields, content: Buffer): boolean;
  pushConfirmCallback(cb: (err: unknown) => void): void;
}

/** The channel's `sendMessage`, and with `confirmed` its `pushConfirmCallback`, when it has them. */
function internals(ch: Channel, confirmed: boolean): ChannelInternals | undefined {
  const c = ch as unknown as Partial<ChannelInternals>;
  if (typeof c.sendMessage !== 'function') return undefined;
  return !confirmed || typeof c.pushConfirmCallback === 'function' ? (c as ChannelInternals) : undefined;
}

/**
 * `Args.publish` of amqplib 2.3 for the options Courier sets, with the headers table itself.
 * `undefined` for the options only amqplib converts (CC, BCC): such a message goes through `publish`.
 */
export function publishFields(exchange: string, routingKey: string, o: Options.Publish): PublishFields | undefined {
  if (o.CC !== undefined || o.BCC !== undefined) return undefined;
  return {
    exchange,
    routingKey,
    mandatory: !!o.mandatory,
    immediate: false,
    ticket: undefined,
    contentType: o.contentType,
    contentEncoding: o.contentEncoding,
    headers: o.headers,
    deliveryMode: o.persistent !== undefined ? (o.persistent ? 2 : 1) : typeof o.deliveryMode === 'number' ? o.deliveryMode : o.deliveryMode ? 2 : undefined,
    priority: o.priority,
    correlationId: o.correlationId,
    replyTo: o.replyTo,
    expiration: o.expiration === undefined ? undefined : String(o.expiration),
    messageId: o.messageId,
    timestamp: o.timestamp,
    type: o.type,
    userId: o.userId,
    appId: o.appId,
    clusterId: undefined,
  };
}

/** `ch.publish(exchange, routingKey, content, options)`, returning what it returns (false: the channel's buffer is full). */
export function publishOn(ch: Channel, exchange: string, routingKey: string, content: Buffer, options: Options.Publish): boolean {
  const direct = internals(ch, false);
  const fields = direct && publishFields(exchange, routingKey, options);
  return fields ? direct!.sendMessage(fields, fields, content) : ch.publish(exchange, routingKey, content, options);
}

/**
 * `ch.publish(...)` on a ConfirmChannel with its confirm callback. The message is given by its
 * publishFields (kept by the caller to write it again after a reconnect) or, where those cannot be
 * built, by its publish options; amqplib's `publish` accepts the fields as options as well.
 */
export function publishConfirmedOn(
  ch: ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  fields: PublishFields | undefined,
  options: Options.Publish | undefined,
  onConfirm: (err: unknown) => void,
): boolean {
  const direct = fields && internals(ch, true);
  if (!direct) return ch.publish(exchange, routingKey, content, (fields as Options.Publish | undefined) ?? options, onConfirm);
  const ok = direct.sendMessage(fields!, fields!, content);
  direct.pushConfirmCallback(onConfirm);
  return ok;
}
