import { StartupError } from '../../lib/errors';

/** Options of {@link amqpTransport}. Defaults are in `resolveOptions` (amqp-options.ts), in one place. */
export interface AmqpTransportOptions {
  /** One broker URL, or the nodes of a cluster: a reconnect moves on to the next one. `amqps://` for TLS. */
  readonly url: string | readonly string[];
  /** The durable topic exchange of events. Default `courier.events`. */
  readonly exchange?: string;
  /**
   * Type of every queue Courier keeps: work, dead-letter and retry (delay) queues. Quorum queues
   * (replicated by Raft over a cluster's nodes) survive the loss of a node and add
   * `x-delivery-limit`; see docs/scaling.md for the choice. Default 'classic'.
   */
  readonly queueType?: 'classic' | 'quorum';
  /**
   * Classic queues count no redeliveries: a message that crashes its consumer comes back without
   * end. With this on, Courier counts them in the message (a copy with `x-courier-redeliveries`
   * put back in the queue) and dead-letters it with reason `delivery-limit` past the handler's
   * attempts, as a quorum queue does. Off: the broker's plain behaviour. Default true.
   */
  readonly countRedeliveries?: boolean;
  /** Heartbeat interval the client asks for, in seconds (loss detection). Default 10. */
  readonly heartbeatSeconds?: number;
  /** Default publish timeout (PublishOptions.timeoutMs overrides). Default 15000. */
  readonly publishTimeoutMs?: number;
  /** Most publishes written and not yet confirmed at once. Default 1000. */
  readonly maxUnconfirmed?: number;
  /** While disconnected: hold publishes (up to `maxBuffered`) or reject them with NotConnectedError. Default 'buffer'. */
  readonly whileDisconnected?: 'buffer' | 'reject';
  /** Most publishes held while disconnected. Default 10000. */
  readonly maxBuffered?: number;
  /** Backoff between reconnect attempts: exponential from `initialDelayMs` to `maxDelayMs`, with jitter (0..1). */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number; readonly factor?: number; readonly jitter?: number };
  /**
   * Most attempts of the first connect() (each tries the next URL). Default: no limit but
   * `startTimeoutMs`. When they are used up, connect() rejects with ConnectionError.
   */
  readonly connectAttempts?: number;
  /** Socket connect timeout of one attempt. Default 10000. */
  readonly connectTimeoutMs?: number;
  /**
   * How long the first connect() (and so bus.start()) keeps trying: a refused or lost connection,
   * also one cut while the topology is declared, is tried again with the reconnect back-off until
   * then; then connect() rejects with StartTimeoutError. A refusal is not retried: a wrong
   * password rejects at once with AuthenticationError, a declaration the broker refuses with its
   * BrokerRefusedError (AccessRefusedError, PreconditionFailedError, ...). Default 30000.
   */
  readonly startTimeoutMs?: number;
  /** TLS material for `amqps://`. Certificate verification is on unless `rejectUnauthorized: false`. */
  readonly tls?: {
    readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
    readonly cert?: string | Buffer;
    readonly key?: string | Buffer;
    readonly passphrase?: string;
    readonly servername?: string;
    readonly rejectUnauthorized?: boolean;
  };
  /** Largest body accepted by publish(). Default 128 MiB (RabbitMQ's own default max_message_size). */
  readonly maxMessageBytes?: number;
  /** Shown in the RabbitMQ management UI as the connection name. */
  readonly connectionName?: string;
  /**
   * A replay `from` a Date attaches to the stream this much earlier than the Date. The stream
   * finds a time by the broker's clock (when it stored each chunk), the Date and the CloudEvents
   * `time` Courier skips by come from the clients': a broker clock that lags by more than this
   * would make the stream attach after what was published at the Date (at its end, when nothing
   * came since: nothing at all would be read). Earlier is safe, only read and skipped. Default 10000.
   */
  readonly replayClockMarginMs?: number;
}

