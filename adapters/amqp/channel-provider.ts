/**
 * The plain channels of one connection, one per role, opened on first use and opened again after
 * a refusal closed one: one for declarations made on the fly, one for request/reply (direct
 * reply-to needs the request to be published on the channel that consumes the replies), one for
 * replies to direct reply-to. Each role's channel also carries its write state: after a write
 * that filled the channel's buffer, writers wait for its 'drain' (or its close). Owned by the
 * connection's session (session.ts) and ended with it: nothing here outlives the connection.
 */
import type { Channel, ChannelModel } from 'amqplib';
import { NotConnectedError } from '../../lib/errors';

export type ChannelRole = 'topology' | 'request' | 'reply';

/** How a role's channel is set up. */
export interface ChannelSetup {
  /** The channel's 'error' (a refusal; the channel closes after it). */
  onError(err: Error): void;
  /** Runs once the channel is open, before anyone gets it (e.g. consume direct reply-to). */
  prepare?(ch: Channel): Promise<void>;
}

class Slot {
  /** The channel being opened or open. */
  pending: Promise<Channel> | undefined = undefined;
  /** The channel once open and prepared, for the synchronous path. */
  open: Channel | undefined = undefined;
  /** Writers waiting for the channel's buffer to drain; undefined while it is not full. */
  waiters: Array<() => void> | undefined = undefined;

  release(): void {
    const waiters = this.waiters;
    this.waiters = undefined;
    if (waiters) for (const w of waiters) w();
  }
}

export class ChannelProvider {
  private readonly slots = new Map<ChannelRole, Slot>();
  private ended = false;

  constructor(
    private readonly conn: ChannelModel,
    private readonly setups: Readonly<Record<ChannelRole, ChannelSetup>>,
  ) {}

  /** The role's channel, opened when there is none; rejects with NotConnectedError once the connection ended. */
  get(role: ChannelRole): Promise<Channel> {
    if (this.ended) return Promise.reject(new NotConnectedError('Not connected to RabbitMQ'));
    const slot = this.slot(role);
    if (!slot.pending) {
      const setup = this.setups[role];
      const p: Promise<Channel> = (async () => {
        const ch = await this.conn.createChannel();
        ch.on('error', (err: Error) => setup.onError(err));
        ch.on('close', () => {
          if (slot.pending === p) {
            slot.pending = undefined;
            slot.open = undefined;
          }
          slot.release();
        });
        ch.on('drain', () => {
          if (slot.open === ch) slot.release();
        });
        await setup.prepare?.(ch);
        return ch;
      })();
      slot.pending = p;
      p.then(
        (ch) => {
          if (slot.pending === p) slot.open = ch;
        },
        () => {
          if (slot.pending === p) slot.pending = undefined;
        },
      );
    }
    return slot.pending;
  }

  /** The role's channel when it is open now (no promise, no turn of the event loop). */
  open(role: ChannelRole): Channel | undefined {
    return this.slots.get(role)?.open;
  }

  /** True while a write to the role's channel waits for its 'drain'. */
  full(role: ChannelRole): boolean {
    return this.slots.get(role)?.waiters !== undefined;
  }

  /** Records a write to `ch`: `ok` false (its buffer is full) holds the role's writers until it drains. */
  wrote(role: ChannelRole, ch: Channel, ok: boolean): void {
    const slot = this.slots.get(role);
    if (!ok && slot?.open === ch) slot.waiters ??= [];
  }

  /** Resolves once the role's channel is not full (drained, closed, or the connection ended). */
  async writable(role: ChannelRole): Promise<void> {
    const slot = this.slots.get(role);
    if (!slot) return;
    while (slot.waiters) await new Promise<void>((resolve) => slot.waiters!.push(resolve));
  }

  /** The connection ended: no channel is handed out any more, and every waiting writer goes on (to fail). */
  end(): void {
    this.ended = true;
    for (const slot of this.slots.values()) {
      slot.pending = undefined;
      slot.open = undefined;
      slot.release();
    }
  }

  private slot(role: ChannelRole): Slot {
    let slot = this.slots.get(role);
    if (!slot) this.slots.set(role, (slot = new Slot()));
    return slot;
  }
}
