/** `courier publish TYPE JSON|--file F`: publishes one message in a valid CloudEvents envelope (lib/ops/publish.ts). */
import fs from 'node:fs/promises';
import { publishEnvelope } from '../lib/ops/publish';
import { BROKER_OPTIONS, BROKER_USAGE, brokerChoice, describeBroker, parseCommandArgs, reportFailure, withTransport } from './broker-options';
import { CommandIO, UsageError } from './command';

export const USAGE = `Usage: courier publish TYPE JSON [options]
       courier publish TYPE --file FILE [options]

Publishes one message of type TYPE (order.placed) whose data is the JSON given (or read from FILE;
"-" reads stdin), in a CloudEvents envelope: a new id, source, time, correlation id. Waits until the
broker confirmed it, then prints its id. The data is not validated against a payload class (the
command has none): the subscribers do that, and dead-letter what fails.

Options:
  --file FILE                    read the data from FILE ("-": stdin)
  --source NAME                  the envelope's source (default courier-cli)
  --id ID                        the envelope id (default: a new UUID)
  --correlation-id ID            the correlation id (default: the id)
  --header NAME=VALUE            an extension header (lowercase letters and digits); repeatable
  --mandatory                    fail when no queue receives it (AMQP, MQTT 5)
  --help, -h                     this text
${BROKER_USAGE}
Exit status: 0 published, 1 failed, 2 bad usage.
`;

const OPTIONS = {
  ...BROKER_OPTIONS,
  file: { type: 'string' },
  source: { type: 'string' },
  id: { type: 'string' },
  'correlation-id': { type: 'string' },
  header: { type: 'string', multiple: true },
  mandatory: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs `courier publish`; resolves to the exit status. */
export async function run(args: readonly string[], io: CommandIO): Promise<number> {
  let parsed;
  try {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    const file = values.file as string | undefined;
    if (positionals.length !== (file === undefined ? 2 : 1)) throw new UsageError(file === undefined ? 'give TYPE and JSON, or TYPE and --file FILE' : 'with --file, give TYPE only');
    const headers: Record<string, string> = {};
    for (const h of (values.header as string[] | undefined) ?? []) {
      const m = /^([^=]+)=(.*)$/.exec(h);
      if (!m) throw new UsageError(`--header "${h}" is not NAME=VALUE`);
      headers[m[1]] = m[2];
    }
    parsed = { type: positionals[0], json: positionals[1], file, headers, values, broker: brokerChoice(values) };
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`courier publish: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const text = parsed.file === undefined ? parsed.json! : parsed.file === '-' ? await readStdin() : await fs.readFile(parsed.file, 'utf8');
    const v = parsed.values;
    const id = await withTransport(parsed.broker, 'publish', (t) =>
      publishEnvelope(t, parsed.type, text, {
        json: true,
        source: v.source as string | undefined,
        id: v.id as string | undefined,
        correlationId: v['correlation-id'] as string | undefined,
        headers: parsed.headers,
        mandatory: v.mandatory === true,
        timeoutMs: parsed.broker.timeoutMs,
      }),
    );
    io.stdout.write(`${id}\n`);
    io.stderr.write(`courier publish: ${parsed.type} ${id} confirmed by ${describeBroker(parsed.broker)}\n`);
    return 0;
  } catch (err) {
    return reportFailure(io, 'publish', err);
  }
}
