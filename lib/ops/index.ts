/** Operating a running system from outside (the `courier` commands use these): dead letters, live traffic, one-off publishes, metrics. */
export { subscriptionAdmin } from './admin';
export type { SubscriptionAdmin, QueueDepth, QueueKind } from './admin';
export {
  listDeadLetters,
  showDeadLetter,
  replayDeadLetters,
  purgeDeadLetters,
  parseWhere,
  matchesFilter,
  toDeadLetter,
  replayMessage,
  DeadLetterFilterError,
  OperationUnsupportedError,
} from './dead-letters';
export type { DeadLetter, DeadLetterSource, DeadLetterFilter, ScanOptions, DeadLetterRunResult, ReplayOptions, ReplayResult, PurgeResult } from './dead-letters';
export { tailMessages } from './tail';
export type { TailedMessage, TailOptions } from './tail';
export { publishEnvelope } from './publish';
export type { PublishEnvelopeOptions } from './publish';
export { metricsReporter, watchMetrics, METRICS_TYPE } from './metrics-report';
export type { MetricsReport, MetricsReporterOptions } from './metrics-report';
