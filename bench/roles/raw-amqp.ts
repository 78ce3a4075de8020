/**
 * The raw amqplib side: what a careful hand-written client does for the same work. Persistent
 * messages, a confirm channel with the same window of unconfirmed publishes as Courier (and
 * 'drain' honoured), manual acks with the same prefetch, JSON parsed on receipt (not validated),
 * Nagle off as in Courier. Request/reply with direct reply-to; requests transient with an
 * expiration, as Courier's (persistent with `persistentRequests`, the diagnostic --raw-persistent-requests).
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import amqplib, { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { ChildIo } from '../child';
import { benchBulk, benchEvent, benchReply } from '../payload';
import { now, Window } from '../window';
import { rpcClient } from './common';

const connect = (p: ChildIo['params']): Promise<ChannelModel> => amqplib.connect(p.url, { noDelay: true });

async function declare(ch: Channel, p: ChildIo['params']): Promise<void> {
  await ch.assertExchange(p.exchange, 'topic', { durable: true });
  await ch.assertQueue(p.queue, { durable: true });
  await ch.bindQueue(p.queue, p.exchange, p.routingKey);
}

export async function rawAmqpConsumer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createChannel();
  await declare(ch, p);
  await ch.prefetch(p.prefetch);
  let count = 0;
  let first = 0;
  let last = 0;
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  let closing = false;
  const handled = (msg: ConsumeMessage) => {
    if (closing) return; // a slow handler's timer after the stop: the broker takes the message back
    ch.ack(msg);
    if (++count === 1) first = now();
    if (count === p.n) {
      last = now();
      finish();
    }
  };
  await ch.consume(p.queue, (msg) => {
    if (!msg) return;
    JSON.parse(msg.content.toString('utf8'));
    if (p.delayMs) setTimeout(handled, p.delayMs, msg);
    else handled(msg);
  });
  io.ready();
  await (p.openEnded ? io.stop : done);
  const r = { count, first, last: last || now() };
  closing = true;
  await conn.close().catch(() => undefined);
  return r;
}

export async function rawAmqpProducer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(p.exchange, 'topic', { durable: true });
  io.ready();
  await io.go;
  const window = new Window(p.window);
  const confirmed = (err: unknown) => (err ? window.fail(new Error(`nacked: ${err}`)) : window.release());
  const first = now();
  const kept = p.keepUnconfirmed ? new Map<number, { body: Buffer; props: object }>() : undefined;
  for (let i = 0; i < p.n; i++) {
    const wait = window.acquire();
    if (wait) await wait;
    const body = Buffer.from(JSON.stringify(p.bulk ? benchBulk(i) : benchEvent(i)));
    const props = p.envelope ? envelopeProps(p.source) : { persistent: true, contentType: 'application/json', messageId: randomUUID(), timestamp: Date.now() };
    let onConfirm = confirmed;
    if (kept) {
      // --raw-keeps-unconfirmed: what a raw publisher holds to publish again after a reconnect.
      const seq = i;
      kept.set(seq, { body, props });
      onConfirm = (err: unknown) => {
        kept.delete(seq);
        confirmed(err);
      };
    }
    if (!ch.publish(p.exchange, p.routingKey, body, props, onConfirm)) await once(ch, 'drain');
  }
  await window.idle();
  const last = now();
  await conn.close();
  return { first, last, published: p.n };
}

export async function rawAmqpRpcServer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createChannel();
  await declare(ch, p);
  await ch.prefetch(p.prefetch);
  await ch.consume(p.queue, (msg) => {
    if (!msg) return;
    const req = JSON.parse(msg.content.toString('utf8'));
    const body = Buffer.from(JSON.stringify(benchReply(req)));
    const props = p.envelope
      ? { ...envelopeReplyProps(p.source, msg.properties.messageId), correlationId: msg.properties.correlationId }
      : { correlationId: msg.properties.correlationId, contentType: 'application/json' };
    ch.publish('', msg.properties.replyTo, body, props);
    ch.ack(msg);
  });
  io.ready();
  await io.stop;
  await conn.close().catch(() => undefined);
  return {};
}

export function rawAmqpRpcClient(io: ChildIo) {
  const p = io.params;
  return rpcClient(io, (ch, body, id) => {
    const plain = { persistent: p.persistentRequests ?? false, contentType: 'application/json', messageId: id };
    const props = { ...(p.envelope ? envelopeProps(p.source, 'bench.request', id) : plain), correlationId: id, replyTo: 'amq.rabbitmq.reply-to', expiration: '60000' };
    if (p.envelope) props.persistent = p.persistentRequests ?? false;
    return ch.publish(p.exchange, p.routingKey, body, props);
  });
}

/**
 * Diagnostic (`envelope: true`): the AMQP properties and headers Courier's envelope puts on the
 * wire (docs/wire-format.md), built by hand, to tell the broker's cost of the bigger message
 * from the client's CPU.
 */
function envelopeProps(source: string, type = 'bench.event', id: string = randomUUID()) {
  const time = new Date();
  return {
    persistent: true,
    contentType: 'application/json',
    messageId: id,
    correlationId: id,
    type,
    appId: source,
    timestamp: Math.floor(time.getTime() / 1000),
    headers: {
      cloudEvents_specversion: '1.0',
      cloudEvents_time: time.toISOString(),
    },
  };
}

/** Diagnostic (`envelope: true`): the properties and headers of Courier's reply to a request `requestId`. */
function envelopeReplyProps(source: string, requestId: string) {
  const time = new Date();
  return {
    persistent: false,
    contentType: 'application/json',
    messageId: randomUUID(),
    type: 'bench.request.reply',
    appId: source,
    timestamp: Math.floor(time.getTime() / 1000),
    headers: {
      cloudEvents_specversion: '1.0',
      cloudEvents_time: time.toISOString(),
      cloudEvents_correlationid: requestId,
      cloudEvents_causationid: requestId,
    },
  };
}
