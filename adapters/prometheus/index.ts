/**
 * Prometheus metrics, imported as `courier-bus/prometheus`; `prom-client` is an optional peer
 * dependency the app installs. docs/operations.md lists the metrics.
 */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('prom-client', 'courier-bus/prometheus');

export { CourierPrometheus, prometheusMetrics, DEFAULT_BUCKETS_S } from './prometheus-metrics';
export type { PrometheusOptions, QueueDepthSource } from './prometheus-metrics';
