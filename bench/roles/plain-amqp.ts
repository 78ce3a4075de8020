/**
 * The plain amqplib side (issue 19): the client a user would write without a framework, not the
 * like-for-like one of raw-amqp.ts. Events: `sendToQueue` to a durable queue through the default
 * exchange, persistent, on a confirm channel with `waitForConfirms` every 1,000 publishes (and
 * 'drain' honoured); the consumer acks each message. Request/reply: a transient request (no
 * expiration) to a queue through the default exchange, the reply to direct reply-to.
 */
import { once } from 'node:events';
import amqplib, { ChannelModel, ConsumeMessage } from 'amqplib';
import type { ChildIo } from '../child';
import { benchEvent, benchReply } from '../payload';
import { now } from '../window';
import { ArrivalCounter, rpcClient } from './common';

/** Publishes between two `waitForConfirms`. */
const CONFIRM_BATCH = 1000;

const connect = (p: ChildIo['params']): Promise<ChannelModel> => amqplib.connect(p.url, { noDelay: true });

export async function plainAmqpConsumer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createChannel();
  await ch.assertQueue(p.queue, { durable: true });
  await ch.prefetch(p.prefetch);
  const counter = new ArrivalCounter(p.n);
  await ch.consume(p.queue, (msg: ConsumeMessage | null) => {
    if (!msg) return;
    JSON.parse(msg.content.toString('utf8'));
    ch.ack(msg);
    counter.arrived();
  });
  io.ready();
  await counter.done;
  await conn.close().catch(() => undefined);
  return counter.result();
}

export async function plainAmqpProducer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue(p.queue, { durable: true });
  io.ready();
  await io.go;
  const first = now();
  for (let i = 0; i < p.n; i++) {
    const body = Buffer.from(JSON.stringify(benchEvent(i)));
    if (!ch.sendToQueue(p.queue, body, { persistent: true, contentType: 'application/json' })) await once(ch, 'drain');
    if ((i + 1) % CONFIRM_BATCH === 0) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  const last = now();
  await conn.close();
  return { first, last, published: p.n };
}

export async function plainAmqpRpcServer(io: ChildIo) {
  const p = io.params;
  const conn = await connect(p);
  const ch = await conn.createChannel();
  await ch.assertQueue(p.queue, { durable: false });
  await ch.prefetch(p.prefetch);
  await ch.consume(p.queue, (msg) => {
    if (!msg) return;
    const req = JSON.parse(msg.content.toString('utf8'));
    ch.sendToQueue(msg.properties.replyTo, Buffer.from(JSON.stringify(benchReply(req))), { correlationId: msg.properties.correlationId, contentType: 'application/json' });
    ch.ack(msg);
  });
  io.ready();
  await io.stop;
  await conn.close().catch(() => undefined);
  return {};
}

export function plainAmqpRpcClient(io: ChildIo) {
  const queue = io.params.queue;
  return rpcClient(io, (ch, body, id) => ch.sendToQueue(queue, body, { correlationId: id, replyTo: 'amq.rabbitmq.reply-to', contentType: 'application/json' }));
}
