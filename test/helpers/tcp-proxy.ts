import net from 'node:net';

/**
 * A TCP proxy on a random loopback port in front of a broker, that can cut every connection on
 * command: the connection-cut fault of the reliability tests, without touching the broker.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Every forwarded connection: the client side and the broker side. */
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; drop: () => void; dead: boolean }>();
  private refusing = false;
  private stalled = false;
  /** Armed by cutOnClientData(): what to look for in the client's bytes, and how often still. */
  private trap?: { marker: Buffer; refuseMs: number; left: number };
  /** Connections cut so far. */
  cuts = 0;
  /** Chunks read from clients (on loopback, with Nagle off: about one per socket write of theirs). */
  clientChunks = 0;
  /** Sees every chunk a client writes, with its socket (one per connection), before it is forwarded. */
  onClientData?: (chunk: Buffer, client: net.Socket) => void;
  port = 0;

  constructor(private readonly targetHost: string, private readonly targetPort: number) {}

  async start(): Promise<number> {
    this.server = net.createServer((client) => {
      if (this.refusing) return client.destroy();
      const upstream = net.connect(this.targetPort, this.targetHost);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const pair = { client, upstream, drop: () => drop(), dead: false };
      this.pairs.add(pair);
      const drop = () => {
        // While stalled, one side closing is not told to the other (a partition carries no FIN/RST
        // either): the other side stays open until resume() or cut().
        if (this.stalled && this.pairs.has(pair)) {
          pair.dead = true;
          return;
        }
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
        this.pairs.delete(pair);
      };
      // Registered before pipe(): a chunk that springs the trap is cut before it is forwarded.
      client.on('data', (chunk: Buffer) => {
        this.clientChunks++;
        this.onClientData?.(chunk, client);
        const trap = this.trap;
        if (trap && chunk.includes(trap.marker)) {
          if (--trap.left <= 0) this.trap = undefined;
          this.cut(trap.refuseMs);
        }
      });
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      // While stalled, a new connection is accepted (and reaches the broker) but carries nothing.
      if (this.stalled) {
        client.pause();
        upstream.pause();
      } else {
        client.pipe(upstream);
        upstream.pipe(client);
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Destroys every open connection now; with `refuseMs`, refuses new ones for that long. */
  cut(refuseMs = 0): void {
    this.cuts++;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.pairs.clear();
    if (refuseMs > 0) {
      this.refusing = true;
      setTimeout(() => (this.refusing = false), refuseMs).unref();
    }
  }

  /**
   * Cuts every connection (as {@link cut}, refusing new ones for `refuseMs`) the moment a client
   * writes a chunk that contains `marker`, before that chunk reaches the broker: a cut in the
   * middle of a protocol step, e.g. a queue's declaration or a SUBSCRIBE. `times` traps in a row
   * (default 1; Infinity: until {@link disarm}).
   */
  cutOnClientData(marker: string | Buffer, options: { refuseMs?: number; times?: number } = {}): void {
    this.trap = { marker: Buffer.from(marker), refuseMs: options.refuseMs ?? 0, left: options.times ?? 1 };
  }

  disarm(): void {
    this.trap = undefined;
  }

  /**
   * Stops forwarding bytes in both directions, on open connections and on new ones, without
   * closing any socket: a network that silently drops everything (a partition, a dead NAT entry).
   * Both ends see an open connection; only heartbeats (or timeouts) can tell that it is dead.
   * What is written meanwhile waits in the kernel's buffers and the paused streams, and when one
   * side closes its socket meanwhile, the other side is not told until resume() (or cut()).
   */
  stall(): void {
    if (this.stalled) return;
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Forwards again what stall() held back (pipe() resumes the paused streams). */
  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    for (const pair of [...this.pairs]) {
      if (pair.dead) pair.drop(); // a side closed during the stall: now the other side learns it
      else {
        pair.client.pipe(pair.upstream);
        pair.upstream.pipe(pair.client);
      }
    }
  }

  get isStalled(): boolean {
    return this.stalled;
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
