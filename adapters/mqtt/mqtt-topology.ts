/**
 * The MQTT adapter's topology as data: which clients a subscription or the publisher opens, with
 * which client ids, session kinds and topic filters. Pure functions of a spec and the options
 * (client ids come from the given rules), unit-tested without a broker in
 * test/adapters/mqtt/topology.spec.ts. The topic and filter grammar itself is mqtt-mapping.ts.
 *
 * A group subscription is a persistent session with a stable client id holding a shared
 * subscription (`$share/<group:name>/...`), so the broker queues what arrives while the member is
 * away and shares the work among the members. An instance subscription is a persistent session
 * too, with a plain subscription and a client id derived from its instance (instanceSessionId),
 * expiring after the spec's grace period. Anything else is a clean session. Each subscription has
 * a second client for its retry copies, so that copies waiting for their retry time never occupy
 * the main connection's in-flight window.
 */
import type { SubscriptionSpec } from '../../lib/transport';
import { instanceSessionId } from './client-id-policy';
import { mqttFilterFor, ReservedLevels, safeLevel } from './mqtt-mapping';

/** The client id rules a topology uses (ClientIdPolicy). */
export interface ClientIdRules {
  /** The persistent session id of a group member; throws when no stable id is configured. */
  member(group: string, name: string): string;
  /** A clean-session id of one connection (`pub`, `bc`, ...), never resumed. */
  transient(kind: string): string;
}

/** One client of a subscription. */
export interface FeedTopology {
  readonly clientId: string;
  readonly clean: boolean;
  readonly filters: readonly string[];
  /** The Receive Maximum it announces (MQTT 5); undefined: none. */
  readonly receiveMaximum?: number;
  /** Its session expiry; undefined: the transport's sessionExpirySeconds. */
  readonly expirySeconds?: number;
}

export interface SubscriptionTopology {
  /** The subscription's name in dead-letter headers: `group/name`, or `name`. */
  readonly queueName: string;
  /** Where its retry copies are published: `<prefix>/_retry/<share or session>` + the type's levels. */
  readonly retryTopic: string;
  /** The main feed, then the retry feed. */
  readonly feeds: readonly [FeedTopology, FeedTopology];
  /**
   * A group subscription's dead-letter session, created with its subscription and left offline
   * so that the broker keeps its dead letters until someone reads them.
   */
  readonly deadSession?: { readonly clientId: string; readonly filter: string };
  /** False when the filter is wider than the pattern (a leading or middle `#`): the adapter then matches types itself. */
  readonly exact: boolean;
}

/** The clients and filters of a subscription (`dead`: of its dead-letter consumer). */
export function subscriptionTopology(
  spec: SubscriptionSpec,
  dead: boolean,
  env: { readonly prefix: string; readonly ids: ClientIdRules },
): SubscriptionTopology {
  const { prefix, ids } = env;
  const suffix = dead ? ':dead' : '';
  const share = spec.group ? safeLevel(`${spec.group}:${spec.name}${suffix}`) : undefined;
  const memberId = spec.group
    ? ids.member(spec.group, spec.name) + suffix
    : spec.instance
      ? instanceSessionId(prefix, spec.instance, spec.name) + suffix
      : ids.transient(dead ? 'bcdead' : 'bc');
  const deadRoot = `${prefix}/${ReservedLevels.dead}`;
  const retryTopic = `${prefix}/${ReservedLevels.retry}/${share ?? safeLevel(memberId)}`;
  const { filter, exact } = mqttFilterFor(dead ? deadRoot : prefix, spec.pattern);
  const shared = (f: string) => (share ? `$share/${share}/${f}` : f);
  // An instance subscription is a broadcast in a persistent session (no $share): the broker
  // queues what arrives while it reconnects or restarts, until the session expires.
  const clean = !spec.group && !spec.instance;
  const expirySeconds =
    !spec.group && spec.instance && spec.expiresAfterMs !== undefined ? Math.max(1, Math.ceil(spec.expiresAfterMs / 1000)) : undefined;
  return {
    queueName: spec.group ? `${spec.group}/${spec.name}` : spec.name,
    retryTopic,
    feeds: [
      // The main feed announces a Receive Maximum of `prefetch` (MQTT 5): the broker then holds at
      // most that many deliveries unacked with this member, instead of its own
      // max_inflight_messages, and the rest stays queued at the broker (or goes to other members).
      { clientId: memberId, clean, filters: [shared(filter)], receiveMaximum: spec.prefetch, expirySeconds },
      // The retry feed has none: its copies wait unacked for their retry time.
      { clientId: `${memberId}:retry`, clean, filters: [shared(`${retryTopic}/#`)], expirySeconds },
    ],
    deadSession:
      spec.group && !dead
        ? {
            clientId: `${memberId}:dead`,
            filter: `$share/${safeLevel(`${spec.group}:${spec.name}:dead`)}/${mqttFilterFor(deadRoot, spec.pattern).filter}`,
          }
        : undefined,
    exact,
  };
}

/** The publisher's client: its id, the topic its request replies come to, and its session. */
export function publisherTopology(
  options: { readonly prefix: string; readonly qos: 0 | 1 | 2; readonly version: 4 | 5; readonly publishTimeoutMs: number },
  ids: ClientIdRules,
): { readonly clientId: string; readonly replyTopic: string; readonly clean: boolean; readonly expirySeconds: number } {
  const clientId = ids.transient('pub');
  return {
    clientId,
    replyTopic: `${options.prefix}/${ReservedLevels.reply}/${safeLevel(clientId)}`,
    // QoS 2 needs the publisher's session to outlive a reconnect: a broker that sent PUBREC holds
    // the message until our PUBREL (Mosquitto delivers only then). With a clean start it forgets
    // it, answers the PUBREL mqtt.js re-sends with a PUBCOMP all the same, and the publish
    // resolves for a message nobody will receive. The session expires soon after the process.
    clean: !(options.qos === 2 && options.version === 5),
    expirySeconds: Math.max(60, Math.ceil(options.publishTimeoutMs / 1000) * 2),
  };
}

/** Where a dead letter of `type` is published: `<prefix>/dead/<type levels>`. */
export function deadLetterTopic(prefix: string, type: string): string {
  return `${prefix}/${ReservedLevels.dead}/${type.split('.').join('/')}`;
}

/** Where a retry copy of `type` is published, under its subscription's retry topic. */
export function retryCopyTopic(retryTopic: string, type: string): string {
  return `${retryTopic}/${type.split('.').join('/')}`;
}
