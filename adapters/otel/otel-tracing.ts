/**
 * Courier's spans in OpenTelemetry, after the messaging semantic conventions: one PRODUCER span
 * per publish (`publish <type>`) and request (`send <type>`), one CONSUMER span per delivery from
 * its arrival to its settle (`receive <type>`), and one span per handler run inside it
 * (`process <type>`). The publish span's context travels in the envelope's `traceparent` and
 * `tracestate` (the CloudEvents distributed tracing extension, docs/wire-format.md); the receive
 * span is its child, so an HTTP request -> publish -> handler -> publish -> handler chain is one trace.
 *
 * Only `@opentelemetry/api` is used: with no SDK registered its tracer makes non-recording spans,
 * the attributes are not computed, and the incoming trace context passes through unchanged.
 */
import {
  Attributes,
  Context,
  context,
  createTraceState,
  isSpanContextValid,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  Span,
  SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import type { BusTracing } from '../../lib/tracing';
import { Headers } from '../../lib/transport';
import type {
  DeadLetterInfo,
  Delivery,
  DeliveryHandler,
  OutgoingMessage,
  PublishOptions,
  ReceivedMessage,
  Subscription,
  SubscriptionSpec,
  Transport,
} from '../../lib/transport';
import { DeliveryWrapper, SettleKind, TransportWrapper } from '../../lib/transport-wrapper';

export interface OpenTelemetryOptions {
  /** Where the tracer comes from. Default: the global provider (`trace.getTracerProvider()`, what the SDK registers). */
  readonly tracerProvider?: TracerProvider;
  /** The tracer's name. Default `courier-bus`. */
  readonly tracerName?: string;
  /**
   * `messaging.system`. Default from the transport: `rabbitmq` for amqp, else the transport's
   * name (`mqtt`, `memory`: MQTT has no value of its own in the conventions).
   */
  readonly system?: string;
}

/** The provider the API's global proxy hands out while no SDK registered one. */
const NO_SDK = new ProxyTracerProvider().getDelegate();
/** How often (in calls) the tracer source checks whether an SDK was registered meanwhile. */
const CHECK_EVERY = 64;

/** @internal Where the spans come from, and whether any SDK is there to record them. */
export interface TracerSource {
  tracer(): Tracer;
  /**
   * False while no SDK is registered (the API's proxy has no delegate): then Courier makes no
   * span at all and the envelope's trace context passes through as the bus copies it. Checked
   * again every {@link CHECK_EVERY} calls, so an SDK registered later is seen within as many messages.
   */
  enabled(): boolean;
}

function tracerSource(options: OpenTelemetryOptions, name: string): TracerSource {
  let provider: TracerProvider | undefined;
  let tracer: Tracer | undefined;
  let calls = 0;
  let on = false;
  return {
    tracer: () => (tracer ??= (provider ?? options.tracerProvider ?? trace.getTracerProvider()).getTracer(name)),
    enabled() {
      if (calls++ % CHECK_EVERY !== 0) return on;
      const p = options.tracerProvider ?? trace.getTracerProvider();
      if (p !== provider) {
        provider = p;
        tracer = undefined;
      }
      on = !(p instanceof ProxyTracerProvider && p.getDelegate() === NO_SDK);
      return on;
    },
  };
}

/** The bus's tracing with OpenTelemetry: `createBus({ ..., tracing: openTelemetry() })`. */
export function openTelemetry(options: OpenTelemetryOptions = {}): BusTracing {
  const source = tracerSource(options, options.tracerName ?? 'courier-bus');
  const getTracer = source.tracer;
  let system = options.system ?? 'courier';
  return {
    wrap(transport) {
      system = options.system ?? (transport.name === 'amqp' ? 'rabbitmq' : transport.name);
      return new OtelTracingTransport(transport, source, system);
    },
    handler(subscription, envelope, run) {
      if (!source.enabled()) return run();
      const parent = context.active();
      const span = getTracer().startSpan(`process ${envelope.type}`, { kind: SpanKind.CONSUMER }, parent);
      // Not recording (no SDK, or sampled out): nothing to end or note; the context still flows.
      if (!span.isRecording()) return isSpanContextValid(span.spanContext()) ? context.with(trace.setSpan(parent, span), run) : run();
      {
        span.setAttributes({
          ...messageAttributes(system, envelope.type, envelope.id, envelope.correlationId),
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.subscription.name': subscription,
          'courier.handler': subscription,
          'courier.attempt': envelope.attempt,
        });
      }
      return context.with(trace.setSpan(parent, span), () => {
        let result: unknown;
        try {
          result = run();
        } catch (err) {
          endFailed(span, err);
          throw err;
        }
        if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
          return Promise.resolve(result as PromiseLike<unknown>).then(
            (value) => {
              span.end();
              return value;
            },
            (err: unknown) => {
              endFailed(span, err);
              throw err;
            },
          ) as never;
        }
        span.end();
        return result as never;
      });
    },
  };
}

