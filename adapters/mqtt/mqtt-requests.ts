/**
 * Request/reply: requests go out on the publisher with a response topic (the publisher's own
 * reply topic) and a correlation; replies come back to the publisher, matched by correlation.
 * Under MQTT 3.1.1 both travel in the structured body (mqtt-mapping.ts) and the reply names the
 * request's correlation in hex.
 */
import type { IPublishPacket } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { PublishTimeoutError, RequestTimeoutError, TransportClosedError } from '../../lib/errors';
import { PendingRequest, RequestTable } from '../../lib/pending-table';
import { Headers, OutgoingMessage, ReceivedMessage, ReplyMessage } from '../../lib/transport';
import type { MqttContext } from './mqtt-context';
import { Decoded, InternalHeaders, decode, encode, typeToTopic } from './mqtt-mapping';
import type { MqttPublisher } from './mqtt-publisher';

export class MqttRequests {
  /** Requests awaiting their reply, by correlation (its bytes are the id's latin1); one timer for all their timeouts. */
  private readonly table = new RequestTable<PendingRequest<ReceivedMessage>>(`${randomBytes(8).toString('hex')}.`);

  constructor(
    private readonly ctx: MqttContext,
    private readonly publisher: MqttPublisher,
  ) {}

  request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    const r = new PendingRequest<ReceivedMessage>(message.topic, options.timeoutMs);
    const correlation = Buffer.from(this.table.add(r), 'latin1');
    this.publisher
      .send({
        topic: typeToTopic(this.ctx.options.prefix, message.topic),
        label: message.topic,
        body: message.body,
        headers: message.headers,
        timeoutMs: options.timeoutMs,
        reply: { responseTopic: this.publisher.topology.replyTopic, correlation, expiresAt: Date.now() + options.timeoutMs },
      })
      .catch((err) => {
        // The request's publish shares its deadline: not acked by then (the connection is down) is no reply in time.
        if (this.table.delete(r)) r.reject(err instanceof PublishTimeoutError ? new RequestTimeoutError(r.topic, r.timeoutMs, { cause: err }) : err);
      });
    return r.promise;
  }

  /** A PUBLISH on the reply topic: resolves its request, if still waiting. */
  onReply(packet: IPublishPacket): void {
    const version = this.ctx.options.version;
    let d: Decoded;
    try {
      d = decode(version, packet);
    } catch (err) {
      this.ctx.events.emit('error', err as Error);
      return;
    }
    // MQTT 3.1.1: the reply names the correlation in hex.
    const correlation = version === 5 ? packet.properties?.correlationData : d.replyFor !== undefined ? Buffer.from(d.replyFor, 'hex') : undefined;
    const pending = correlation ? this.table.get(correlation.toString('latin1')) : undefined;
    if (!pending || !this.table.delete(pending)) return; // late: its caller timed out already
    pending.resolve({ topic: d.headers[Headers.type] ?? packet.topic, body: d.body, headers: d.headers });
  }

  /** Delivery.reply(): to the request's response topic, with its correlation. */
  async sendReply(route: { responseTopic: string; correlation: Buffer }, reply: ReplyMessage): Promise<void> {
    const version = this.ctx.options.version;
    const headers = version === 5 ? reply.headers : { ...reply.headers, [InternalHeaders.replyFor]: route.correlation.toString('hex') };
    const enc = encode(version, reply.body, headers);
    const properties = version === 5 ? { ...enc.properties, correlationData: route.correlation } : undefined;
    await this.publisher.publishNow(route.responseTopic, reply.headers[Headers.type] ?? 'reply', { payload: enc.payload, properties });
  }

  /** At close: every request still waiting rejects with TransportClosedError. */
  rejectAll(): void {
    this.table.rejectAll(() => new TransportClosedError('wait for a reply'));
  }
}
