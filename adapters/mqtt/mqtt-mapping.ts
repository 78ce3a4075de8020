/**
 * The MQTT binding of the wire format (docs/wire-format.md, "MQTT binding"): message types to
 * topics, patterns to filters, and envelope headers to MQTT 5 properties or, under MQTT 3.1.1,
 * to a structured-mode CloudEvents JSON body. Pure functions, no client.
 */
import type { IPublishPacket } from 'mqtt';
import { Headers, isImpliedHeader, restoreImpliedHeaders } from '../../lib/transport';
import { MalformedMessageError } from '../../lib/errors';

/** Headers only the adapter reads; stripped before a handler sees the message. */
export const InternalHeaders = {
  /** Epoch ms before which a retry copy must not be handed to the handler. */
  retryAt: 'courierretryat',
  /** Epoch ms after which a request is dropped unhandled: its caller has stopped waiting. */
  expiresAt: 'courierexpiresat',
  /** MQTT 3.1.1 only: the reply topic of a request (MQTT 5 uses the Response Topic property). */
  replyTo: 'courierreplyto',
  /** MQTT 3.1.1 only: the correlation of a request (MQTT 5 uses Correlation Data). */
  replyCorrelation: 'courierreplycorrelation',
  /** MQTT 3.1.1 only: on a reply, the correlation of the request it answers. */
  replyFor: 'courierreplyfor',
} as const;

const internal = new Set<string>(Object.values(InternalHeaders));

/** First topic levels under the prefix that the adapter keeps for itself. */
export const ReservedLevels = { dead: 'dead', retry: '_retry', reply: '_reply' } as const;

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';

/** `order.placed` -> `courier/order/placed`. */
export function typeToTopic(prefix: string, type: string): string {
  return `${prefix}/${type.split('.').join('/')}`;
}

/** `order.*` -> `courier/order/+`, `order.#` -> `courier/order/#`. */
export function patternToFilter(prefix: string, pattern: string): string {
  return `${prefix}/${pattern
    .split('.')
    .map((s) => (s === '*' ? '+' : s))
    .join('/')}`;
}

/**
 * A pattern ending in `#` must also match the type with no further segments (`order.#` matches
 * `order`): MQTT's `order/#` does match `order`, so nothing more is needed. A leading or
 * middle `#` (`#.placed`) has no MQTT equivalent; it is widened to `#` and filtered in the adapter.
 */
export function mqttFilterFor(prefix: string, pattern: string): { filter: string; exact: boolean } {
  const segs = pattern.split('.');
  const hashAt = segs.indexOf('#');
  if (hashAt === -1 || hashAt === segs.length - 1) return { filter: patternToFilter(prefix, pattern), exact: true };
  return { filter: patternToFilter(prefix, segs.slice(0, hashAt + 1).join('.')), exact: false };
}

/** `courier/order/placed` (or a retry / dead copy of it) -> `order.placed`; undefined when foreign. */
export function topicToType(prefix: string, topic: string): { type: string; via?: 'dead' | 'retry' } | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const levels = topic.slice(prefix.length + 1).split('/');
  if (levels[0] === ReservedLevels.dead) return { type: levels.slice(1).join('.'), via: 'dead' };
  // _retry/<share>/<type levels>
  if (levels[0] === ReservedLevels.retry) return { type: levels.slice(2).join('.'), via: 'retry' };
  if (levels[0] === ReservedLevels.reply) return undefined;
  return { type: levels.join('.') };
}

