/**
 * A window of outstanding operations: both sides of every case publish through the same one, so
 * "1000 in flight" means the same on each.
 */
export class Window {
  private inflight = 0;
  private readonly waiters: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];
  private failure?: Error;

  constructor(readonly size: number) {}

  /** Resolves when a slot is free (at once, without a turn of the event loop, when one is). */
  acquire(): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    if (this.inflight < this.size) {
      this.inflight++;
      return undefined;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) return next(); // the slot passes on
    this.inflight--;
    if (this.inflight === 0) {
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of idle) w();
    }
  }

  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves once nothing is outstanding; rejects with the first failure. */
  async idle(): Promise<void> {
    if (this.inflight > 0 && !this.failure) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.failure) throw this.failure;
  }

  /** Runs `op(i)` for i in [0, n) with at most `size` outstanding. */
  async run(n: number, op: (i: number) => Promise<unknown>): Promise<void> {
    const done = () => this.release();
    const failed = (e: Error) => this.fail(e);
    for (let i = 0; i < n; i++) {
      const wait = this.acquire();
      if (wait) await wait;
      if (this.failure) throw this.failure;
      op(i).then(done, failed);
    }
    await this.idle();
  }
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The q-quantile (0..1) of sorted numbers. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** Each request measureRequests timed: start in epoch ms, latency in ms, by index. */
export interface MeasuredRequests {
  readonly starts: number[];
  readonly latencies: number[];
}

/** With BENCH_PAUSES set (diagnostics.ts): the requests the last measureRequests timed. */
export let measuredRequests: MeasuredRequests | undefined;

/**
 * Request/reply measurement, the same for both sides: a warm-up, then `n` calls with `inflight`
 * outstanding, timing each; rates from the first call to the last reply.
 */
export async function measureRequests(inflight: number, warmup: number, n: number, call: (i: number) => Promise<void>) {
  await new Window(inflight).run(warmup, call);
  const latencies = new Float64Array(n);
  const starts = process.env.BENCH_PAUSES ? new Float64Array(n) : undefined;
  const first = now();
  await new Window(inflight).run(n, async (i) => {
    const t = performance.now();
    if (starts) starts[i] = performance.timeOrigin + t;
    await call(i);
    latencies[i] = performance.now() - t;
  });
  const last = now();
  if (starts) measuredRequests = { starts: Array.from(starts), latencies: Array.from(latencies) };
  latencies.sort();
  return { first, last, count: n, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}
