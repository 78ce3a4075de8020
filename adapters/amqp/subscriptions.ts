/**
 * Subscriptions and their deliveries: each subscription consumes on a channel of its own (its
 * prefetch, its acks, and a refusal that closes it closes nothing else), declared from its
 * topology (topology.ts) on every connection, opened again after a channel error, and closed by
 * cancelling, waiting for what its handler holds, then closing the channel (which gives back what
 * was not settled).
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import { Wakeup } from '../../lib/adapter-kit';
import { ResourceNotFoundError, TransportClosedError } from '../../lib/errors';
import type { Delivery, DeliveryHandler, Subscription, SubscriptionSpec } from '../../lib/transport';
import { AckBatcher } from './ack-batcher';
import { toBrokerError } from './broker-errors';
import { AmqpDelivery, DeliveryHost } from './delivery';
import type { AmqpSession } from './session';
import { redeliveryLimitOf, subscriptionTopology } from './topology';
import { ExtendedTopology, missingExchangeType } from './partition-topology';

/** One subscription, for the transport's life. */
export interface SubState {
  readonly spec: SubscriptionSpec;
  readonly handler: DeliveryHandler;
  /** Consumes the dead letters of `spec` rather than its work queue. */
  readonly deadLetters: boolean;
  /** What it declares and consumes when not its spec's plain topology (a partition, a replay: partition-topology.ts). */
  readonly topology?: ExtendedTopology;
  /** The consume arguments, asked on every attach (a replay's stream offset: replay.ts). */
  readonly consumeArguments?: (channel: Channel) => Promise<Record<string, unknown> | undefined>;
  /** The queue consumed (a broadcast's is server-named: a new one on every connection). */
  queue?: string;
  /** What consumes for it on the current connection, while anything does. */
  consumer?: Consumer;
  closed: boolean;
  closing?: Promise<void>;
}

/** One channel consuming for one subscription: dies with its channel (or its connection). */
export interface Consumer {
  readonly sub: SubState;
  readonly channel: Channel;
  readonly acks: AckBatcher;
  consumerTag?: string;
  /** Set when Courier counts this queue's redeliveries itself (a classic queue; topology.ts redeliveryLimitOf). */
  readonly redeliveryLimit?: number;
  /** Deliveries handed to the handler and not yet settled. */
  inflight: number;
}

export interface SubscriptionsHost {
  readonly delivery: DeliveryHost;
  /** The current connection's session, connected or being set up. */
  session(): AmqpSession | undefined;
  closing(): boolean;
  error(err: Error): void;
}

/** A closed subscription channel is opened again after this long (the connection still up). */
const REATTACH_AFTER_MS = 1000;
/** The longest wait between two attempts to attach a subscription that keeps failing. */
const REATTACH_AT_MOST_MS = 30_000;

export class Subscriptions {
  private readonly subs = new Set<SubState>();
  /** Woken by every settle and every consumer that goes: close() waits on it for what its handler holds. */
  private readonly settled = new Wakeup();

  constructor(private readonly host: SubscriptionsHost) {}

  /** Adds a subscription, consuming at once when connected (a refusal then rejects and removes it). */
  async add(spec: SubscriptionSpec, handler: DeliveryHandler, deadLetters: boolean, custom: Pick<SubState, 'topology' | 'consumeArguments'> = {}): Promise<Subscription> {
    if (this.host.closing()) throw new TransportClosedError('subscribe');
    const sub: SubState = { spec, handler, deadLetters, closed: false, ...custom };
    this.subs.add(sub);
    const session = this.host.session();
    if (session?.ready) {
      try {
        await this.attach(sub, session);
      } catch (err) {
        this.subs.delete(sub);
        throw err;
      }
    }
    return { close: () => this.close(sub, 5000) };
  }

  /** Attaches every open subscription to a new connection; `first` (the first connect) throws a refusal, else it is reported. */
  async attachAll(session: AmqpSession, first: boolean): Promise<void> {
    for (const sub of this.subs) {
      if (sub.closed) continue;
      try {
        await this.attach(sub, session);
      } catch (err) {
        if (first) throw err;
        this.host.error(err as Error);
        this.attachLater(sub, session, 1);
      }
    }
  }

  /** Closes every subscription within the deadline (Date.now() based). */
  async closeAll(deadline: number): Promise<void> {
    await Promise.all([...this.subs].map((s) => this.close(s, Math.max(0, deadline - Date.now()))));
  }

  /** A delivery settled: wakes the closes waiting for their in-flight deliveries. */
  notifySettled(): void {
    this.settled.notify();
  }

