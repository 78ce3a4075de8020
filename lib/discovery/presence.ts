/**
 * The presence wire format of the registry (docs/discovery.md): what a bus announces about itself,
 * on which message types, and the topic a request takes to reach one chosen instance. Pure
 * functions, no transport.
 *
 * Presence messages are ordinary CloudEvents on the bus's own transport, of the types
 * `_courier.presence.hello` (start and every heartbeat), `_courier.presence.bye` (stop) and
 * `_courier.presence.query` (a newcomer asks everyone to announce now); every discovering bus
 * consumes them through a broadcast subscription to `_courier.presence.*`.
 */
import { MalformedMessageError } from '../errors';
import type { HeldSession } from '../session-takeover';
import { checkPattern } from '../topic';

export const PRESENCE_PATTERN = '_courier.presence.*';
export const PresenceTypes = {
  hello: '_courier.presence.hello',
  bye: '_courier.presence.bye',
  query: '_courier.presence.query',
} as const;

/** What one running instance says about itself (the body of a hello or bye). */
export interface PresenceAnnouncement {
  /** The bus's source (service name). */
  readonly service: string;
  /** The bus's instanceId (or the one discovery generated). */
  readonly instanceId: string;
  /** Random per start: tells a restarted instance with the same id from the one before. */
  readonly nonce: string;
  /** The service's version, as given to discovery. */
  readonly version: string;
  /** The transport's name (`amqp`, `mqtt`, `memory`). */
  readonly transport: string;
  /** Message types its handlers accept (concrete types). */
  readonly handles: readonly string[];
  /** Message types its `@Publish` methods publish. */
  readonly publishes: readonly string[];
  /** Its relative share of `weighted` balanced requests (> 0). */
  readonly weight: number;
  /** True when it takes requests on its own topic (balanced requests). */
  readonly direct: boolean;
  readonly heartbeatMs: number;
  /** After this long without a hello it is gone. */
  readonly ttlMs: number;
  /** ISO time of its start. */
  readonly startedAt: string;
  /** Free-form labels (zone, host). */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * The persistent group sessions it holds, when its transport can take sessions over
   * (lib/session-takeover.ts; MQTT): what a live member drains when this one expires.
   */
  readonly sessions?: readonly HeldSession[];
}

/**
 * The topic of a request for `type` sent to one instance: `_courier.to.<service>.<instanceId>.<type>`.
 * Only that instance's direct subscriptions (`_courier.to.<service>.<instanceId>.<pattern>`) match it.
 */
export function directTopic(service: string, instanceId: string, type: string): string {
  return `_courier.to.${service}.${instanceId}.${type}`;
}

/** Problems with a name that must be one topic segment (service, instance id), empty when fine. */
export function segmentProblems(what: string, value: string): string[] {
  if (value.includes('.')) return [`discovery: ${what} "${value}" may not contain "."`];
  return checkPattern(value).map((p) => `discovery: ${what} "${value}" ${p}`);
}

const MAX_LIST = 10_000;

/** Reads an announcement from untrusted JSON; throws MalformedMessageError when it is not one. */
export function parseAnnouncement(data: unknown): PresenceAnnouncement {
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new MalformedMessageError('presence: not an object');
  const o = data as Record<string, unknown>;
  const str = (k: string): string => {
    if (typeof o[k] !== 'string' || !(o[k] as string)) throw new MalformedMessageError(`presence: ${k} must be a non-empty string`);
    return o[k] as string;
  };
  const num = (k: string): number => {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new MalformedMessageError(`presence: ${k} must be a positive number`);
    return v;
  };
  const list = (k: string): string[] => {
    const v = o[k];
    if (!Array.isArray(v) || v.length > MAX_LIST || v.some((x) => typeof x !== 'string')) throw new MalformedMessageError(`presence: ${k} must be a list of strings`);
    return v as string[];
  };
  const meta = o.metadata && typeof o.metadata === 'object' && !Array.isArray(o.metadata) ? (o.metadata as Record<string, unknown>) : {};
  return {
    service: str('service'),
    instanceId: str('instanceId'),
    nonce: str('nonce'),
    version: typeof o.version === 'string' ? o.version : '',
    transport: typeof o.transport === 'string' ? o.transport : '',
    handles: list('handles'),
    publishes: list('publishes'),
    weight: num('weight'),
    direct: o.direct === true,
    heartbeatMs: num('heartbeatMs'),
    ttlMs: num('ttlMs'),
    startedAt: typeof o.startedAt === 'string' ? o.startedAt : '',
    metadata: Object.fromEntries(Object.entries(meta).filter(([, v]) => typeof v === 'string')) as Record<string, string>,
    ...(o.sessions === undefined ? {} : { sessions: sessionsOf(o.sessions) }),
  };
}

function sessionsOf(v: unknown): HeldSession[] {
  const ok = (x: unknown): x is HeldSession => {
    const s = x as Record<string, unknown> | null;
    return !!s && typeof s === 'object' && [s.group, s.name, s.clientId].every((f) => typeof f === 'string' && f.length > 0 && f.length <= 1024);
  };
  if (!Array.isArray(v) || v.length > MAX_LIST || !v.every(ok)) throw new MalformedMessageError('presence: sessions must be a list of { group, name, clientId }');
  return v.map((s) => ({ group: s.group, name: s.name, clientId: s.clientId }));
}
