/**
 * The one backoff of Courier: exponential, capped, with jitter below the cap. Used by the bus's
 * retries, the outbox relay and the adapters' reconnects.
 */

export interface BackoffPolicy {
  /** The delay before the second attempt, before jitter (ms, >= 0). */
  readonly initialDelayMs: number;
  /** The largest delay, before jitter (ms): no delay is ever longer. */
  readonly maxDelayMs: number;
  /** Each delay is the previous one times this (>= 1). */
  readonly factor: number;
  /**
   * How much of the delay is random, 0..1: the delay is uniformly distributed in
   * `[base * (1 - jitter), base]`. 0 is no jitter; 0.5 (the bus's retries) is "half fixed, half
   * random", so a group's consumers retrying the same failure do not come back at one instant.
   */
  readonly jitter: number;
}

/**
 * The delay after failed attempt `attempt` (1-based: after the first failure, `attempt` is 1),
 * in whole ms:
 * `base = min(maxDelayMs, initialDelayMs * factor ** (attempt - 1))`, then
 * `round(base * (1 - jitter) + base * jitter * random())`.
 * Bounds: `round(base * (1 - jitter)) <= delay <= base <= maxDelayMs`. `random` returns 0..1
 * (default `Math.random`); an `attempt` below 1 counts as 1.
 */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const { initialDelayMs, maxDelayMs, factor, jitter } = policy;
  const n = Math.max(0, Math.floor(attempt) - 1);
  // factor ** n grows to Infinity; 0 * Infinity would be NaN, so the cap is applied first.
  const growth = factor ** n;
  const base = initialDelayMs === 0 ? 0 : Math.min(maxDelayMs, growth === Infinity ? maxDelayMs : initialDelayMs * growth);
  return Math.round(base * (1 - jitter) + base * jitter * random());
}
