/**
 * `courier demo`: the order and product services of samples/ with a driver and the invariant
 * checks. The demo and with it Courier and class-validator load only when a demo runs.
 */
import type { DemoOptions, DemoSummary } from '../samples/demo/run-demo';
import type { Bus } from 'courier-bus';
import { integerOption as integer, parseCommandArgs } from './broker-options';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier demo [options]

Runs the product and order services and drives orders through them, then checks the invariants.

Options:
  --transport memory|amqp|mqtt   broker to run on (default memory: in-process, nothing to install)
  --url URL                      broker URL (default amqp://guest:guest@127.0.0.1:5672, mqtt://127.0.0.1:1883)
  --orders N                     orders to place (default 1000)
  --products M                   products in the catalog (default 20)
  --instances K                  order-service instances competing in one group (default 2); for
                                 --role driver: how many to wait for (default: those that answer)
  --role product|order|driver    run one part only, one process each (amqp or mqtt; see docs/demo.md)
  --instance-id ID               this process's instance id (order instances are ID-1..ID-K); give
                                 the same one to a restarted process (default: <host>-<pid>)
  --db URL|memory                where the services keep their state: SQLite by default (in memory
                                 in one process, a file per service with --role), postgres://...,
                                 or memory (lost on restart; also when better-sqlite3 is missing)
  --data-dir DIR                 the SQLite files' folder with --role (default <tmp>/courier-demo/<ns>);
                                 a driver keeps its run there: started again, it resumes that run
  --namespace NAME               isolate this run's groups and topics (default: a new one per run on a
                                 broker; none with --role, so that the processes meet)
  --remove-namespace             remove the --namespace's shared topology (AMQP: its exchange, its
                                 groups' queues with their messages) and exit; stop its processes first
  --seed S                       seed of the random orders (default 1)
  --rate R                       place at most R orders per second (default: as fast as they end)
  --faults                       duplicate 20 % of the messages and inject poison messages
  --json                         print the summary as one JSON object on stdout
  --verbose                      log the services' warnings (retries, dead letters) on stderr
  --metrics-port P               serve the buses' Prometheus metrics on http://127.0.0.1:P/metrics
  --http PORT                    serve the services over HTTP on 127.0.0.1:PORT until stopped, instead of
                                 driving orders: GET /products/:id, POST /orders, GET /orders/:id (0: a free port)
                                 (and /ready, /live) while the demo runs (needs prom-client)
  --dashboard PORT               serve the live dashboard of the run on http://127.0.0.1:PORT/ (docs/dashboard.md;
                                 token from COURIER_DASHBOARD_TOKEN if set); orders are then paced at 25/s
                                 unless --rate says otherwise, and the page stays up after the run until Ctrl-C
  --slow Class.method=MS         delay each message of that handler by MS ms (a stalled dependency: watch
                                 its backlog grow on the dashboard), e.g. ProductService.onOrderPlaced=2000
  --late-replica                 (amqp) instead of the order demo: a replica that starts after --orders
                                 sales and builds itself from the stream's history, then follows, stops
                                 and resumes from its stored position (docs/scaling.md)
  --help, -h                     this text