  private async attach(sub: SubState, session: AmqpSession): Promise<void> {
    if (session.ended) return;
    const ch = await session.conn.createChannel();
    let refusal: unknown;
    ch.on('error', (err: Error) => (refusal = err));
    ch.on('close', () => this.onChannelClosed(sub, { session, ch, refusal }));
    const topo: ExtendedTopology = sub.topology ?? subscriptionTopology(sub.spec, sub.deadLetters, this.host.delivery.topology);
    try {
      for (const ex of topo.exchanges ?? []) await ch.assertExchange(ex.name, ex.type, { durable: true, arguments: ex.arguments });
      for (const b of topo.exchangeBindings ?? []) await ch.bindExchange(b.destination, b.source, b.pattern);
      let queue = '';
      for (const q of topo.queues) {
        queue = (await ch.assertQueue(q.name, q.options)).queue;
        if (q.name) session.markDeclared(q.name);
      }
      if (topo.binding) await ch.bindQueue(queue, topo.binding.exchange, topo.binding.pattern);
      await ch.prefetch(topo.prefetch, false);
      sub.queue = queue;
      // A topology of its own (partitions: quorum queues that count redeliveries themselves, where a
      // copy to the back would break the key's order; streams: nothing is redelivered) is not counted.
      const redeliveryLimit = sub.topology ? undefined : redeliveryLimitOf(sub.spec, sub.deadLetters, this.host.delivery.topology);
      const consumer: Consumer = { sub, channel: ch, acks: new AckBatcher(ch), inflight: 0, redeliveryLimit };
      sub.consumer = consumer;
      session.consumers.add(consumer);
      const args = sub.consumeArguments ? await sub.consumeArguments(ch) : undefined;
      const { consumerTag } = await ch.consume(queue, (msg) => this.onMessage(consumer, msg), { noAck: false, priority: topo.priority > 0 ? topo.priority : undefined, arguments: args });
      consumer.consumerTag = consumerTag;
    } catch (err) {
      if (sub.consumer?.channel === ch) this.drop(session, sub.consumer);
      ch.close().catch(() => undefined);
      // The connection's own 'error' (503 COMMAND_INVALID) may come a turn after the channel's rejection.
      if (topo.exchanges?.length) await new Promise((r) => setTimeout(r, 50));
      const missing = missingExchangeType(session, topo);
      if (missing) throw missing;
      throw toBrokerError(err, { user: session.user, action: `subscribe to ${sub.spec.pattern}`, resource: topo.resource });
    }
  }

  private drop(session: AmqpSession, consumer: Consumer): void {
    if (consumer.sub.consumer === consumer) consumer.sub.consumer = undefined;
    session.consumers.delete(consumer);
  }

  private onChannelClosed(sub: SubState, closed: { session: AmqpSession; ch: Channel; refusal: unknown }): void {
    const { session, ch } = closed;
    const consumer = sub.consumer;
    if (consumer?.channel !== ch) return;
    // The broker gives back what this channel held; settles of those deliveries are no-ops now.
    this.drop(session, consumer);
    this.notifySettled();
    const refusal = closed.refusal;
    if (refusal) this.host.error(toBrokerError(refusal, { user: session.user, action: `consume ${sub.spec.pattern}`, resource: sub.queue && `queue '${sub.queue}'` }));
    // A channel error leaves the connection up: open the subscription's channel again.
    this.attachLater(sub, session, 0);
  }

  /**
   * Attaches `sub` to `session` again after a while, and again (the wait doubling up to
   * REATTACH_AT_MOST_MS) while it fails: on a cluster the queue may be briefly unavailable (a
   * quorum queue electing its leader, a classic queue whose node is down and comes back); a
   * consumer that gave up after one failure would never resume. Each failure is reported.
   */
  private attachLater(sub: SubState, session: AmqpSession, failures: number): void {
    const wait = Math.min(REATTACH_AT_MOST_MS, REATTACH_AFTER_MS * 2 ** Math.max(0, failures - 1));
    setTimeout(() => {
      if (sub.closed || this.host.closing() || this.host.session() !== session || session.ended || sub.consumer) return;
      if (!session.ready) return this.attachLater(sub, session, failures); // still being set up: attachAll runs
      this.attach(sub, session).catch((err) => {
        this.host.error(err as Error);
        this.attachLater(sub, session, failures + 1);
      });
    }, wait).unref();
  }

  private onMessage(consumer: Consumer, msg: ConsumeMessage | null): void {
    const sub = consumer.sub;
    // Never throw in here: an exception in an amqplib consume callback closes the channel.
    try {
      if (msg === null) {
        // basic.cancel from the broker: the queue was deleted or the node holding it went away.
        if (sub.consumer === consumer) {
          this.host.error(new ResourceNotFoundError(`The broker cancelled the consumer of queue '${sub.queue}'`, `queue '${sub.queue}'`, this.host.session()?.user));
          consumer.channel.close().catch(() => undefined);
        }
        return;
      }
      // Every delivery of the channel, handled or not: a multiple ack never covers one it did not see.
      consumer.acks.received(msg);
      if (sub.consumer !== consumer) return;
      const delivery = new AmqpDelivery(this.host.delivery, consumer, msg);
      consumer.inflight++;
      if (msg.fields.redelivered && consumer.redeliveryLimit !== undefined) {
        delivery.countRedelivery(consumer.redeliveryLimit).catch((err: unknown) => this.host.error(err as Error));
        return;
      }
      // Called at once (no extra promise per message); a throw or a rejection both land in handlerFailed.
      let result: unknown;
      try {
        result = sub.handler(delivery);
      } catch (err) {
        this.handlerFailed(delivery, err);
        return;
      }
      if (result !== null && typeof result === 'object' && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (err: unknown) => this.handlerFailed(delivery, err));
      }
    } catch (err) {
      this.host.error(err as Error);
    }
  }

  /** The handler should settle its delivery; one that failed without doing so gives it back. */
  private handlerFailed(delivery: Delivery, err: unknown): void {
    this.host.error(err instanceof Error ? err : new Error(String(err)));
    delivery.requeue().catch(() => undefined);
  }

  private close(sub: SubState, timeoutMs: number): Promise<void> {
    if (!sub.closing) {
      sub.closing = (async () => {
        sub.closed = true;
        const consumer = sub.consumer;
        if (consumer?.consumerTag) await consumer.channel.cancel(consumer.consumerTag).catch(() => undefined);
        await this.settled.until(() => (sub.consumer?.inflight ?? 0) === 0, timeoutMs);
        if (consumer) {
          if (sub.consumer === consumer) sub.consumer = undefined;
          consumer.acks.flush(); // the acks of the last turn, before the channel goes
          this.host.session()?.consumers.delete(consumer);
          // Closing the channel gives back what it still holds; an auto-delete broadcast queue goes with it.
          await consumer.channel.close().catch(() => undefined);
        }
        this.subs.delete(sub);
      })();
    }
    return sub.closing;
  }
}
