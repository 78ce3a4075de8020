/**
 * The in-process broker of the memory transport: queues, their consumers, and the deliveries it
 * hands them (memory-transport.ts is the Transport over it).
 */
import { DeadLetterInfo, Delivery, DeliveryHandler, Headers, ReplyMessage, SubscriptionSpec } from '../../lib/transport';
import { deadLetterHeaders, LinkedList, setDeliveryFields, SettleOnce, Wakeup } from '../../lib/adapter-kit';
import type { DeliveryFields, Linked } from '../../lib/adapter-kit';
import { topicMatcher } from '../../lib/topic';

export interface MemoryBrokerOptions {
  /**
   * A publish waits while a queue it routes to holds this many ready messages (back-pressure,
   * so a fast publisher cannot exhaust memory). Default 10,000.
   */
  readonly maxQueueLength?: number;
}

export interface StoredMessage {
  readonly topic: string;
  readonly body: Buffer;
  readonly headers: Record<string, string>;
  redelivered: boolean;
  readonly replyTo?: (reply: ReplyMessage) => void;
  /** A request's deadline (epoch ms): dropped unhandled after it, as AMQP's `expiration` does. */
  readonly expiresAt?: number;
}

/** A message handed to a consumer, until settled. */
export interface Held extends Linked<Held> {
  readonly m: StoredMessage;
}

export interface Consumer {
  readonly queue: Queue;
  /** The subscription: its group and name go into a dead letter's `courierdeadqueue`. */
  readonly spec: SubscriptionSpec;
  /** Told of each settle (the transport's close() waits for them). */
  readonly settled: Wakeup;
  readonly prefetch: number;
  readonly weight: number;
  readonly handler: DeliveryHandler;
  /** What it was handed and has not settled, oldest first (a list, not a Set: see lib/linked-list.ts). */
  readonly unacked: LinkedList<Held>;
  delivered: number;
  active: boolean;
}

export class Queue {
  readonly ready: StoredMessage[] = [];
  readonly consumers: Consumer[] = [];
  readonly waiters: Array<() => void> = [];
  dead?: Queue;
  /** An instance queue: deleted when it has had no consumer this long (ms). */
  expiresAfterMs?: number;
  expiry?: NodeJS.Timeout;
  constructor(
    readonly name: string,
    readonly matches: (topic: string) => boolean,
    readonly exclusive: boolean,
  ) {}
}

/**
 * An in-process broker: the embedded default. Queues per group and subscription, bound by
 * pattern, that outlive their consumers; dead-letter queues; prefetch; back-pressure. It has no
 * module-level state: two brokers share nothing.
 */
export class MemoryBroker {
  private readonly queues = new Map<string, Queue>();
  private readonly maxQueueLength: number;
  private exclusiveSeq = 0;
  /** The next turn of the event loop, while publishers wait for it. */
  private turn?: Promise<void>;
  private turnStarted = performance.now();
  /** targetsOf's answers by topic; cleared whenever a queue is added or deleted. */
  private readonly targets = new Map<string, readonly Queue[]>();
  /** Queues whose dispatch waits for the next turn (turnIfDue). */
  private readonly deferred = new Set<Queue>();

  constructor(options: MemoryBrokerOptions = {}) {
    this.maxQueueLength = options.maxQueueLength ?? 10_000;
  }

