/**
 * Watching live traffic without taking part in it: a broadcast subscription of its own (no group),
 * so every message of the pattern is seen and no group loses one; it is gone when closed (AMQP: a
 * server-named exclusive queue, deleted with its connection even when the process dies; MQTT: a
 * clean session).
 */
import { randomBytes } from 'node:crypto';
import { checkPattern } from '../topic';
import { CourierError } from '../errors';
import { Headers, Subscription, Transport } from '../transport';

/** One message seen by {@link tailMessages}. */
export interface TailedMessage {
  readonly topic: string;
  readonly type: string;
  readonly id: string | undefined;
  readonly source: string | undefined;
  readonly time: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** True when the sender waits for a reply (a request): some other subscriber answers it. */
  readonly request: boolean;
}

export interface TailOptions {
  /** Unacked messages held at once. Default 100. */
  readonly prefetch?: number;
}

/**
 * Calls `onMessage` for each message whose type matches `pattern` (`#` for all), from now until
 * the returned subscription is closed. Each is acknowledged after `onMessage` returned (it is this
 * subscription's own copy). Throws `CourierError` for a pattern that is not one.
 */
export async function tailMessages(transport: Transport, pattern: string, onMessage: (m: TailedMessage) => void | Promise<void>, options: TailOptions = {}): Promise<Subscription> {
  const problems = checkPattern(pattern);
  if (problems.length) throw new CourierError(`"${pattern}" is not a pattern: it ${problems.join(', ')}`);
  return transport.subscribe(
    // No group: a broadcast of its own. The name is only a label (and the AMQP dead-letter queue it never uses).
    { pattern, name: `courier-tail-${randomBytes(3).toString('hex')}`, prefetch: options.prefetch ?? 100 },
    async (d) => {
      try {
        await onMessage({
          topic: d.topic,
          type: d.headers[Headers.type] ?? d.topic,
          id: d.headers[Headers.id],
          source: d.headers[Headers.source],
          time: d.headers[Headers.time],
          headers: d.headers,
          body: d.body,
          request: d.replyExpected,
        });
      } finally {
        await d.ack();
      }
    },
  );
}
