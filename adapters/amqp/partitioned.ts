/**
 * Per-key order on RabbitMQ (SubscriptionSpec.partitions; docs/scaling.md, "Per-key order"): one
 * subscription (subscriptions.ts) per partition queue of partition-topology.ts, each on a channel
 * of its own with prefetch 1, each single-active-consumer: the broker hands a partition to one
 * consumer of the group at a time, in order, and to the next one when that consumer goes (its
 * unacked message back first). Retries wait in place (a delay queue would let the partition's
 * next messages overtake): lib/adapter-kit/in-place-retry.ts.
 *
 * Spreading: single active consumer gives every partition to the consumer that came first. So each
 * consumer looks every `balanceEveryMs` at how many consumers the group has (the consumer count of
 * the group's members queue) and, when it is active on more than its share (partitions / consumers,
 * rounded up), releases the excess: at the ack of that partition's current message it cancels its consumer
 * first (the broker makes the next waiting consumer active; the message is handled already, only
 * its ack is outstanding), then acks, then consumes the partition again at the back of the line.
 */
import { InPlaceRetryDelivery } from '../../lib/adapter-kit';
import type { Delivery, DeliveryHandler, Subscription, SubscriptionSpec } from '../../lib/transport';
import { withDelivery } from '../../lib/transport-wrapper';
import { membersTopology, partitionTopologies } from './partition-topology';
import type { Subscriptions } from './subscriptions';
import type { TopologyOptions } from './topology';

/** A consumer is active on a partition that delivered to it this recently. */
const ACTIVE_WINDOW_MS = 3000;

export interface PartitionHost {
  readonly subscriptions: Subscriptions;
  readonly topology: TopologyOptions;
  /** The consumer count of a queue, or undefined (not connected, no such queue). */
  consumerCount(queue: string): Promise<number | undefined>;
  error(err: Error): void;
}

interface Partition {
  readonly index: number;
  sub?: Subscription;
  lastDelivery: number;
  /** Release at the next ack (the balancer chose it). */
  release: boolean;
}

export class PartitionedSubscription implements Subscription {
  private readonly partitions: Partition[] = [];
  private members?: Subscription;
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly host: PartitionHost,
    private readonly spec: SubscriptionSpec,
    private readonly handler: DeliveryHandler,
    private readonly balanceEveryMs = 1000,
  ) {}

  async open(): Promise<this> {
    const topologies = partitionTopologies(this.spec, this.host.topology);
    // A different order per consumer: consumers that start together share the partitions at once.
    const order = topologies.map((_, i) => i).sort(() => Math.random() - 0.5);
    for (const i of order) this.partitions[i] = { index: i, lastDelivery: 0, release: false };
    try {
      this.members = await this.host.subscriptions.add(this.spec, (d) => d.ack(), false, { topology: membersTopology(this.spec) });
      for (const i of order) await this.consume(this.partitions[i]);
    } catch (err) {
      await this.close();
      throw err;
    }
    this.timer = setInterval(() => void this.balance().catch((err) => this.host.error(err as Error)), this.balanceEveryMs).unref();
    return this;
  }

  /** What this consumer is active on now, by partition index (deliveries within the last few seconds). */
  active(now = Date.now()): number[] {
    return this.partitions.filter((p) => now - p.lastDelivery < ACTIVE_WINDOW_MS).map((p) => p.index);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.partitions.map((p) => p?.sub?.close()), this.members?.close()]);
  }

  private async consume(p: Partition): Promise<void> {
    const topology = partitionTopologies(this.spec, this.host.topology)[p.index];
    const onDelivery: DeliveryHandler = (d) => {
      p.lastDelivery = Date.now();
      return this.handler(new InPlaceRetryDelivery(this.releasing(p, d), onRetry, { requeueInPlace: true }));
    };
    const onRetry: DeliveryHandler = (d) => this.handler(d);
    p.sub = await this.host.subscriptions.add(this.spec, onDelivery, false, { topology });
  }

  /** `d`, whose ack releases the partition first when the balancer chose it. */
  private releasing(p: Partition, d: Delivery): Delivery {
    const ack = () => d.ack();
    const release = async (): Promise<void> => {
      if (!p.release || this.closed) return ack();
      p.release = false;
      p.lastDelivery = 0;
      const sub = p.sub!;
      p.sub = undefined;
      // The cancel is written before the ack (acks leave at the end of the turn): the next consumer
      // becomes active first, so this partition's next message cannot reach this one again before it.
      const closing = sub.close();
      await ack();
      await closing;
      if (!this.closed) await this.consume(p).catch((err) => this.host.error(err as Error));
    };
    return withDelivery(d, { ack: release });
  }

  private async balance(): Promise<void> {
    if (this.closed) return;
    const consumers = await this.host.consumerCount(membersTopology(this.spec).queues[0].name);
    if (!consumers || consumers < 2) return;
    const share = Math.ceil(this.partitions.length / consumers);
    const mine = this.active();
    if (mine.length <= share || this.partitions.some((p) => p.release)) return;
    // What is over the share goes now; a consumer it reaches that is over its share passes it on at its next look.
    for (const i of mine.sort(() => Math.random() - 0.5).slice(share)) this.partitions[i].release = true;
  }
}