Exit status: 0 when every invariant holds, 1 when one fails or the run fails, 2 for bad usage.
`;

const OPTIONS = {
  transport: { type: 'string' },
  url: { type: 'string' },
  orders: { type: 'string' },
  products: { type: 'string' },
  instances: { type: 'string' },
  role: { type: 'string' },
  'instance-id': { type: 'string' },
  db: { type: 'string' },
  'data-dir': { type: 'string' },
  'remove-namespace': { type: 'boolean' },
  namespace: { type: 'string' },
  seed: { type: 'string' },
  rate: { type: 'string' },
  json: { type: 'boolean' },
  faults: { type: 'boolean' },
  verbose: { type: 'boolean' },
  'metrics-port': { type: 'string' },
  http: { type: 'string' },
  dashboard: { type: 'string' },
  slow: { type: 'string' },
  'late-replica': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `courier demo`'s arguments (after the command name) as options, or `'help'`; throws {@link UsageError} for bad usage. */
export function parseArgs(rest: readonly string[]): (DemoOptions & { readonly metricsPort?: number; readonly dashboard?: number; readonly lateReplica?: true }) | 'help' {
  const { values } = parseCommandArgs(rest, OPTIONS, false);
  if (values.help) return 'help';
  const transport = values.transport ?? 'memory';
  if (transport !== 'memory' && transport !== 'amqp' && transport !== 'mqtt') throw new UsageError(`--transport must be memory, amqp or mqtt, not "${transport}"`);
  const role = values.role;
  if (role !== undefined && role !== 'product' && role !== 'order' && role !== 'driver') throw new UsageError(`--role must be product, order or driver, not "${role}"`);
  if (role && transport === 'memory') throw new UsageError('--role needs --transport amqp or mqtt: the memory broker lives inside one process');
  if (values.url !== undefined && transport === 'memory') throw new UsageError('--url needs --transport amqp or mqtt');
  if (values.url !== undefined && !/^(amqps?|mqtts?|wss?|tcp):\/\//.test(values.url)) throw new UsageError(`--url "${values.url}" is not a broker URL`);
  if (values.namespace !== undefined && !/^[a-z0-9-]{1,40}$/.test(values.namespace)) throw new UsageError('--namespace may hold 1 to 40 lower-case letters, digits and "-"');
  const instanceId = values['instance-id'];
  if (instanceId !== undefined && !/^[A-Za-z0-9_.-]{1,60}$/.test(instanceId)) throw new UsageError('--instance-id may hold 1 to 60 letters, digits, "_", "." and "-"');
  const db = values.db;
  if (db !== undefined && db !== 'memory' && !/^postgres(ql)?:\/\//.test(db)) throw new UsageError(`--db must be postgres://... or memory, not "${db}"`);
  if (values['remove-namespace'] && (values.namespace === undefined || transport === 'memory')) throw new UsageError('--remove-namespace needs --namespace and --transport amqp or mqtt');
  if (values['remove-namespace'] && role) throw new UsageError('--remove-namespace runs no role');
  if (values.http !== undefined && role) throw new UsageError('--http runs the services in one process: not with --role');
  if (values['data-dir'] !== undefined && !role) throw new UsageError('--data-dir needs --role (in one process, SQLite is in memory)');
  return {
    transport,
    url: values.url,
    orders: integer(values.orders, 'orders', 1000, 1, 1_000_000),
    products: integer(values.products, 'products', 20, 1, 100_000),
    instances: role === 'driver' && values.instances === undefined ? undefined : integer(values.instances, 'instances', 2, 1, 64),
    instanceId,
    db,
    dataDir: values['data-dir'],
    seed: integer(values.seed, 'seed', 1, 0, 2 ** 32 - 1),
    rate: values.rate === undefined ? undefined : integer(values.rate, 'rate', 1, 1, 100_000),
    role,
    namespace: values.namespace,
    json: values.json === true,
    faults: values.faults === true,
    verbose: values.verbose === true,
    metricsPort: values['metrics-port'] === undefined ? undefined : integer(values['metrics-port'], 'metrics-port', 0, 1, 65535),
    http: values.http === undefined ? undefined : integer(values.http, 'http', 0, 0, 65535),
    removeNamespace: values['remove-namespace'] === true,
    ...dashboardOptions(values.dashboard, values.slow, values.rate),
    ...(values['late-replica'] ? { lateReplica: lateReplicaUsage(transport, values) } : {}),
  };
}

/** `--dashboard PORT` (which paces the orders at 25/s unless --rate is given) and `--slow Class.method=MS`. */
function dashboardOptions(dashboard: string | undefined, slow: string | undefined, rate: string | undefined) {
  const m = slow === undefined ? undefined : /^([A-Za-z_$][\w$]*\.[A-Za-z_$][\w$]*)=(\d{1,6})$/.exec(slow);
  if (slow !== undefined && !m) throw new UsageError(`--slow must be Class.method=MS (e.g. ProductService.onOrderPlaced=2000), not "${slow}"`);
  return {
    ...(dashboard === undefined ? {} : { dashboard: integer(dashboard, 'dashboard', 0, 0, 65535), ...(rate === undefined ? { rate: 25 } : {}) }),
    ...(m ? { slow: { handler: m[1], ms: Number(m[2]) } } : {}),
  };
}