export type ResolvedAmqpOptions = Required<Omit<AmqpTransportOptions, 'url' | 'tls' | 'connectionName' | 'reconnect'>> & {
  readonly urls: readonly string[];
  readonly tls: AmqpTransportOptions['tls'];
  readonly connectionName?: string;
  readonly reconnect: { initialDelayMs: number; maxDelayMs: number; factor: number; jitter: number };
};

/** Applies the defaults and checks everything, reporting every problem at once. */
export function resolveOptions(o: AmqpTransportOptions): ResolvedAmqpOptions {
  const urls = typeof o.url === 'string' ? [o.url] : [...(o.url ?? [])];
  const r: ResolvedAmqpOptions = {
    urls,
    exchange: o.exchange ?? 'courier.events',
    queueType: o.queueType ?? 'classic',
    countRedeliveries: o.countRedeliveries ?? true,
    heartbeatSeconds: o.heartbeatSeconds ?? 10,
    publishTimeoutMs: o.publishTimeoutMs ?? 15_000,
    maxUnconfirmed: o.maxUnconfirmed ?? 1000,
    whileDisconnected: o.whileDisconnected ?? 'buffer',
    maxBuffered: o.maxBuffered ?? 10_000,
    reconnect: {
      initialDelayMs: o.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: o.reconnect?.maxDelayMs ?? 30_000,
      factor: o.reconnect?.factor ?? 2,
      jitter: o.reconnect?.jitter ?? 0.2,
    },
    connectAttempts: o.connectAttempts ?? Infinity,
    connectTimeoutMs: o.connectTimeoutMs ?? 10_000,
    startTimeoutMs: o.startTimeoutMs ?? 30_000,
    tls: o.tls,
    maxMessageBytes: o.maxMessageBytes ?? 128 * 1024 * 1024,
    connectionName: o.connectionName,
    replayClockMarginMs: o.replayClockMarginMs ?? 10_000,
  };
  const problems: string[] = [];
  if (!urls.length) problems.push('amqp: url is required');
  for (const u of urls) {
    if (!/^amqps?:\/\//i.test(u)) problems.push(`amqp: url must start with amqp:// or amqps:// (got a url of scheme "${u.split(':')[0]}")`);
  }
  if (!r.exchange) problems.push('amqp: exchange must not be empty');
  if (r.queueType !== 'classic' && r.queueType !== 'quorum') problems.push(`amqp: queueType must be 'classic' or 'quorum'`);
  if (r.whileDisconnected !== 'buffer' && r.whileDisconnected !== 'reject') problems.push(`amqp: whileDisconnected must be 'buffer' or 'reject'`);
  const positive: Array<[string, number]> = [
    ['publishTimeoutMs', r.publishTimeoutMs],
    ['maxUnconfirmed', r.maxUnconfirmed],
    ['maxBuffered', r.maxBuffered],
    ['connectTimeoutMs', r.connectTimeoutMs],
    ['startTimeoutMs', r.startTimeoutMs],
    ['maxMessageBytes', r.maxMessageBytes],
    ['reconnect.maxDelayMs', r.reconnect.maxDelayMs],
  ];
  for (const [name, v] of positive) if (!(Number.isFinite(v) && v > 0)) problems.push(`amqp: ${name} must be a positive number`);
  if (!(r.connectAttempts >= 1)) problems.push('amqp: connectAttempts must be at least 1');
  if (!(Number.isFinite(r.replayClockMarginMs) && r.replayClockMarginMs >= 0)) problems.push('amqp: replayClockMarginMs must be a number >= 0');
  if (!(r.heartbeatSeconds >= 0)) problems.push('amqp: heartbeatSeconds must be >= 0');
  if (!(r.reconnect.jitter >= 0 && r.reconnect.jitter <= 1)) problems.push('amqp: reconnect.jitter must be within 0..1');
  if (problems.length) throw new StartupError(problems);
  return r;
}