/** A share name or topic level may not hold `/`, `+`, `#` (nor, for clarity, whitespace). */
export function safeLevel(s: string): string {
  return s.replace(/[/+#\s]/g, '_');
}

export interface EncodedPublish {
  payload: Buffer;
  properties?: {
    userProperties?: Record<string, string>;
    contentType?: string;
    responseTopic?: string;
    correlationData?: Buffer;
  };
}

export interface ReplyRoute {
  responseTopic: string;
  correlation: Buffer;
  /** A request's deadline (epoch ms): MQTT 5 Message Expiry Interval plus `courierexpiresat`. */
  expiresAt?: number;
}

/** Envelope -> what goes on the wire, for the protocol version in use. */
export function encode(
  version: 4 | 5,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  reply?: ReplyRoute,
): EncodedPublish {
  if (version === 5) {
    // Runs for every publish: one object for the user properties, one for the properties. The
    // implied headers stay off the wire (decode restores them): each user property costs mqtt.js
    // a dozen writes on publish and two string copies on receipt.
    const userProperties: Record<string, string> = {};
    let contentType: string | undefined;
    for (const k in headers) {
      const v = headers[k];
      if (k === Headers.datacontenttype) contentType = v || undefined;
      else if (!isImpliedHeader(k, v, headers)) userProperties[k] = v;
    }
    const properties: NonNullable<EncodedPublish['properties']> = { userProperties };
    if (contentType) properties.contentType = contentType;
    if (reply) {
      properties.responseTopic = reply.responseTopic;
      properties.correlationData = reply.correlation;
      if (reply.expiresAt !== undefined) {
        // Whole seconds, rounded up: the broker drops it from a queue, the consumer checks the ms.
        (properties as { messageExpiryInterval?: number }).messageExpiryInterval = Math.max(1, Math.ceil((reply.expiresAt - Date.now()) / 1000));
        userProperties[InternalHeaders.expiresAt] = String(reply.expiresAt);
      }
    }
    return { payload: body, properties };
  }
  const event: Record<string, unknown> = { ...headers };
  if (reply) {
    event[InternalHeaders.replyTo] = reply.responseTopic;
    event[InternalHeaders.replyCorrelation] = reply.correlation.toString('base64');
    if (reply.expiresAt !== undefined) event[InternalHeaders.expiresAt] = String(reply.expiresAt);
  }
  const json = isJson(headers[Headers.datacontenttype]) ? tryParse(body) : undefined;
  if (json !== undefined) event.data = json.value;
  else event.data_base64 = body.toString('base64');
  return { payload: Buffer.from(JSON.stringify(event)) };
}

export interface Decoded {
  body: Buffer;
  headers: Record<string, string>;
  retryAt?: number;
  /** A request's deadline (epoch ms); past it the consumer drops the request unhandled. */
  expiresAt?: number;
  reply?: ReplyRoute;
  /** MQTT 3.1.1 replies: hex correlation of the request. */
  replyFor?: string;
}

/** What came off the wire -> envelope. Throws MalformedMessageError on a bad structured body. */
export function decode(version: 4 | 5, packet: IPublishPacket): Decoded {
  const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
  let body: Buffer;
  const raw: Record<string, string> = {};
  let reply: ReplyRoute | undefined;
  if (version === 5) {
    // Runs for every delivery: one pass over the user properties into the header object.
    const props = packet.properties;
    const headers: Record<string, string> = {};
    let retryAt: number | undefined;
    let expiresAt: number | undefined;
    let replyFor: string | undefined;
    if (props) {
      const user = props.userProperties;
      for (const k in user) {
        const u = user[k];
        const v = Array.isArray(u) ? u[u.length - 1] : u;
        if (!internal.has(k)) headers[k] = v;
        else if (k === InternalHeaders.retryAt) retryAt = v ? Number(v) : undefined;
        else if (k === InternalHeaders.expiresAt) expiresAt = v ? Number(v) : undefined;
        else if (k === InternalHeaders.replyFor) replyFor = v;
      }
      if (props.contentType) headers[Headers.datacontenttype] = props.contentType;
      if (props.responseTopic) {
        reply = { responseTopic: props.responseTopic, correlation: props.correlationData ?? Buffer.alloc(0) };
      }
    }
    restoreImpliedHeaders(headers);
    return { body: payload, headers, retryAt, expiresAt, reply, replyFor };
  }
  {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(payload.toString('utf8'));
    } catch (cause) {
      throw new MalformedMessageError(`MQTT 3.1.1 message on ${packet.topic} is not structured CloudEvents JSON`, { cause });
    }
    if (!event || typeof event !== 'object') throw new MalformedMessageError(`Not a CloudEvent on ${packet.topic}`);
    const { data, data_base64: data64, ...attrs } = event;
    body =
      typeof data64 === 'string'
        ? Buffer.from(data64, 'base64')
        : data === undefined
          ? Buffer.alloc(0)
          : Buffer.from(JSON.stringify(data));
    for (const [k, v] of Object.entries(attrs)) raw[k] = typeof v === 'string' ? v : JSON.stringify(v);
    if (raw[InternalHeaders.replyTo]) {
      reply = {
        responseTopic: raw[InternalHeaders.replyTo],
        correlation: Buffer.from(raw[InternalHeaders.replyCorrelation] ?? '', 'base64'),
      };
    }
  }
  const retryAt = raw[InternalHeaders.retryAt] ? Number(raw[InternalHeaders.retryAt]) : undefined;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (!internal.has(k)) headers[k] = v;
  const expiresAt = raw[InternalHeaders.expiresAt] ? Number(raw[InternalHeaders.expiresAt]) : undefined;
  return { body, headers, retryAt, expiresAt, reply, replyFor: raw[InternalHeaders.replyFor] };
}

function isJson(contentType: string | undefined): boolean {
  return !!contentType && /^application\/(.+\+)?json\b/i.test(contentType);
}

function tryParse(body: Buffer): { value: unknown } | undefined {
  try {
    return { value: JSON.parse(body.toString('utf8')) };
  } catch {
    return undefined;
  }
}
