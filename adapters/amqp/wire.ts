/**
 * The AMQP binding of Courier's envelope and its queue names (docs/wire-format.md, "AMQP binding").
 * Pure functions: no connection, no state.
 */
import type { MessageProperties, Options } from 'amqplib';
import { Headers, isImpliedHeader, restoreImpliedHeaders } from '../../lib/transport';

/** The CloudEvents AMQP binding prefix of application-properties (here: the headers table). */
export const HEADER_PREFIX = 'cloudEvents_';
/** The binding's other prefix (AMQP 1.0 style), accepted on input. */
export const HEADER_PREFIX_COLON = 'cloudEvents:';
/** Carries the original topic on the copies Courier makes (retry, dead letter): their routing key is a queue name. */
export const TOPIC_HEADER = 'x-courier-topic';
/**
 * On a copy Courier put back in a classic queue in place of a redelivered message: how often the
 * message was redelivered so far (AmqpDelivery.countRedelivery). Courier-internal; never shown to
 * handlers (an `x-` header).
 */
export const REDELIVERIES_HEADER = 'x-courier-redeliveries';
/** Ties a mandatory publish to its basic.return. Courier-internal; never shown to handlers. */
export const RETURN_TOKEN_HEADER = 'x-courier-publish';

/** The queue of a subscription with a group: `<group>.<name>`. */
export function workQueueName(group: string, name: string): string {
  return `${group}.${name}`;
}

/**
 * The queue of an instance subscription (a per-instance broadcast): `<instance>.<name>`, where the
 * bus makes `instance` `<source>.<instanceId>`. Durable, not exclusive, with `x-expires`: it
 * outlives connection cuts and restarts of its instance, and goes after its grace period unused.
 */
export function instanceQueueName(instance: string, name: string): string {
  return `${instance}.${name}`;
}

/**
 * Where a subscription's dead letters wait: `<group>.<name>.dead`. A broadcast subscription (no
 * group, instance subscriptions included) shares `broadcast.<name>.dead` with the other
 * instances: its own queue dies with it (an instance's, when it expires).
 */
export function deadQueueName(group: string | undefined, name: string): string {
  return group ? `${workQueueName(group, name)}.dead` : `broadcast.${name}.dead`;
}

/** Delay tiers per doubling of the delay: a tier is at most 2^(1/4) (19 %) longer than the delay asked for. */
const TIERS_PER_DOUBLING = 4;
/** The longest `x-message-ttl` RabbitMQ takes (32 bits of milliseconds). */
const MAX_TTL_MS = 2 ** 32 - 1;

/**
 * The delay a retry actually waits: the shortest tier `round(2^(k/4))` ms not shorter than the
 * delay asked for (0 stays 0). Delay queues are per tier, not per jittered delay, so a
 * subscription has at most 129 of them whatever the traffic (the default policy: about 9);
 * the jitter survives as the choice among neighbouring tiers (docs/wire-format.md).
 */
export function retryDelayTier(delayMs: number): number {
  const d = Math.min(MAX_TTL_MS, Math.max(0, Math.ceil(delayMs)));
  if (d === 0) return 0;
  // Start below the answer: a tier rounds to the nearest millisecond, so the exponent of `d`
  // itself may already be one tier too high (6 ms is tier 10, round(2^2.5), not tier 11).
  let k = Math.max(0, Math.floor(TIERS_PER_DOUBLING * Math.log2(d)) - 2);
  while (Math.round(2 ** (k / TIERS_PER_DOUBLING)) < d) k++;
  return Math.min(MAX_TTL_MS, Math.round(2 ** (k / TIERS_PER_DOUBLING)));
}

/**
 * The delay queue of one retry delay: `<queue>.retry.<tierMs>`, the delay rounded up to its tier
 * (retryDelayTier). Server-named queues start with `amq.`, a prefix clients may not declare, so
 * it is dropped.
 */
export function delayQueueName(queue: string, delayMs: number): string {
  return `${queue.replace(/^amq\./, '')}.retry.${retryDelayTier(delayMs)}`;
}

