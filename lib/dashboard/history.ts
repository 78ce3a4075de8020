/**
 * The last N points of the charted figures, in a ring of fixed size: what a page opened now
 * draws before the live frames come. One per dashboard server, whatever the number of pages.
 */
import type { Figures, FleetFrame } from './fleet';

/** One second's figures: per type and per handler, the {@link Figures} as a fixed tuple. */
export interface HistoryPoint {
  readonly at: number;
  readonly types: Readonly<Record<string, FigureTuple>>;
  readonly handlers: Readonly<Record<string, FigureTuple>>;
}

/** [publishRate, consumeRate, backlog, inFlight, timeToDrainMs, p50, p99]. */
export type FigureTuple = readonly [number, number, number | null, number, number | null, number | null, number | null];

export const FIGURES = ['publishRate', 'consumeRate', 'backlog', 'inFlight', 'timeToDrainMs', 'p50', 'p99'] as const;

export function tupleOf(f: Figures): FigureTuple {
  const r = (n: number) => Math.round(n * 100) / 100;
  return [r(f.publishRate), r(f.consumeRate), f.backlog, f.inFlight, f.timeToDrainMs, f.p50 === null ? null : r(f.p50), f.p99 === null ? null : r(f.p99)];
}

export function pointOf(frame: FleetFrame): HistoryPoint {
  const types: Record<string, FigureTuple> = {};
  for (const [k, f] of Object.entries(frame.types)) types[k] = tupleOf(f);
  const handlers: Record<string, FigureTuple> = {};
  for (const [k, f] of Object.entries(frame.handlers)) handlers[k] = tupleOf(f);
  return { at: frame.at, types, handlers };
}

export class History {
  private readonly ring: Array<HistoryPoint | undefined>;
  private next = 0;
  private size = 0;
  constructor(readonly capacity: number) {
    this.ring = new Array(Math.max(1, capacity));
  }
  push(p: HistoryPoint): void {
    this.ring[this.next] = p;
    this.next = (this.next + 1) % this.ring.length;
    this.size = Math.min(this.size + 1, this.ring.length);
  }
  /** Oldest first. */
  points(): HistoryPoint[] {
    const out: HistoryPoint[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.ring[(this.next - this.size + i + this.ring.length) % this.ring.length]!);
    return out;
  }
}
