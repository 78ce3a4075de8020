/**
 * One connection to RabbitMQ and everything that dies with it: its plain channels (one provider),
 * the consumers of the subscriptions on it (their channels, acks and consumer tags), the queues it
 * declared, its socket's write coalescing. The transport holds the current session and drops it
 * whole when the connection closes; the next connection starts a new one, so nothing is reset by
 * hand and nothing needs checking against a stale connection but `transport.session === session`.
 */
import type { ChannelModel, Options } from 'amqplib';
import { AckBatcher } from './ack-batcher';
import { CorkableSocket, socketOf } from './amqplib-internals';
import { toBrokerError } from './broker-errors';
import { ChannelProvider, ChannelRole, ChannelSetup } from './channel-provider';
import type { QueueDeclaration } from './topology';
import { WriteCoalescer } from './write-coalescer';

/** A declared queue is declared again after this long, which keeps a delay queue from expiring under a publish. */
const REDECLARE_AFTER_MS = 60_000;

/** What the session knows of a consumer: the acks its uncork flushes (subscriptions.ts owns the rest). */
export interface SessionConsumer {
  readonly acks: AckBatcher;
}

export class AmqpSession {
  /** The connection's socket when it can be corked (amqplib-internals.ts). */
  readonly socket: CorkableSocket | undefined;
  readonly channels: ChannelProvider;
  readonly writes: WriteCoalescer;
  /** The consumers on this connection; their acks join the coalesced writes. */
  readonly consumers = new Set<SessionConsumer>();
  /** Queues declared on this connection, and when (ensureQueue declares each at most once a minute). */
  private readonly declared = new Map<string, number>();
  /** Its topology is declared and every subscription attached: the transport is connected. */
  ready = false;
  /** The connection closed (or was given up); its channels are gone. */
  ended = false;
  /** The connection's last 'error', reported with its 'close'. */
  lastError?: Error;

  constructor(
    readonly conn: ChannelModel,
    /** The user it logged in as (named in refusals). */
    readonly user: string,
    setups: Readonly<Record<ChannelRole, ChannelSetup>>,
  ) {
    this.socket = socketOf(conn);
    this.channels = new ChannelProvider(conn, setups);
    this.writes = new WriteCoalescer(this.socket, () => this.flushAcks());
  }

  /** Declares a queue made on the fly (delay queues, a broadcast's dead letters), at most once a minute. */
  async ensureQueue(q: QueueDeclaration): Promise<void> {
    const at = this.declared.get(q.name);
    if (at !== undefined && Date.now() - at < REDECLARE_AFTER_MS) return;
    const ch = await this.channels.get('topology');
    try {
      await ch.assertQueue(q.name, q.options);
    } catch (err) {
      throw toBrokerError(err, { user: this.user, action: 'declare a queue', resource: `queue '${q.name}'` });
    }
    this.declared.set(q.name, Date.now());
  }

  /** A queue declared some other way (a subscription's); ensureQueue need not declare it again. */
  markDeclared(queue: string): void {
    this.declared.set(queue, Date.now());
  }

  /** The durable topic exchange of events. */
  async declareExchange(exchange: string, options: Options.AssertExchange): Promise<void> {
    const ch = await this.channels.get('topology');
    await ch.assertExchange(exchange, 'topic', options).catch((err) => {
      throw toBrokerError(err, { user: this.user, action: 'declare the events exchange', resource: `exchange '${exchange}'` });
    });
  }

  /** The connection is gone (or given up): drop everything of it. Idempotent. */
  end(): void {
    this.ended = true;
    this.ready = false;
    this.channels.end();
    this.consumers.clear();
  }

  /** Ends the session and closes its connection (errors ignored: it may be gone already). */
  async close(): Promise<void> {
    this.end();
    await this.conn.close().catch(() => undefined);
  }

  private flushAcks(): boolean {
    let acked = false;
    for (const c of this.consumers) if (c.acks.flush()) acked = true;
    return acked;
  }
}
