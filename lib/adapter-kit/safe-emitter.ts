/**
 * A typed event emitter whose emit() never throws: the idea of amqplib's `safe_emit`, for every
 * adapter. An adapter emits from inside its connection handling (a socket callback, a reconnect
 * loop); a listener's exception thrown there would break that handling, and Node's EventEmitter
 * would also skip the listeners after the one that threw.
 */

/** Event name to listener arguments, e.g. `TransportEvents`. */
export type EventMap<M> = { [K in keyof M]: unknown[] };

/** Called with what a listener threw. */
export type ListenerErrorHandler = (error: unknown, event: string) => void;

export interface SafeEmitterOptions {
  /**
   * Told of each exception a listener throws (after which the remaining listeners still run).
   * Default: a process warning (`process.emitWarning`, type `CourierListenerWarning`), so the
   * exception is not lost and the process keeps running.
   */
  readonly onListenerError?: ListenerErrorHandler;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => void;

function warn(error: unknown, event: string): void {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  process.emitWarning(`A '${event}' listener threw: ${text}`, 'CourierListenerWarning');
}

/**
 * The contract:
 * - `emit()` calls every listener registered for the event at the time of the call, in order,
 *   each in its own try/catch; it never throws and returns whether there was a listener.
 * - An `'error'` event with no listener is dropped (Node's EventEmitter would throw it).
 * - `on`, `once`, `off` return `this`, so a transport can return what they return.
 */
export class SafeEmitter<M extends EventMap<M>> {
  /** Per event, its listeners; replaced (not changed) on on/off, so an emit in progress is not affected. */
  readonly #listeners = new Map<keyof M, ReadonlyArray<Listener>>();
  readonly #onListenerError: ListenerErrorHandler;

  constructor(options: SafeEmitterOptions = {}) {
    this.#onListenerError = options.onListenerError ?? warn;
  }

  on<E extends keyof M>(event: E, listener: (...args: M[E]) => void): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener as Listener]);
    return this;
  }

  /** Like {@link on}, for the next emit of `event` only. `off(event, listener)` removes it before. */
  once<E extends keyof M>(event: E, listener: (...args: M[E]) => void): this {
    const wrapper = Object.assign(
      (...args: M[E]) => {
        this.off(event, listener);
        listener(...args);
      },
      { listener },
    );
    return this.on(event, wrapper);
  }

  /** Removes the last registration of `listener` for `event` (as EventEmitter does); a no-op when absent. */
  off<E extends keyof M>(event: E, listener: (...args: M[E]) => void): this {
    const list = this.#listeners.get(event);
    if (!list) return this;
    for (let i = list.length - 1; i >= 0; i--) {
      const l = list[i] as Listener & { listener?: unknown };
      if (l === listener || l.listener === listener) {
        const rest = [...list.slice(0, i), ...list.slice(i + 1)];
        if (rest.length) this.#listeners.set(event, rest);
        else this.#listeners.delete(event);
        break;
      }
    }
    return this;
  }

  /** Removes every listener of `event`, or of all events. */
  removeAllListeners(event?: keyof M): this {
    if (event === undefined) this.#listeners.clear();
    else this.#listeners.delete(event);
    return this;
  }

  listenerCount(event: keyof M): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls the listeners of `event`; never throws (see the class comment). */
  emit<E extends keyof M>(event: E, ...args: M[E]): boolean {
    const list = this.#listeners.get(event);
    if (!list) return false;
    for (const listener of list) {
      try {
        (listener as (...a: M[E]) => void)(...args);
      } catch (err) {
        try {
          this.#onListenerError(err, String(event));
        } catch {
          // The error handler's own exception: nothing left to tell.
        }
      }
    }
    return true;
  }
}
