/**
 * The AMQP side of lib/ops/admin.ts (`SubscriptionAdmin`): sending a message to one subscription's
 * queue, and the broker's own count of a queue (a passive declare). AmqpTransport's
 * `sendToSubscription` and `queueDepth` call these.
 */
import type { Channel, ChannelModel } from 'amqplib';
import { CourierError } from '../../lib/errors';
import type { QueueDepth, QueueKind } from '../../lib/ops/admin';
import { OutgoingMessage, SubscriptionSpec } from '../../lib/transport';
import type { ConfirmPublisher } from './confirm-publisher';
import { deadQueueName, encodeProperties, instanceQueueName, TOPIC_HEADER, workQueueName } from './wire';

/** The queue of `of` (docs/wire-format.md, "Topology and queue names"), or undefined for a broadcast's server-named one. */
export function subscriptionQueue(of: Pick<SubscriptionSpec, 'group' | 'name' | 'instance'>, kind: QueueKind = 'work'): string | undefined {
  if (kind === 'dead') return deadQueueName(of.group, of.name);
  if (of.group) return workQueueName(of.group, of.name);
  if (of.instance) return instanceQueueName(of.instance, of.name);
  return undefined;
}

/**
 * Publishes `message` to the work queue of `of` through the default exchange, mandatory and
 * confirmed, its topic in `x-courier-topic` as on a retry copy: the queue's consumers see the
 * message's own type and topic. Rejects with `UnroutableError` when the queue does not exist.
 */
export function sendToSubscriptionQueue(publisher: ConfirmPublisher, of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
  const queue = subscriptionQueue(of);
  if (!queue) return Promise.reject(new CourierError(`Subscription ${of.name} is a broadcast: its queue is server-named and lives only with its consumer`));
  const props = encodeProperties(message.headers, { [TOPIC_HEADER]: message.topic });
  props.mandatory = true;
  return publisher.publish({ exchange: '', routingKey: queue, content: message.body, options: props, topic: message.topic });
}

/** One channel per connection for passive declares (a 404 closes it; the next check opens another). */
const checkChannels = new WeakMap<ChannelModel, Promise<Channel>>();

function checkChannel(conn: ChannelModel): Promise<Channel> {
  let p = checkChannels.get(conn);
  if (!p) {
    p = conn.createChannel().then((ch) => {
      ch.on('error', () => undefined); // a missing queue: reported as undefined by queueDepth
      ch.on('close', () => {
        if (checkChannels.get(conn) === p) checkChannels.delete(conn);
      });
      return ch;
    });
    checkChannels.set(conn, p);
    p.catch(() => {
      if (checkChannels.get(conn) === p) checkChannels.delete(conn);
    });
  }
  return p;
}

/** The broker's count of the work or dead-letter queue of `of` (`checkQueue`), or undefined: not connected, no such queue, a broadcast. */
export async function checkQueueDepth(conn: ChannelModel | undefined, of: SubscriptionSpec, kind: QueueKind = 'work'): Promise<QueueDepth | undefined> {
  const queue = subscriptionQueue(of, kind);
  if (!conn || !queue) return undefined;
  try {
    const ch = await checkChannel(conn);
    const ok = await ch.checkQueue(queue);
    return { queue, messages: ok.messageCount, consumers: ok.consumerCount };
  } catch {
    return undefined;
  }
}
