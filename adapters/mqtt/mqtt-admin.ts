/**
 * The MQTT side of lib/ops/admin.ts (`SubscriptionAdmin`): a message for one subscription goes to
 * its retry topic (`<prefix>/_retry/<group>:<name>/<type levels>`, docs/wire-format.md), which only
 * that subscription's retry sessions hold, with no retry time: due at once. MqttTransport's
 * `sendToSubscription` calls this. MQTT has no queue depth to read.
 */
import { CourierError } from '../../lib/errors';
import { OutgoingMessage, SubscriptionSpec } from '../../lib/transport';
import { instanceSessionId, ReservedLevels, safeLevel } from './mqtt-mapping';

/** The retry topic of `of` for a message of type `type`, or undefined for a broadcast (its retry session is clean and random). */
export function subscriptionRetryTopic(prefix: string, of: Pick<SubscriptionSpec, 'group' | 'name' | 'instance'>, type: string): string | undefined {
  const level = of.group ? safeLevel(`${of.group}:${of.name}`) : of.instance ? safeLevel(instanceSessionId(prefix, of.instance, of.name)) : undefined;
  return level === undefined ? undefined : `${prefix}/${ReservedLevels.retry}/${level}/${type.split('.').join('/')}`;
}

/** What sendToSubscription needs of the transport. */
export interface RetryTopicSender {
  readonly prefix: string;
  send(mqttTopic: string, label: string, body: Buffer, headers: Readonly<Record<string, string>>, timeoutMs?: number, reply?: undefined, allowWhileClosing?: boolean, mandatory?: boolean): Promise<void>;
}

/**
 * Publishes `message` to the retry topic of `of`, mandatory (MQTT 5: rejects with
 * `UnroutableError` when no session of the subscription holds it), resolving on PUBACK.
 */
export function sendToSubscriptionTopic(t: RetryTopicSender, of: SubscriptionSpec, message: OutgoingMessage): Promise<void> {
  const topic = subscriptionRetryTopic(t.prefix, of, message.topic);
  if (!topic) return Promise.reject(new CourierError(`Subscription ${of.name} is a broadcast: it keeps no session to send to`));
  return t.send(topic, message.topic, message.body, message.headers, undefined, undefined, false, true);
}
