/**
 * Every place the AMQP adapter relies on amqplib beyond its typed public API, in one module
 * (docs/client-internals.md lists them). Each reach checks that what it needs is there and, if
 * not, falls back to the public API or to the plain answer; test/adapters/amqp/amqplib-internals.spec.ts
 * fails when an upgrade of amqplib removes or changes what these rely on. Written against
 * amqplib 2.3.
 */
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';

// ---- 1. the socket under a connection (write coalescing) ----------------------------------------

/** What write-coalescer.ts needs of the socket. */
export interface CorkableSocket {
  cork(): void;
  uncork(): void;
  destroy?(): void;
  readonly destroyed?: boolean;
  prependListener?(event: 'drain', listener: () => void): unknown;
}

/**
 * The socket under an amqplib connection (amqplib keeps it as `ChannelModel#connection.stream`),
 * if it can be corked. Without it: writes leave as amqplib makes them (slower, never lost).
 */
export function socketOf(conn: ChannelModel): CorkableSocket | undefined {
  const stream = (conn as unknown as { connection?: { stream?: Partial<CorkableSocket> } }).connection?.stream;
  return stream && typeof stream.cork === 'function' && typeof stream.uncork === 'function' ? (stream as CorkableSocket) : undefined;
}

// ---- 2. writing a message without Args.publish (direct-publish.ts) --------------------------------

/** What amqplib's `Args.publish` returns: basic.publish's fields and the message properties in one object. */
export type PublishFields = Record<string, unknown>;

/** The two steps of amqplib 2.3's `publish` (lib/channel_model.js, lib/channel.js). */
export interface ChannelWriter {
  sendMessage(fields: PublishFields, properties: PublishFields, content: Buffer): boolean;
  pushConfirmCallback(cb: (err: unknown) => void): void;
}

/**
 * The channel's `sendMessage`, and with `confirmed` its `pushConfirmCallback`, when it has them;
 * `undefined` sends the caller to `channel.publish`.
 */
export function channelWriter(ch: Channel | ConfirmChannel, confirmed: boolean): ChannelWriter | undefined {
  const c = ch as unknown as Partial<ChannelWriter>;
  if (typeof c.sendMessage !== 'function') return undefined;
  return !confirmed || typeof c.pushConfirmCallback === 'function' ? (c as ChannelWriter) : undefined;
}

// ---- 3. what a refused handshake says (broker-errors.ts, connection.ts) ----------------------------

/** Why the broker refused a connection during the handshake, as far as amqplib tells. */
export type LoginRefusal =
  /** 403 ACCESS_REFUSED: user or password; `detail` is the broker's text. */
  | { readonly kind: 'credentials'; readonly detail: string }
  /** 530 NOT_ALLOWED on connection.open: the virtual host does not exist or the user may not use it. */
  | { readonly kind: 'vhost' };

const CREDENTIALS_REFUSED = /^Handshake terminated by server: 403\b/;
const VHOST_REFUSED = /^Expected ConnectionOpenOk; got <ConnectionClose/;

/**
 * amqplib gives a refused login no `code`, only a message: RabbitMQ closes the handshake with
 * 403 ACCESS_REFUSED ("Handshake terminated by server: 403 (ACCESS-REFUSED) ..."), and answers
 * connection.open for a virtual host the user may not use with a close that amqplib reports as
 * "Expected ConnectionOpenOk; got <ConnectionClose ...>". Without a match (another wording): the
 * error stays the plain connection failure it is, retried like one.
 */
export function loginRefusal(err: unknown): LoginRefusal | undefined {
  const text = String((err as Error | undefined)?.message ?? err);
  if (CREDENTIALS_REFUSED.test(text)) return { kind: 'credentials', detail: text.replace(/^Handshake terminated by server: /, '') };
  if (VHOST_REFUSED.test(text)) return { kind: 'vhost' };
  return undefined;
}

// ---- 4. a confirm callback's error (confirm-publisher.ts) -----------------------------------------

/**
 * amqplib calls a confirm callback with an Error "message nacked" for the broker's basic.nack
 * and with another ("channel closed") when the channel goes: only the former is the broker's
 * answer; the latter means "publish again" (ConfirmPublisher.detach). No other field tells them
 * apart. Without a match a nack is not taken for an answer: the publish fails with its publish
 * timeout instead of PublishRejectedError (later, never a false success).
 */
export function isNack(err: unknown): boolean {
  return (err as Error | undefined)?.message === 'message nacked';
}
