/** How a message is published (the bus's, a handler context's and the outbox's publish take them). */
import type { Envelope } from './envelope';
import type { PayloadClass, PayloadShape } from './payload';

export interface PublishCallOptions {
  readonly mandatory?: boolean;
  /** Extra headers (CloudEvents extensions); the envelope's own attributes cannot be overridden. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly correlationId?: string;
  /** The message that caused this one. Default: the message being handled (with asyncContext). */
  readonly causedBy?: Envelope;
  /** W3C trace context (default: that of the message being handled). */
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** The ordering key (the `courierkey` header), when not the payload class's `key` property (docs/scaling.md). */
  readonly key?: string;
}

/** Publishes a message; resolves to its id. What {@link MessageContext} is given instead of the whole bus. */
export type PublishFunction = <T>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options?: PublishCallOptions) => Promise<string>;
