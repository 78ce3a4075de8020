/**
 * The tracing contract of the bus (BusOptions.tracing): what a tracing integration gets to see.
 * The core knows no tracing library; `courier-bus/otel` (adapters/otel) implements this with
 * OpenTelemetry. Spans of publishes and deliveries come from a transport wrapper ("extras as
 * wrappers"); the handler run, which only the bus sees, from {@link BusTracing.handler}.
 */
import type { Envelope } from './context';
import type { Transport } from './transport';

export interface BusTracing {
  /**
   * Wraps the bus's transport, once, when the bus is created: the wrapper traces publish(),
   * request() and each delivery (from its arrival to its settle), writes the trace context of the
   * publish into the message's `traceparent` / `tracestate` headers and reads it back on receipt.
   * The bus calls publish() synchronously from its own publish(), so the caller's active context
   * is the active one inside the wrapper's publish().
   */
  wrap(transport: Transport): Transport;
  /**
   * Runs one handler call: `run` calls the handler method and returns what it returned (a value
   * or a promise). Returns what `run` returned, or a promise settled as that promise settles.
   * `subscription` is `<group>.<Class.method>`. Called inside the wrapper's delivery, so a
   * context the wrapper made active there is active here.
   */
  handler<T>(subscription: string, envelope: Envelope, run: () => T): T;
}
