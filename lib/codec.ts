/**
 * Bytes <-> validated payload instances, and the CloudEvents envelope around them.
 * Binary mode (the default on the wire): attributes as headers, the body is the JSON data.
 * Structured mode (`application/cloudevents+json`): accepted on input, body is the whole event.
 */
import { isUtf8 } from 'node:buffer';
import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, ValidationError, validateSync } from 'class-validator';
import { hasTransformerMetadata } from './class-transformer-internals';
import type { Envelope } from './envelope';
import { isoNow } from './iso-time';
import { newUuid } from './uuid';
import { certainlyValid } from './fast-validate';
import { PayloadClass } from './decorators';
import { MalformedMessageError, PayloadValidationError, Violation } from './errors';
import { Headers, OutgoingMessage } from './transport';

export const JSON_TYPE = 'application/json';
export const STRUCTURED_TYPE = 'application/cloudevents+json';

const VALIDATION = { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true } as const;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Validates plain data against a payload class; returns the instance or throws with every violation. */
export function validatePayload<T>(cls: PayloadClass<T>, type: string, data: unknown): T {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new PayloadValidationError(type, [{ property: '(root)', constraints: { isObject: 'payload must be an object' } }]);
  }
  const instance = (needsTransformer(cls) ? plainToInstance(cls as new () => T, data) : assignPlain(cls, type, data)) as T;
  if (certainlyValid(instance as object)) return instance;
  const errors = validateSync(instance as object, VALIDATION);
  if (errors.length) throw new PayloadValidationError(type, flatten(errors));
  return instance;
}

const transformerNeeded = new WeakMap<Function, boolean>();

/**
 * Whether class-transformer has anything to do for this class (@Type, @Transform, @Expose,
 * @Exclude on it or its ancestors). Most payload classes are flat: for them a plain copy into a
 * new instance gives the same object for a fraction of the cost (it was a tenth of the bench's
 * CPU). Decided once per class.
 */
function needsTransformer(cls: Function): boolean {
  let needed = transformerNeeded.get(cls);
  if (needed === undefined) {
    const properties = new Set(getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false).map((m) => m.propertyName));
    needed = hasTransformerMetadata(cls, properties);
    transformerNeeded.set(cls, needed);
  }
  return needed;
}

function assignPlain(cls: Function, type: string, data: object): object {
  const instance = new (cls as new () => Record<string, unknown>)();
  // Object.assign copies the same own enumerable string keys, in the same order, with the same
  // [[Set]] on the instance, at half the cost of a loop; it would also copy symbol keys, which
  // neither the whitelist nor the JSON encoding sees. A key that could reach a prototype takes
  // the loop, which refuses it by name.
  if (!Object.hasOwn(data, '__proto__') && !Object.hasOwn(data, 'constructor') && !Object.hasOwn(data, 'prototype')) return Object.assign(instance, data);
  for (const key in data) {
    if (!Object.hasOwn(data, key)) continue;
    if (FORBIDDEN_KEYS.has(key)) {
      throw new PayloadValidationError(type, [{ property: key, constraints: { forbidden: `property ${key} is not allowed` } }]);
    }
    instance[key] = (data as Record<string, unknown>)[key];
  }
  return instance;
}

function flatten(errors: ValidationError[], prefix = ''): Violation[] {
  const out: Violation[] = [];
  for (const e of errors) {
    const property = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) out.push({ property, constraints: { ...e.constraints } });
    if (e.children?.length) out.push(...flatten(e.children, property));
  }
  return out;
}

// A key that could reach a prototype, or an escape that could spell one (`"\u005f_proto__"`).
const SUSPICIOUS = /"(?:__proto__|constructor|prototype)"\s*:|\\u/;

/** JSON.parse that refuses keys able to reach a prototype (`__proto__`, `constructor`). */
export function parseJson(text: string): unknown {
  // The reviver costs four times the parse; only text that could hold such a key needs it.
  if (!SUSPICIOUS.test(text)) return JSON.parse(text);
  let bad: string | undefined;
  const value = JSON.parse(text, (key, v) => {
    if (FORBIDDEN_KEYS.has(key)) bad = key;
    return v;
  });
  if (bad) throw new MalformedMessageError(`Forbidden key "${bad}" in message body`);
  return value;
}

export interface EnvelopeInput {
  readonly type: string;
  readonly source: string;
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly traceparent?: string;
  readonly tracestate?: string;
  readonly id?: string;
  readonly extraHeaders?: Readonly<Record<string, string>>;
}