function endFailed(span: Span, err: unknown): void {
  if (span.isRecording()) {
    const e = err instanceof Error ? err : new Error(String(err));
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.name });
  }
  span.end();
}

function messageAttributes(system: string, type: string, id: string | undefined, correlationId: string | undefined): Attributes {
  const a: Attributes = { 'messaging.system': system, 'messaging.destination.name': type };
  if (id) a['messaging.message.id'] = id;
  if (correlationId) a['messaging.message.conversation_id'] = correlationId;
  return a;
}

/** The W3C `traceparent` of a span context. */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A remote span context from `traceparent` (and `tracestate`), or undefined when it is not valid W3C trace context. */
export function parseTraceparent(traceparent: string | undefined, tracestate?: string): SpanContext | undefined {
  if (!traceparent) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const sc: SpanContext = {
    traceId: m[2],
    spanId: m[3],
    traceFlags: parseInt(m[4], 16),
    isRemote: true,
    ...(tracestate ? { traceState: createTraceState(tracestate) } : {}),
  };
  return isSpanContextValid(sc) ? sc : undefined;
}

/** The context a message's headers carry, on top of `base`; `base` when they carry none. */
function extract(base: Context, headers: Readonly<Record<string, string>>): Context {
  const sc = parseTraceparent(headers[Headers.traceparent], headers[Headers.tracestate]);
  return sc ? trace.setSpanContext(base, sc) : base;
}

/** `message` with the span's context in its headers (the same object when nothing changes). */
function inject(message: OutgoingMessage, span: Span): OutgoingMessage {
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return message;
  const traceparent = formatTraceparent(sc);
  const tracestate = sc.traceState?.serialize();
  const h = message.headers;
  if (h[Headers.traceparent] === traceparent && (h[Headers.tracestate] ?? '') === (tracestate ?? '')) return message;
  const headers: Record<string, string> = { ...h, [Headers.traceparent]: traceparent };
  if (tracestate) headers[Headers.tracestate] = tracestate;
  else delete headers[Headers.tracestate];
  return { topic: message.topic, body: message.body, headers };
}

/**
 * The parent of a publish: the active span when there is one (an HTTP request's, a handler's),
 * else the trace context the message already carries (the bus copies it from the message being
 * handled), else none (a new trace).
 */
function publishParent(headers: Readonly<Record<string, string>>): Context {
  const active = context.active();
  return trace.getSpan(active) ? active : extract(active, headers);
}

/** The transport wrapper of {@link openTelemetry}: spans of publish, request and deliveries. */
export class OtelTracingTransport extends TransportWrapper {
  constructor(
    inner: Transport,
    private readonly source: TracerSource,
    private readonly system: string,
  ) {
    super(inner);
  }

