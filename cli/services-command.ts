/**
 * `courier services`: the live instances on a broker, as the registry over the bus sees them
 * (docs/discovery.md). Joins as a listener (announces nothing), asks every instance to announce,
 * collects the answers for `--wait` ms and prints them. Courier and the adapter load only when it runs.
 */
import type { ServiceInstance } from '../lib';
import { BROKER_OPTIONS, BROKER_USAGE, BrokerChoice, brokerChoice, describeBroker, integerOption, makeTransport, parseCommandArgs } from './broker-options';
import { CommandIO, parseOrExit, UsageError } from './command';

export const USAGE = `Usage: courier services [options]

Lists the live instances of every service on a broker that runs with discovery
(createBus({ discovery })), with what each handles and publishes.

Options:
  --wait MS               how long to collect the instances' answers (default 1500)
  --connect-timeout MS    give up reaching the broker after this long: --timeout-ms by its older
                          name; here either defaults to 5000, not 15000
  --service NAME          only this service
  --json                  print one JSON array on stdout
  --help, -h              this text
${BROKER_USAGE}
--transport memory is refused here: the memory broker lives inside one process.
Exit status: 0 when the broker was reached (even with no instance), 1 when not, 2 for bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  wait: { type: 'string' },
  'connect-timeout': { type: 'string' },
  service: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ServicesOptions {
  readonly broker: BrokerChoice;
  readonly waitMs: number;
  readonly service?: string;
  readonly json: boolean;
}

/** `courier services`'s arguments as options, or `'help'`; throws {@link UsageError} for bad usage. */
export function parseArgs(rest: readonly string[]): ServicesOptions | 'help' {
  const { values } = parseCommandArgs(rest, OPTIONS, false);
  if (values.help) return 'help';
  if (values['connect-timeout'] !== undefined && values['timeout-ms'] !== undefined) throw new UsageError('--connect-timeout and --timeout-ms are the same option: give one');
  // A listing is interactive: 5 s to reach the broker rather than the 15 s of the other commands.
  const timeoutMs = integerOption(values['connect-timeout'] ?? values['timeout-ms'], values['connect-timeout'] !== undefined ? 'connect-timeout' : 'timeout-ms', 5000, 100, 120_000);
  const broker = { ...brokerChoice(values), timeoutMs };
  if (broker.transport === 'memory') throw new UsageError('--transport must be amqp or mqtt, not "memory" (the memory broker lives inside one process)');
  return {
    broker,
    waitMs: integerOption(values.wait, 'wait', 1500, 100, 60_000),
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

/** Runs `courier services`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  const parsed = parseOrExit(() => parseArgs(args), USAGE, io);
  if ('status' in parsed) return parsed.status;
  const options: ServicesOptions = parsed.options;
  const { createBus, silentLogger, redactSecrets } = await import('../lib');
  let bus;
  try {
    bus = createBus({ transport: await makeTransport(options.broker, 'services'), source: 'courier-cli', logger: silentLogger, meter: false, discovery: { announce: false } });
    await bus.start();
  } catch (err) {
    io.stderr.write(`courier services: cannot reach ${describeBroker(options.broker)}: ${redactSecrets((err as Error).message)}\n`);
    await bus?.stop({ timeoutMs: 1000 }).catch(() => undefined);
    return 1;
  }
  await new Promise((resolve) => setTimeout(resolve, options.waitMs));
  const found = bus.services().filter((s) => !s.self && (options.service === undefined || s.service === options.service));
  await bus.stop({ timeoutMs: 2000 }).catch(() => undefined);
  io.stdout.write(options.json ? JSON.stringify(found) + '\n' : formatServices(found));
  return 0;
}
