/**
 * Graceful shutdown on process signals: on SIGTERM / SIGINT, every bus stops (handlers in flight
 * finish and are acked; what was not started goes back to its group), then the process exits 0.
 * A second signal while stopping exits at once with status 1 (the operator insists).
 */
import type { Bus } from './bus';

export interface StopOnSignalsOptions {
  readonly signals?: readonly NodeJS.Signals[];
  /** Bound on how long the buses may take. Default: each bus's shutdownTimeoutMs. */
  readonly timeoutMs?: number;
  /** Exit the process when stopped. Default true. */
  readonly exit?: boolean;
  /** Called after the buses stopped (or failed to), before exiting. */
  readonly onStopped?: (error?: unknown) => void | Promise<void>;
}

/** Installs the signal handlers; returns a function that removes them. */
export function stopOnSignals(buses: Bus | readonly Bus[], options: StopOnSignalsOptions = {}): () => void {
  const list = Array.isArray(buses) ? buses : [buses as Bus];
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(1);
    stopping = true;
    Promise.all(list.map((b) => b.stop(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs })))
      .then(
        () => options.onStopped?.(),
        (err) => {
          process.exitCode = 1;
          return options.onStopped?.(err);
        },
      )
      .finally(() => {
        if (options.exit ?? true) process.exit();
      });
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
