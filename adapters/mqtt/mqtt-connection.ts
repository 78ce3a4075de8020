/**
 * One mqtt.js client with the adapter's connection policy: its options (TLS, fail-over, session
 * expiry, Receive Maximum), its reconnect back-off, the transport events it raises, and the
 * session of each connection it makes. A {@link ConnectionSession} lives from a connection's
 * 'connect' to its 'close' and is then dropped whole: what was owed on it (a PUBACK, a window
 * size) dies with it instead of being reset field by field.
 */
import type { IClientOptions, IConnackPacket, MqttClient } from 'mqtt';
import { backoffDelay } from '../../lib/adapter-kit';
import { ConnectionError, SessionTakenOverError, redactSecrets, redactUrl } from '../../lib/errors';
import type { MqttContext } from './mqtt-context';
import { coalesceSocketWrites, encodePacketsOf } from './mqtt-internals';
import { authenticationError, currentUrl, defaultPort, endClient, SESSION_TAKEN_OVER, startClient } from './mqtt-startup';

/** What one client is: its id, its session kind and, for messages, its role. */
export interface ClientSpec {
  readonly clientId: string;
  /** Clean start (a transient session) or a persistent one. */
  readonly clean: boolean;
  /** Session expiry of a persistent session; default the transport's sessionExpirySeconds. */
  readonly expirySeconds?: number;
  /** The Receive Maximum announced to the broker (MQTT 5): its in-flight window towards us. */
  readonly receiveMaximum?: number;
  /** `publisher`, `subscriber <queue>`, ...: names the client in errors. */
  readonly role: string;
}

/** One connection of a client, from its 'connect' to its 'close'. */
export class ConnectionSession {
  /** False once the connection closed. */
  open = true;
  readonly connectedAt = Date.now();

  constructor(
    readonly connack: IConnackPacket,
    /** 1 for the client's first connection, 2 for its first reconnect, ... */
    readonly number: number,
  ) {}

  /** The broker's Receive Maximum (MQTT 5 flow control); 65,535 when it announced none. */
  get receiveMaximum(): number {
    return this.connack.properties?.receiveMaximum ?? 65_535;
  }
}

const STABLE_MS = 10_000;
const SHORT_LIVED_MS = 2_000;
const SHORT_LIVED_LIMIT = 4;

/**
 * The reconnect back-off: the kit's backoff (lib/adapter-kit/backoff.ts) from `minMs` doubling to
 * `maxMs`, each delay 50-100 % of that, reset only by a
 * connection that stayed up. A connection the broker keeps closing right after CONNACK (another
 * client taking the same session over, when the broker closes without a DISCONNECT 0x8E, as
 * Mosquitto 2.0 does) slows down like a refused one, and is reported after a few in a row.
 */
class ReconnectPolicy {
  private failures = 0;
  private shortLived = 0;

  constructor(private readonly range: { readonly minMs: number; readonly maxMs: number }) {}

  delay(): number {
    const { minMs, maxMs } = this.range;
    return backoffDelay({ initialDelayMs: minMs, maxDelayMs: maxMs, factor: 2, jitter: 0.5 }, this.failures + 1);
  }

  /** A connection closed after `upFor` ms (0: it never connected). True when it looks taken over. */
  closed(upFor: number, wasConnected: boolean, byUs: boolean): boolean {
    if (upFor >= STABLE_MS) this.failures = 0;
    this.failures++;
    if (wasConnected && upFor < SHORT_LIVED_MS && !byUs) return ++this.shortLived === SHORT_LIVED_LIMIT;
    if (wasConnected) this.shortLived = 0;
    return false;
  }
}

const noLog = (): void => undefined;

export class MqttConnection {
  readonly client: MqttClient;
  private current?: ConnectionSession;
  private connections = 0;

