/**
 * The MQTT side of lib/ops/admin.ts (`SubscriptionAdmin`): a message for one subscription goes to
 * its retry topic (`<prefix>/_retry/<group>:<name>/<type levels>`, docs/wire-format.md), which only
 * that subscription's retry sessions hold, with no retry time: due at once. MqttTransport's
 * `sendToSubscription` calls this. MQTT has no queue depth to read.
 */
import { CourierError } from '../../lib/errors';
import { OutgoingMessage, SubscriptionSpec } from '../../lib/transport';
import { instanceSessionId } from './client-id-policy';
import { ReservedLevels, safeLevel } from './mqtt-mapping';
import type { SendRequest } from './mqtt-publisher';

/** The retry topic of `of` for a message of type `type`, or undefined for a broadcast (its retry session is clean and random). */
export function subscriptionRetryTopic(prefix: string, of: Pick<SubscriptionSpec, 'group' | 'name' | 'instance'>, type: string): string | undefined {
  const level = of.group ? safeLevel(`${of.group}:${of.name}`) : of.instance ? safeLevel(instanceSessionId(prefix, of.instance, of.name)) : undefined;
  return level === undefined ? undefined : `${prefix}/${ReservedLevels.retry}/${level}/${type.split('.').join('/')}`;
}

/** What sendToSubscription needs of the transport: its publisher. */
export interface RetryTopicSender {
  send(req: SendRequest): Promise<void>;
}

/**
 * Publishes `message` to the retry topic of `of`, mandatory (MQTT 5: rejects with
 * `UnroutableError` when no session of the subscription holds it), resolving on PUBACK.
 */
export function sendToSubscriptionTopic(prefix: string, publisher: RetryTopicSender, of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
  const topic = subscriptionRetryTopic(prefix, of, message.topic);
  if (!topic) return Promise.reject(new CourierError(`Subscription ${of.name} is a broadcast: it keeps no session to send to`));
  return publisher.send({ topic, label: message.topic, body: message.body, headers: message.headers, mandatory: true });
}
