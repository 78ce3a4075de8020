/**
 * Reads the decorators' metadata once, at start-up, checks it against the transport's
 * capabilities and returns either the handler definitions or every problem found (the @Publish
 * methods are checked here; the bus wraps them itself at register()).
 */
import {
  HistoryOptions,
  OrderedOptions,
  PayloadClass,
  PublishMethodOptions,
  RetryOptions,
  SubscriberOptions,
  SubscribeOptions,
  messageMetadata,
  publicationsOf,
  publisherMetadata,
  subscriberMetadata,
  subscriptionsOf,
} from './decorators';
import { backoffDelay } from './adapter-kit/backoff';
import { optionKeys, unknownKeys } from './option-keys';
import { checkPattern, isPattern, matchTopic } from './topic';
import { SubscriptionSpec, TransportCapabilities } from './transport';
import type { InboxStore } from './outbox/store';

export interface HandlerDefinition {
  readonly instance: object;
  /** `Class.method` */
  readonly id: string;
  readonly method: string;
  readonly spec: SubscriptionSpec;
  /** Payload class per message type this handler accepts. */
  readonly classes: ReadonlyMap<string, PayloadClass>;
  readonly filter?: RegExp;
  readonly retry: Required<RetryOptions>;
  readonly idempotent: boolean;
  readonly inbox?: InboxStore;
}

export interface RegistryInput {
  readonly instances: readonly object[];
  readonly capabilities: TransportCapabilities;
  /** Group for handlers whose class and decorator name none: the bus's source. */
  readonly defaultGroup: string;
  readonly hasDedupeStore: boolean;
  /** The bus's `instanceId` and its grace period, for `instance: true` handlers. */
  readonly instance?: { readonly id: string; readonly expiresAfterMs?: number };
}

export const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 3, initialDelayMs: 200, factor: 2, maxDelayMs: 30_000 };
export const DEFAULT_PREFETCH = 10;

const SUBSCRIBE_KEYS = optionKeys<SubscribeOptions>({ pattern: true, filter: true, group: true, prefetch: true, weight: true, retry: true, idempotent: true, instance: true, inbox: true, ordered: true, replay: true });
const RETRY_KEYS = optionKeys<RetryOptions>({ attempts: true, initialDelayMs: true, factor: true, maxDelayMs: true });
const SUBSCRIBER_KEYS = optionKeys<SubscriberOptions>({ group: true, prefetch: true });
const ORDERED_KEYS = optionKeys<OrderedOptions>({ key: true, partitions: true });
/** The most partitions of one ordered subscription: each is a queue and a consumer per instance. */
export const MAX_PARTITIONS = 64;
const MAX_AGE = /^[1-9][0-9]*[YMDhms]$/;
const PUBLISH_KEYS = optionKeys<PublishMethodOptions>({ mandatory: true });

