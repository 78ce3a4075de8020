/** The `courier` command line (bin/courier.js loads this through ts-node). */
import { DemoOptions, DemoSummary, formatSummary, runDemo } from './demo/run-demo';
import { AdapterMissingError } from './demo/transports';

export const USAGE = `Usage: courier demo [options]

Runs the product and order services and drives orders through them, then checks the invariants.

Options:
  --transport memory|amqp|mqtt   broker to run on (default memory: in-process, nothing to install)
  --url URL                      broker URL (default amqp://guest:guest@127.0.0.1:5672, mqtt://127.0.0.1:1883)
  --orders N                     orders to place (default 1000)
  --products M                   products in the catalog (default 20)
  --instances K                  order-service instances competing in one group (default 2)
  --role product|order|driver    run one part only, one process each (amqp or mqtt; see docs/demo.md)
  --namespace NAME               isolate this run's groups and topics (default: a new one per run on a
                                 broker; none with --role, so that the processes meet)
  --seed S                       seed of the random orders (default 1)
  --faults                       duplicate 20 % of the messages and inject poison messages
  --json                         print the summary as one JSON object on stdout
  --verbose                      log the services' warnings (retries, dead letters) on stderr
  --help                         this text

Exit status: 0 when every invariant holds, 1 when one fails or the run fails, 2 for bad usage.
`;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): DemoOptions | 'help' {
  const args = [...argv];
  const command = args.shift();
  if (command === '--help' || command === '-h' || command === 'help') return 'help';
  if (command !== 'demo') throw new UsageError(command ? `unknown command "${command}"` : 'no command given');
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const valued = new Set(['transport', 'url', 'orders', 'products', 'instances', 'role', 'namespace', 'seed']);
  const boolean = new Set(['json', 'faults', 'verbose', 'help']);
  while (args.length) {
    const arg = args.shift()!;
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const [, name, inline] = m;
    if (boolean.has(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
    } else if (valued.has(name)) {
      const value = inline ?? args.shift();
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      if (name in values) throw new UsageError(`--${name} given twice`);
      values[name] = value;
    } else throw new UsageError(`unknown option --${name}`);
  }
  if (flags.has('help')) return 'help';
  const transport = values.transport ?? 'memory';
  if (transport !== 'memory' && transport !== 'amqp' && transport !== 'mqtt') throw new UsageError(`--transport must be memory, amqp or mqtt, not "${transport}"`);
  const role = values.role;
  if (role !== undefined && role !== 'product' && role !== 'order' && role !== 'driver') throw new UsageError(`--role must be product, order or driver, not "${role}"`);
  if (role && transport === 'memory') throw new UsageError('--role needs --transport amqp or mqtt: the memory broker lives inside one process');
  if (values.url !== undefined && transport === 'memory') throw new UsageError('--url needs --transport amqp or mqtt');
  if (values.url !== undefined && !/^(amqps?|mqtts?|wss?|tcp):\/\//.test(values.url)) throw new UsageError(`--url "${values.url}" is not a broker URL`);
  if (values.namespace !== undefined && !/^[a-z0-9-]{1,40}$/.test(values.namespace)) throw new UsageError('--namespace may hold 1 to 40 lower-case letters, digits and "-"');
  return {
    transport,
    url: values.url,
    orders: integer(values, 'orders', 1000, 1, 1_000_000),
    products: integer(values, 'products', 20, 1, 100_000),
    instances: integer(values, 'instances', 2, 1, 64),
    seed: integer(values, 'seed', 1, 0, 2 ** 32 - 1),
    role,
    namespace: values.namespace,
    json: flags.has('json'),
    faults: flags.has('faults'),
    verbose: flags.has('verbose'),
  };
}

function integer(values: Record<string, string>, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${raw}"`);
  return Number(raw);
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[], io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let options: DemoOptions | 'help';
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const stopSignal = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  let summary: DemoSummary | null;
  try {
    summary = await runDemo(options, { ...io, stopSignal });
  } catch (err) {
    const e = err as Error;
    io.stderr.write(`courier demo failed: ${e instanceof AdapterMissingError ? e.message : e.stack ?? e.message}\n`);
    if (options.json) io.stdout.write(JSON.stringify({ ok: false, error: e.message }) + '\n');
    return 1;
  }
  if (!summary) return 0;
  io.stdout.write(options.json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
  return summary.ok ? 0 : 1;
}
