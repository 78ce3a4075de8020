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
import { channelWriter, PublishFields } from './amqplib-internals';

export type { PublishFields } from './amqplib-internals';

/** A message for a plain channel: where it goes, its body and its publish options. */
export interface AmqpMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly options: Options.Publish;
}

/**
 * A message for a ConfirmChannel, given by its publishFields (kept by the caller to write it again
 * after a reconnect) or, where those cannot be built, by its publish options.
 */
export interface ConfirmedMessage {
  readonly exchange: string;
  readonly routingKey: string;
  readonly content: Buffer;
  readonly fields: PublishFields | undefined;
  readonly options: Options.Publish | undefined;
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
export function publishOn(ch: Channel, m: AmqpMessage): boolean {
  const direct = channelWriter(ch, false);
  const fields = direct && publishFields(m.exchange, m.routingKey, m.options);
  return fields ? direct!.sendMessage(fields, fields, m.content) : ch.publish(m.exchange, m.routingKey, m.content, m.options);
}

/**
 * `ch.publish(...)` on a ConfirmChannel with its confirm callback; amqplib's `publish` accepts
 * the fields as options as well.
 */
export function publishConfirmedOn(ch: ConfirmChannel, m: ConfirmedMessage, onConfirm: (err: unknown) => void): boolean {
  const direct = m.fields && channelWriter(ch, true);
  if (!direct) return ch.publish(m.exchange, m.routingKey, m.content, (m.fields as Options.Publish | undefined) ?? m.options, onConfirm);
  const ok = direct.sendMessage(m.fields!, m.fields!, m.content);
  direct.pushConfirmCallback(onConfirm);
  return ok;
}
