/**
 * Courier's figures as Prometheus metrics (prom-client). Counters and histograms are fed by the
 * meter's events as they happen ({@link MeterListener}), so they add up across instances
 * (`sum by (type) (rate(courier_messages_handled_total[1m]))`, `histogram_quantile` over the
 * summed buckets), unlike the meter's per-process percentiles. Gauges are read from each bus's
 * meter snapshot when Prometheus scrapes. Labels are bounded: the service (the bus's `source`),
 * the message type, the handler (`<group>.<Class.method>`), the outcome; never an id.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus } from '../../lib/bus';
import type { Meter, MeterListener, MetricsSnapshot } from '../../lib/meter';

/** Handle, publish and request durations, in seconds: 1 ms to 30 s. */
export const DEFAULT_BUCKETS_S: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The broker's own queue depth per queue name, read at each scrape (AMQP: a passive declare). */
export type QueueDepthSource = () => Promise<Readonly<Record<string, number>>> | Readonly<Record<string, number>>;

export interface PrometheusOptions {
  /** The registry to register in. Default: a new one (its text is {@link CourierPrometheus.metrics}). */
  readonly registry?: Registry;
  /** Name prefix. Default `courier_`. */
  readonly prefix?: string;
  /** Histogram buckets, seconds. Default {@link DEFAULT_BUCKETS_S}. */
  readonly buckets?: readonly number[];
}

interface Watched {
  readonly service: string;
  readonly meter: Meter;
  readonly queueDepth?: QueueDepthSource;
  readonly unlisten: () => void;
}

/**
 * The metrics of one or more buses in one registry: `prometheusMetrics().addBus(bus)`, then serve
 * {@link CourierPrometheus.handler} (or the registry) on `/metrics`.
 */
export class CourierPrometheus {
  readonly registry: Registry;
  private readonly watched: Watched[] = [];
  private readonly buses: Bus[] = [];
  private readonly published: Counter<'service' | 'type'>;
  private readonly publishDuration: Histogram<'service' | 'type'>;
  private readonly handled: Counter<'service' | 'type' | 'handler' | 'outcome'>;
  private readonly handleDuration: Histogram<'service' | 'type' | 'handler' | 'outcome'>;
  private readonly requestDuration: Histogram<'service' | 'type' | 'outcome'>;

