/**
 * `courier-bus/dashboard`: a live web page of the services, the message types between them and
 * the meter (docs/dashboard.md). `createDashboard({ buses })` embeds one in a process;
 * `brokerDashboard(transport)` shows whatever runs on a broker (the `courier dashboard` command).
 */
import type { Transport } from '../transport';
import { createDashboard, Dashboard, DashboardOptions } from './dashboard';
import { brokerSource } from './source';

export { createDashboard } from './dashboard';
export type { Dashboard, DashboardOptions } from './dashboard';
export { busesSource, brokerSource } from './source';
export type { DashboardSource } from './source';
export { FleetModel, isInternalType } from './fleet';
export type { InstanceView, Figures, HandlerView, ServiceView, GraphView, FleetFrame } from './fleet';
export type { HistoryPoint, FigureTuple } from './history';
export type { DeadLettersView, SubscriptionDeadLetters, DeadLetterSummary, DeadLetterWatcherOptions } from './dead-letter-watcher';
export type { SseHubOptions } from './sse-hub';

/**
 * A dashboard of the services on the broker `transport` reaches (unconnected: the dashboard
 * connects it at listen() and closes it at close()): who runs from the registry over the bus
 * (services with `discovery`), their figures from `metricsReporter`, their dead letters read and
 * replayed through the same transport.
 */
export function brokerDashboard(transport: Transport, options: Omit<DashboardOptions, 'buses' | 'source' | 'deadLetters' | 'deadLettersConnected'> = {}): Dashboard {
  return createDashboard({ ...options, source: brokerSource(transport), deadLetters: transport, deadLettersConnected: true });
}
