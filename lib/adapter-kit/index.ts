/**
 * `courier-bus/adapter-kit`: what every transport adapter needs, written once; used by the memory,
 * AMQP and MQTT adapters and open to third-party ones. Each part is one role in its own module,
 * with its contract in its doc comments:
 * - {@link deadLetterHeaders}: the headers of a dead letter (docs/wire-format.md);
 * - {@link SafeEmitter}: a typed event emitter whose emit() never throws;
 * - {@link SettleOnce}: the settle-once state machine of a delivery, and {@link SETTLED_AT_ONCE},
 *   what its settles return when they completed at once (the bus then waits for nothing);
 * - {@link setDeliveryFields} and {@link DeliveryFields}: a delivery's data fields, set in one place;
 * - {@link InFlight} and {@link Wakeup}: waiting, with a timeout, until in-flight work is done;
 * - {@link backoffDelay}: the one exponential backoff with jitter;
 * - {@link PublishWindow}: publishes in flight with a size limit and one deadline timer;
 * - {@link DeadlineTimer} and {@link LinkedList}, which the window is made of, for an adapter's own
 *   operations in flight.
 *
 * The conformance suite an adapter must pass is `courier-bus/conformance`.
 */
export { deadLetterHeaders, deadLetterQueueLabel } from './dead-letter-headers';
export type { DeadLetterHeaderInput } from './dead-letter-headers';
export { SafeEmitter } from './safe-emitter';
export type { EventMap, ListenerErrorHandler, SafeEmitterOptions } from './safe-emitter';
export { SETTLED_AT_ONCE, SettleOnce, SettleState } from './settle-once';
export { setDeliveryFields } from './delivery-fields';
export type { DeliveryFields } from './delivery-fields';
export { InFlight, Wakeup } from './in-flight';
export { backoffDelay } from './backoff';
export type { BackoffPolicy } from './backoff';
export { PublishWindow, WindowEntry } from './publish-window';
export type { PublishWindowOptions } from './publish-window';
export { DeadlineTimer } from '../deadline-timer';
export { LinkedList } from '../linked-list';
export type { Linked } from '../linked-list';
export { InPlaceRetryDelivery } from './in-place-retry';
export type { InPlaceRetryOptions } from './in-place-retry';