  constructor(
    private readonly ctx: MqttContext,
    readonly spec: ClientSpec,
  ) {
    const policy = new ReconnectPolicy(ctx.options.reconnect);
    const mqtt = require('mqtt') as typeof import('mqtt');
    const client = mqtt.connect(ctx.options.urls[0], clientOptions(ctx, spec, policy.delay()));
    this.client = client;
    client.setMaxListeners(50);
    coalesceSocketWrites(client);
    encodePacketsOf(client);
    const { clientId, role } = spec;
    const events = ctx.events;
    const url = () => redactUrl(currentUrl(client, ctx.options.urls));
    client.on('connect', (connack) => {
      this.current = new ConnectionSession(connack, ++this.connections);
      events.emit('connected', { url: url() });
    });
    client.on('close', () => {
      // Runs after mqtt.js scheduled the next attempt; sets the delay of the one after it.
      const s = this.current;
      this.current = undefined;
      if (s) s.open = false;
      if (policy.closed(s ? Date.now() - s.connectedAt : 0, !!s, client.disconnecting) && !spec.clean) {
        events.emit('error', new SessionTakenOverError(
          `MQTT session ${clientId} (${role}) was closed by the broker right after connecting ${SHORT_LIVED_LIMIT} times in a row: ` +
            'probably another client uses the same client id; backing off'));
      }
      client.options.reconnectPeriod = policy.delay();
    });
    client.on('offline', () => events.emit('disconnected', { url: url() }));
    client.on('disconnect', (packet) => {
      if (packet.reasonCode === SESSION_TAKEN_OVER) {
        // Another process uses this client id. Reconnecting would take the session back and start
        // a storm of mutual take-overs; stop this client and say so instead.
        client.end(true);
        events.emit('error', new SessionTakenOverError(`MQTT session ${clientId} (${role}) was taken over by another client with the same id; this client stopped`));
      }
    });
    client.on('error', (err) => {
      events.emit('error', authenticationError(client, err, ctx.options.urls) ??
        new ConnectionError(`MQTT ${role} ${clientId} at ${url()}: ${redactSecrets(err.message)}`, { cause: err }));
    });
  }

  /** The session of the connection that is up; undefined while down. */
  get session(): ConnectionSession | undefined {
    return this.current;
  }

  /** Connects and subscribes `filters`, within startTimeoutMs (see startClient). */
  start(filters: readonly string[]): Promise<void> {
    return startClient(this.client, filters, this.ctx.options.startTimeoutMs, this.ctx.options.urls);
  }

  /** Disconnects gracefully (bounded), with the DISCONNECT's properties if given. */
  end(disconnect?: object): Promise<void> {
    return endClient(this.client, disconnect);
  }

  /** Drops the connection at once. */
  kill(): void {
    this.client.end(true);
  }
}

function clientOptions(ctx: MqttContext, spec: ClientSpec, reconnectPeriod: number): IClientOptions {
  const o = ctx.options;
  const urls = o.urls.map((u) => new URL(u));
  return {
    clientId: spec.clientId,
    clean: spec.clean,
    protocolVersion: o.version,
    username: o.username ?? (decodeURIComponent(urls[0].username) || undefined),
    password: o.password ?? (decodeURIComponent(urls[0].password) || undefined),
    keepalive: o.keepaliveSeconds,
    reconnectPeriod,
    connectTimeout: o.connectTimeoutMs,
    manualConnect: true,
    resubscribe: true,
    // mqtt.js gives up for good after a refusing CONNACK ("server unavailable", a refused login):
    // reconnect as after any failure (connect() itself fails at once on a refused login).
    reconnectOnConnackError: true,
    // mqtt.js re-sends unacknowledged QoS 1/2 publishes from its outgoing store on reconnect.
    queueQoSZero: false,
    // mqtt.js logs through the debug package, a dozen calls per packet that each ask whether
    // the namespace is on (5 % of a busy producer). Kept when DEBUG is set, to debug mqtt.js.
    ...(process.env.DEBUG ? {} : { log: noLog }),
    ca: o.tls?.ca,
    cert: o.tls?.cert,
    key: o.tls?.key,
    rejectUnauthorized: o.tls?.rejectUnauthorized ?? true,
    ...(urls.length > 1
      ? {
          servers: urls.map((u) => ({
            host: u.hostname,
            port: Number(u.port) || defaultPort(u.protocol),
            protocol: u.protocol.replace(':', '') as 'mqtt' | 'mqtts',
          })),
        }
      : {}),
    ...(o.version === 5
      ? {
          properties: {
            ...(!spec.clean ? { sessionExpiryInterval: spec.expirySeconds ?? o.sessionExpirySeconds } : {}),
            ...(spec.receiveMaximum ? { receiveMaximum: Math.min(65_535, spec.receiveMaximum) } : {}),
          },
        }
      : {}),
  };
}