export function buildRegistry(input: RegistryInput): {
  handlers: HandlerDefinition[];
  problems: string[];
} {
  const problems: string[] = [];
  const handlers: HandlerDefinition[] = [];
  const queues = new Map<string, string>();
  const caps = input.capabilities;

  for (const instance of input.instances) {
    const cls = instance.constructor;
    const subs = subscriptionsOf(cls);
    const pubs = publicationsOf(cls);
    const subscriber = subscriberMetadata(cls);
    if (!subscriber && !publisherMetadata(cls) && subs.length === 0 && pubs.length === 0) {
      problems.push(`${cls.name} has no @Subscriber, @Publisher, @Subscribe or @Publish: nothing to register`);
      continue;
    }
    if (subs.length && !subscriber) problems.push(`${cls.name} has @Subscribe methods but no @Subscriber decorator`);
    if (subscriber) unknownKeys(subscriber, SUBSCRIBER_KEYS, `@Subscriber of ${cls.name}`, problems);

    for (const sub of subs) {
      const id = `${cls.name}.${sub.method}`;
      const o: SubscribeOptions = sub.options;
      const before = problems.length;
      unknownKeys(o, SUBSCRIBE_KEYS, id, problems);
      if (o.retry) unknownKeys(o.retry, RETRY_KEYS, `${id} retry`, problems);
      const classes = new Map<string, PayloadClass>();
      sub.payloads.forEach((p, i) => {
        const meta = messageMetadata(p);
        if (!p) problems.push(`${id}: payload class #${i + 1} is undefined (a circular import?)`);
        else if (!meta) problems.push(`${id}: ${p.name} has no @Message decorator`);
        else {
          checkPattern(meta.type).forEach((e) => problems.push(`${id}: message type "${meta.type}" ${e}`));
          if (classes.has(meta.type)) problems.push(`${id}: two payload classes for type "${meta.type}"`);
          classes.set(meta.type, p);
        }
      });
      if (sub.payloads.length === 0) problems.push(`${id}: no payload class`);
      const pattern = o.pattern ?? (classes.size === 1 ? [...classes.keys()][0] : undefined);
      if (!pattern && classes.size > 1) problems.push(`${id}: several payload classes need a pattern option`);
      if (pattern) {
        checkPattern(pattern).forEach((e) => problems.push(`${id}: pattern "${pattern}" ${e}`));
        for (const type of classes.keys()) {
          if (!matchTopic(pattern, type)) problems.push(`${id}: type "${type}" does not match pattern "${pattern}"`);
        }
        if (isPattern(pattern) && !caps.patterns) problems.push(`${id}: pattern "${pattern}" needs a transport with patterns`);
      }
      const instanceKey = o.instance === true ? input.instance?.id : undefined;
      if (o.instance === true) {
        if (typeof o.group === 'string') problems.push(`${id}: instance and group exclude each other (an instance subscription is a broadcast)`);
        if (!input.instance) problems.push(`${id}: instance needs the bus's instanceId (stable across restarts of this instance)`);
        if (!caps.instanceSubscriptions) problems.push(`${id}: instance needs a transport with instance subscriptions`);
      }
      const group = o.instance === true || o.group === null ? undefined : o.group ?? subscriber?.group ?? input.defaultGroup;
      const retry = { ...DEFAULT_RETRY, ...o.retry };
      const prefetch = o.prefetch ?? subscriber?.prefetch ?? DEFAULT_PREFETCH;
      if (!Number.isInteger(retry.attempts) || retry.attempts < 1) problems.push(`${id}: retry.attempts must be an integer >= 1`);
      if (!Number.isInteger(prefetch) || prefetch < 1) problems.push(`${id}: prefetch must be an integer >= 1`);
      if (o.weight !== undefined) {
        if (!(o.weight > 0)) problems.push(`${id}: weight must be > 0`);
        if (!caps.weightedConsumers) problems.push(`${id}: weight needs a transport with weighted consumers`);
      }
      if (retry.attempts > 1 && !caps.delayedRetry) problems.push(`${id}: retries need a transport with delayed retry`);
      if (!caps.deadLetter) problems.push(`${id}: the transport cannot dead-letter, so a failing message would be lost`);
      if (group && !caps.competingConsumers) problems.push(`${id}: group "${group}" needs a transport with competing consumers`);
      if (o.idempotent && !input.hasDedupeStore) problems.push(`${id}: idempotent needs the bus's idempotency option`);
      const inbox = typeof o.inbox === 'function' ? o.inbox(instance as never) : o.inbox;
      if (inbox !== undefined && typeof (inbox as InboxStore)?.run !== 'function') problems.push(`${id}: inbox must be an InboxStore`);
      for (const c of classes.values()) {
        if (messageMetadata(c)?.reply && !caps.requestReply) {
          problems.push(`${id}: ${c.name} is a request, and the transport has no request/reply`);
        }
      }
      const ordering = o.ordered !== undefined ? checkOrdered(id, o, classes, group, caps, problems) : undefined;
      const replay = o.replay !== undefined ? checkReplay(id, o, classes, group, caps, problems) : undefined;
      const queue = `${group ?? (instanceKey ? `(instance ${instanceKey})` : '(broadcast)')}.${id}`;
      if (group && queues.has(queue)) problems.push(`${id}: duplicate handler (${queues.get(queue)} is registered in group "${group}" already)`);
      queues.set(queue, id);
      if (problems.length > before || !pattern) continue;
      handlers.push({
        instance,
        id,
        method: sub.method,
        classes,
        filter: o.filter,
        retry,
        idempotent: inbox ? false : o.idempotent ?? input.hasDedupeStore,
        inbox,
        spec: {
          pattern,
          group,
          name: id,
          prefetch: ordering ? 1 : prefetch,
          weight: o.weight,
          ...(ordering ? { partitions: ordering.partitions } : {}),
          ...(replay ? { replay } : {}),
          maxAttempts: retry.attempts,
          ...(instanceKey ? { instance: instanceKey, expiresAfterMs: input.instance?.expiresAfterMs } : {}),
        },
      });
    }

    for (const pub of pubs) {
      const id = `${cls.name}.${pub.method}`;
      unknownKeys(pub.options, PUBLISH_KEYS, id, problems);
      const meta = messageMetadata(pub.payload);
      if (!pub.payload) problems.push(`${id}: @Publish payload class is undefined (a circular import?)`);
      else if (!meta) problems.push(`${id}: ${pub.payload.name} has no @Message decorator`);
      // The bus wraps the method itself at register() (lib/bus.ts); here it is only checked.
      else if (meta.history) checkHistory(id, meta.history, problems);
      if (meta && pub.options.mandatory && !caps.mandatory) problems.push(`${id}: mandatory needs a transport that reports unroutable messages`);
    }
  }
  return { handlers, problems };
}