  /**
   * Queue name for a subscription: `<group>.<name>`, an instance's `<instance>.<name>` (kept
   * while its instance is away, up to its expiry); other broadcasts get a private one.
   */
  queueFor(spec: SubscriptionSpec): Queue {
    const owner = spec.group ?? spec.instance;
    const name = owner ? `${owner}.${spec.name}` : `amq.gen.${spec.name}.${++this.exclusiveSeq}`;
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, topicMatcher(spec.pattern), !owner);
      q.dead = new Queue(`${name}.dead`, () => false, false);
      // A dead letter dead-lettered again (by a dead-letter consumer) stays in the dead queue, as on AMQP.
      q.dead.dead = q.dead;
      if (!spec.group && spec.instance) q.expiresAfterMs = spec.expiresAfterMs ?? 60 * 60_000;
      this.queues.set(name, q);
      this.targets.clear();
    }
    return q;
  }

  deleteQueue(q: Queue): void {
    this.queues.delete(q.name);
    this.targets.clear();
  }

  /**
   * Routes to every matching queue and returns how many took the message: at once (a number),
   * which costs no promise (each one costs the promise hooks of AsyncLocalStorage too,
   * docs/benchmarks.md); a promise only where a matching queue is full, settled once it has room
   * and the message went in. A publisher then waits for {@link MemoryBroker.turnIfDue}.
   */
  route(message: StoredMessage): number | Promise<number> {
    const targets = this.targetsOf(message.topic);
    for (const q of targets) if (q.ready.length >= this.maxQueueLength) return this.routeOnceRoom(targets, message);
    return this.enqueueAll(targets, message);
  }

  /**
   * The turn of the event loop a publisher waits for before its publish resolves, when one is
   * due; else undefined. Deliveries run as microtasks; a publisher looping on `await publish()`
   * would never let timers (retry back-offs, a progress bar) run. A broker's socket yields; so
   * does this one: after 5 ms without a turn of the event loop, every publish resolves at the
   * same next turn (its message is routed already, in order), and dispatch() hands nothing more
   * to a consumer until that turn, so that handlers publishing without awaiting cannot keep the
   * loop from turning either. All waiting publishers share one promise.
   */
  turnIfDue(): Promise<void> | undefined {
    return this.turnDue() ? this.nextTurn() : undefined;
  }

  private nextTurn(): Promise<void> {
    this.turn ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        this.turn = undefined;
        this.turnStarted = performance.now();
        const deferred = [...this.deferred];
        this.deferred.clear();
        for (const q of deferred) this.dispatch(q);
        resolve();
      }),
    );
    return this.turn;
  }

  /** Waits until every one of `targets` has room (or is deleted), then routes. */
  private async routeOnceRoom(targets: readonly Queue[], message: StoredMessage): Promise<number> {
    for (const q of targets) {
      while (q.ready.length >= this.maxQueueLength && this.queues.get(q.name) === q) {
        await new Promise<void>((resolve) => q.waiters.push(resolve));
      }
    }
    return this.enqueueAll(targets, message);
  }

  /** A turn of the event loop is due (turnIfDue): one is pending, or 5 ms passed without one. */
  private turnDue(): boolean {
    return this.turn !== undefined || performance.now() - this.turnStarted > 5;
  }

  /** The queues bound to `topic`, matched once per topic until a queue is added or deleted. */
  private targetsOf(topic: string): readonly Queue[] {
    let targets = this.targets.get(topic);
    if (targets !== undefined) return targets;
    const matched: Queue[] = [];
    for (const q of this.queues.values()) if (q.matches(topic)) matched.push(q);
    // Bounded: a publisher of ever new topics must not grow it without end.
    if (this.targets.size >= 10_000) this.targets.clear();
    this.targets.set(topic, (targets = matched));
    return targets;
  }

  /**
   * `message` (a publish's own copy, not redelivered) in each of `targets`, a copy of it in each
   * but the first: each queue's copy has a `redelivered` flag of its own. Returns how many.
   */
  private enqueueAll(targets: readonly Queue[], message: StoredMessage): number {
    for (let i = 0; i < targets.length; i++) this.enqueue(targets[i], i === 0 ? message : { ...message, redelivered: false });
    return targets.length;
  }

  enqueue(q: Queue, m: StoredMessage, front = false): void {
    if (front) q.ready.unshift(m);
    else q.ready.push(m);
    this.dispatch(q);
  }

  attach(c: Consumer): void {
    if (c.queue.expiry) clearTimeout(c.queue.expiry);
    c.queue.expiry = undefined;
    c.queue.consumers.push(c);
    this.dispatch(c.queue);
  }

  /** Detaches a consumer; what it held unacked goes back to the front of its queue. */
  detach(c: Consumer): void {
    c.active = false;
    const list = c.queue.consumers;
    const i = list.indexOf(c);
    if (i >= 0) list.splice(i, 1);
    const held = c.unacked.toArray();
    for (const h of held) c.unacked.delete(h);
    for (let k = held.length - 1; k >= 0; k--) {
      held[k].m.redelivered = true;
      c.queue.ready.unshift(held[k].m);
    }
    if (c.queue.exclusive && list.length === 0) this.deleteQueue(c.queue);
    else this.dispatch(c.queue);
    const q = c.queue;
    if (q.expiresAfterMs !== undefined && list.length === 0 && !q.expiry) {
      q.expiry = setTimeout(() => {
        q.expiry = undefined;
        if (q.consumers.length === 0 && this.queues.get(q.name) === q) this.deleteQueue(q);
      }, q.expiresAfterMs);
      q.expiry.unref();
    }
  }

  /** Hands ready messages to consumers with room, the least loaded relative to its weight first. */
  dispatch(q: Queue): void {
    if (q.ready.length > 0 && this.turnDue()) {
      this.deferred.add(q);
      void this.nextTurn();
    }
    while (q.ready.length > 0 && !this.deferred.has(q)) {
      let best: Consumer | undefined;
      for (const c of q.consumers) {
        if (!c.active || c.unacked.size >= c.prefetch) continue;
        if (!best || c.delivered / c.weight < best.delivered / best.weight) best = c;
      }
      if (!best) break;
      const m = q.ready.shift()!;
      if (m.expiresAt !== undefined && m.expiresAt <= Date.now()) continue;
      const held: Held = { m, prev: undefined, next: undefined };
      best.unacked.add(held);
      best.delivered++;
      const consumer = best;
      queueMicrotask(() => this.deliver(consumer, held));
    }
    while (q.waiters.length > 0 && q.ready.length < this.maxQueueLength) q.waiters.shift()!();
  }

  /** Runs in a microtask of its own (dispatch). */
  private deliver(c: Consumer, held: Held): void {
    const delivery = new MemoryDelivery(this, c, held);
    // A handler that throws or rejects without settling: give the message back rather than lose it.
    const requeue = (): void => void delivery.requeue();
    let result: unknown;
    try {
      result = c.handler(delivery);
    } catch {
      requeue();
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, requeue);
    }
  }
}

