/**
 * The settle-once state machine of a delivery (`Delivery`: "settle it exactly once; later settles
 * are no-ops"), written once for every adapter.
 *
 *   OPEN --settle(action)--> SETTLING --action resolved--> SETTLED
 *                               |  \--markSettled() (inside the action)--> SETTLED
 *                               \--action threw, not marked--> OPEN (it may be settled again)
 *
 * While SETTLING or SETTLED every settle is a no-op that resolves at once. An action that throws
 * has not settled the message (the copy of a retry or a dead letter was not confirmed, so the
 * original is still unacked): the delivery is OPEN again and the error goes to the caller. An
 * action that gave the message back to the broker before failing (a nack) calls
 * {@link SettleOnce.markSettled} first: the delivery stays SETTLED.
 */

/** The states of {@link SettleOnce}. */
export const SettleState = { open: 0, settling: 1, settled: 2 } as const;
export type SettleState = (typeof SettleState)[keyof typeof SettleState];

/**
 * What every settle of a {@link SettleOnce} returns when it completed synchronously (or was a
 * no-op): one resolved promise for all of them. A caller may compare against it to skip waiting
 * (the bus does, sparing two promises per message); any other promise is awaited as usual.
 */
export const SETTLED_AT_ONCE: Promise<void> = Promise.resolve();

/**
 * Base class of an adapter's delivery class. Per delivery it adds one field, no closure: a
 * delivery class keeps its methods on the prototype.
 */
export abstract class SettleOnce {
  #state: SettleState = SettleState.open;

  /** Where the delivery is (see the module comment). */
  get settleState(): SettleState {
    return this.#state;
  }

  /** True until a settle began. */
  get isOpen(): boolean {
    return this.#state === SettleState.open;
  }

  /**
   * Called once, when the delivery becomes SETTLED (the adapter frees its prefetch slot, wakes a
   * close() waiting for in-flight deliveries). Default: nothing.
   */
  protected onSettled(): void {}

  /**
   * Runs `action` if the delivery is OPEN; else resolves at once without running it. A
   * synchronous action that returns nothing costs no promise (the same resolved one is returned).
   */
  protected settle(action: () => void | Promise<void>): Promise<void> {
    if (this.#state !== SettleState.open) return SETTLED_AT_ONCE;
    this.#state = SettleState.settling;
    let result: void | Promise<void>;
    try {
      result = action();
    } catch (err) {
      this.#failed();
      return Promise.reject(err);
    }
    if (result === undefined) {
      this.markSettled();
      return SETTLED_AT_ONCE;
    }
    return result.then(
      () => this.markSettled(),
      (err: unknown) => {
        this.#failed();
        throw err;
      },
    );
  }

  /** The delivery is settled from now on, whatever the running action does next. Idempotent. */
  protected markSettled(): void {
    if (this.#state === SettleState.settled) return;
    this.#state = SettleState.settled;
    this.onSettled();
  }

  #failed(): void {
    if (this.#state === SettleState.settling) this.#state = SettleState.open;
  }
}
