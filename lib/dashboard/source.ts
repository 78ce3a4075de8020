/**
 * Where a dashboard's figures come from: a {@link DashboardSource} lists the live instances with
 * their latest meter snapshot. Two ship: {@link busesSource} (buses of this process: an embedded
 * dashboard, the demo's) and {@link brokerSource} (any broker: the registry over the bus for who
 * runs, and the snapshots services publish with `metricsReporter`, lib/ops/metrics-report.ts).
 */
import os from 'node:os';
import type { Bus } from '../bus';
import type { Transport } from '../transport';
import type { InstanceView } from './fleet';

export interface DashboardSource {
  /** Called once before the first {@link instances}. */
  start(): Promise<void>;
  /** The live instances now. Called once a tick: keep it cheap. */
  instances(): InstanceView[];
  stop(): Promise<void>;
}

/** The buses of this process (a list, or a function read at each tick, for buses started later). */
export function busesSource(buses: readonly Bus[] | (() => readonly Bus[])): DashboardSource {
  const list = typeof buses === 'function' ? buses : () => buses;
  const fallback = `${os.hostname()}:${process.pid}`;
  return {
    start: async () => undefined,
    stop: async () => undefined,
    instances() {
      const out: InstanceView[] = [];
      const used = new Set<string>();
      const now = Date.now();
      for (const bus of list()) {
        const state = bus.health().state;
        if (state !== 'started' && state !== 'stopping') continue;
        let id = bus.instanceId ?? fallback;
        for (let n = 2; used.has(`${bus.source}\u0000${id}`); n++) id = `${bus.instanceId ?? fallback}#${n}`;
        used.add(`${bus.source}\u0000${id}`);
        out.push({ service: bus.source, instance: id, snapshot: bus.meter ? bus.meter.snapshot() : undefined, seenAt: now });
      }
      return out;
    },
  };
}

/**
 * Instances on the broker `transport` reaches (not connected yet: the source's bus connects and
 * closes it): those announcing themselves (createBus({ discovery })) and those publishing their
 * meter (metricsReporter), one entry when both name the same instance id. A report not renewed
 * within three of its intervals (at least 10 s) is dropped.
 */
export function brokerSource(transport: Transport): DashboardSource & { readonly transport: Transport } {
  const reports = new Map<string, { report: import('../ops/metrics-report').MetricsReport; at: number }>();
  let bus: Bus | undefined;
  let sub: { close(): Promise<void> } | undefined;
  return {
    transport,
    async start() {
      const { createBus, silentLogger } = await import('../bus');
      const { watchMetrics } = await import('../ops/metrics-report');
      bus = createBus({ transport, source: 'courier-dashboard', logger: silentLogger, meter: false, discovery: { announce: false } });
      await bus.start();
      sub = await watchMetrics(transport, (report) => {
        const key = `${report.source}\u0000${report.instance}`;
        if (reports.size >= 10_000 && !reports.has(key)) return;
        reports.set(key, { report, at: Date.now() });
      });
    },
    async stop() {
      await sub?.close().catch(() => undefined);
      await bus?.stop({ timeoutMs: 2000 }).catch(() => undefined);
    },
    instances() {
      const now = Date.now();
      const out = new Map<string, InstanceView>();
      for (const s of bus?.services() ?? []) {
        if (s.self) continue;
        out.set(`${s.service}\u0000${s.instanceId}`, { service: s.service, instance: s.instanceId, transport: s.transport, version: s.version, startedAt: s.startedAt, publishes: s.publishes, handles: s.handles, seenAt: s.lastSeen });
      }
      for (const [key, { report, at }] of reports) {
        if (now - at > Math.max(10_000, 3 * report.everyMs)) {
          reports.delete(key);
          continue;
        }
        const known = out.get(key);
        out.set(key, { ...(known ?? { service: report.source, instance: report.instance }), snapshot: report.snapshot, seenAt: Math.max(at, known?.seenAt ?? 0) });
      }
      return [...out.values()];
    },
  };
}