/** `--late-replica` runs alone, on AMQP (streams). */
function lateReplicaUsage(transport: string, values: Record<string, unknown>): true {
  if (transport !== 'amqp') throw new UsageError('--late-replica needs --transport amqp (RabbitMQ streams keep the history)');
  for (const other of ['role', 'namespace', 'remove-namespace', 'http', 'faults', 'db', 'dashboard']) {
    if (values[other] !== undefined) throw new UsageError(`--late-replica runs alone: not with --${other}`);
  }
  return true;
}

/** Runs `courier demo` with its arguments; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const options: DemoOptions & { readonly metricsPort?: number; readonly dashboard?: number; readonly lateReplica?: true } = parsed.options;
  if (options.lateReplica) return runLateReplica(options, io);
  const { formatSummary, runDemo } = await import('../samples/demo/run-demo');
  const { AdapterMissingError } = await import('../samples/demo/transports');
  const stopSignal = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let summary: DemoSummary | null;
  let metrics: { onBuses: (buses: readonly Bus[]) => void; close: () => Promise<void> } | undefined;
  const dashboard = options.dashboard === undefined ? undefined : await import('./demo-dashboard').then((m) => m.demoDashboard(options.dashboard!, io, stopSignal));
  try {
    if (options.metricsPort !== undefined) metrics = await serveMetrics(options.metricsPort, io);
    const onBuses = (buses: readonly Bus[]) => {
      metrics?.onBuses(buses);
      dashboard?.onBuses(buses);
    };
    summary = await runDemo(options, { ...io, stopSignal, onBuses, ...(dashboard ? { onTransportFactory: dashboard.onTransportFactory, beforeStop: (s: DemoSummary) => dashboard.beforeStop(s, options.json) } : {}) });
  } catch (err) {
    const e = err as Error;
    io.stderr.write(`courier demo failed: ${e instanceof AdapterMissingError ? e.message : e.stack ?? e.message}\n`);
    if (options.json) io.stdout.write(JSON.stringify({ ok: false, error: e.message }) + '\n');
    return 1;
  } finally {
    await metrics?.close();
    await dashboard?.close();
  }
  if (!summary) return 0;
  // With --dashboard, the summary was written when the run ended (the page stayed up after it).
  if (!dashboard) io.stdout.write(options.json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
  return summary.ok ? 0 : 1;
}

/** `--late-replica`: samples/demo/late-replica.ts. */
async function runLateReplica(options: DemoOptions, io: CommandIO): Promise<number> {
  const { runLateReplicaDemo } = await import('../samples/demo/late-replica');
  try {
    const url = options.url ?? 'amqp://guest:guest@127.0.0.1:5672';
    const summary = await runLateReplicaDemo({ url, orders: options.orders, products: options.products, seed: options.seed }, (line) => {
      if (!options.json) io.stdout.write(line + '\n');
    });
    if (options.json) io.stdout.write(JSON.stringify(summary) + '\n');
    return summary.ok ? 0 : 1;
  } catch (err) {
    io.stderr.write(`courier demo --late-replica failed: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

/** `--metrics-port`: /metrics (courier-bus/prometheus) and /ready, /live of the demo's buses on 127.0.0.1. */
async function serveMetrics(port: number, io: CommandIO): Promise<{ onBuses: (buses: readonly Bus[]) => void; close: () => Promise<void> }> {
  const http = await import('node:http');
  const { healthHandler } = await import('courier-bus');
  const { prometheusMetrics } = await import('courier-bus/prometheus');
  const metrics = prometheusMetrics();
  const all: Bus[] = [];
  const metricsHandler = metrics.handler();
  const health = healthHandler(all);
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').startsWith('/metrics')) metricsHandler(req, res);
    else health(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  io.stderr.write(`metrics on http://127.0.0.1:${port}/metrics\n`);
  return {
    onBuses: (buses) => {
      for (const b of buses) {
        if (all.includes(b)) continue;
        all.push(b);
        metrics.addBus(b);
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