/** AMQP short strings (message-id, type, app-id, correlation-id) hold at most 255 bytes. */
function shortstr(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short values need no byte count.
  return value.length <= 85 || Buffer.byteLength(value) <= 255 ? value : undefined;
}

/**
 * Header names with and without the prefix, computed once per distinct name (flat strings, no
 * concatenation or slicing per message). Bounded: a peer that invents names cannot grow it.
 */
const MAX_CACHED_NAMES = 512;
const prefixed = new Map<string, string>();
const unprefixed = new Map<string, string>();

function withPrefix(key: string): string {
  let name = prefixed.get(key);
  if (name === undefined) {
    name = HEADER_PREFIX + key;
    if (prefixed.size < MAX_CACHED_NAMES) prefixed.set(key, name);
  }
  return name;
}

function withoutPrefix(key: string): string {
  let name = unprefixed.get(key);
  if (name === undefined) {
    name = key.slice(HEADER_PREFIX.length);
    if (unprefixed.size < MAX_CACHED_NAMES) unprefixed.set(key, name);
  }
  return name;
}

/**
 * Courier headers -> AMQP properties, following the CloudEvents AMQP binding: every attribute but
 * `datacontenttype` (the `content_type` property) is in the `cloudEvents_` table, `id`, `type` and
 * `source` included (the binding requires them there); those three are also copied to
 * `message_id`, `type` and `app_id` (when they fit a short string) for plain AMQP tools. The
 * implied headers (isImpliedHeader: attempt 1, correlation id = id) are left out.
 */
export function encodeProperties(
  headers: Readonly<Record<string, string>>,
  extraTable?: Record<string, string>,
): Options.Publish {
  const table: Record<string, string> = {};
  for (const key in headers) {
    if (!Object.hasOwn(headers, key)) continue;
    const value = headers[key];
    if (key === Headers.datacontenttype || isImpliedHeader(key, value, headers)) continue;
    table[withPrefix(key)] = value;
  }
  if (extraTable !== undefined) Object.assign(table, extraTable);
  return {
    persistent: true,
    contentType: shortstr(headers[Headers.datacontenttype]),
    headers: table,
    messageId: shortstr(headers[Headers.id]),
    correlationId: shortstr(headers[Headers.correlationid]),
    type: shortstr(headers[Headers.type]),
    appId: shortstr(headers[Headers.source]),
    timestamp: timestampOf(headers[Headers.time]),
  };
}

let lastTime: string | undefined;
let lastTimestamp: number | undefined;
/** The AMQP timestamp (seconds) of an ISO time; the last one is remembered (messages of one millisecond share it). */
function timestampOf(timeHeader: string | undefined): number | undefined {
  if (!timeHeader) return undefined;
  if (timeHeader !== lastTime) {
    const time = Date.parse(timeHeader);
    lastTimestamp = Number.isFinite(time) ? Math.floor(time / 1000) : undefined;
    lastTime = timeHeader;
  }
  return lastTimestamp;
}

/** Any AMQP field value as a string: a foreign publisher may put numbers, booleans, bytes, tables. */
export function fieldToString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === 'object' && (value as { '!'?: string })['!'] === 'timestamp') {
    return new Date(Number((value as { value: number }).value) * 1000).toISOString();
  }
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/**
 * AMQP properties -> Courier headers. The `cloudEvents_` (or `cloudEvents:`) table entries win; the plain properties fill
 * what it lacks, so a message from a plain AMQP client still has an id, a type and a content type.
 * Other table entries are kept as they are, except RabbitMQ's and Courier's `x-` bookkeeping.
 * No attempt count means the first attempt, no correlation id the id. Never throws.
 */
