/**
 * Connecting to RabbitMQ and the reconnect policy: the first connect() (tried until connected,
 * `startTimeoutMs` passed or `connectAttempts` used up), the reconnects after a loss (exponential
 * backoff with jitter, moving on to the cluster's next URL), and the login itself (amqplib loaded
 * lazily, TLS and socket options, a refused login told apart from a failed connection). What one
 * connection sets up is the transport's `open` hook; this module only decides when and where.
 */
import type { ChannelModel, SocketOptions } from 'amqplib';
import { backoffDelay } from '../../lib/adapter-kit';
import { AuthenticationError, brokerAddress, ConnectionError, CourierError, redactUrl, StartTimeoutError, TransportClosedError } from '../../lib/errors';
import { ResolvedAmqpOptions } from './amqp-options';
import { loginRefusal } from './amqplib-internals';

type AmqpLib = typeof import('amqplib');

/** One attempt of the first connect(): given up (and its connection closed) when the start timeout passes. */
export interface StartAttempt {
  abandoned: boolean;
  socket?: { destroy?(): void };
}

export interface ConnectorHooks {
  /**
   * Sets up one connection to `url`. `start` is given for the first connect(): a refusal then
   * fails it, where a reconnect reports it. Rejects when the connection failed or was lost.
   */
  open(url: string, start?: StartAttempt): Promise<void>;
  /** The transport is closing: the first connect() stops trying. */
  closing(): boolean;
  /** Reports a refused login during reconnects (the password may have changed). */
  error(err: Error): void;
}

/** The user named in `url` (guest when none), for errors; never the password. */
export function userOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || 'guest';
  } catch {
    return 'unknown';
  }
}

export class Connector {
  private lib?: AmqpLib;
  private urlIndex = 0;
  private reconnectAttempt = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private first?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly options: ResolvedAmqpOptions,
    private readonly hooks: ConnectorHooks,
  ) {}

  /** The first connect(), shared by every caller until it fails (then the next call tries again). */
  connect(): Promise<void> {
    if (this.hooks.closing()) return Promise.reject(new TransportClosedError('connect'));
    if (!this.first) {
      this.first = this.connectFirst().catch((err) => {
        this.first = undefined;
        throw err;
      });
    }
    return this.first;
  }

  /** True once connect() was called or a reconnect is due: publishes may still be sent. */
  get trying(): boolean {
    return this.first !== undefined || this.reconnectTimer !== undefined;
  }

  /** A connection is up: the next loss starts the backoff from its first step. */
  connected(): void {
    this.reconnectAttempt = 0;
  }

  /** After a loss: opens a connection to the next URL after the backoff, and again until one is up. */
  reconnectLater(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.backoff(++this.reconnectAttempt);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stopped) return;
      // The next URL: after a node is lost, the cluster's next node is tried first.
      this.hooks.open(this.nextUrl()).catch((err: unknown) => {
        // Refused logins are said (the password may have changed) and tried again, as any failure.
        if (err instanceof AuthenticationError) this.hooks.error(err);
        this.reconnectLater();
      });
    }, delay);
  }

  /** No more reconnects (the transport closed). */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
  }

  /** `amqplib.connect`; a login the broker refused becomes an AuthenticationError. */
  async login(url: string): Promise<ChannelModel> {
    try {
      return await this.loadLib().connect(this.withHeartbeat(url), this.socketOptions());
    } catch (err) {
      const refusal = loginRefusal(err);
      if (!refusal) throw err;
      const broker = brokerAddress(url, /^amqps:/i.test(url) ? 5671 : 5672);
      if (refusal.kind === 'credentials') throw new AuthenticationError(userOf(url), broker, refusal.detail, { cause: err });
      const vhost = decodeURIComponent(new URL(url).pathname.slice(1)) || '/';
      throw new AuthenticationError(userOf(url), broker, `the broker refused to open virtual host '${vhost}' (it does not exist, or the user may not use it)`, {
        cause: err,
      });
    }
  }

  /**
   * Tries until connected, `startTimeoutMs` passed or `connectAttempts` are used up. What a
   * connection that is refused or lost gives (also lost while the topology is declared) is tried
   * again with the reconnect back-off; a refusal (authentication, a declaration) is thrown at once.
   */
  private async connectFirst(): Promise<void> {
    const { startTimeoutMs, connectAttempts } = this.options;
    const deadline = Date.now() + startTimeoutMs;
    const failures = new Map<string, number>();
    let last: unknown;
    let attempt = 0;
    while (attempt < connectAttempts && (attempt === 0 || Date.now() < deadline)) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(this.backoff(attempt), Math.max(0, deadline - Date.now()))));
      if (this.hooks.closing()) throw new TransportClosedError('connect');
      if (attempt > 0 && Date.now() >= deadline) break;
      attempt++;
      const url = this.nextUrl();
      try {
        await this.openWithin(url, deadline);
        return;
      } catch (err) {
        if (err instanceof CourierError) throw err; // a refusal: it would be refused again
        last = err;
        const text = `${redactUrl(url)}: ${(err as Error)?.message ?? String(err)}`;
        failures.set(text, (failures.get(text) ?? 0) + 1);
      }
    }
    const listed = [...failures].map(([text, n]) => (n > 1 ? `${text} (${n} times)` : text));
    if (attempt >= connectAttempts) {
      throw new ConnectionError(`Cannot connect to RabbitMQ after ${attempt} attempts: ${listed.join('; ')}`, { cause: last });
    }
    throw new StartTimeoutError(startTimeoutMs, [`${attempt} attempts`, ...listed], { cause: last });
  }

  /** open() of the first connect, given up when `deadline` passes (its connection, if any, closed). */
  private openWithin(url: string, deadline: number): Promise<void> {
    const attempt: StartAttempt = { abandoned: false };
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        attempt.abandoned = true;
        attempt.socket?.destroy?.();
        reject(new Error('not connected when the start timeout passed'));
      }, Math.max(0, deadline - Date.now()));
      this.hooks.open(url, attempt).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  private nextUrl(): string {
    const urls = this.options.urls;
    return urls[this.urlIndex++ % urls.length];
  }

  /** Exponential backoff with jitter: a cluster's clients do not come back all at the same instant. */
  private backoff(attempt: number): number {
    return backoffDelay(this.options.reconnect, attempt);
  }

  private loadLib(): AmqpLib {
    if (!this.lib) {
      try {
        // Loaded here, not at import: an application on MQTT alone does not need amqplib installed.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        this.lib = require('amqplib') as AmqpLib;
      } catch (err) {
        throw new ConnectionError('The AMQP transport needs the "amqplib" package: npm install amqplib', { cause: err });
      }
    }
    return this.lib;
  }

  private socketOptions(): SocketOptions {
    const tls = this.options.tls ?? {};
    const opts: SocketOptions = {
      // amqplib leaves Nagle on; request/reply then stalls on 40 ms delayed ACKs (docs/brokers.md, "Measured while benchmarking").
      noDelay: true,
      timeout: this.options.connectTimeoutMs,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      clientProperties: { connection_name: this.options.connectionName ?? `courier-${process.pid}` },
    };
    if (tls.ca !== undefined) opts.ca = tls.ca as SocketOptions['ca'];
    if (tls.cert !== undefined) opts.cert = tls.cert;
    if (tls.key !== undefined) opts.key = tls.key;
    if (tls.passphrase !== undefined) opts.passphrase = tls.passphrase;
    if (tls.servername !== undefined) opts.servername = tls.servername;
    return opts;
  }

  private withHeartbeat(url: string): string {
    const u = new URL(url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(this.options.heartbeatSeconds));
    return u.toString();
  }
}
