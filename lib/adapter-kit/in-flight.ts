/**
 * Waiting until in-flight work is done, with a timeout: what close() does with the deliveries a
 * handler still holds and the publishes not yet confirmed.
 */

/**
 * Wakes the callers of {@link Wakeup.until} when something changed, so they check their condition
 * again. One wakeup per owner, notified wherever the condition may have become true (a settle, a
 * confirm): no polling loop.
 */
export class Wakeup {
  #waiters: Array<() => void> = [];

  /** Wakes every current waiter (they re-check their condition). Cheap when nobody waits. */
  notify(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /**
   * Resolves `true` once `done()` returns true (checked now and after each {@link notify}), or
   * `false` once `timeoutMs` passed first. Never rejects. Its timer keeps the process alive: a
   * caller awaits it (a close() waiting for a handler that never settles must still resolve, not
   * end with the process because nothing else is left to run).
   */
  until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    if (!(timeoutMs > 0)) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const waiter = () => {
        if (!done()) {
          this.#waiters.push(waiter);
          return;
        }
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(done());
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}

/**
 * A count of operations in flight (deliveries held, publishes routing) and a wait for it to be 0.
 * `begin()` before an operation, `end()` once after it, whatever its outcome.
 */
export class InFlight {
  #count = 0;
  readonly #wakeup = new Wakeup();

  /** Operations begun and not yet ended. */
  get size(): number {
    return this.#count;
  }

  begin(): void {
    this.#count++;
  }

  /** Ends one operation; an end() without a begin() is ignored (the count never goes below 0). */
  end(): void {
    if (this.#count === 0) return;
    if (--this.#count === 0) this.#wakeup.notify();
  }

  /** Runs `work` counted as in flight until its promise settles; returns that promise. */
  track<T>(work: Promise<T>): Promise<T> {
    this.begin();
    return work.finally(() => this.end());
  }

  /** Resolves `true` once nothing is in flight, `false` when `timeoutMs` passed first. Never rejects. */
  idle(timeoutMs: number): Promise<boolean> {
    return this.#wakeup.until(() => this.#count === 0, timeoutMs);
  }
}