  constructor(options: PrometheusOptions = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    const p = options.prefix ?? 'courier_';
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS_S)];
    const registers = [registry];
    this.published = new Counter({ name: `${p}messages_published_total`, help: 'Messages the broker accepted (with confirms: stored), by type', labelNames: ['service', 'type'], registers });
    this.publishDuration = new Histogram({ name: `${p}publish_duration_seconds`, help: 'From publish() to the broker accepting the message', labelNames: ['service', 'type'], buckets, registers });
    this.handled = new Counter({ name: `${p}messages_handled_total`, help: 'Deliveries settled, by handler and outcome (ack, retry, requeue, dead)', labelNames: ['service', 'type', 'handler', 'outcome'], registers });
    this.handleDuration = new Histogram({ name: `${p}handle_duration_seconds`, help: 'From a delivery reaching the bus to its settle (decode, validation, handler, ack)', labelNames: ['service', 'type', 'handler', 'outcome'], buckets, registers });
    this.requestDuration = new Histogram({ name: `${p}request_duration_seconds`, help: 'request() until its reply (ok, error), timeout or failure', labelNames: ['service', 'type', 'outcome'], buckets, registers });

    // Gauges: read from the meters at scrape time.
    const buses = this.buses;
    const snapshots = () => this.watched.map((w) => ({ w, s: w.meter.snapshot() }));
    const each = (fill: (set: (labels: Record<string, string>, value: number) => void, w: Watched, s: MetricsSnapshot) => void) =>
      function (this: Gauge<string>) {
        this.reset();
        for (const { w, s } of snapshots()) fill((labels, value) => this.set(labels, value), w, s);
      };
    new Gauge({
      name: `${p}backlog_messages`,
      help: 'Published minus settled, as this process saw it, by type (the broker may hold more: courier_queue_depth_messages)',
      labelNames: ['service', 'type'],
      registers,
      collect: each((set, w, s) => {
        for (const [type, t] of Object.entries(s.topics)) set({ service: w.service, type }, t.backlog);
      }),
    });
    new Gauge({
      name: `${p}in_flight_messages`,
      help: 'Deliveries being handled now, by handler',
      labelNames: ['service', 'handler'],
      registers,
      collect: each((set, w, s) => {
        for (const [handler, h] of Object.entries(s.handlers)) set({ service: w.service, handler }, h.inFlight);
      }),
    });
    new Gauge({
      name: `${p}publishes_waiting`,
      help: 'Publishes handed to the transport and not yet confirmed',
      labelNames: ['service'],
      registers,
      collect: function (this: Gauge<string>) {
        this.reset();
        for (const b of buses) this.set({ service: b.source }, b.health().publishesWaiting);
      },
    });
    new Gauge({
      name: `${p}outbox_waiting_rows`,
      help: 'Outbox rows committed and not yet published, by table (as its relay last looked)',
      labelNames: ['service', 'table'],
      registers,
      collect: each((set, w, s) => {
        for (const [table, o] of Object.entries(s.outbox)) set({ service: w.service, table }, o.waiting);
      }),
    });
    new Gauge({
      name: `${p}outbox_oldest_age_seconds`,
      help: 'Age of the oldest waiting outbox row, by table (0 when none)',
      labelNames: ['service', 'table'],
      registers,
      collect: each((set, w, s) => {
        for (const [table, o] of Object.entries(s.outbox)) set({ service: w.service, table }, (o.oldestAgeMs ?? 0) / 1000);
      }),
    });
    new Gauge({
      name: `${p}outbox_dead_rows`,
      help: 'Outbox rows given up on, by table',
      labelNames: ['service', 'table'],
      registers,
      collect: each((set, w, s) => {
        for (const [table, o] of Object.entries(s.outbox)) set({ service: w.service, table }, o.dead);
      }),
    });
    const watched = this.watched;
    new Gauge({
      name: `${p}queue_depth_messages`,
      help: "The broker's own count of messages ready in a queue: the meter's reading (AMQP) or a queueDepth source",
      labelNames: ['service', 'queue'],
      registers,
      async collect(this: Gauge<string>) {
        this.reset();
        for (const w of watched) {
          // The meter's own reading of each handler's queue (AMQP: a passive declare every queueDepthEveryMs).
          for (const h of Object.values(w.meter.snapshot().handlers)) {
            if (h.brokerQueue) this.set({ service: w.service, queue: h.brokerQueue.queue }, h.brokerQueue.messages);
          }
          if (!w.queueDepth) continue;
          const depths = await w.queueDepth();
          for (const [queue, depth] of Object.entries(depths)) this.set({ service: w.service, queue }, depth);
        }
      },
    });
  }

  /**
   * Reports `bus` (its meter's events and figures; `service` label = its `source`). The bus needs
   * its meter (not `meter: false`). `queueDepth`: the broker's queue depths, read at each scrape.
   */
  addBus(bus: Bus, options: { readonly queueDepth?: QueueDepthSource } = {}): this {
    if (!bus.meter) throw new TypeError(`courier-bus/prometheus: the bus of ${bus.source} was created with meter: false`);
    this.buses.push(bus);
    return this.addMeter(bus.meter, bus.source, options);
  }

  /** Reports a meter directly (what {@link addBus} does with the bus's meter), labelled `service`. */
  addMeter(meter: Meter, service: string, options: { readonly queueDepth?: QueueDepthSource } = {}): this {
    const listener: MeterListener = {
      published: (type, ms) => {
        this.published.inc({ service, type });
        this.publishDuration.observe({ service, type }, ms / 1000);
      },
      settled: (type, handler, ms, outcome) => {
        this.handled.inc({ service, type, handler, outcome });
        this.handleDuration.observe({ service, type, handler, outcome }, ms / 1000);
      },
      requested: (type, ms, outcome) => this.requestDuration.observe({ service, type, outcome }, ms / 1000),
    };
    this.watched.push({ service, meter, queueDepth: options.queueDepth, unlisten: meter.listen(listener) });
    return this;
  }

  /** Stops listening to every meter. */
  close(): void {
    for (const w of this.watched.splice(0)) w.unlisten();
    this.buses.length = 0;
  }

  /** The text exposition format of the registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * A node:http request listener serving the registry on `path` (default `/metrics`); 404
   * elsewhere. `http.createServer(metrics.handler()).listen(9464)`. Returns true when it answered.
   */
  handler(path = '/metrics'): (req: IncomingMessage, res: ServerResponse) => boolean {
    return (req, res) => {
      if ((req.url ?? '/').split('?')[0] !== path) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
        return false;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
      );
      return true;
    };
  }
}

/** A new {@link CourierPrometheus}. */
export function prometheusMetrics(options: PrometheusOptions = {}): CourierPrometheus {
  return new CourierPrometheus(options);
}
