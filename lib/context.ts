import { AsyncLocalStorage } from 'node:async_hooks';
import type { Envelope } from './envelope';
import type { PayloadClass, PayloadShape } from './payload';
import type { PublishCallOptions, PublishFunction } from './publish-options';
import type { Delivery } from './transport';

export type { Envelope } from './envelope';

/** What a handler gets besides its payload. */
export class MessageContext {
  constructor(
    readonly envelope: Envelope,
    readonly headers: Readonly<Record<string, string>>,
    /** True when the broker says this message may have been delivered before. */
    readonly redelivered: boolean,
    /** The subscription handling it: `<group>.<Class.method>`. */
    readonly subscription: string,
    /** The transport's own delivery (its `raw` is the broker's message): not portable. */
    readonly delivery: Delivery,
    /** Publishes for this message (the bus's publish). */
    private readonly publishMessage: PublishFunction,
    /**
     * The handler's transaction, with an inbox (`@Subscribe(X, { inbox })`): a `pg` client inside
     * BEGIN, or the better-sqlite3 Database inside BEGIN. Write the effect with it: it commits
     * with the inbox's record of this message. Undefined without an inbox.
     */
    readonly tx?: unknown,
  ) {}
  /** Publishes a message caused by this one: same correlation id and trace, causation id = this id. */
  publish<T>(type: PayloadClass<T>, payload: PayloadShape<T> | T, options: PublishCallOptions = {}): Promise<string> {
    return this.publishMessage(type, payload, { causedBy: this.envelope, ...options });
  }
  get id(): string {
    return this.envelope.id;
  }
  get type(): string {
    return this.envelope.type;
  }
  get attempt(): number {
    return this.envelope.attempt;
  }
  get correlationId(): string {
    return this.envelope.correlationId;
  }
}

/**
 * The message being handled, for messages published while handling it: they inherit its
 * correlation id and trace, and take its id as their causation id, with no argument passing.
 */
export const currentMessage = new AsyncLocalStorage<Envelope>();