/** The problems of an `ordered` option; its value when there are none of its own. */
function checkOrdered(
  id: string,
  o: SubscribeOptions,
  classes: ReadonlyMap<string, PayloadClass>,
  group: string | undefined,
  caps: TransportCapabilities,
  problems: string[],
): OrderedOptions | undefined {
  const before = problems.length;
  const ordered = o.ordered!;
  unknownKeys(ordered, ORDERED_KEYS, `${id} ordered`, problems);
  if (!caps.partitions) problems.push(`${id}: ordered (per-key order) needs a transport with partitions; this one has none (RabbitMQ has, with its consistent-hash exchange plugin; MQTT and the memory transport refuse it)`);
  if (!group) problems.push(`${id}: ordered needs a group (per-key order shares a group's work over partitions)`);
  if (typeof ordered.key !== 'string' || !ordered.key) problems.push(`${id}: ordered.key must name a payload property`);
  if (!Number.isInteger(ordered.partitions) || ordered.partitions < 1 || ordered.partitions > MAX_PARTITIONS) {
    problems.push(`${id}: ordered.partitions must be an integer within 1..${MAX_PARTITIONS}`);
  }
  if (o.prefetch !== undefined && o.prefetch !== 1) problems.push(`${id}: ordered handles one message at a time per partition: leave prefetch out (it is 1)`);
  if (o.weight !== undefined) problems.push(`${id}: ordered and weight exclude each other (partitions are spread evenly)`);
  if (o.replay !== undefined) problems.push(`${id}: ordered and replay exclude each other (a replay is read in order already)`);
  for (const [type, cls] of classes) {
    const key = messageMetadata(cls)?.key;
    if (key !== ordered.key) {
      problems.push(`${id}: ordered by "${ordered.key}", but ${cls.name} (${type}) declares ${key ? `key "${key}"` : 'no key'}: give it @Message('${type}', { key: '${ordered.key}' }) so its publishers send the key`);
    }
  }
  return problems.length > before ? undefined : ordered;
}

/** The problems of a `replay` option; the spec's replay when there are none of its own. */
function checkReplay(
  id: string,
  o: SubscribeOptions,
  classes: ReadonlyMap<string, PayloadClass>,
  group: string | undefined,
  caps: TransportCapabilities,
  problems: string[],
): SubscriptionSpec['replay'] {
  const before = problems.length;
  const from = o.replay!.from;
  if (!caps.replay) problems.push(`${id}: replay needs a transport with message history (RabbitMQ streams); this one has none (MQTT and the memory transport refuse it)`);
  if (!group) problems.push(`${id}: replay needs a group: the group names the stored position`);
  const okFrom = from === 'first' || from === 'last' || from === 'next' || (typeof from === 'number' && Number.isInteger(from) && from >= 0) || (from instanceof Date && Number.isFinite(from.getTime()));
  if (!okFrom) problems.push(`${id}: replay.from must be 'first', 'last', 'next', an offset (integer >= 0) or a Date`);
  if (classes.size !== 1) problems.push(`${id}: replay reads the history of one message type: give it one payload class`);
  if (o.pattern !== undefined && classes.size === 1 && o.pattern !== [...classes.keys()][0]) problems.push(`${id}: replay takes no pattern (it reads its payload type's history)`);
  const [type, cls] = [...classes][0] ?? [];
  const history = cls && messageMetadata(cls)?.history;
  if (cls && !history) problems.push(`${id}: replay of "${type}" needs its history kept: @Message('${type}', { history: { maxAge: '7D' } })`);
  if (history) checkHistory(id, history, problems);
  return problems.length > before || !history ? undefined : { from, history: { maxAge: history.maxAge, maxBytes: history.maxBytes } };
}

function checkHistory(id: string, h: HistoryOptions, problems: string[]): void {
  if (h.maxAge !== undefined && !MAX_AGE.test(h.maxAge)) problems.push(`${id}: history.maxAge must be a number and a unit of Y, M, D, h, m, s (7D), not "${h.maxAge}"`);
  if (h.maxBytes !== undefined && !(Number.isInteger(h.maxBytes) && h.maxBytes > 0)) problems.push(`${id}: history.maxBytes must be a positive integer`);
}

/** The delay before attempt `attempt + 1`: the kit's backoff with half of it random (lib/adapter-kit/backoff.ts). */
export function retryDelay(retry: Required<RetryOptions>, attempt: number, random = Math.random): number {
  return backoffDelay({ ...retry, jitter: 0.5 }, attempt, random);
}
