/**
 * OpenTelemetry tracing, imported as `courier-bus/otel`; `@opentelemetry/api` is an optional peer
 * dependency the app installs (with the SDK of its choice). docs/operations.md lists the spans.
 */
import { assertPeerInstalled } from '../../lib/peer-dependency';

assertPeerInstalled('@opentelemetry/api', 'courier-bus/otel');

export { openTelemetry, parseTraceparent, formatTraceparent } from './otel-tracing';
export type { OpenTelemetryOptions } from './otel-tracing';
