/**
 * The MQTT adapter's options: what the user passes (`MqttTransportOptions`), its defaults, and
 * their validation. `resolveMqttOptions` is the one place defaults are chosen; it reports every
 * problem at once as a StartupError (code STARTUP_INVALID), so a typo in a deployment's options
 * stops the process at construction with all its reasons, never at the first publish.
 */
import { StartupError } from '../../lib/errors';

export interface MqttTlsOptions {
  readonly ca?: string | Buffer | string[] | Buffer[];
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Verify the broker's certificate. Default true; turn off only for a local test broker. */
  readonly rejectUnauthorized?: boolean;
}

export interface MqttTransportOptions {
  /** `mqtt://host:1883`, `mqtts://host:8883`; several URLs (a cluster's nodes) fail over in turn. */
  readonly url: string | readonly string[];
  readonly username?: string;
  readonly password?: string;
  readonly tls?: MqttTlsOptions;
  /** 5 (default) or 4 (MQTT 3.1.1: structured CloudEvents JSON, no reason codes; see the docs). */
  readonly protocolVersion?: 4 | 5;
  /** First topic level of every Courier topic. Default `courier`. */
  readonly prefix?: string;
  /**
   * Base of the client ids. A group member's session id is `<clientId>:<group>:<name>`: it must be
   * the same when the member restarts (else its queued messages wait in an orphaned session) and
   * differ between members running at once (else they take each other's session over).
   * Required for group subscriptions (they reject with UnstableClientIdError without it or
   * `groupClientId`), unless `allowGeneratedClientId` (see adapters/mqtt/client-id-policy.ts).
   */
  readonly clientId?: string;
  /** Overrides the session id of a group member, for deployments that number their replicas. */
  readonly groupClientId?: (group: string, name: string) => string;
  /**
   * Lets group subscriptions start without `clientId` / `groupClientId`, under a generated id
   * (`courier-<hostname>-<random>`), new at every start: a restarted member then never sees what
   * the broker queued for its previous session, which keeps its share of the group's messages
   * until `sessionExpirySeconds` ends. For throwaway runs only. Default false.
   */
  readonly allowGeneratedClientId?: boolean;
  /** QoS of publishes: 1 (default, resolves on PUBACK) or 2 (resolves on PUBCOMP). */
  readonly qos?: 1 | 2;
  /** Default publish timeout. Default 10,000 ms. */
  readonly publishTimeoutMs?: number;
  /** Publishes awaiting their PUBACK at once; more wait for a slot. Default 1,000. */
  readonly maxInFlight?: number;
  /** Publishes accepted while disconnected; beyond that publish() rejects with NotConnectedError. Default 10,000. */
  readonly maxOffline?: number;
  /** How long the broker keeps a group member's session while it is away. Default 7 days. */
  readonly sessionExpirySeconds?: number;
  /** Reconnect back-off: from `minMs` doubling up to `maxMs`, each delay 50-100 % of that (jitter). Default 250 / 15,000. */
  readonly reconnect?: { readonly minMs?: number; readonly maxMs?: number };
  /** How long one connection attempt waits for the broker's CONNACK. Default 15,000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * How long connect() (and so bus.start()) keeps trying to connect and subscribe every client:
   * a connection that is refused or lost, also during the first CONNECT or SUBSCRIBE, is tried
   * again with the reconnect back-off until then; then connect() rejects with StartTimeoutError.
   * A refused login (CONNACK 4 / 5, MQTT 5 0x86 / 0x87 / 0x8C) rejects at once with
   * AuthenticationError; a refused subscription with its BrokerRefusedError. Default 30,000 ms.
   */
  readonly startTimeoutMs?: number;
  /** Largest body accepted by publish(). Default: the MQTT maximum packet size less 64 KiB. */
  readonly maxMessageBytes?: number;
  readonly keepaliveSeconds?: number;
  /**
   * Publishes the broker answers with "no matching subscribers" (MQTT 5 reason code 0x10 in the
   * PUBACK / PUBREC) within `graceMs` after a reconnect of this transport's publisher or of any of
   * its subscriptions are sent again, first after `intervalMs`, then at doubling intervals up to
   * 1 s, until a subscriber takes them or the grace (or the publish deadline) ends; then they
   * settle as any 0x10: resolved, or `UnroutableError` when `mandatory`. A broker restart is the
   * reason: Mosquitto 2.0.11 restores persistent sessions without their shared subscriptions, and
   * until the members have subscribed again it accepts publishes for nobody. A re-sent 0x10
   * publish makes no duplicate (nobody received it). MQTT 5 only (3.1.1 has no reason codes).
   * Default `{ graceMs: 5000, intervalMs: 100 }`; `false` turns it off.
   */
  readonly noSubscribersRetry?: { readonly graceMs?: number; readonly intervalMs?: number } | false;
}

/** The largest packet MQTT can express. */
export const MQTT_MAX_PACKET = 268_435_455;

/** The options with every default applied; what the adapter's parts read. */
export interface ResolvedMqttOptions {
  readonly urls: readonly string[];
  readonly version: 4 | 5;
  readonly prefix: string;
  readonly qos: 0 | 1 | 2;
  readonly publishTimeoutMs: number;
  readonly maxInFlight: number;
  readonly maxOffline: number;
  readonly sessionExpirySeconds: number;
  readonly reconnect: { readonly minMs: number; readonly maxMs: number };
  readonly connectTimeoutMs: number;
  readonly startTimeoutMs: number;
  readonly maxMessageBytes: number;
  readonly keepaliveSeconds: number;
  /** Undefined when off (or under MQTT 3.1.1, which has no reason codes). */
  readonly noSubscribers: { readonly graceMs: number; readonly intervalMs: number } | undefined;
  readonly username?: string;
  readonly password?: string;
  readonly tls?: MqttTlsOptions;
}

