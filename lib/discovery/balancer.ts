/**
 * Choosing one instance for a balanced request (docs/discovery.md, "Balancing"). One balancer per
 * bus; its state (turns, weights, latency figures) is kept per message type and instance.
 */

/** How `bus.request(..., { balance })` picks the instance. */
export type BalanceStrategy = 'round-robin' | 'random' | 'weighted' | 'least-latency';

export const BALANCE_STRATEGIES: readonly BalanceStrategy[] = ['round-robin', 'random', 'weighted', 'least-latency'];

/** What the balancer needs of a candidate. */
export interface Candidate {
  /** `<service>/<instanceId>` */
  readonly key: string;
  readonly weight: number;
}

/** Share of least-latency picks that go to a random candidate, so that a recovered instance is measured again. */
const EXPLORE = 0.02;
/** Weight of a new round trip in the moving average. */
const EWMA_ALPHA = 0.2;

/** Round trips and requests in flight of one instance, as this bus saw them. */
interface Figures {
  ewmaMs?: number;
  inFlight: number;
}

export class Balancer {
  private readonly turns = new Map<string, number>();
  /** Smooth weighted round-robin (nginx): current weight per type and instance. */
  private readonly current = new Map<string, Map<string, number>>();
  private readonly figures = new Map<string, Figures>();

  constructor(private readonly random: () => number = Math.random) {}

  /** One of `candidates` (non-empty, in a stable order) for a request of `type`. */
  pick<C extends Candidate>(strategy: BalanceStrategy, type: string, candidates: readonly C[]): C {
    if (candidates.length === 1) return candidates[0];
    switch (strategy) {
      case 'round-robin': {
        const turn = this.turns.get(type) ?? 0;
        this.turns.set(type, turn + 1);
        return candidates[turn % candidates.length];
      }
      case 'random':
        return candidates[Math.floor(this.random() * candidates.length)];
      case 'weighted':
        return this.weighted(type, candidates);
      case 'least-latency':
        return this.leastLatency(candidates);
    }
  }

  /**
   * Each pick adds every candidate's weight to its current value and takes the highest, which
   * then gives back the total: over any run of picks the split matches the weights to within one
   * request per instance, with the picks of one instance spread out, not bunched.
   */
  private weighted<C extends Candidate>(type: string, candidates: readonly C[]): C {
    let current = this.current.get(type);
    if (!current) this.current.set(type, (current = new Map()));
    let total = 0;
    let best: C | undefined;
    let bestValue = -Infinity;
    for (const c of candidates) {
      const value = (current.get(c.key) ?? 0) + c.weight;
      current.set(c.key, value);
      total += c.weight;
      if (value > bestValue) (best = c), (bestValue = value);
    }
    current.set(best!.key, bestValue - total);
    if (current.size > candidates.length * 2) for (const k of current.keys()) if (!candidates.some((c) => c.key === k)) current.delete(k);
    return best!;
  }

  /**
   * The lowest moving average of round trips (an instance not measured yet counts as 0), fewer
   * requests in flight breaking ties. A small share of picks is random (exploration), so an
   * instance that was slow and recovered is measured again.
   */
  private leastLatency<C extends Candidate>(candidates: readonly C[]): C {
    if (this.random() < EXPLORE) return candidates[Math.floor(this.random() * candidates.length)];
    let best = candidates[0];
    let bestMs = Infinity;
    let bestInFlight = Infinity;
    for (const c of candidates) {
      const f = this.figures.get(c.key);
      const ms = f?.ewmaMs ?? 0;
      const inFlight = f?.inFlight ?? 0;
      if (ms < bestMs || (ms === bestMs && inFlight < bestInFlight)) (best = c), (bestMs = ms), (bestInFlight = inFlight);
    }
    return best;
  }

  /** A request to `key` was sent. */
  sent(key: string): void {
    const f = this.figures.get(key);
    if (f) f.inFlight++;
    else this.figures.set(key, { inFlight: 1 });
  }

  /** The request to `key` ended after `ms` (a reply, an error reply, or a timeout). */
  ended(key: string, ms: number): void {
    const f = this.figures.get(key);
    if (!f) return;
    f.inFlight = Math.max(0, f.inFlight - 1);
    f.ewmaMs = f.ewmaMs === undefined ? ms : f.ewmaMs + EWMA_ALPHA * (ms - f.ewmaMs);
  }

  /** The moving average of round trips to `key`, ms; undefined before the first. */
  latencyOf(key: string): number | undefined {
    return this.figures.get(key)?.ewmaMs;
  }

  /** `key` is gone: forget its figures. */
  forget(key: string): void {
    this.figures.delete(key);
    for (const m of this.current.values()) m.delete(key);
  }
}
