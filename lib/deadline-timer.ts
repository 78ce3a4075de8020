/**
 * One timer for the deadlines of many operations in flight, instead of a timer each: it is armed
 * for the earliest deadline its owner knows of, and when it fires the owner sweeps what is due
 * and arms it again for the earliest deadline left.
 */
export class DeadlineTimer {
  private timer?: NodeJS.Timeout;
  private at = Infinity;
  private alive: boolean;

  /**
   * @param onDue   the owner's sweep
   * @param options `now`: the clock deadlines are read on (default `performance.now`);
   *                `unref`: the timer does not keep the process alive on its own (until
   *                {@link keepAlive} says otherwise)
   */
  constructor(
    private readonly onDue: () => void,
    private readonly options: { readonly now?: () => number; readonly unref?: boolean } = {},
  ) {
    this.alive = !options.unref;
  }

  /**
   * Whether the timer keeps the process alive (`ref`) while armed, from now on: an owner turns it
   * on while it holds something a caller awaits. Costs a flag on the armed timer, no new timer.
   */
  keepAlive(on: boolean): void {
    if (on === this.alive) return;
    this.alive = on;
    if (on) this.timer?.ref();
    else this.timer?.unref();
  }

  /** Makes the timer fire by `deadline` (no later; it may already be due sooner). */
  armBy(deadline: number): void {
    if (deadline >= this.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.at = deadline;
    const now = this.options.now?.() ?? performance.now();
    // setTimeout fires at once for a delay above 2^31-1 ms; such a timer fires early, and the owner re-arms.
    this.timer = setTimeout(this.fire, Math.min(2 ** 31 - 1, Math.max(0, deadline - now)));
    if (!this.alive) this.timer.unref();
  }

  /** Disarms the timer. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.at = Infinity;
    this.onDue();
  };
}
