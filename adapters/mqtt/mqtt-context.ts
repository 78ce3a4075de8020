/**
 * What the MQTT adapter's parts share, handed to each at construction instead of calling back
 * into the transport: the resolved options, the client id rules and the transport's events.
 */
import { EventEmitter } from 'node:events';
import type { TransportEvent, TransportEvents } from '../../lib/transport';
import type { ClientIdPolicy } from './client-id-policy';
import type { ResolvedMqttOptions } from './mqtt-options';

/** The transport's typed events. `emit` never throws: not for an unheard 'error', not for a listener's exception. */
export class TransportEmitter {
  private readonly events = new EventEmitter();

  on<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): void {
    this.events.on(event, listener as (...a: unknown[]) => void);
  }

  off<E extends TransportEvent>(event: E, listener: (...args: TransportEvents[E]) => void): void {
    this.events.off(event, listener as (...a: unknown[]) => void);
  }

  emit<E extends TransportEvent>(event: E, ...args: TransportEvents[E]): void {
    // An 'error' nobody listens to must not crash the process (EventEmitter would throw it).
    if (event === 'error' && this.events.listenerCount('error') === 0) return;
    try {
      this.events.emit(event, ...args);
    } catch {
      // A listener's exception is its own; it must not break the connection handling.
    }
  }
}

/** The parts' shared, read-only view of their transport. */
export interface MqttContext {
  readonly options: ResolvedMqttOptions;
  readonly clientIds: ClientIdPolicy;
  readonly events: TransportEmitter;
}
