/**
 * Write coalescing on one connection's socket (reached through amqplib-internals.ts).
 *
 * amqplib writes every frame batch (a publish, an ack) to the socket as its own write: a system
 * call each, a quarter of the CPU of a busy client. `coalesce()` is called before Courier writes
 * frames: it corks the socket for the rest of this turn of the event loop, so that what is written
 * in it (the acks of a batch of deliveries, a window of publishes) leaves in one writev. The
 * uncork runs in the check phase right after amqplib's own write-out (its Mux flushes in a
 * setImmediate that is queued, through a 'readable' tick, after the write), so nothing waits for
 * another turn. Without a corkable socket it does nothing.
 */
import type { CorkableSocket } from './amqplib-internals';

export class WriteCoalescer {
  /** The socket while corked by coalesce(), until its uncork. */
  private corked?: CorkableSocket;

  /**
   * @param flushAcks sends the acks asked for in this turn (AckBatcher#flush of every consumer of
   *   the connection); true when it sent any.
   */
  constructor(
    private readonly socket: CorkableSocket | undefined,
    private readonly flushAcks: () => boolean,
  ) {
    // amqplib's Mux writes everything its channels queued, frame by frame, as soon as a full
    // socket drains: uncorked, each is a system call. Cork first (this listener runs before the
    // Mux's), so that burst leaves in one writev too.
    socket?.prependListener?.('drain', this.coalesce);
  }

  /** Corks the socket until the check phase of this turn (see the module comment). */
  readonly coalesce = (): void => {
    if (this.corked !== undefined) return;
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) return;
    socket.cork();
    this.corked = socket;
    process.nextTick(this.afterWriteTick);
  };

  /** A second tick: queued behind the stream's 'readable' tick of the write that follows coalesce(). */
  private readonly afterWriteTick = (): void => {
    process.nextTick(this.scheduleUncork);
  };

  private readonly scheduleUncork = (): void => {
    setImmediate(this.uncork);
  };

  /**
   * The acks asked for in this turn join the corked writes: a server's reply and the request's
   * ack then leave in one write, not two (the ack batcher's own flush, also in this check phase,
   * would come after the uncork). amqplib's mux takes a channel's frames to the socket in a
   * setImmediate scheduled on the stream's 'readable' tick, so when acks were flushed here the
   * uncork waits for that: a tick, then the check phase of the next turn.
   */
  private readonly uncork = (): void => {
    if (this.flushAcks()) process.nextTick(this.releaseAfterMux);
    else this.release();
  };

  private readonly releaseAfterMux = (): void => {
    setImmediate(this.release);
  };

  private readonly release = (): void => {
    const socket = this.corked;
    this.corked = undefined;
    socket?.uncork();
  };
}
