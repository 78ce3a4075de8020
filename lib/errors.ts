/**
 * Every error Courier throws extends CourierError, carries a stable `code`, the fields a person
 * needs to act, and the underlying broker error as `cause`. Messages never contain a password:
 * build them with {@link redactUrl} / {@link redactSecrets}.
 */
export class CourierError extends Error {
  readonly code: string = 'COURIER_ERROR';
  constructor(message: string, options?: { cause?: unknown }) {
    super(redactSecrets(message), options);
    this.name = new.target.name;
  }
}

export interface Violation {
  /** Property path, `items[0].sku` style. */
  readonly property: string;
  /** class-validator constraint name -> message. */
  readonly constraints: Record<string, string>;
}

/** A payload failed its class's validation. Lists every violation. Nothing was sent / handled. */
export class PayloadValidationError extends CourierError {
  override readonly code = 'PAYLOAD_INVALID';
  constructor(readonly messageType: string, readonly violations: readonly Violation[]) {
    super(
      `Invalid ${messageType} payload: ` +
        violations.map((v) => `${v.property}: ${Object.values(v.constraints).join('; ')}`).join(' | '),
    );
  }
}

/** Bytes that cannot be a message: bad JSON, wrong content type, too large, missing attributes. */
export class MalformedMessageError extends CourierError {
  override readonly code = 'MESSAGE_MALFORMED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A message whose signature is missing, wrong, or made with an unknown key. */
export class SignatureError extends MalformedMessageError {
  override readonly code = 'MESSAGE_MALFORMED' as const;
}

/** Consumed message of a type no payload class was registered for on that subscription. */
export class UnknownMessageTypeError extends CourierError {
  override readonly code = 'MESSAGE_TYPE_UNKNOWN';
  constructor(readonly messageType: string) {
    super(`No payload class for message type "${messageType}"`);
  }
}

/** bus.request() got no reply in time. */
export class RequestTimeoutError extends CourierError {
  override readonly code = 'REQUEST_TIMEOUT';
  constructor(readonly messageType: string, readonly timeoutMs: number, options?: { cause?: unknown }) {
    super(`No reply to ${messageType} within ${timeoutMs} ms`, options);
  }
}

/** The remote handler of a request threw; name and message are the remote error's. */
export class RemoteHandlerError extends CourierError {
  override readonly code = 'REMOTE_HANDLER_FAILED';
  /** @param status the HTTP status the remote error chose (its own numeric `status`, 400-599), if any */
  constructor(readonly messageType: string, readonly remoteName: string, readonly remoteMessage: string, readonly status?: number) {
    super(`Handler of ${messageType} failed: ${remoteName}: ${remoteMessage}`);
  }
}

/** The transport is closed (or closing): nothing more can be published or consumed. */
export class TransportClosedError extends CourierError {
  override readonly code = 'TRANSPORT_CLOSED';
  constructor(what = 'publish') {
    super(`Transport is closed: cannot ${what}`);
  }
}

/** Not connected, and the transport was told not to buffer (or its buffer is full). */
export class NotConnectedError extends CourierError {
  override readonly code = 'NOT_CONNECTED';
}

/** The broker did not confirm a publish within the publish timeout. */
export class PublishTimeoutError extends CourierError {
  override readonly code = 'PUBLISH_TIMEOUT';
  constructor(readonly topic: string, readonly timeoutMs: number) {
    super(`Publish of ${topic} not confirmed within ${timeoutMs} ms`);
  }
}

/** The broker refused a publish (AMQP nack, MQTT reason code >= 0x80). */
export class PublishRejectedError extends CourierError {
  override readonly code = 'PUBLISH_REJECTED';
  constructor(readonly topic: string, readonly reason: string, options?: { cause?: unknown }) {
    super(`Broker refused publish of ${topic}: ${reason}`, options);
  }
}

/** A mandatory publish that no queue received. */
export class UnroutableError extends CourierError {
  override readonly code = 'UNROUTABLE';
  constructor(readonly topic: string) {
    super(`No queue is bound for ${topic} (mandatory publish returned)`);
  }
}

/** The broker refused an operation: permissions, a clash of declared arguments, a missing resource. */
export class BrokerRefusedError extends CourierError {
  override readonly code: string = 'BROKER_REFUSED';
  constructor(
    message: string,
    readonly resource: string | undefined,
    readonly user: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export class AccessRefusedError extends BrokerRefusedError {
  override readonly code = 'ACCESS_REFUSED';
}
export class PreconditionFailedError extends BrokerRefusedError {
  override readonly code = 'PRECONDITION_FAILED';
}
export class ResourceNotFoundError extends BrokerRefusedError {
  override readonly code = 'NOT_FOUND';
}

/** Cannot connect (after the configured attempts) or the session was taken over. */
export class ConnectionError extends CourierError {
  override readonly code: string = 'CONNECTION_FAILED';
}
/**
 * The broker refused the login: wrong password, unknown user, or a user not allowed to connect
 * (RabbitMQ 403 ACCESS_REFUSED in the handshake, or a refused virtual host; MQTT CONNACK 4 / 5,
 * or 0x86 / 0x87 / 0x8C in MQTT 5). Not retried: connect() rejects with it at once. Names the user and the broker
 * (`host:port`), never the password.
 */
export class AuthenticationError extends ConnectionError {
  override readonly code = 'AUTHENTICATION_FAILED';
  constructor(
    /** The user name sent (`undefined`: none, an anonymous login). */
    readonly user: string | undefined,
    /** `host:port` of the broker that refused. */
    readonly broker: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Authentication failed for ${user === undefined ? 'an anonymous login' : `user "${user}"`} at ${broker}: ${reason}`, options);
  }
}

/**
 * connect() (and so bus.start()) did not succeed within the start timeout: the broker did not
 * answer, or every connection was lost before the topology was declared. Lists the failures.
 */
export class StartTimeoutError extends ConnectionError {
  override readonly code = 'START_TIMEOUT';
  constructor(readonly timeoutMs: number, failures: readonly string[], options?: { cause?: unknown }) {
    super(`Not started within ${timeoutMs} ms (startTimeoutMs)${failures.length ? `: ${failures.join('; ')}` : ''}`, options);
  }
}

/** `amqp://user:pw@host:5672/vhost` -> `host:5672` (the protocol's default port when none is given). */
export function brokerAddress(url: string, defaultPort: number): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || defaultPort}`;
  } catch {
    return 'an unparsable url';
  }
}

/** Another client connected with this client's id and took the session (MQTT). */
export class SessionTakenOverError extends ConnectionError {
  override readonly code = 'SESSION_TAKEN_OVER';
}

/**
 * The bus is not started: a publish, request or `@Publish` method called before `bus.start()`
 * (or after a start that failed, the failure as `cause`). Nothing was sent. One called while
 * start() runs waits for it instead.
 */
export class BusNotStartedError extends CourierError {
  override readonly code = 'BUS_NOT_STARTED';
  constructor(readonly operation: string, options?: { cause?: unknown }) {
    super(`Cannot ${operation}: the bus is not started${options?.cause ? ' (start() failed)' : ''}; await bus.start() first`, options);
  }
}

/** `bus.stop()` was called: a publish, request or `@Publish` method called since rejects with it. Nothing was sent. */
export class BusStoppedError extends CourierError {
  override readonly code = 'BUS_STOPPED';
  constructor(readonly operation: string) {
    super(`Cannot ${operation}: the bus is stopped (bus.stop() was called)`);
  }
}

/** Everything wrong with the registered handlers / options, found at start-up, listed at once. */
export class StartupError extends CourierError {
  override readonly code = 'STARTUP_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`Courier cannot start:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Thrown by a handler to dead-letter its message at once, without retries. */
export class RejectMessageError extends CourierError {
  override readonly code = 'MESSAGE_REJECTED';
}

/** Thrown by a handler to give its message back for immediate redelivery (no attempt counted). */
export class RequeueMessageError extends CourierError {
  override readonly code = 'MESSAGE_REQUEUED';
}

/** `amqp://user:secret@host` -> `amqp://user:***@host`. Accepts anything; never throws. */
export function redactUrl(url: string): string {
  return redactSecrets(String(url));
}

/** Replaces the password of every URL found in a text with `***`. */
export function redactSecrets(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^@/\s]*@/gi, '$1:***@');
}

/** An adapter was imported but the broker client it drives (an optional peer dependency) is not installed. */
export class MissingPeerDependencyError extends CourierError {
  override readonly code = 'PEER_DEPENDENCY_MISSING';
  constructor(readonly packageName: string, readonly importPath: string, options?: { cause?: unknown }) {
    super(`${importPath} needs the package "${packageName}", which is not installed: run \`npm install ${packageName}\``, options);
  }
}
