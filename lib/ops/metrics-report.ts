/**
 * A running service's meter, reached through the broker: {@link metricsReporter} is a bus
 * component that publishes the meter's snapshot every `everyMs` as a message of type
 * {@link METRICS_TYPE}; {@link watchMetrics} (the `courier metrics` command) subscribes to that
 * type with a broadcast subscription of its own. Periodic publishing rather than a request: every
 * instance of every service answers, with no reply to wait for and nothing to do when nobody
 * watches (the broker drops a message no queue is bound for).
 */
import os from 'node:os';
import type { BusComponent, BusComponentHost } from '../bus';
import { encode, parseJson } from '../codec';
import { redactSecrets } from '../errors';
import { MeteredTransport, MetricsSnapshot } from '../meter';
import { Subscription, Transport } from '../transport';
import { tailMessages } from './tail';

/** The message type of the snapshots. */
export const METRICS_TYPE = 'courier.metrics';

/** The body of a {@link METRICS_TYPE} message. */
export interface MetricsReport {
  /** The service (`createBus({ source })`). */
  readonly source: string;
  /** Which instance of it: the reporter's `instance`, default `<host>:<pid>`. */
  readonly instance: string;
  /** How often this instance reports, ms. */
  readonly everyMs: number;
  readonly snapshot: MetricsSnapshot;
}

export interface MetricsReporterOptions {
  /** The service name. Default: the bus's `source`. */
  readonly source?: string;
  /** Names this instance. Default: the bus's instanceId (its option, or the one discovery generated), else `<host name>:<pid>`. */
  readonly instance?: string;
  /** Interval between two snapshots, ms (>= 100). Default 2,000. */
  readonly everyMs?: number;
}

/**
 * A component (`bus.attach(metricsReporter({ source }))`) that publishes the bus's meter snapshot
 * every `everyMs` while the bus runs. Its own messages are not counted by the meter. A failed
 * publish is logged (at most once a minute) and the next one is tried at its time.
 */
export function metricsReporter(options: MetricsReporterOptions = {}): BusComponent {
  const everyMs = Math.max(100, options.everyMs ?? 2000);
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let lastWarning = 0;
  return {
    async start(host: BusComponentHost) {
      const meter = host.meter;
      const source = options.source ?? host.source ?? 'unknown';
      const instance = options.instance ?? host.instanceId ?? `${os.hostname()}:${process.pid}`;
      if (!meter) {
        host.logger.warn('metricsReporter: the bus has no meter (meter: false); nothing is reported');
        return;
      }
      // Around the meter, not through it: the reports are not the service's traffic.
      const transport = host.transport instanceof MeteredTransport ? host.transport.inner : host.transport;
      const send = () => {
        if (inFlight) return;
        const report: MetricsReport = { source, instance, everyMs, snapshot: meter.snapshot() };
        inFlight = transport
          .publish(encode(report, { type: METRICS_TYPE, source }), { timeoutMs: everyMs * 5 })
          .catch((err: Error) => {
            if (Date.now() - lastWarning < 60_000) return;
            lastWarning = Date.now();
            host.logger.warn('metricsReporter: a snapshot could not be published', { error: redactSecrets(`${err.name}: ${err.message}`) });
          })
          .finally(() => (inFlight = undefined));
      };
      send();
      timer = setInterval(send, everyMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await inFlight;
    },
  };
}

/**
 * Calls `onReport` with each snapshot any service publishes (or only those of `source`), until
 * the returned subscription is closed. Messages of that type that are not reports are skipped.
 */
export function watchMetrics(transport: Transport, onReport: (r: MetricsReport) => void, options: { readonly source?: string } = {}): Promise<Subscription> {
  return tailMessages(transport, METRICS_TYPE, (m) => {
    let r: MetricsReport;
    try {
      r = parseJson(m.body.toString('utf8')) as MetricsReport;
    } catch {
      return;
    }
    if (!r || typeof r !== 'object' || typeof r.source !== 'string' || !r.snapshot || typeof r.snapshot !== 'object') return;
    if (options.source !== undefined && r.source !== options.source) return;
    onReport(r);
  });
}
