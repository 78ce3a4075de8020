/** The envelope of a message: a leaf module, imported by the codec, the context and the bus. */

/** The envelope of a received message, as a handler sees it. */
export interface Envelope {
  /** CloudEvents `id`: unique per message; the key for deduplication. */
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly time: string;
  readonly specversion: string;
  readonly datacontenttype: string;
  /** Shared by every message of one conversation (a request and its reply, a saga). */
  readonly correlationId: string;
  /** The id of the message whose handling caused this one, if any. */
  readonly causationId?: string;
  /** W3C trace context, carried through when present. */
  readonly traceparent?: string;
  readonly tracestate?: string;
  /** 1-based delivery attempt. */
  readonly attempt: number;
}