  override publish(message: OutgoingMessage, options?: PublishOptions): Promise<void> {
    if (!this.source.enabled()) return this.inner.publish(message, options);
    const span = this.source.tracer().startSpan(`publish ${message.topic}`, { kind: SpanKind.PRODUCER }, publishParent(message.headers));
    // Not recording: no span to end, the context (a sampled-out one, or the incoming one) goes on the wire as is.
    if (!span.isRecording()) return this.inner.publish(inject(message, span), options);
    {
      span.setAttributes({
        ...messageAttributes(this.system, message.topic, message.headers[Headers.id], message.headers[Headers.correlationid]),
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.message.body.size': message.body.length,
      });
    }
    let p: Promise<void>;
    try {
      p = this.inner.publish(inject(message, span), options);
    } catch (err) {
      endFailed(span, err);
      throw err;
    }
    return p.then(
      () => span.end(),
      (err: unknown) => {
        endFailed(span, err);
        throw err;
      },
    );
  }

  override async request(message: OutgoingMessage, options: { timeoutMs: number }): Promise<ReceivedMessage> {
    if (!this.source.enabled()) return this.inner.request(message, options);
    const span = this.source.tracer().startSpan(`send ${message.topic}`, { kind: SpanKind.PRODUCER }, publishParent(message.headers));
    if (span.isRecording()) {
      span.setAttributes({
        ...messageAttributes(this.system, message.topic, message.headers[Headers.id], message.headers[Headers.correlationid]),
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'request',
        'messaging.message.body.size': message.body.length,
      });
    }
    try {
      const reply = await this.inner.request(inject(message, span), options);
      if (reply.headers[Headers.replyError] && span.isRecording()) span.setStatus({ code: SpanStatusCode.ERROR, message: reply.headers[Headers.replyError] });
      span.end();
      return reply;
    } catch (err) {
      endFailed(span, err);
      throw err;
    }
  }

  override subscribe(spec: SubscriptionSpec, handler: DeliveryHandler): Promise<Subscription> {
    const subscription = spec.group ? `${spec.group}.${spec.name}` : spec.name;
    const source = this.source;
    const system = this.system;
    return this.inner.subscribe(spec, (d: Delivery) => {
      if (!source.enabled()) return handler(d);
      const type = d.headers[Headers.type] ?? d.topic;
      const parent = extract(ROOT_CONTEXT, d.headers);
      const span = source.tracer().startSpan(`receive ${type}`, { kind: SpanKind.CONSUMER }, parent);
      if (!span.isRecording()) return isSpanContextValid(span.spanContext()) ? context.with(trace.setSpan(parent, span), () => handler(d)) : handler(d);
      {
        span.setAttributes({
          ...messageAttributes(system, type, d.headers[Headers.id], d.headers[Headers.correlationid]),
          'messaging.operation.type': 'receive',
          'messaging.operation.name': 'receive',
          'messaging.destination.subscription.name': subscription,
          ...(spec.group ? { 'messaging.consumer.group.name': spec.group } : {}),
          'messaging.message.body.size': d.body.length,
          'courier.attempt': d.attempt,
          'courier.redelivered': d.redelivered,
        });
      }
      const traced = new TracedDelivery(d, span);
      let p: Promise<void>;
      try {
        p = context.with(trace.setSpan(parent, span), () => handler(traced));
      } catch (err) {
        endFailed(span, err);
        throw err;
      }
      return p.then(
        () => traced.end(),
        (err: unknown) => {
          endFailed(span, err);
          throw err;
        },
      );
    });
  }
}

/** A delivery that notes on its span how it was settled. */
class TracedDelivery extends DeliveryWrapper {
  private outcome?: string;
  constructor(
    d: Delivery,
    private readonly span: Span,
  ) {
    super(d);
  }
  /** Ends the span (once the bus's handler resolved: the delivery is settled). */
  end(): void {
    const span = this.span;
    if (span.isRecording()) {
      span.setAttribute('courier.outcome', this.outcome ?? 'none');
      if (this.outcome === 'dead') span.setStatus({ code: SpanStatusCode.ERROR, message: 'dead-lettered' });
    }
    span.end();
  }
  protected override settling(kind: SettleKind, info?: DeadLetterInfo): void {
    this.outcome ??= kind;
    if (kind === 'dead' && info && this.span.isRecording()) this.span.setAttribute('courier.dead_reason', info.reason);
  }
}
