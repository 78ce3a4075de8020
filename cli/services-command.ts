/**
 * `courier services`: the live instances on a broker, as the registry over the bus sees them
 * (docs/discovery.md). Joins as a listener (announces nothing), asks every instance to announce,
 * collects the answers for `--wait` ms and prints them. Courier and the adapter load only when it runs.
 */
import { parseArgs as parseNodeArgs } from 'node:util';
import type { ServiceInstance, Transport } from '../lib';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier services [options]

Lists the live instances of every service on a broker that runs with discovery
(createBus({ discovery })), with what each handles and publishes.

Options:
  --transport amqp|mqtt   broker kind (default amqp)
  --url URL               broker URL (default amqp://guest:guest@127.0.0.1:5672, mqtt://127.0.0.1:1883)
  --wait MS               how long to collect the instances' answers (default 1500)
  --connect-timeout MS    give up reaching the broker after this long (default 5000)
  --service NAME          only this service
  --json                  print one JSON array on stdout
  --help, -h              this text

Exit status: 0 when the broker was reached (even with no instance), 1 when not, 2 for bad usage.
`;

const OPTIONS = {
  transport: { type: 'string' },
  url: { type: 'string' },
  wait: { type: 'string' },
  'connect-timeout': { type: 'string' },
  service: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ServicesOptions {
  readonly transport: 'amqp' | 'mqtt';
  readonly url: string;
  readonly waitMs: number;
  readonly connectTimeoutMs: number;
  readonly service?: string;
  readonly json: boolean;
}

/** `courier services`'s arguments as options, or `'help'`; throws {@link UsageError} for bad usage. */
export function parseArgs(rest: readonly string[]): ServicesOptions | 'help' {
  let values: ReturnType<typeof parseNodeArgs<{ options: typeof OPTIONS; args: string[] }>>['values'];
  try {
    ({ values } = parseNodeArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const transport = values.transport ?? 'amqp';
  if (transport !== 'amqp' && transport !== 'mqtt') throw new UsageError(`--transport must be amqp or mqtt, not "${transport}" (the memory broker lives inside one process)`);
  if (values.url !== undefined && !/^(amqps?|mqtts?|wss?|tcp):\/\//.test(values.url)) throw new UsageError(`--url "${values.url}" is not a broker URL`);
  const wait = values.wait ?? '1500';
  if (!/^\d+$/.test(wait) || Number(wait) < 100 || Number(wait) > 60_000) throw new UsageError(`--wait must be an integer from 100 to 60000, not "${wait}"`);
  const connect = values['connect-timeout'] ?? '5000';
  if (!/^\d+$/.test(connect) || Number(connect) < 100 || Number(connect) > 120_000) throw new UsageError(`--connect-timeout must be an integer from 100 to 120000, not "${connect}"`);
  return {
    transport,
    connectTimeoutMs: Number(connect),
    url: values.url ?? (transport === 'amqp' ? 'amqp://guest:guest@127.0.0.1:5672' : 'mqtt://127.0.0.1:1883'),
    waitMs: Number(wait),
    service: values.service,
    json: values.json === true,
  };
}

/** The table `courier services` prints. */
export function formatServices(instances: readonly ServiceInstance[], now = Date.now()): string {
  if (!instances.length) return 'No live instances (services join with createBus({ discovery })).\n';
  const rows = [['SERVICE', 'INSTANCE', 'VERSION', 'TRANSPORT', 'WEIGHT', 'UP', 'HANDLES', 'PUBLISHES']];
  for (const i of instances) {
    const up = i.startedAt ? `${Math.max(0, Math.round((now - Date.parse(i.startedAt)) / 1000))}s` : '';
    rows.push([i.service, i.instanceId, i.version || '-', i.transport, String(i.weight), up, i.handles.join(',') || '-', i.publishes.join(',') || '-']);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n') + '\n';
}

async function transportFor(options: ServicesOptions): Promise<Transport> {
  if (options.transport === 'amqp') return (await import('../adapters/amqp')).amqpTransport({ url: options.url, startTimeoutMs: options.connectTimeoutMs, connectTimeoutMs: Math.min(options.connectTimeoutMs, 10_000) });
  const { randomBytes } = await import('node:crypto');
  return (await import('../adapters/mqtt')).mqttTransport({ url: options.url, startTimeoutMs: options.connectTimeoutMs, connectTimeoutMs: Math.min(options.connectTimeoutMs, 10_000), clientId: `courier-services-${process.pid}-${randomBytes(3).toString('hex')}` });
}

/** Runs `courier services`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const options: ServicesOptions = parsed.options;
  const { createBus, silentLogger, redactSecrets } = await import('../lib');
  let bus;
  try {
    bus = createBus({ transport: await transportFor(options), source: 'courier-cli', logger: silentLogger, meter: false, discovery: { announce: false } });
    await bus.start();
  } catch (err) {
    io.stderr.write(`courier services: cannot reach ${redactSecrets(options.url)}: ${redactSecrets((err as Error).message)}\n`);
    await bus?.stop({ timeoutMs: 1000 }).catch(() => undefined);
    return 1;
  }
  await new Promise((resolve) => setTimeout(resolve, options.waitMs));
  const found = bus.services().filter((s) => !s.self && (options.service === undefined || s.service === options.service));
  await bus.stop({ timeoutMs: 2000 }).catch(() => undefined);
  io.stdout.write(options.json ? JSON.stringify(found) + '\n' : formatServices(found));
  return 0;
}
