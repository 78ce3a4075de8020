/** Courier's public API. Adapters live in adapters/<name> and are imported from there. */
export { Bus, createBus, consoleLogger, silentLogger } from './bus';
export type { BusOptions, Logger, PublishCallOptions, RequestOptions, DeadLetterEvent } from './bus';
export { Message, Subscriber, Subscribe, Publisher, Publish } from './decorators';
export type { PayloadClass, PayloadShape, MessageOptions, SubscribeOptions, SubscriberOptions, RetryOptions, PublishMethodOptions } from './decorators';
export { MessageContext } from './context';
export type { Envelope } from './context';
export * from './errors';
export { Meter, MeteredTransport, WINDOWS_S } from './meter';
export type { MetricsSnapshot, TopicMetrics, HandlerMetrics, Rates, Clock } from './meter';
export { MemoryDedupeStore, RedisDedupeStore } from './dedupe';
export type { DedupeStore, RedisLike } from './dedupe';
export { Headers } from './transport';
export type * from './transport';
export { matchTopic, isPattern } from './topic';
export { SigningTransport, signedTransport } from './signing';
export type { SigningOptions } from './signing';
export { stopOnSignals } from './shutdown';
export type { StopOnSignalsOptions } from './shutdown';