// Its data fields (merged into the class): lib/adapter-kit/delivery-fields.ts.
interface MemoryDelivery extends DeliveryFields<StoredMessage> {}
/**
 * One delivery of a memory queue: settled once (lib/adapter-kit/settle-once.ts), and only while
 * its consumer still holds it (a detached consumer's messages went back to the queue already).
 */
class MemoryDelivery extends SettleOnce implements Delivery {
  constructor(
    private readonly broker: MemoryBroker,
    private readonly consumer: Consumer,
    private readonly held: Held,
  ) {
    super();
    const m = held.m;
    setDeliveryFields(this, m.topic, m.body, m.headers, Number(m.headers[Headers.attempt]) || 1, m.redelivered, !!m.replyTo, m);
  }

  ack(): Promise<void> {
    return this.settle(() => this.release(undefined));
  }

  requeue(): Promise<void> {
    return this.settle(() => this.release(() => this.broker.enqueue(this.consumer.queue, { ...this.raw, redelivered: true }, true)));
  }

  retry(delayMs: number): Promise<void> {
    return this.settle(() =>
      this.release(() => {
        const m = this.raw;
        const copy = { ...m, redelivered: false, headers: { ...m.headers, [Headers.attempt]: String(this.attempt + 1) } };
        setTimeout(() => this.broker.enqueue(this.consumer.queue, copy), Math.max(0, delayMs)).unref();
      }),
    );
  }

  deadLetter(info: DeadLetterInfo): Promise<void> {
    return this.settle(() =>
      this.release(() => {
        const { group, name } = this.consumer.spec;
        const headers = deadLetterHeaders(this.raw.headers, { ...info, group, name, attempt: this.attempt });
        this.broker.enqueue(this.consumer.queue.dead!, { ...this.raw, redelivered: false, headers });
      }),
    );
  }

  async reply(reply: ReplyMessage): Promise<void> {
    this.raw.replyTo?.({ body: Buffer.from(reply.body), headers: { ...reply.headers } });
  }

  protected override onSettled(): void {
    this.consumer.settled.notify();
  }

  /** Frees the consumer's slot and runs `then`, if the consumer still holds this message. */
  private release(then: (() => void) | undefined): void {
    // Not held any more: its consumer was detached and the message went back to the queue.
    if (!this.consumer.unacked.delete(this.held)) return;
    then?.();
    this.broker.dispatch(this.consumer.queue);
  }
}