export function decodeHeaders(props: Partial<MessageProperties> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const table = props?.headers as Record<string, unknown> | undefined;
  if (table) {
    // One pass: the prefixed entries go in at once; the plain ones only fill what those leave.
    let plain: string[] | undefined;
    for (const key in table) {
      if (!Object.hasOwn(table, key)) continue;
      const value = table[key];
      if (value === undefined || value === null) continue;
      if (key.startsWith(HEADER_PREFIX) || key.startsWith(HEADER_PREFIX_COLON)) {
        out[withoutPrefix(key)] = typeof value === 'string' ? value : fieldToString(value);
      }
      else if (!key.startsWith('x-')) (plain ??= []).push(key);
    }
    if (plain !== undefined) {
      for (const key of plain) if (!(key in out)) out[key] = fieldToString(table[key]);
    }
  }
  if (props) {
    fill(out, Headers.datacontenttype, props.contentType);
    fill(out, Headers.id, props.messageId);
    fill(out, Headers.type, props.type);
    fill(out, Headers.source, props.appId);
    if (out[Headers.time] === undefined && typeof props.timestamp === 'number') {
      out[Headers.time] = new Date(props.timestamp * 1000).toISOString();
    }
  }
  // correlationid from the id, not from correlation_id: a request's carries its reply correlation.
  restoreImpliedHeaders(out);
  return out;
}

function fill(out: Record<string, string>, name: string, value: unknown): void {
  if (out[name] === undefined && value !== undefined && value !== null && value !== '') out[name] = fieldToString(value);
}

interface XDeathEntry {
  reason?: unknown;
  queue?: unknown;
  'routing-keys'?: unknown;
}

function firstDeath(props: Partial<MessageProperties> | undefined): XDeathEntry | undefined {
  const deaths = (props?.headers as Record<string, unknown> | undefined)?.['x-death'];
  return Array.isArray(deaths) && deaths.length ? (deaths[0] as XDeathEntry) : undefined;
}

/** The topic of a delivery: Courier's copy header, else the routing key before a dead-lettering, else the routing key. */
export function decodeTopic(props: Partial<MessageProperties> | undefined, routingKey: string): string {
  const own = (props?.headers as Record<string, unknown> | undefined)?.[TOPIC_HEADER];
  if (own !== undefined && own !== null) return fieldToString(own);
  const keys = firstDeath(props)?.['routing-keys'];
  if (Array.isArray(keys) && keys.length) return fieldToString(keys[0]);
  return routingKey;
}

/**
 * A message RabbitMQ dead-lettered by itself (the quorum queue's delivery limit) has only `x-death`;
 * give it Courier's reason headers so a dead-letter consumer always learns why.
 */
export function addBrokerDeathReason(headers: Record<string, string>, props: Partial<MessageProperties> | undefined): void {
  if (headers[Headers.deadReason]) return;
  const death = firstDeath(props);
  if (!death) return;
  const reason = fieldToString(death.reason);
  headers[Headers.deadReason] = reason === 'delivery_limit' ? 'delivery-limit' : 'rejected';
  headers[Headers.deadError] = `x-death:${reason}`;
  if (death.queue !== undefined) headers[Headers.deadQueue] = fieldToString(death.queue);
}

/** The redeliveries Courier counted for a message so far (REDELIVERIES_HEADER), 0 when none. */
export function decodeRedeliveries(props: Partial<MessageProperties> | undefined): number {
  const v = (props?.headers as Record<string, unknown> | undefined)?.[REDELIVERIES_HEADER];
  const n = typeof v === 'number' ? v : Number.parseInt(v === undefined || v === null ? '' : fieldToString(v), 10);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/**
 * The properties of a copy of `props` put back in a queue by Courier: everything the original
 * carried (reply-to, correlation id, expiry ...) but the user id (the broker checks it against
 * the copier's login), with `extraTable` added to its headers.
 */
export function copyProperties(props: MessageProperties, extraTable: Record<string, unknown>): Options.Publish {
  const { headers, deliveryMode, userId: _userId, ...rest } = props;
  const out: Options.Publish = { headers: { ...(headers ?? {}), ...extraTable }, persistent: deliveryMode === undefined ? true : deliveryMode === 2 };
  for (const [k, v] of Object.entries(rest)) if (v !== undefined && v !== null) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** The attempt count of a delivery (1-based). */
export function decodeAttempt(headers: Readonly<Record<string, string>>): number {
  const n = Number.parseInt(headers[Headers.attempt] ?? '', 10);
  return Number.isFinite(n) && n >= 1 ? n : 1;
}
