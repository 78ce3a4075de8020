/**
 * Request/reply over direct reply-to: requests are published on the connection's request channel,
 * which consumes `amq.rabbitmq.reply-to` (the replies come back on it, without a queue); replies
 * to direct reply-to go out on a plain reply channel, and to an ordinary queue (a foreign
 * requester's) through the confirm publisher. Requests wait in one table with one timer for all
 * their timeouts; those not yet written are written on the next connection.
 */
import { randomUUID } from 'node:crypto';
import type { Channel, ConsumeMessage, Options } from 'amqplib';
import { NotConnectedError, TransportClosedError } from '../../lib/errors';
import { PendingRequest, RequestTable } from '../../lib/pending-table';
import { Headers, OutgoingMessage, ReceivedMessage } from '../../lib/transport';
import type { ConfirmPublisher } from './confirm-publisher';
import { publishOn } from './direct-publish';
import type { AmqpSession } from './session';
import { decodeHeaders, encodeProperties } from './wire';

export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';

class AmqpRequest extends PendingRequest<ReceivedMessage> {
  sent = false;
  constructor(
    readonly message: OutgoingMessage,
    timeoutMs: number,
  ) {
    super(message.topic, timeoutMs);
  }
}

export interface RequestReplyHost {
  readonly exchange: string;
  readonly whileDisconnected: 'buffer' | 'reject';
  readonly publisher: ConfirmPublisher;
  /** The current connection's session, connected or being set up. */
  session(): AmqpSession | undefined;
  /** close() has begun: no new requests. */
  closing(): boolean;
  /** close() has ended: no replies either. */
  closed(): boolean;
  error(err: Error): void;
}

export class RequestReply {
  /** Requests awaiting their reply, by correlation id; one timer for all their timeouts. */
  private readonly requests = new RequestTable<AmqpRequest>(`${randomUUID()}.`);

  constructor(private readonly host: RequestReplyHost) {}

  request(message: OutgoingMessage, timeoutMs: number): Promise<ReceivedMessage> {
    if (this.host.closing()) return Promise.reject(new TransportClosedError('request'));
    if (!this.host.session()?.ready && this.host.whileDisconnected === 'reject') {
      return Promise.reject(new NotConnectedError(`Not connected: request ${message.topic} refused (whileDisconnected: 'reject')`));
    }
    const r = new AmqpRequest(message, timeoutMs);
    this.requests.add(r);
    this.send(r);
    return r.promise;
  }

  /** The request channel's set-up: consume the replies (direct reply-to, no ack). */
  async consumeReplies(ch: Channel): Promise<void> {
    await ch.consume(DIRECT_REPLY_TO, (msg) => this.onReply(msg), { noAck: true });
  }

  /** A connection is up: writes every request not written yet. */
  resend(): void {
    for (const r of this.requests.entries()) this.send(r);
  }

  /** Rejects every request waiting (close). */
  rejectAll(): void {
    this.requests.rejectAll(() => new TransportClosedError('wait for a reply'));
  }

  /**
   * Sends a reply. To direct reply-to: on the plain reply channel, resolved once written (after a
   * 'drain' when the channel's buffer is full), so the request's ack follows right after, as a
   * hand-written amqplib server does. Such a reply is transient and goes to a live consumer or
   * nowhere, so a publisher confirm would buy nothing and cost the server a broker round trip
   * before it acks each request. To an ordinary queue: through the confirm publisher, as any
   * stored message.
   */
  async sendReply(replyTo: string, body: Buffer, props: Options.Publish, topic: string): Promise<void> {
    if (!replyTo.startsWith(DIRECT_REPLY_TO)) {
      await this.host.publisher.publish({ exchange: '', routingKey: replyTo, content: body, options: props, topic: `${topic} (reply)` });
      return;
    }
    if (this.host.closed()) throw new TransportClosedError('reply');
    const session = this.host.session();
    if (!session) throw new NotConnectedError('Not connected to RabbitMQ');
    const channels = session.channels;
    const ch = channels.open('reply') ?? (await channels.get('reply'));
    await channels.writable('reply');
    session.writes.coalesce();
    const ok = publishOn(ch, { exchange: '', routingKey: replyTo, content: body, options: props });
    if (!ok) {
      // Written, but the channel's buffer is full: hold this reply (and the request's ack) until it drains.
      channels.wrote('reply', ch, false);
      await channels.writable('reply');
    }
  }

  /** Writes the request now when the channel is open and not full (no promise, no turn of the event loop), else once it is. */
  private send(r: AmqpRequest): void {
    const session = this.host.session();
    if (r.sent || !session?.ready) return; // sent on the next 'connected'
    const ch = session.channels.open('request');
    if (ch && !session.channels.full('request')) this.write(session, ch, r);
    else void this.sendLater(session, r);
  }

  private async sendLater(session: AmqpSession, r: AmqpRequest): Promise<void> {
    try {
      const channels = session.channels;
      const ch = channels.open('request') ?? (await channels.get('request'));
      await channels.writable('request');
      if (this.requests.get(r.id) !== r || r.sent) return;
      this.write(session, ch, r);
    } catch {
      r.sent = false; // the connection went; 'connected' sends it again
    }
  }

  private write(session: AmqpSession, ch: Channel, r: AmqpRequest): void {
    try {
      const options = encodeProperties(r.message.headers);
      options.correlationId = r.id;
      options.replyTo = DIRECT_REPLY_TO;
      // A request nobody took before its caller gave up is of no use to anyone.
      options.expiration = String(r.timeoutMs);
      // Transient (delivery_mode 1): a request is worth something only to a caller still waiting,
      // and a broker restart ends that wait (the caller's timeout rejects it) whether or not the
      // request survives on disk; persisting it only costs the broker a write per request
      // (docs/benchmarks.md, "Defaults and why"). A quorum queue stores it anyway.
      options.persistent = false;
      r.sent = true;
      session.writes.coalesce();
      const ok = publishOn(ch, { exchange: this.host.exchange, routingKey: r.message.topic, content: r.message.body, options });
      session.channels.wrote('request', ch, ok);
    } catch {
      r.sent = false; // the connection went; 'connected' sends it again
    }
  }

  private onReply(msg: ConsumeMessage | null): void {
    try {
      if (!msg) return;
      const r = this.requests.get(msg.properties.correlationId);
      if (!r) return; // late: its caller timed out already
      this.requests.delete(r);
      const headers = decodeHeaders(msg.properties);
      r.resolve({ topic: headers[Headers.type] ?? msg.fields.routingKey, body: msg.content, headers });
    } catch (err) {
      this.host.error(err as Error);
    }
  }
}