/** The URL schemes mqtt.js connects to. */
const SCHEMES = /^(mqtts?|tcp|tls|ssl|wss?):\/\//i;

/** Applies the defaults and checks everything, reporting every problem at once (StartupError). */
export function resolveMqttOptions(o: MqttTransportOptions): ResolvedMqttOptions {
  const problems: string[] = [];
  const urls = typeof o.url === 'string' ? [o.url] : Array.isArray(o.url) ? [...o.url] : [];
  if (!urls.length) problems.push('mqtt: at least one url is required');
  for (const u of urls) {
    // The scheme only: a URL may carry a password.
    if (typeof u !== 'string' || !SCHEMES.test(u)) problems.push(`mqtt: url must start with mqtt://, mqtts://, ws:// or wss:// (got a url of scheme "${String(u).split(':')[0]}")`);
    else if (!URL.canParse(u)) problems.push(`mqtt: url of scheme "${u.split(':')[0]}" is not a valid URL`);
  }
  const version = o.protocolVersion ?? 5;
  if (version !== 4 && version !== 5) problems.push(`mqtt: protocolVersion must be 4 or 5 (got ${String(version)})`);
  const prefix = o.prefix ?? 'courier';
  if (typeof prefix !== 'string' || !prefix || /[+#\0]/.test(prefix) || prefix.startsWith('$')) {
    problems.push('mqtt: prefix must be a non-empty topic without +, # or a leading $');
  }
  const qos = o.qos ?? 1;
  // 0 is not an option (the type says 1 | 2) but has always been passed through to mqtt.js: the
  // reliability tests' negative controls publish at QoS 0 to show the loss it brings
  // (test/reliability/mqtt-faults.spec.ts). Nothing confirms such a publish.
  if (qos !== 1 && qos !== 2 && (qos as number) !== 0) problems.push(`mqtt: qos must be 1 or 2 (got ${String(qos)})`);
  if (o.clientId !== undefined && (typeof o.clientId !== 'string' || !o.clientId)) problems.push('mqtt: clientId must be a non-empty string');
  if (o.groupClientId !== undefined && typeof o.groupClientId !== 'function') problems.push('mqtt: groupClientId must be a function (group, name) => id');
  if (o.tls?.rejectUnauthorized !== undefined && typeof o.tls.rejectUnauthorized !== 'boolean') problems.push('mqtt: tls.rejectUnauthorized must be a boolean');
  const retry = o.noSubscribersRetry;
  if (retry !== undefined && retry !== false && (typeof retry !== 'object' || retry === null)) problems.push('mqtt: noSubscribersRetry must be false or { graceMs, intervalMs }');
  const r: ResolvedMqttOptions = {
    urls,
    version,
    prefix,
    qos,
    publishTimeoutMs: o.publishTimeoutMs ?? 10_000,
    maxInFlight: o.maxInFlight ?? 1000,
    maxOffline: o.maxOffline ?? 10_000,
    sessionExpirySeconds: o.sessionExpirySeconds ?? 7 * 24 * 3600,
    reconnect: { minMs: o.reconnect?.minMs ?? 250, maxMs: o.reconnect?.maxMs ?? 15_000 },
    connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
    startTimeoutMs: o.startTimeoutMs ?? 30_000,
    maxMessageBytes: o.maxMessageBytes ?? MQTT_MAX_PACKET - 65_536,
    keepaliveSeconds: o.keepaliveSeconds ?? 30,
    noSubscribers:
      retry === false || version !== 5 || (retry !== undefined && typeof retry !== 'object')
        ? undefined
        : { graceMs: Math.max(0, retry?.graceMs ?? 5000), intervalMs: Math.max(1, retry?.intervalMs ?? 100) },
    username: o.username,
    password: o.password,
    tls: o.tls,
  };
  const checks: Array<[string, number, (v: number) => boolean, string]> = [
    ['publishTimeoutMs', r.publishTimeoutMs, positive, 'a positive number'],
    ['maxInFlight', r.maxInFlight, (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
    ['maxOffline', r.maxOffline, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
    ['sessionExpirySeconds', r.sessionExpirySeconds, (v) => Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff, 'an integer within 0..4294967295'],
    ['reconnect.minMs', r.reconnect.minMs, positive, 'a positive number'],
    ['reconnect.maxMs', r.reconnect.maxMs, (v) => positive(v) && v >= r.reconnect.minMs, 'a positive number >= reconnect.minMs'],
    ['connectTimeoutMs', r.connectTimeoutMs, positive, 'a positive number'],
    ['startTimeoutMs', r.startTimeoutMs, positive, 'a positive number'],
    ['maxMessageBytes', r.maxMessageBytes, (v) => positive(v) && v <= MQTT_MAX_PACKET, `a positive number up to ${MQTT_MAX_PACKET}`],
    ['keepaliveSeconds', r.keepaliveSeconds, (v) => Number.isInteger(v) && v >= 0 && v <= 0xffff, 'an integer within 0..65535'],
  ];
  if (r.noSubscribers) {
    checks.push(['noSubscribersRetry.graceMs', r.noSubscribers.graceMs, Number.isFinite, 'a number']);
    checks.push(['noSubscribersRetry.intervalMs', r.noSubscribers.intervalMs, Number.isFinite, 'a number']);
  }
  for (const [name, v, ok, what] of checks) if (typeof v !== 'number' || !ok(v)) problems.push(`mqtt: ${name} must be ${what} (got ${String(v)})`);
  if (problems.length) throw new StartupError(problems);
  return r;
}

function positive(v: number): boolean {
  return Number.isFinite(v) && v > 0;
}
