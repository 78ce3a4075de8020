/**
 * The data fields of a {@link Delivery} (everything but its settle methods), set in one place for
 * every delivery class: the memory and MQTT adapters' and the wrappers' (lib/transport-wrapper.ts
 * DeliveryWrapper, which the meter and tracing extend).
 *
 * A delivery class declares the fields by an interface of its own name that extends
 * {@link DeliveryFields} (TypeScript merges it into the class) and calls {@link setDeliveryFields}
 * in its constructor:
 *
 *   export interface MyDelivery extends DeliveryFields<MyRaw> {}
 *   export class MyDelivery extends SettleOnce implements Delivery {
 *     constructor(msg: MyRaw) {
 *       super();
 *       setDeliveryFields(this, msg.topic, msg.body, msg.headers, attempt, redelivered, replyExpected, msg);
 *     }
 *   }
 *
 * Positional arguments rather than an object: a delivery is made per message, and this adds no
 * allocation to it. The fields are assigned in one order, so the instances of a class share one shape.
 */
import type { Delivery } from '../transport';

/** The data of a delivery; `raw` is the adapter's own message (what `Delivery.raw` documents). */
export interface DeliveryFields<Raw = unknown> extends Pick<Delivery, 'topic' | 'body' | 'headers' | 'attempt' | 'redelivered' | 'replyExpected'> {
  readonly raw: Raw;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** Sets the fields of `d` (call it in the constructor, once). */
export function setDeliveryFields<Raw>(
  d: DeliveryFields<Raw>,
  topic: string,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  attempt: number,
  redelivered: boolean,
  replyExpected: boolean,
  raw: Raw,
): void {
  const w = d as Writable<DeliveryFields<Raw>>;
  w.topic = topic;
  w.body = body;
  w.headers = headers;
  w.attempt = attempt;
  w.redelivered = redelivered;
  w.replyExpected = replyExpected;
  w.raw = raw;
}