/**
 * The UTF-8 bytes of a message body in a buffer of their own. `Buffer.from(text)` slices short
 * strings out of Node's shared 8 KiB pool, so a body held until its broker confirms it (and
 * promoted to the old generation meanwhile) keeps a whole 8 KiB slab alive until the next full
 * GC, with the socket frames that were cut from it. ArrayBuffers at the peak of an AMQP publisher
 * with 1,000 unconfirmed messages (bench case a): 19-22 MB that way, 4-10 MB with a buffer per
 * body (docs/benchmarks.md). Here a body retains its own bytes.
 */
function bodyBytes(text: string): Buffer {
  const n = Buffer.byteLength(text);
  const out = Buffer.allocUnsafeSlow(n);
  out.write(text, 0, n, 'utf8');
  return out;
}

/** Builds the outgoing message for already validated data. */
export function encode(data: unknown, env: EnvelopeInput): OutgoingMessage {
  const id = env.id ?? newUuid();
  // A plain literal (the names of Headers spelled out, checked against them by the type): V8
  // builds it from one template, where a spread or computed names add the properties one by one
  // (2.5 times the time, 1.6 times the bytes).
  const own: { [K in (typeof Headers)[keyof typeof Headers]]?: string } = {
    specversion: '1.0',
    id,
    source: env.source,
    type: env.type,
    time: isoNow(),
    datacontenttype: JSON_TYPE,
    correlationid: env.correlationId ?? id,
    courierattempt: '1',
  };
  // Extra headers never replace the envelope's own.
  const headers: Record<string, string> = env.extraHeaders ? { ...env.extraHeaders, ...own } : (own as Record<string, string>);
  if (env.causationId) headers[Headers.causationid] = env.causationId;
  if (env.traceparent) headers[Headers.traceparent] = env.traceparent;
  if (env.tracestate) headers[Headers.tracestate] = env.tracestate;
  return { topic: env.type, body: bodyBytes(JSON.stringify(data ?? null)), headers };
}

export interface Decoded {
  readonly envelope: Envelope;
  readonly data: unknown;
}

/**
 * Reads envelope and data from a received message; never trusts it. Size is checked before
 * parsing. Throws MalformedMessageError for anything that is not a well-formed event.
 */
export function decode(
  msg: { topic: string; body: Buffer; headers: Readonly<Record<string, string>> },
  attempt: number,
  maxBytes: number,
): Decoded {
  if (msg.body.length > maxBytes) {
    throw new MalformedMessageError(`Message of ${msg.body.length} bytes exceeds the limit of ${maxBytes}`);
  }
  const declaredType = msg.headers[Headers.datacontenttype];
  const contentType = declaredType === undefined || declaredType === JSON_TYPE ? JSON_TYPE : declaredType.split(';')[0].trim().toLowerCase();
  let attrs: Record<string, unknown> = msg.headers;
  let data: unknown;
  if (!isUtf8(msg.body)) throw new MalformedMessageError('Message body is not valid UTF-8');
  let text = msg.body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    if (contentType === STRUCTURED_TYPE) {
      const event = parseJson(text);
      if (!event || typeof event !== 'object' || Array.isArray(event)) throw new MalformedMessageError('Structured event is not an object');
      attrs = event as Record<string, unknown>;
      const dct = String(attrs.datacontenttype ?? JSON_TYPE).split(';')[0].trim().toLowerCase();
      if (dct !== JSON_TYPE) throw new MalformedMessageError(`Unsupported datacontenttype "${dct}"`);
      data = attrs.data;
    } else if (contentType === JSON_TYPE || contentType.endsWith('+json')) {
      data = parseJson(text);
    } else {
      throw new MalformedMessageError(`Unsupported content type "${contentType}"`);
    }
  } catch (err) {
    if (err instanceof MalformedMessageError) throw err;
    throw new MalformedMessageError(`Message body is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const id = str(attrs, Headers.id);
  if (!id) throw new MalformedMessageError('Message has no CloudEvents id');
  const type = str(attrs, Headers.type) ?? msg.topic;
  return {
    data,
    envelope: {
      id,
      type,
      source: str(attrs, Headers.source) ?? 'unknown',
      time: str(attrs, Headers.time) ?? '',
      specversion: str(attrs, Headers.specversion) ?? '1.0',
      datacontenttype: JSON_TYPE,
      correlationId: str(attrs, Headers.correlationid) ?? id,
      causationId: str(attrs, Headers.causationid),
      traceparent: str(attrs, Headers.traceparent),
      tracestate: str(attrs, Headers.tracestate),
      attempt,
    },
  };
}

function str(attrs: Record<string, unknown>, k: string): string | undefined {
  const v = attrs[k];
  return typeof v === 'string' ? v : undefined;
}
